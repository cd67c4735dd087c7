//! Every SQL statement of the application model.
//!
//! Statements use runtime `sqlx::query`/`query_as` with binds rather than the compile-time
//! macros: CI builds without a database and the workspace keeps no offline query cache, so the
//! integration tests in `tests/it` are what check each statement against the real schema.
//!
//! Batch writes pass one array per column and expand them with `UNNEST`, so a batch of any
//! size costs the same few statements. Callers own the transaction boundaries.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};

use crate::Scope;

/// One attribute as stored: the id and the string value, in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredAttr {
    pub(crate) attribute_id: String,
    pub(crate) attribute_value: String,
}

/// An entity row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EntityRow {
    pub(crate) urn: String,
    pub(crate) entity_type: String,
    pub(crate) package_id: String,
    pub(crate) name: String,
    pub(crate) subtype: Option<String>,
    pub(crate) attributes: Json<Vec<StoredAttr>>,
}

/// A signature row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SignatureRow {
    pub(crate) entity_urn: String,
    pub(crate) signature_type: String,
    pub(crate) signature_name: String,
    pub(crate) version: i64,
    pub(crate) attributes: Json<Vec<StoredAttr>>,
}

/// An edge row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EdgeRow {
    pub(crate) from_urn: String,
    pub(crate) target_urn: String,
    pub(crate) relationship_code: String,
    pub(crate) relationship_extend: Option<String>,
}

/// Column arrays for a batch of new entities.
#[derive(Debug, Default)]
pub(crate) struct EntityBatch {
    pub(crate) urns: Vec<String>,
    pub(crate) types: Vec<String>,
    pub(crate) packages: Vec<String>,
    pub(crate) names: Vec<String>,
    pub(crate) subtypes: Vec<Option<String>>,
    pub(crate) attributes: Vec<serde_json::Value>,
}

/// Column arrays for a batch of signatures to write.
#[derive(Debug, Default)]
pub(crate) struct SignatureBatch {
    pub(crate) urns: Vec<String>,
    pub(crate) types: Vec<String>,
    pub(crate) names: Vec<String>,
    pub(crate) attributes: Vec<serde_json::Value>,
}

impl SignatureBatch {
    pub(crate) fn push(&mut self, urn: &str, sig_type: &str, name: &str, attrs: &[StoredAttr]) {
        self.urns.push(urn.to_owned());
        self.types.push(sig_type.to_owned());
        self.names.push(name.to_owned());
        self.attributes.push(serde_json::to_value(attrs).unwrap_or_default());
    }
}

/// Column arrays for a batch of edges.
#[derive(Debug, Default)]
pub(crate) struct EdgeBatch {
    pub(crate) froms: Vec<String>,
    pub(crate) targets: Vec<String>,
    pub(crate) codes: Vec<String>,
    pub(crate) extends: Vec<Option<String>>,
}

/// Which edges of an entity to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Edges leaving the entity.
    Out,
    /// Edges arriving at the entity.
    In,
    /// Both.
    #[default]
    Both,
}

// --- Packages and instances ---------------------------------------------------------------

pub(crate) async fn instance_packages(
    db: impl PgExecutor<'_>,
    scope: &Scope,
) -> sqlx::Result<Option<Vec<String>>> {
    sqlx::query_scalar(
        "SELECT package_ids FROM abm_instances WHERE project_id = $1 AND instance_id = $2",
    )
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .fetch_optional(db)
    .await
}

/// Inserts the instance unless it exists; true when this call created it.
pub(crate) async fn insert_instance(
    db: impl PgExecutor<'_>,
    scope: &Scope,
    package_ids: &[String],
) -> sqlx::Result<bool> {
    let created: Option<String> = sqlx::query_scalar(
        "INSERT INTO abm_instances (project_id, instance_id, package_ids) VALUES ($1, $2, $3) \
         ON CONFLICT ON CONSTRAINT abm_instances_pkey DO NOTHING RETURNING instance_id",
    )
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(package_ids)
    .fetch_optional(db)
    .await?;
    Ok(created.is_some())
}

