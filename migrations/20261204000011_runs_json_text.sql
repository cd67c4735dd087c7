-- A run's input, response and in-row step records become `json`, text PostgreSQL checks for
-- syntax and keeps as it is, instead of `jsonb`. Runs are written far more often than read:
-- turning each run's JSON into jsonb's binary form (parsing it, sorting every object's keys)
-- was the largest per-run part of the statement that accepts a batch of runs, which one
-- writer executes at a time. The server serializes these values itself, so they are always
-- well formed; readers get the same values back, and a step record's input and output still
-- come out of the view as jsonb, converted only for the runs that are read.
DROP VIEW run_records;

ALTER TABLE runs
    ALTER COLUMN input TYPE json,
    ALTER COLUMN response TYPE json,
    ALTER COLUMN steps TYPE json;

CREATE VIEW run_records AS
    SELECT run_id, step_key, step_id, seq, status, attempt, cost_ms, input, output, error,
           started_at
    FROM run_steps
    UNION ALL
    SELECT r.id, s.step_key, s.step_id, s.seq, s.status, s.attempt, s.cost_ms, s.input,
           s.output, s.error, s.started_at
    FROM runs r
    CROSS JOIN LATERAL json_to_recordset(r.steps) AS s(
        step_key text, step_id text, seq integer, status text, attempt integer,
        cost_ms bigint, input jsonb, output jsonb, error text, started_at timestamptz);
