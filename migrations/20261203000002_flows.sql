-- Flows and their runs.

-- `definition` is the FlowMeta the client last saved, kept whole so that keys the server does
-- not understand round-trip. Server-owned fields (id, status, version, times) live in columns
-- and override whatever the stored JSON says when the flow is read.
CREATE TABLE flows (
    id           uuid PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id),
    name         text NOT NULL,
    status       text NOT NULL DEFAULT 'disable' CHECK (status IN ('enable', 'disable')),
    version      integer NOT NULL,
    webhook      text NOT NULL CONSTRAINT flows_webhook_key UNIQUE,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- Kept here, updated with each run, so the per-flow history summary needs no aggregate.
    run_count    bigint NOT NULL DEFAULT 0,
    last_run_id  uuid,
    last_run_at  timestamptz,
    CONSTRAINT flows_name_key UNIQUE (project_id, name)
);

-- Every saved version, so a run executes exactly the version it started on.
CREATE TABLE flow_versions (
    flow_id     uuid NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (flow_id, version)
);

-- A run is also a queue entry: workers claim `queued` runs, and `running` runs whose lease has
-- expired (their worker died), with FOR UPDATE SKIP LOCKED. No foreign key to flows: history
-- outlives a deleted flow, so the name is copied.
CREATE TABLE runs (
    id            uuid PRIMARY KEY,
    project_id    text NOT NULL,
    flow_id       uuid NOT NULL,
    flow_version  integer NOT NULL,
    flow_name     text NOT NULL,
    run_model     text NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'running', 'success', 'fail')),
    input         jsonb,
    message       text,
    start_time    timestamptz NOT NULL,
    end_time      timestamptz,
    lease_owner   uuid,
    lease_until   timestamptz,
    claims        integer NOT NULL DEFAULT 0
);

CREATE INDEX runs_flow_start_idx ON runs (project_id, flow_id, start_time DESC);
CREATE INDEX runs_project_start_idx ON runs (project_id, start_time DESC);
CREATE INDEX runs_pending_idx ON runs (start_time) WHERE status IN ('queued', 'running');

-- One row per executed step instance. `step_key` is the step id plus its loop iteration path,
-- so the records double as the run's checkpoint: a resumed run skips every key present here.
CREATE TABLE run_steps (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_key    text NOT NULL,
    step_id     text NOT NULL,
    seq         integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('success', 'fail')),
    attempt     integer NOT NULL,
    cost_ms     bigint NOT NULL,
    input       jsonb,
    output      jsonb,
    error       text,
    started_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, step_key)
);
