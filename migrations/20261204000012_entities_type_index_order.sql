-- The type/name index led with (project_id, instance_id), as the primary key does. While
-- abm_entities had no statistics (bulk-loaded since autovacuum last analyzed it), PostgreSQL
-- costed both alike for the foreign-key checks of relationships and signatures, which look an
-- entity up by (project_id, instance_id, urn), and could take the type/name index: a scan of
-- the whole scope for every edge, about 25 ms each among 100,000 entities. With the type
-- second, only the primary key serves that lookup; listings still read this index in order,
-- since they fix the project and the instance.
DROP INDEX abm_entities_type_name_idx;
CREATE INDEX abm_entities_type_name_idx
    ON abm_entities (project_id, entity_type, instance_id, name);
