//! The service's operations, as the HTTP API (and `riposte` subcommands) call them. The
//! server holds a `dyn ServiceApi` and adds only transport concerns (authentication, JSON,
//! status codes); every business rule lives behind this trait.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RollbackReport;
use crate::store::{
    AlertRecord, AlertStatus, Evidence, EvidenceRecord, JournalEntry, RunRecord, RunStatus,
    SessionStore,
};

/// Who is asking, as the API authenticated them. `name` is the token's name; approvals
/// compare it with the run's requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub name: String,
}

/// What ingesting an alert did. The alert is durable before this is returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingested {
    pub alert_id: String,
    /// The source's own id for the alert.
    pub source_id: String,
    /// True when the same alert (source + id) was stored before: nothing new starts.
    pub duplicate: bool,
    /// Runs the alert started or was attached to (filled in when known; planning happens in
    /// the background).
    pub run_ids: Vec<String>,
}

/// A run with its plan, step timeline and evidence digests (`GET /v1/runs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: RunRecord,
    pub timeline: Vec<JournalEntry>,
    pub evidence: Vec<EvidenceRecord>,
    /// The execution report once the run has executed.
    pub report: Option<Value>,
}

/// A manual invocation of a playbook (`POST /v1/playbooks/{name}/invoke`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// The user the run acts on (UPN or object id).
    pub principal: Option<String>,
    /// Affected resources' ARM ids.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// Why an operation was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: the payload is not an alert of that source (nothing was stored).
    #[error("{0}")]
    BadRequest(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 403: e.g. an approver approving their own run.
    #[error("{0}")]
    Forbidden(String),
    /// 409: e.g. the plan hash does not match the run's current plan, or the run is not
    /// awaiting approval.
    #[error("{0}")]
    Conflict(String),
    /// 503: the store is unreachable; the caller should retry (the alert was not stored).
    #[error("{0}")]
    Unavailable(String),
    /// 500
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// The stable `error.code` of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::BadRequest(_) => "bad_request",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::Internal(_) => "internal",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            ServiceError::BadRequest(_) => 400,
            ServiceError::NotFound(_) => 404,
            ServiceError::Forbidden(_) => 403,
            ServiceError::Conflict(_) => 409,
            ServiceError::Unavailable(_) => 503,
            ServiceError::Internal(_) => 500,
        }
    }
}

/// Counters the service exposes for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceStats {
    pub alerts_received: u64,
    pub alerts_duplicate: u64,
    pub alerts_rejected: u64,
    pub runs_by_status: BTreeMap<String, u64>,
    /// Stored alerts by status (`failed` ones need an operator).
    pub alerts_by_status: BTreeMap<String, u64>,
}

/// The operations of a running riposte service.
#[async_trait]
pub trait ServiceApi: Send + Sync {
    /// Parses and durably stores an alert (idempotent on source + id), then queues it for
    /// matching. Returns once the alert is durable.
    async fn ingest(
        &self,
        source: &str,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Ingested, ServiceError>;
    async fn runs(
        &self,
        limit: u32,
        status: Option<RunStatus>,
    ) -> Result<Vec<RunRecord>, ServiceError>;
    async fn run(&self, id: &str) -> Result<RunView, ServiceError>;
    /// Approves the run's current plan; `plan_hash` must be that plan's hash and the caller
    /// must not be the requester.
    async fn approve(
        &self,
        id: &str,
        plan_hash: &str,
        caller: &Caller,
    ) -> Result<RunRecord, ServiceError>;
    async fn reject(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError>;
    async fn rollback(&self, id: &str, caller: &Caller) -> Result<RollbackReport, ServiceError>;
    /// Starts a run of a playbook by name; returns the run id.
    async fn invoke_playbook(
        &self,
        name: &str,
        invocation: Invocation,
        caller: &Caller,
    ) -> Result<String, ServiceError>;
    /// Starts a run of one action with the given parameters; returns the run id.
    async fn invoke_action(
        &self,
        name: &str,
        params: BTreeMap<String, Value>,
        caller: &Caller,
    ) -> Result<String, ServiceError>;
    /// Stored alerts, newest first, optionally only those with `status`.
    async fn alerts(
        &self,
        limit: u32,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, ServiceError>;
    /// Makes a `failed` alert pending again with its attempts reset (409 for any other
    /// status); matching picks it up at once.
    async fn retry_alert(&self, id: &str, caller: &Caller) -> Result<AlertRecord, ServiceError>;
    /// Stops a run that has not started executing (pending, planning, awaiting approval);
    /// 409 for a run that is executing or finished.
    async fn cancel(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError>;
    /// A run's evidence without its bytes (id, step, name, content type, sha256, size), in
    /// the order it was stored; 404 for an unknown run. The same list as the run view's.
    async fn evidence(&self, id: &str) -> Result<Vec<EvidenceRecord>, ServiceError> {
        Ok(self.run(id).await?.evidence)
    }
    /// The bytes of a run's evidence exactly as stored: the `n`th (from 0, in stored order)
    /// item of step `step` (a paged or `for_each` step keeps several). 404 for an unknown
    /// run, step or item.
    async fn evidence_item(&self, id: &str, step: &str, n: usize)
    -> Result<Evidence, ServiceError>;
    /// Whether the store answers and playbooks are loaded.
    async fn ready(&self) -> bool;
    async fn stats(&self) -> ServiceStats;
    /// Where the review page keeps its sign-in sessions; `None` when this service keeps none
    /// (a fake in tests), and then sign-in is refused as unavailable. A default, so a service
    /// without a store still implements the trait.
    fn sessions(&self) -> Option<&dyn SessionStore> {
        None
    }
}
