-- Connections (credentials a step uses), custom connectors made from OpenAPI documents, and
-- flow templates.

-- `auth_sealed` is the whole `auth_info` object as JSON, sealed with the server's encryption
-- key; `auth_masked` is the same object with every secret value replaced by `****`, for reads.
-- `settings` holds the other, non-secret BaseConnectionInfo objects (`host_config`, ...).
CREATE TABLE connections (
    id             uuid PRIMARY KEY,
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name           text NOT NULL,
    connector_id   text NOT NULL DEFAULT '',
    description    text NOT NULL DEFAULT '',
    auth_type      text NOT NULL,
    auth_sealed    bytea NOT NULL,
    auth_masked    jsonb NOT NULL,
    settings       jsonb NOT NULL,
    domain_id      text NOT NULL,
    user_id        text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT connections_name_key UNIQUE (project_id, name)
);

-- `document` is the OpenAPI 3.x or Swagger 2.0 document as submitted (YAML converted to JSON).
CREATE TABLE custom_connectors (
    id               uuid PRIMARY KEY,
    project_id       text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    version          integer NOT NULL DEFAULT 1,
    version_id       uuid NOT NULL,
    status           text NOT NULL DEFAULT 'dev' CHECK (status IN ('dev', 'released')),
    release_version  text,
    icon             text NOT NULL DEFAULT '',
    auth_content     jsonb NOT NULL DEFAULT '{}',
    document         jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX custom_connectors_project_idx ON custom_connectors (project_id, created_at);

-- A template is a copy of a flow's definition from which new flows are made.
CREATE TABLE templates (
    id           uuid PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flow_id      uuid,
    name         text NOT NULL,
    label        text NOT NULL,
    description  text NOT NULL DEFAULT '',
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL
);

CREATE INDEX templates_project_idx ON templates (project_id, created_at);
