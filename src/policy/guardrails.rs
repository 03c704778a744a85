//! `[guardrails]`: the limits every deployment tunes; the Rego policies read them as data.

use serde::{Deserialize, Serialize};

/// Limits every deployment tunes; they reach the Rego policies as data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Object ids that no action may ever target.
    #[serde(default)]
    pub break_glass: Vec<String>,
    /// Principals contained per tenant per hour before approval is needed.
    #[serde(default = "default_max_principals")]
    pub max_principals_per_hour: u32,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            break_glass: Vec::new(),
            max_principals_per_hour: default_max_principals(),
        }
    }
}

fn default_max_principals() -> u32 {
    10
}
