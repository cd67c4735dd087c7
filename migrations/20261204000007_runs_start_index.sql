-- No query selects a project's runs by time any more (R1 reads each flow's latest run from its
-- counts, R2 uses the flow's page index); pruning selects by time alone, which this index
-- serves at about half the entry width.
CREATE INDEX runs_start_idx ON runs (start_time);
DROP INDEX runs_project_start_idx;
