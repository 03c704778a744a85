//! What the service tells the audit trail. One enum: emitting an event writes the audit
//! record, the log line and the metric together, so the three never disagree and a new kind
//! of event is one variant, not a string literal and hand-built JSON in some corner.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::report::{RequestRecord, RunOutcome, StepOutcome};
use super::rollback::RollbackReport;
use super::runtime::Service;
use crate::store::AuditEvent;

/// An audited event. `run_id` fields go to the record's own column, the rest to its body.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Audit<'a> {
    /// Given up on: unreadable, a permanent enrichment failure, or out of attempts.
    AlertFailed {
        alert_id: &'a str,
        attempts: u32,
        reason: &'a str,
    },
    /// An operator made a failed alert pending again.
    AlertRetried {
        alert_id: &'a str,
    },
    AlertReceived {
        alert_id: &'a str,
        source: &'a str,
        source_id: &'a str,
        received_at: DateTime<Utc>,
    },
    AlertUnmatched {
        alert_id: &'a str,
    },
    RunCoalesced {
        #[serde(skip)]
        run_id: &'a str,
        alert_id: &'a str,
    },
    RunCreated {
        #[serde(skip)]
        run_id: &'a str,
        playbook: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        playbook_sha256: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        alert_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<&'a str>,
    },
    PlanCreated {
        #[serde(skip)]
        run_id: &'a str,
        plan_hash: &'a str,
        steps: Vec<Value>,
    },
    PlanChanged {
        #[serde(skip)]
        run_id: &'a str,
        was: &'a str,
        now: &'a str,
    },
    Request {
        #[serde(skip)]
        run_id: &'a str,
        step: &'a str,
        #[serde(flatten)]
        record: RedactedRequest<'a>,
    },
    StepFinished {
        #[serde(skip)]
        run_id: &'a str,
        step: &'a str,
        action: &'a str,
        outcome: StepOutcome,
        reason: Option<&'a str>,
    },
    RunFinished {
        #[serde(skip)]
        run_id: &'a str,
        outcome: RunOutcome,
        plan_hash: &'a str,
    },
    ApprovalStale {
        #[serde(skip)]
        run_id: &'a str,
        approved: &'a str,
        current: &'a str,
    },
    ApprovalRecorded {
        #[serde(skip)]
        run_id: &'a str,
        plan_hash: &'a str,
    },
    ApprovalRejected {
        #[serde(skip)]
        run_id: &'a str,
        plan_hash: Option<&'a str>,
    },
    RunRolledBack {
        #[serde(skip)]
        run_id: &'a str,
        #[serde(flatten)]
        result: &'a RollbackReport,
    },
    /// Planning was given up on: a permanent failure, or out of attempts.
    RunPlanningFailed {
        #[serde(skip)]
        run_id: &'a str,
        attempts: u32,
        reason: &'a str,
    },
    RunCancelled {
        #[serde(skip)]
        run_id: &'a str,
        /// The status it was stopped in.
        was: &'a str,
    },
    /// A service event could not be posted to the `[notify]` webhook after its retries.
    NoticeFailed {
        #[serde(skip)]
        run_id: &'a str,
        event: &'a str,
        error: &'a str,
    },
    /// Evidence bytes were stored; `sha256` is the store's digest of exactly those bytes,
    /// so the audit trail vouches for what `evidence get` hands out.
    EvidenceStored {
        #[serde(skip)]
        run_id: &'a str,
        step: &'a str,
        evidence_id: &'a str,
        name: &'a str,
        sha256: &'a str,
        size: u64,
    },
}

/// A request as the audit trail keeps it: the URL without secrets in its query.
#[derive(Debug, Serialize)]
pub struct RedactedRequest<'a> {
    method: crate::connectors::Method,
    url: String,
    status: Option<u16>,
    request_id: Option<&'a str>,
    body_sha256: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> RedactedRequest<'a> {
    pub fn of(r: &'a RequestRecord) -> RedactedRequest<'a> {
        RedactedRequest {
            method: r.method,
            url: redact_query(&r.url),
            status: r.status,
            request_id: r.request_id.as_deref(),
            body_sha256: r.body_sha256.as_deref(),
            error: r.error.as_deref(),
        }
    }
}

