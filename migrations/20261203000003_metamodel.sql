-- The application model (ABM): instances of packages, entities, signatures and relationships.
-- Every row is scoped by (project_id, instance_id); URNs are unique only inside one instance.

-- Custom package definitions registered by an operator. The built-in `Metamodel3` package ships
-- inside the server binary and is never stored here, so upgrading the server upgrades it.
CREATE TABLE abm_packages (
    package_id  text PRIMARY KEY,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- `package_ids` lists the packages an instance holds, in lookup order. The instance `default`
-- is created on first use in each project.
CREATE TABLE abm_instances (
    project_id   text NOT NULL
        CONSTRAINT abm_instances_project_fkey REFERENCES projects (id) ON DELETE CASCADE,
    instance_id  text NOT NULL,
    package_ids  text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT abm_instances_pkey PRIMARY KEY (project_id, instance_id)
);

-- `attributes` is the ordered list of `{attribute_id, attribute_value}` pairs the client sent,
-- without the `entity_name` pseudo-attribute (that one mirrors the `name` column).
CREATE TABLE abm_entities (
    project_id   text NOT NULL,
    instance_id  text NOT NULL,
    urn          text NOT NULL,
    entity_type  text NOT NULL,
    package_id   text NOT NULL,
    name         text NOT NULL,
    subtype      text,
    attributes   jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT abm_entities_pkey PRIMARY KEY (project_id, instance_id, urn),
    CONSTRAINT abm_entities_instance_fkey FOREIGN KEY (project_id, instance_id)
        REFERENCES abm_instances (project_id, instance_id) ON DELETE CASCADE
);

-- Listing filters by type and orders by name.
CREATE INDEX abm_entities_type_name_idx
    ON abm_entities (project_id, instance_id, entity_type, name);

-- At most one signature per type on an entity. `version` starts at 0 and grows with every
-- write that changes the name or the attributes.
CREATE TABLE abm_signatures (
    project_id      text NOT NULL,
    instance_id     text NOT NULL,
    entity_urn      text NOT NULL,
    signature_type  text NOT NULL,
    signature_name  text NOT NULL DEFAULT '',
    version         bigint NOT NULL DEFAULT 0,
    attributes      jsonb NOT NULL DEFAULT '[]',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT abm_signatures_pkey
        PRIMARY KEY (project_id, instance_id, entity_urn, signature_type),
    CONSTRAINT abm_signatures_entity_fkey FOREIGN KEY (project_id, instance_id, entity_urn)
        REFERENCES abm_entities (project_id, instance_id, urn) ON DELETE CASCADE
);

-- A directed edge; its identity is (from, target, code). Both ends must exist, and deleting
-- either end deletes the edge in the same statement (the foreign keys cascade).
CREATE TABLE abm_relationships (
    project_id           text NOT NULL,
    instance_id          text NOT NULL,
    from_urn             text NOT NULL,
    target_urn           text NOT NULL,
    relationship_code    text NOT NULL,
    relationship_extend  text,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT abm_relationships_pkey
        PRIMARY KEY (project_id, instance_id, from_urn, target_urn, relationship_code),
    CONSTRAINT abm_relationships_from_fkey FOREIGN KEY (project_id, instance_id, from_urn)
        REFERENCES abm_entities (project_id, instance_id, urn) ON DELETE CASCADE,
    CONSTRAINT abm_relationships_target_fkey FOREIGN KEY (project_id, instance_id, target_urn)
        REFERENCES abm_entities (project_id, instance_id, urn) ON DELETE CASCADE
);

-- The primary key serves the outgoing side; this index serves incoming edges and the cascade.
CREATE INDEX abm_relationships_target_idx
    ON abm_relationships (project_id, instance_id, target_urn, relationship_code);
