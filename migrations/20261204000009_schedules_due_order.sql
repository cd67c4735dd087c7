-- The scheduler locks a fire time's due schedules page after page inside one transaction, so
-- it pages by (next_fire_at, flow_id): rows it already holds are not skipped by SKIP LOCKED.
DROP INDEX schedules_due_idx;
CREATE INDEX schedules_due_idx ON schedules (next_fire_at, flow_id) WHERE state = 'armed';
