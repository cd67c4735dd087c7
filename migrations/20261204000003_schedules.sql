-- Armed schedules and the fire times already claimed (docs/schedules.md).

-- One row per enabled flow whose trigger is a `Schedule` step. The flows service writes the row
-- in the transaction that enables, updates or disables the flow, with `next_fire_at` NULL
-- (`pending`); a scheduler process then computes the first fire time after `armed_at`. The row
-- pins the flow version it fires, so an updated flow never fires its old version.
CREATE TABLE schedules (
    flow_id       uuid PRIMARY KEY REFERENCES flows (id) ON DELETE CASCADE,
    project_id    text NOT NULL,
    flow_version  integer NOT NULL,
    -- The trigger step as saved: {"operation": <refId>, "config": <triggerRef.config>}.
    spec          jsonb NOT NULL,
    misfire       text NOT NULL DEFAULT 'latest' CHECK (misfire IN ('skip', 'latest', 'all')),
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'armed', 'ended', 'broken')),
    armed_at      timestamptz NOT NULL,
    -- Always UTC; NULL while pending and once ended.
    next_fire_at  timestamptz,
    last_error    text
);

CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE state = 'armed';
CREATE INDEX schedules_pending_idx ON schedules (armed_at) WHERE state = 'pending';

-- Every fire time that became a run. The unique key is the last line of defence against two
-- processes firing the same instant: the insert is in the firing transaction, and a conflict
-- means someone else fired it. Old rows are pruned; `next_fire_at` only moves forward.
CREATE TABLE schedule_fires (
    flow_id    uuid NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    fire_time  timestamptz NOT NULL,
    run_id     uuid NOT NULL,
    fired_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedule_fires_key UNIQUE (flow_id, fire_time)
);

CREATE INDEX schedule_fires_fired_idx ON schedule_fires (fired_at);
