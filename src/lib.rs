//! Wires the Workbench crates into one server: configuration, the database (a private
//! PostgreSQL cluster or `DATABASE_URL`), the HTTP application and its background workers.

pub mod config;
pub mod database;
pub mod server;

pub use config::Settings;
pub use server::Running;
