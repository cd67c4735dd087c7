-- A flow's run count and latest run move off the flow row into a few slot rows per flow. Each
-- writer of runs adds to a slot of its own, so concurrent accepts of one flow no longer wait
-- for each other's commit on one row lock; readers sum the slots. No foreign key: its check
-- would lock the flow row from every writer; deleting a flow deletes its counts.
CREATE TABLE flow_run_counts (
    flow_id      uuid NOT NULL,
    slot         smallint NOT NULL,
    runs         bigint NOT NULL,
    last_run_id  uuid,
    last_run_at  timestamptz,
    PRIMARY KEY (flow_id, slot)
);

INSERT INTO flow_run_counts (flow_id, slot, runs, last_run_id, last_run_at)
SELECT id, 0, run_count, last_run_id, last_run_at FROM flows
WHERE run_count > 0 OR last_run_id IS NOT NULL;

ALTER TABLE flows DROP COLUMN run_count, DROP COLUMN last_run_id, DROP COLUMN last_run_at;
