//! The one error type of the crate, and the MSSI code and HTTP status each variant maps to.
//!
//! Only request-level problems are errors. A bad item inside a batch is not an error: it lands
//! in the response's `failure` list and the batch goes on.

/// Everything an application-model operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum MetamodelError {
    /// A batch with more items than the contract allows; nothing was written.
    #[error("a batch holds at most {max} items, this one has {got}")]
    TooManyItems { max: usize, got: usize },
    /// The request as a whole is malformed (missing list, bad length, bad package file).
    #[error("{0}")]
    InvalidRequest(String),
    /// No such instance in the project.
    #[error("instance {0} does not exist")]
    InstanceNotFound(String),
    /// No such entity in the instance (single-entity operations only).
    #[error("entity {0} does not exist")]
    EntityNotFound(String),
    /// The database failed; the transaction was rolled back.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// The MSSI error code for invalid parameters in the ABM domain.
pub const CODE_INVALID: &str = "MSSI.00050018";
/// The MSSI error code for a missing ABM resource.
pub const CODE_NOT_FOUND: &str = "MSSI.00050021";
/// The MSSI error code for an unexpected ABM failure.
pub const CODE_INTERNAL: &str = "MSSI.00050001";

impl MetamodelError {
    /// The `error_code` of the wire envelope (contract §3.3).
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::TooManyItems { .. } | Self::InvalidRequest(_) => CODE_INVALID,
            Self::InstanceNotFound(_) | Self::EntityNotFound(_) => CODE_NOT_FOUND,
            Self::Database(_) => CODE_INTERNAL,
        }
    }

    /// The HTTP status the error is answered with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooManyItems { .. } | Self::InvalidRequest(_) => 400,
            Self::InstanceNotFound(_) | Self::EntityNotFound(_) => 404,
            Self::Database(_) => 500,
        }
    }
}

/// The crate's result alias.
pub type Result<T, E = MetamodelError> = std::result::Result<T, E>;
