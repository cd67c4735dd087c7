-- R2 pages a flow's runs newest first with the id as tie-break: one index serves that order
-- (and the unfiltered count no longer needs it), so the old index without the id goes.
CREATE INDEX runs_flow_start_id_idx ON runs (project_id, flow_id, start_time DESC, id DESC);
DROP INDEX runs_flow_start_idx;
