//! The library's integration tests, one binary (linking the crate once is what costs on two
//! cores). Each module is one suite; `cargo test --test it store::` runs one.

#[path = "../common/mod.rs"]
mod common;

mod alert_fuzz;
mod alerts;
mod architecture;
mod builders;
mod conditions;
mod connectors;
mod emulator;
mod emulator_oidc;
mod evidence;
mod golden_plans;
mod guardrails;
mod http_service;
mod incidents;
mod notify;
mod oidc;
mod plan_injection;
mod report;
mod retries;
mod review;
mod review_oidc;
mod security;
mod server;
mod service;
mod store;
mod target_facts;
mod upstream_errors;
mod validate;