pub(crate) async fn custom_packages(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> sqlx::Result<Vec<(String, serde_json::Value)>> {
    sqlx::query_as("SELECT package_id, definition FROM abm_packages WHERE package_id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}

pub(crate) async fn upsert_package(
    db: impl PgExecutor<'_>,
    package_id: &str,
    definition: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO abm_packages (package_id, definition) VALUES ($1, $2) \
         ON CONFLICT (package_id) DO UPDATE \
         SET definition = EXCLUDED.definition, updated_at = now()",
    )
    .bind(package_id)
    .bind(definition)
    .execute(db)
    .await?;
    Ok(())
}

// --- Entities -----------------------------------------------------------------------------

const ENTITY_COLUMNS: &str = "urn, entity_type, package_id, name, subtype, attributes";

/// Looks up each of `$3` (a `text[]` of URNs) in `abm_entities` of the scope `$1`, `$2` by
/// its primary key, one probe per URN.
///
/// Not `urn = ANY($3)`: on a table PostgreSQL has no statistics for yet (bulk-loaded since
/// the last autovacuum), it guesses that the scope's rows are a handful and reads all of them
/// through the leading (project, instance) columns of an index, comparing each with every URN
/// given; for 400 URNs among 100,000 entities that took 0.77 s with a generic plan, against
/// 2 ms (docs/benchmarks.md, scenario 5). A lateral subquery with a `LIMIT` is planned per
/// URN, where the primary key wins.
fn entities_by_urn(columns: &str) -> String {
    format!(
        "SELECT e.* FROM (SELECT DISTINCT urn FROM UNNEST($3::text[]) AS u (urn)) AS u \
         CROSS JOIN LATERAL (SELECT {columns} FROM abm_entities \
             WHERE project_id = $1 AND instance_id = $2 AND urn = u.urn LIMIT 1) AS e"
    )
}

/// Maps each of `urns` that exists to its entity type.
pub(crate) async fn entity_types(
    db: impl PgExecutor<'_>,
    scope: &Scope,
    urns: &[String],
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(&entities_by_urn("urn, entity_type"))
        .bind(&scope.project_id)
        .bind(&scope.instance_id)
        .bind(urns)
        .fetch_all(db)
        .await
}

/// Inserts a batch; returns the URNs actually inserted (an existing URN is skipped).
pub(crate) async fn insert_entities(
    conn: &mut PgConnection,
    scope: &Scope,
    batch: &EntityBatch,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "INSERT INTO abm_entities \
             (project_id, instance_id, urn, entity_type, package_id, name, subtype, attributes) \
         SELECT $1, $2, u.urn, u.entity_type, u.package_id, u.name, u.subtype, u.attributes \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[]) \
             AS u (urn, entity_type, package_id, name, subtype, attributes) \
         ON CONFLICT ON CONSTRAINT abm_entities_pkey DO NOTHING \
         RETURNING urn",
    )
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(&batch.urns)
    .bind(&batch.types)
    .bind(&batch.packages)
    .bind(&batch.names)
    .bind(&batch.subtypes)
    .bind(&batch.attributes)
    .fetch_all(conn)
    .await
}

/// Locks and reads one entity.
pub(crate) async fn lock_entity(
    conn: &mut PgConnection,
    scope: &Scope,
    urn: &str,
) -> sqlx::Result<Option<EntityRow>> {
    sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM abm_entities \
         WHERE project_id = $1 AND instance_id = $2 AND urn = $3 FOR UPDATE"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(urn)
    .fetch_optional(conn)
    .await
}

/// Rewrites an entity's name, subtype and, when given, its attributes.
pub(crate) async fn update_entity(
    conn: &mut PgConnection,
    scope: &Scope,
    urn: &str,
    name: &str,
    subtype: Option<&str>,
    attributes: Option<&[StoredAttr]>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE abm_entities \
         SET name = $4, subtype = $5, attributes = COALESCE($6, attributes), updated_at = now() \
         WHERE project_id = $1 AND instance_id = $2 AND urn = $3",
    )
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(urn)
    .bind(name)
    .bind(subtype)
    .bind(attributes.map(Json))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes entities (their signatures and edges cascade); returns the URNs deleted.
///
/// FIXME: `urn = ANY($3)` is planned as a scan of the whole scope while `abm_entities` has no
/// statistics (see [`entities_by_urn`]), which a bulk delete right after a bulk load pays. The
/// lateral form does not carry over to `DELETE` safely (deleting by `ctid` misses a row updated
/// meanwhile); deleting in a loop over the URNs, or `ANALYZE` after a bulk load, would.
pub(crate) async fn delete_entities(
    conn: &mut PgConnection,
    scope: &Scope,
    urns: &[String],
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "DELETE FROM abm_entities \
         WHERE project_id = $1 AND instance_id = $2 AND urn = ANY($3) RETURNING urn",
    )
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(urns)
    .fetch_all(conn)
    .await
}

