//! Integration tests of the application model against a real PostgreSQL: each test gets a
//! fresh, migrated database from `workbench-test-support`.

mod entities;
mod helpers;
mod reads;
mod relationships;
mod seed;
mod signatures;
