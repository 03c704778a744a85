//! Guardrails: for every mutating step, a decision — allow, deny or require approval — with
//! the reasons. The planner asks before a step is shown as planned; the engine asks again
//! just before it runs. This module never calls Azure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    RequireApproval,
}

/// A structured decision, as plans and the audit trail record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub decision: Verdict,
    pub reasons: Vec<String>,
}

/// What a guard is asked about one mutating step.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInput<'a> {
    pub action: &'a str,
    /// The step's rendered parameters.
    pub params: &'a Value,
    /// Facts about the target found while planning (e.g. `steps.user.outputs`).
    pub target: &'a Value,
    pub alert: &'a Value,
    pub playbook: &'a Value,
    pub mode: &'a str,
}

/// Decides on one step. Implementations must fail closed: an error is a `Deny` whose reason
/// is the error.
pub trait Guard: Send + Sync {
    fn decide(&self, input: &PolicyInput<'_>) -> Decision;
}

/// The guard used when no policy directory is configured: it allows, and says so, so a
/// reviewer never mistakes "unguarded" for "checked".
pub struct Unguarded;

impl Guard for Unguarded {
    fn decide(&self, _input: &PolicyInput<'_>) -> Decision {
        Decision {
            decision: Verdict::Allow,
            reasons: vec!["no guardrail policy is loaded".into()],
        }
    }
}

/// The guard configuration asks for. Until Rego policies are loaded, every decision is
/// `allow` with a reason saying no policy is loaded.
pub fn guard_for(_config: &crate::config::Config) -> anyhow::Result<Box<dyn Guard>> {
    Ok(Box::new(Unguarded))
}