pub(crate) async fn fetch_entities(
    db: impl PgExecutor<'_>,
    scope: &Scope,
    urns: &[String],
) -> sqlx::Result<Vec<EntityRow>> {
    sqlx::query_as(&entities_by_urn(ENTITY_COLUMNS))
        .bind(&scope.project_id)
        .bind(&scope.instance_id)
        .bind(urns)
        .fetch_all(db)
        .await
}

/// Filters of the entity listing.
pub(crate) struct EntityFilter<'a> {
    pub(crate) entity_type: Option<&'a str>,
    pub(crate) name_contains: Option<&'a str>,
    pub(crate) offset: i64,
    pub(crate) limit: i64,
}

/// One page of entities ordered by type, name and URN, and the total matching.
pub(crate) async fn list_entities(
    conn: &mut PgConnection,
    scope: &Scope,
    filter: &EntityFilter<'_>,
) -> sqlx::Result<(i64, Vec<EntityRow>)> {
    // `strpos` rather than LIKE, so `%` and `_` in the search text match literally.
    const WHERE: &str = "WHERE project_id = $1 AND instance_id = $2 \
         AND ($3::text IS NULL OR entity_type = $3) \
         AND ($4::text IS NULL OR strpos(lower(name), lower($4)) > 0)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM abm_entities {WHERE}"))
        .bind(&scope.project_id)
        .bind(&scope.instance_id)
        .bind(filter.entity_type)
        .bind(filter.name_contains)
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM abm_entities {WHERE} \
         ORDER BY entity_type, name, urn OFFSET $5 LIMIT $6"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(filter.entity_type)
    .bind(filter.name_contains)
    .bind(filter.offset)
    .bind(filter.limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok((total, rows))
}

// --- Signatures ---------------------------------------------------------------------------

const SIGNATURE_COLUMNS: &str = "entity_urn, signature_type, signature_name, version, attributes";

