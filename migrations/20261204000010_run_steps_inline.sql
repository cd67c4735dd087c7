-- A run executed where it was accepted is stored finished, in one statement with the other
-- runs of its batch. Its step records ride in that run's row, as one jsonb array, instead of
-- one run_steps row (and one primary key entry) each: a third of the statement's cost was
-- those rows. Runs executed by a worker still checkpoint into run_steps, record by record,
-- and so do finished runs whose records are too large for one jsonb value.
ALTER TABLE runs ADD COLUMN steps jsonb;

-- Every step record of every run, wherever it is stored. A filter on run_id reaches both
-- branches, so one run's records are read through its primary keys.
CREATE VIEW run_records AS
    SELECT run_id, step_key, step_id, seq, status, attempt, cost_ms, input, output, error,
           started_at
    FROM run_steps
    UNION ALL
    SELECT r.id, s.step_key, s.step_id, s.seq, s.status, s.attempt, s.cost_ms, s.input,
           s.output, s.error, s.started_at
    FROM runs r
    CROSS JOIN LATERAL jsonb_to_recordset(r.steps) AS s(
        step_key text, step_id text, seq integer, status text, attempt integer,
        cost_ms bigint, input jsonb, output jsonb, error text, started_at timestamptz);
