//! End-to-end tests: a real server on 127.0.0.1 over a real PostgreSQL, driven over HTTP.

mod abm;
mod auth;
mod connections;
mod crash;
mod flows;
mod http_trigger;
mod inline;
mod nul;
mod observability;
mod orders;
mod runs;
mod schedules;
mod support;
mod tidy;