pub(crate) async fn fetch_signatures(
    db: impl PgExecutor<'_>,
    scope: &Scope,
    urns: &[String],
) -> sqlx::Result<Vec<SignatureRow>> {
    sqlx::query_as(&format!(
        "SELECT {SIGNATURE_COLUMNS} FROM abm_signatures \
         WHERE project_id = $1 AND instance_id = $2 AND entity_urn = ANY($3) \
         ORDER BY entity_urn, signature_type"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(urns)
    .fetch_all(db)
    .await
}

/// Creates or replaces signatures. A new one gets version 0; a replaced one gets its version
/// raised by one when its name or attributes differ, and keeps it when the write is a no-op.
pub(crate) async fn upsert_signatures(
    conn: &mut PgConnection,
    scope: &Scope,
    batch: &SignatureBatch,
) -> sqlx::Result<Vec<SignatureRow>> {
    sqlx::query_as(&format!(
        "INSERT INTO abm_signatures AS s \
             (project_id, instance_id, entity_urn, signature_type, signature_name, attributes) \
         SELECT $1, $2, u.urn, u.sig_type, u.name, u.attributes \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::jsonb[]) \
             AS u (urn, sig_type, name, attributes) \
         ON CONFLICT ON CONSTRAINT abm_signatures_pkey DO UPDATE \
         SET signature_name = EXCLUDED.signature_name, attributes = EXCLUDED.attributes, \
             updated_at = now(), \
             version = s.version + CASE \
                 WHEN (s.signature_name, s.attributes) \
                     IS DISTINCT FROM (EXCLUDED.signature_name, EXCLUDED.attributes) \
                 THEN 1 ELSE 0 END \
         RETURNING {SIGNATURE_COLUMNS}"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(&batch.urns)
    .bind(&batch.types)
    .bind(&batch.names)
    .bind(&batch.attributes)
    .fetch_all(conn)
    .await
}

/// Deletes one entity's signatures of the given types; returns the rows deleted.
pub(crate) async fn delete_signatures(
    conn: &mut PgConnection,
    scope: &Scope,
    urn: &str,
    types: &[String],
) -> sqlx::Result<Vec<SignatureRow>> {
    sqlx::query_as(&format!(
        "DELETE FROM abm_signatures \
         WHERE project_id = $1 AND instance_id = $2 AND entity_urn = $3 \
             AND signature_type = ANY($4) \
         RETURNING {SIGNATURE_COLUMNS}"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(urn)
    .bind(types)
    .fetch_all(conn)
    .await
}

// --- Relationships ------------------------------------------------------------------------

const EDGE_COLUMNS: &str = "from_urn, target_urn, relationship_code, relationship_extend";

/// Creates edges or rewrites their `relationship_extend`; returns every edge written.
///
/// Each edge runs two foreign-key checks, primary-key probes into `abm_entities` (migration
/// `entities_type_index_order` keeps them probes when the table has no statistics).
pub(crate) async fn upsert_edges(
    conn: &mut PgConnection,
    scope: &Scope,
    batch: &EdgeBatch,
) -> sqlx::Result<Vec<EdgeRow>> {
    sqlx::query_as(&format!(
        "INSERT INTO abm_relationships \
             (project_id, instance_id, from_urn, target_urn, relationship_code, \
              relationship_extend) \
         SELECT $1, $2, u.from_urn, u.target_urn, u.code, u.extend \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) \
             AS u (from_urn, target_urn, code, extend) \
         ON CONFLICT ON CONSTRAINT abm_relationships_pkey DO UPDATE \
         SET relationship_extend = EXCLUDED.relationship_extend, updated_at = now() \
         RETURNING {EDGE_COLUMNS}"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(&batch.froms)
    .bind(&batch.targets)
    .bind(&batch.codes)
    .bind(&batch.extends)
    .fetch_all(conn)
    .await
}

/// Deletes edges by identity; returns the edges that existed.
pub(crate) async fn delete_edges(
    conn: &mut PgConnection,
    scope: &Scope,
    batch: &EdgeBatch,
) -> sqlx::Result<Vec<EdgeRow>> {
    sqlx::query_as(
        "DELETE FROM abm_relationships r \
         USING UNNEST($3::text[], $4::text[], $5::text[]) AS u (from_urn, target_urn, code) \
         WHERE r.project_id = $1 AND r.instance_id = $2 AND r.from_urn = u.from_urn \
             AND r.target_urn = u.target_urn AND r.relationship_code = u.code \
         RETURNING r.from_urn, r.target_urn, r.relationship_code, r.relationship_extend",
    )
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(&batch.froms)
    .bind(&batch.targets)
    .bind(&batch.codes)
    .fetch_all(conn)
    .await
}

/// Edges touching any of `urns` on the chosen side(s), optionally of one code only.
pub(crate) async fn edges_touching(
    db: impl PgExecutor<'_>,
    scope: &Scope,
    urns: &[String],
    direction: Direction,
    code: Option<&str>,
) -> sqlx::Result<Vec<EdgeRow>> {
    // One index probe per URN and side, for the reason `entities_by_urn` gives: `ANY` would
    // be planned as a scan of the scope's edges while the table has no statistics.
    let side = |column: &str| {
        format!(
            "SELECT e.* FROM (SELECT DISTINCT urn FROM UNNEST($3::text[]) AS u (urn)) AS u \
             CROSS JOIN LATERAL (SELECT {EDGE_COLUMNS} FROM abm_relationships \
                 WHERE project_id = $1 AND instance_id = $2 AND {column} = u.urn \
                     AND ($4::text IS NULL OR relationship_code = $4) OFFSET 0) AS e"
        )
    };
    let edges = match direction {
        Direction::Out => side("from_urn"),
        Direction::In => side("target_urn"),
        Direction::Both => format!("{} UNION {}", side("from_urn"), side("target_urn")),
    };
    sqlx::query_as(&format!(
        "SELECT {EDGE_COLUMNS} FROM ({edges}) AS edges \
         ORDER BY from_urn, target_urn, relationship_code"
    ))
    .bind(&scope.project_id)
    .bind(&scope.instance_id)
    .bind(urns)
    .bind(code)
    .fetch_all(db)
    .await
}
