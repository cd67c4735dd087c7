//! The application model (ABM): entities, their signatures and relationships, stored in
//! PostgreSQL and validated against packages such as the built-in `Metamodel3`.
//!
//! [`Metamodel`] is the entry point. Each operation takes a [`Scope`] (project and instance)
//! and a request body in the MSSI wire shape (module [`wire`]), and returns the response body
//! in the wire shape. Batch operations validate every item in memory against the instance's
//! packages, then write all valid items in one transaction with a fixed number of statements;
//! a bad item lands in the response's `failure` list and never fails the batch.
//!
//! Duplicates within one batch: the first occurrence of an item's identity is processed and
//! every later occurrence fails with `MSSI.00050018` ("duplicate of item N"). Identities are
//! (entity_type, entity_name) for A1, (from_urn, target_urn, relationship_code) for A5 and the
//! signature type for A6. A4 lists each URN once, however often it was sent.

mod entities;
mod error;
mod instance;
pub mod package;
mod reads;
mod relationships;
mod signatures;
mod store;
pub mod urn;
mod validate;
pub mod wire;

pub use error::{MetamodelError, Result, CODE_INTERNAL, CODE_INVALID, CODE_NOT_FOUND};
pub use reads::{EntityPage, EntityQuery, Graph, GraphNode, WalkQuery, MAX_HOPS};
pub use store::Direction;
pub use urn::{Urn, UrnError};

use sqlx::PgPool;

/// The most items one batch request may carry.
pub const MAX_BATCH: usize = 200;

/// The instance every project has, created with `Metamodel3` on first use.
pub const DEFAULT_INSTANCE: &str = "default";

/// Which project and instance an operation works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub project_id: String,
    pub instance_id: String,
}

impl Scope {
    pub fn new(project_id: impl Into<String>, instance_id: impl Into<String>) -> Self {
        Self { project_id: project_id.into(), instance_id: instance_id.into() }
    }
}

/// The application model service over one database pool.
#[derive(Debug, Clone)]
pub struct Metamodel {
    pool: PgPool,
}

impl Metamodel {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool the service uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Rejects a batch over [`MAX_BATCH`] items before anything is read or written.
fn check_batch_size(len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(MetamodelError::TooManyItems { max: MAX_BATCH, got: len });
    }
    Ok(())
}
