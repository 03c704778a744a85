//! The library's integration tests, one binary (linking the crate once is what costs on two
//! cores). Each module is one suite; `cargo test --test it store::` runs one.

#[path = "../common/mod.rs"]
mod common;

mod alerts;
mod architecture;
mod connectors;
mod emulator;
mod golden_plans;
mod guardrails;
mod http_service;
mod plan_injection;
mod server;
mod service;
mod store;
mod target_facts;
mod trust;
mod upstream_errors;
mod validate;
