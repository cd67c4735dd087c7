-- Tenancy. A domain (account) owns projects; users belong to a domain and are granted projects.
-- Ids are opaque text because MSSI clients treat project ids as strings of up to 64 characters.

CREATE TABLE domains (
    id          text PRIMARY KEY,
    name        text NOT NULL CONSTRAINT domains_name_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id          text PRIMARY KEY,
    domain_id   text NOT NULL REFERENCES domains (id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_name_key UNIQUE (domain_id, name)
);

-- `actions` lists the IAM actions a non-admin user holds (`mssi:flow:start`, `mssi:flow:*`).
CREATE TABLE users (
    id             text PRIMARY KEY,
    domain_id      text NOT NULL REFERENCES domains (id),
    name           text NOT NULL,
    password_hash  text NOT NULL,
    is_admin       boolean NOT NULL DEFAULT false,
    actions        text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_name_key UNIQUE (domain_id, name)
);

CREATE TABLE user_projects (
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id)
);

-- The secret key is needed in clear to verify HMAC signatures, so it is stored sealed with the
-- server's encryption key (an AEAD), never hashed and never in clear.
CREATE TABLE access_keys (
    access_key     text PRIMARY KEY,
    secret_sealed  bytea NOT NULL,
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Server-wide values. `key_check` holds a value sealed with the encryption key, so a replica
-- started with a different key refuses to start instead of failing on every secret later.
CREATE TABLE server_settings (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);
