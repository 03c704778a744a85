//! The binary's integration tests (they run `riposte` itself), one test binary.

#[path = "../../../tests/common/mod.rs"]
mod common;

mod browser;
mod cli_config;
mod conditions;
mod crash;
mod docs;
mod evidence;
mod manual;
mod operators;
mod policy;
mod preflight;
mod replicas;
mod run;
