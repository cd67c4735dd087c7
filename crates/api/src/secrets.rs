//! Sealing of stored secrets: the [`workbench_secrets`] crate, re-exported so that the API's
//! callers keep one path for it.

pub use workbench_secrets::{OpenError, Sealer};
