//! What a run did, step by step, with Microsoft's request ids.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::{Compensation, Verification};
use crate::connectors::{ApiRequest, Method};

/// One request as sent and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: Method,
    pub url: String,
    pub status: Option<u16>,
    /// Microsoft's `request-id` / `x-ms-request-id`.
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub attempts: u32,
    /// sha256 of the response body (evidence is kept by digest).
    pub body_sha256: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Succeeded,
    AlreadySatisfied,
    Skipped,
    Denied,
    AwaitingApproval,
    Failed,
    Compensated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub action: String,
    pub outcome: StepOutcome,
    pub reason: Option<String>,
    pub requests: Vec<RequestRecord>,
    /// One per item: what reading the state back found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification: Vec<Verification>,
    /// One per item: how to undo it (recorded so `rollback` needs nothing else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensation: Vec<Compensation>,
    /// Response bodies of evidence steps (Activity Log pages, query tables), with digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Order in which steps finished, for undoing newest first.
    pub finished_seq: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub name: String,
    pub sha256: String,
    pub body: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    /// Some steps wait for an approval bound to the plan hash.
    AwaitingApproval,
    Failed,
    /// A step failed with `on_error: compensate`; completed steps were undone.
    Compensated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub plan_hash: String,
    pub outcome: RunOutcome,
    pub steps: Vec<StepReport>,
    /// One line per step that failed under `on_error: continue`: the run went on (and may
    /// have succeeded), but someone should look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RunReport {
    /// The human summary: what changed, what was already so, what failed and why.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Run {} {:?} (plan {})",
            self.run_id, self.outcome, self.plan_hash
        );
        let list = |o: StepOutcome| -> Vec<&StepReport> {
            self.steps.iter().filter(|s| s.outcome == o).collect()
        };
        for (title, o) in [
            ("changed", StepOutcome::Succeeded),
            ("already so", StepOutcome::AlreadySatisfied),
            ("awaiting approval", StepOutcome::AwaitingApproval),
            ("denied", StepOutcome::Denied),
            ("skipped", StepOutcome::Skipped),
            ("failed", StepOutcome::Failed),
            ("undone", StepOutcome::Compensated),
        ] {
            let steps = list(o);
            if steps.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}:");
            for s in steps {
                let ids: Vec<String> = s
                    .requests
                    .iter()
                    .filter_map(|r| r.request_id.clone())
                    .collect();
                let _ = write!(out, "  {} ({})", s.id, s.action);
                if let Some(r) = &s.reason {
                    let _ = write!(out, ": {r}");
                }
                if !ids.is_empty() {
                    let _ = write!(out, " [request-id {}]", ids.join(", "));
                }
                let _ = writeln!(out);
            }
        }
        out
    }
}

impl RequestRecord {
    pub(crate) fn for_request(r: &ApiRequest) -> RequestRecord {
        RequestRecord {
            method: r.method,
            url: r.url.clone(),
            status: None,
            request_id: None,
            client_request_id: None,
            attempts: 0,
            body_sha256: None,
            error: None,
        }
    }
}
