-- R2 checks the flow's project on the flow itself (a flow id belongs to one project), so its
-- page index need not carry the project id: entries about half as wide make the rows a deep
-- OFFSET skips cheaper to walk, and every run insert writes a smaller entry.
CREATE INDEX runs_flow_page_idx ON runs (flow_id, start_time DESC, id DESC);
DROP INDEX runs_flow_start_id_idx;
