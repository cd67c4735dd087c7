-- What a run's `Response` step produced (`{status, headers, body}`), so that a caller of an
-- HTTP-triggered flow waiting in another process can read its answer once the run ends.
ALTER TABLE runs ADD COLUMN response jsonb;