impl Audit<'_> {
    /// The record's `kind`, stable: scripts and SIEM rules match on it.
    pub fn kind(&self) -> &'static str {
        match self {
            Audit::AlertFailed { .. } => "alert.failed",
            Audit::AlertRetried { .. } => "alert.retried",
            Audit::AlertReceived { .. } => "alert.received",
            Audit::AlertUnmatched { .. } => "alert.unmatched",
            Audit::RunCoalesced { .. } => "run.coalesced",
            Audit::RunCreated { .. } => "run.created",
            Audit::PlanCreated { .. } => "plan.created",
            Audit::PlanChanged { .. } => "plan.changed",
            Audit::Request { .. } => "request",
            Audit::StepFinished { .. } => "step.finished",
            Audit::RunFinished { .. } => "run.finished",
            Audit::ApprovalStale { .. } => "approval.stale",
            Audit::ApprovalRecorded { .. } => "approval.recorded",
            Audit::ApprovalRejected { .. } => "approval.rejected",
            Audit::RunRolledBack { .. } => "run.rolled_back",
            Audit::RunPlanningFailed { .. } => "run.planning_failed",
            Audit::RunCancelled { .. } => "run.cancelled",
            Audit::NoticeFailed { .. } => "notice.failed",
            Audit::EvidenceStored { .. } => "evidence.stored",
        }
    }

    pub fn run_id(&self) -> Option<&str> {
        match self {
            Audit::AlertFailed { .. }
            | Audit::AlertRetried { .. }
            | Audit::AlertReceived { .. }
            | Audit::AlertUnmatched { .. } => None,
            Audit::RunCoalesced { run_id, .. }
            | Audit::RunCreated { run_id, .. }
            | Audit::PlanCreated { run_id, .. }
            | Audit::PlanChanged { run_id, .. }
            | Audit::Request { run_id, .. }
            | Audit::StepFinished { run_id, .. }
            | Audit::RunFinished { run_id, .. }
            | Audit::ApprovalStale { run_id, .. }
            | Audit::ApprovalRecorded { run_id, .. }
            | Audit::ApprovalRejected { run_id, .. }
            | Audit::RunRolledBack { run_id, .. }
            | Audit::RunPlanningFailed { run_id, .. }
            | Audit::RunCancelled { run_id, .. }
            | Audit::NoticeFailed { run_id, .. }
            | Audit::EvidenceStored { run_id, .. } => Some(run_id),
        }
    }

    /// The record as the store keeps it.
    pub fn record(&self, actor: Option<&str>) -> AuditEvent {
        AuditEvent {
            kind: self.kind().into(),
            run_id: self.run_id().map(str::to_string),
            actor: actor.map(str::to_string),
            body: serde_json::to_value(self).unwrap_or(Value::Null),
        }
    }
}

impl Service {
    /// Appends the audit record, logs the event and counts it (`riposte_events_total`).
    pub(super) async fn emit(&self, event: Audit<'_>, actor: Option<&str>) {
        let kind = event.kind();
        let run_id = event.run_id().unwrap_or_default().to_string();
        metrics::counter!("riposte_events_total", "kind" => kind).increment(1);
        tracing::info!(message = "Event.", %kind, %run_id, actor = actor.unwrap_or_default());
        if let Err(error) = self.store.append_audit(&event.record(actor)).await {
            tracing::error!(message = "Audit append failed.", %kind, %run_id, %error);
        }
    }
}

/// URLs in the audit trail lose their query values' secrets (signatures) but keep the path.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) if query.contains("sig=") || query.contains("token=") => {
            format!("{path}?…")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_kind_its_run_and_a_body_without_the_run() {
        let e = Audit::ApprovalRecorded {
            run_id: "r1",
            plan_hash: "sha256:ab",
        };
        let rec = e.record(Some("token:alice"));
        assert_eq!(rec.kind, "approval.recorded");
        assert_eq!(rec.run_id.as_deref(), Some("r1"));
        assert_eq!(rec.actor.as_deref(), Some("token:alice"));
        assert_eq!(rec.body, serde_json::json!({"plan_hash": "sha256:ab"}));
    }

    #[test]
    fn request_urls_lose_signed_query_strings() {
        let r = RequestRecord {
            method: crate::connectors::Method::Post,
            url: "https://x.logic.azure.com/workflows/1/triggers?sig=SECRET".into(),
            status: Some(202),
            request_id: None,
            client_request_id: None,
            attempts: 1,
            body_sha256: None,
            error: None,
        };
        let rec = Audit::Request {
            run_id: "r",
            step: "notify",
            record: RedactedRequest::of(&r),
        }
        .record(None);
        assert!(!rec.body.to_string().contains("SECRET"), "{}", rec.body);
        assert_eq!(rec.body["step"], "notify");
        assert_eq!(rec.body["method"], "POST");
    }
}
