//! Riposte: automated response and remediation for Microsoft Entra ID and Azure.
//!
//! The flow is `alert` → `playbook` → `plan` → `policy` → `engine` → `actions` →
//! `connectors`; `ARCHITECTURE.md` draws it.

pub mod actions;
pub mod alert;
pub mod app;
pub mod config;
pub mod connectors;
pub mod digest;
pub mod engine;
pub mod mode;
pub mod notify;
pub mod plan;
pub mod playbook;
pub mod policy;
pub mod report;
pub mod server;
pub mod store;
pub mod text;
