//! Playbooks: the YAML model, a loader that keeps source positions, validation,
//! expressions and the JSON Schema.

pub mod yaml;
pub mod expr;
pub mod model;
pub mod load;
