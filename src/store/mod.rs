//! Durable state: alerts, runs, the step journal, leases, approvals, guardrail counters,
//! evidence and the hash-chained audit trail, behind one [`Store`] trait.
//!
//! Two backends implement it with the same SQL and the same behaviour: SQLite (embedded, the
//! default, one process) and PostgreSQL (shared by replicas, DESIGN.md §4). Queries are built at
//! run time (no `query!` macros, so a clean clone builds without a database or offline data) and
//! the schema migrations are embedded in the binary and applied by [`open`].
//!
//! Architecture Invariant: no SQL exists outside `src/store/`; the rest of riposte sees typed
//! records only.
//!
//! Every timestamp the store writes is truncated to whole microseconds, PostgreSQL's
//! resolution, so a value reads back equal on both backends and the audit hash computed at
//! append time is the one recomputed at verification.

mod audit;
pub mod batch;
mod cursors;
mod postgres;
mod sessions;
mod settings;
mod spec;
mod sql;
mod sql_cursors;
mod sql_runs;
mod sql_sessions;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mode::Mode;

pub use audit::{
    AUDIT_GENESIS, AuditBreak, AuditEvent, AuditKey, AuditProblem, AuditRecord, audit_hash,
    audit_material,
};
pub(crate) use audit::{ChainCheck, canonical_text};
pub use batch::Batcher;
pub use cursors::CursorStore;
pub use postgres::PgStore;
pub use sessions::{SessionRecord, SessionStore};
pub use settings::AuditSettings;
pub use settings::StoreSettings;
pub use spec::{RunSpec, RunTarget};
pub use sqlite::SqliteStore;

/// Opens (creating and migrating if needed) the store a `[store] url` names.
///
/// `sqlite://relative.db`, `sqlite:///absolute/path.db` and `sqlite::memory:` choose SQLite;
/// `postgres://…` (or `postgresql://…`) chooses PostgreSQL.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, None).await
}

/// [`open`], with the `[audit] key` that chains the audit trail by HMAC.
pub async fn open_with(
    url: &str,
    audit_key: Option<AuditKey>,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open(url).await?.with_audit_key(audit_key),
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::open(url).await?.with_audit_key(audit_key),
        ))
    } else {
        // Only the scheme is echoed: the rest of a URL may hold a password.
        let scheme = url.split_once(':').map_or("", |(s, _)| s).to_string();
        Err(StoreError::UnsupportedUrl { scheme })
    }
}

/// Everything that can go wrong at the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store URL scheme `{scheme}` is not supported; use sqlite://FILE, sqlite:///ABS/PATH, sqlite::memory: or postgres://user@host:port/db in [store] url"
    )]
    UnsupportedUrl { scheme: String },
    #[error("cannot open the store: {0}; check [store] url and that the database is reachable")]
    Open(#[source] sqlx::Error),
    #[error("cannot bring the store schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{what} `{id}` already exists")]
    AlreadyExists { what: &'static str, id: String },
    #[error("run `{run_id}` is no longer leased to worker `{worker_id}`; stop working on it")]
    LeaseLost { run_id: String, worker_id: String },
    /// A write under a claim that another worker has since replaced (its fencing number is
    /// older than the run's): the writer lost its lease and must not act for the run again.
    #[error(
        "run `{run_id}` was claimed again (fence {current}, this worker holds {held}); it must not write or send for it"
    )]
    Fenced {
        run_id: String,
        held: i64,
        current: i64,
    },
    #[error("the store holds a value riposte cannot read: {0}")]
    Corrupt(String),
    #[error("{0}")]
    AuditChainBroken(AuditBreak),
    #[error("the alert batch writer has stopped")]
    BatcherClosed,
    /// One failed group commit, shared by every caller whose alert was in it.
    #[error("the alert batch was not stored: {0}")]
    BatchFailed(#[source] Arc<StoreError>),
}

impl StoreError {
    /// Maps constraint violations to what they mean for the caller.
    pub(crate) fn from_write(e: sqlx::Error, what: &'static str, id: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::AlreadyExists {
                    what,
                    id: id.to_string(),
                };
            }
            if db.is_foreign_key_violation() {
                return StoreError::NotFound {
                    what,
                    id: id.to_string(),
                };
            }
        }
        StoreError::Database(e)
    }
}

/// An alert to persist, already normalised; `body` is the normalised alert (with `raw`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlert {
    pub source: String,
    /// The source's own id: storing is idempotent on `(source, source_id)`.
    pub source_id: String,
    /// Who the alert is about (e.g. the principal's object id), the key runs coalesce on.
    pub principal_key: Option<String>,
    pub body: Value,
    pub received_at: DateTime<Utc>,
    /// Who delivered it (`token:<name>`, `cli:<user>`); runs it starts record this identity,
    /// which may then neither approve nor roll them back.
    pub ingested_by: Option<String>,
}

/// What storing an alert did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InsertOutcome {
    Inserted {
        alert_id: String,
    },
    /// Stored before: the caller answers with the existing ids and starts nothing.
    Duplicate {
        alert_id: String,
        run_ids: Vec<String>,
    },
}

impl InsertOutcome {
    pub fn alert_id(&self) -> &str {
        match self {
            InsertOutcome::Inserted { alert_id } | InsertOutcome::Duplicate { alert_id, .. } => {
                alert_id
            }
        }
    }
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    pub id: String,
    pub source: String,
    pub source_id: String,
    pub principal_key: Option<String>,
    pub body: Value,
    pub received_at: DateTime<Utc>,
    /// When matching finished (or gave up: `failed`); `None` while the alert is pending.
    pub processed_at: Option<DateTime<Utc>>,
    pub ingested_by: Option<String>,
    pub status: AlertStatus,
    /// Failed attempts at enriching or matching it so far.
    pub attempts: u32,
    /// A pending alert is not matched before this time (its retry backoff); `None`: due now.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed: for a `failed` alert, why it was given up on.
    pub last_error: Option<String>,
}

/// Where an alert stands (DESIGN.md §3, alert statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Stored, not matched yet (perhaps waiting for its next attempt).
    Pending,
    /// It started or joined at least one run.
    Matched,
    /// No playbook's triggers fit it.
    Unmatched,
    /// It could not be enriched or read, after its retries or at once for a permanent
    /// failure; `alerts retry` makes it pending again.
    Failed,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 4] = [
        AlertStatus::Pending,
        AlertStatus::Matched,
        AlertStatus::Unmatched,
        AlertStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Matched => "matched",
            AlertStatus::Unmatched => "unmatched",
            AlertStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertStatus> {
        AlertStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A failed attempt at an alert (enrichment) or a run (planning), as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// Why it failed, for operators (`last_error`).
    pub reason: String,
    /// When to try again; `None` gives up: the alert or run becomes `failed`.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Where a run stands (DESIGN.md §3, HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Planning,
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    Denied,
    RolledBack,
    /// Stopped by an operator before it started executing.
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 9] = [
        RunStatus::Pending,
        RunStatus::Planning,
        RunStatus::AwaitingApproval,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Denied,
        RunStatus::RolledBack,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Planning => "planning",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Denied => "denied",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A finished run: new alerts start a new run instead of coalescing into it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::Denied
                | RunStatus::RolledBack
                | RunStatus::Cancelled
        )
    }

    /// Not started executing: what `cancel` may stop.
    pub fn is_cancellable(self) -> bool {
        matches!(
            self,
            RunStatus::Pending | RunStatus::Planning | RunStatus::AwaitingApproval
        )
    }
}

/// A run to create; it starts `pending`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub playbook: String,
    pub principal_key: Option<String>,
    pub tenant: Option<String>,
    pub mode: Mode,
    /// Who asked (an API token name, `cli`, or `alert`); an approver cannot approve their own run.
    pub requested_by: Option<String>,
    /// The alert that started the run, linked in the same transaction.
    pub alert_id: Option<String>,
    /// What the run runs; recovery, approval and re-planning read it from here.
    pub spec: RunSpec,
    /// The run a follow-up comes after, in the same incident.
    pub follows: Option<Follows>,
}

/// Where a follow-up run sits: its incident and the run before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follows {
    pub incident_id: String,
    pub run_id: String,
}

/// A worker's claim on a run. The number grows with every claim of the run; every journal
/// and status write under the claim carries it, and the store refuses one that is not the
/// run's current number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fence(pub i64);

/// A run leased to a worker, with its fencing number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub run_id: String,
    pub fence: Fence,
}

/// What [`Store::create_or_join_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// A new incident: the run was created.
    Created,
    /// The alert joined the incident's latest run (whatever its status).
    Existing {
        incident_id: String,
        run_id: String,
        status: RunStatus,
    },
}

/// The answer to a blast-radius reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The principal counts towards the cap now (reserved here, or already affected).
    pub granted: bool,
    /// Distinct *other* principals affected or reserved in the window.
    pub others: u64,
}

/// An alert as a run shows it: the source and the source's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRef {
    /// Riposte's id of the stored alert.
    pub alert_id: String,
    pub source: String,
    #[serde(rename = "id")]
    pub source_id: String,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub status: RunStatus,
    pub playbook: String,
    pub principal_key: Option<String>,
    pub tenant: Option<String>,
    pub mode: Mode,
    pub requested_by: Option<String>,
    /// Every alert attached to the run, the first one first.
    pub alerts: Vec<AlertRef>,
    pub plan: Option<Value>,
    pub plan_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The worker holding the run and until when; a lapsed lease may be taken over.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// What the run runs (absent only for runs stored before specs were).
    pub spec: Option<RunSpec>,
    /// Failed planning attempts so far.
    pub attempts: u32,
    /// No worker claims the run before this time (its retry backoff); `None`: due now.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed: for a `failed` run whose planning gave up, why.
    pub last_error: Option<String>,
    /// The incident the run answers: the id of the incident's first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The run this follow-up comes after, in the same incident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_run_id: Option<String>,
    /// The fencing number of the run's latest claim (the store's business, not a reader's).
    #[serde(skip)]
    pub fence: Fence,
    /// The execution report once the run executed (`RunView` shows it beside the run).
    #[serde(skip)]
    pub report: Option<Value>,
}

/// A step's state in the journal (STYLE habit 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Started,
    /// Requests may have reached the API: after a crash, verify before re-sending.
    RequestSent,
    Succeeded,
    AlreadySatisfied,
    Failed,
    Skipped,
    InDoubt,
    Compensated,
    CompensationFailed,
}

impl StepState {
    pub const ALL: [StepState; 10] = [
        StepState::Pending,
        StepState::Started,
        StepState::RequestSent,
        StepState::Succeeded,
        StepState::AlreadySatisfied,
        StepState::Failed,
        StepState::Skipped,
        StepState::InDoubt,
        StepState::Compensated,
        StepState::CompensationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Started => "started",
            StepState::RequestSent => "request_sent",
            StepState::Succeeded => "succeeded",
            StepState::AlreadySatisfied => "already_satisfied",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::InDoubt => "in_doubt",
            StepState::Compensated => "compensated",
            StepState::CompensationFailed => "compensation_failed",
        }
    }

    pub fn parse(s: &str) -> Option<StepState> {
        StepState::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One recorded transition of one step item (a `for_each` step has one item per element).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    /// Store-wide order of writing; a run's entries read in this order are its history.
    pub seq: i64,
    pub step_id: String,
    pub item: u32,
    pub state: StepState,
    pub detail: Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approve,
    Reject,
}

impl ApprovalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::Approve => "approve",
            ApprovalDecision::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalDecision> {
        match s {
            "approve" => Some(ApprovalDecision::Approve),
            "reject" => Some(ApprovalDecision::Reject),
            _ => None,
        }
    }
}

/// An approval or rejection, bound to the plan hash it was given for, not to the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub run_id: String,
    pub plan_hash: String,
    pub approver: String,
    pub decision: ApprovalDecision,
    /// After this an approval no longer lets the plan run.
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Evidence to keep: bytes plus what they are.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvidence {
    pub run_id: String,
    pub step_id: String,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Stored evidence without its bytes: what a run view shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceRecord {
    pub id: String,
    pub run_id: String,
    pub step_id: String,
    pub name: String,
    pub content_type: String,
    /// Hex sha256 of the bytes, computed by the store when it wrote them.
    pub sha256: String,
    pub size: u64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub record: EvidenceRecord,
    pub bytes: Vec<u8>,
}

/// The durable state riposte keeps. Every method is one transaction: it is stored entirely
/// or not at all.
#[async_trait]
pub trait Store: CursorStore + SessionStore + Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    // --- alerts ---

    /// Stores an alert once per `(source, source_id)`; a repeat answers with the stored ids.
    async fn insert_alert(&self, alert: &NewAlert) -> Result<InsertOutcome, StoreError>;
    /// Stores many alerts in one transaction (one durable commit): the group commit that
    /// [`Batcher`] uses for ingestion throughput. Outcomes are in input order.
    async fn insert_alerts_batch(
        &self,
        alerts: &[NewAlert],
    ) -> Result<Vec<InsertOutcome>, StoreError>;
    async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError>;
    /// Pending alerts that are due (no next attempt scheduled, or its time has passed),
    /// oldest first: what matching works on, also after a crash. An alert waiting for its
    /// next attempt is not returned, so it never holds up newer ones.
    async fn pending_alerts(&self, limit: u32) -> Result<Vec<AlertRecord>, StoreError>;
    /// Matching finished: the alert becomes `matched` when a run links it, else `unmatched`.
    /// Only a pending alert changes.
    async fn mark_alert_processed(&self, id: &str) -> Result<(), StoreError>;
    /// Replaces a pending alert's body with its enriched form (what the source's API added),
    /// so planning reads it from here instead of asking the source again.
    async fn save_enriched_alert(&self, id: &str, body: &Value) -> Result<(), StoreError>;
    /// Claims up to `limit` due pending alerts for one matcher, oldest first: none is handed
    /// to another matcher (on any replica) for `hold`, so each alert is enriched once; a
    /// matcher that dies leaves them due again when the hold passes.
    async fn claim_alerts(
        &self,
        limit: u32,
        hold: Duration,
    ) -> Result<Vec<AlertRecord>, StoreError>;
    /// Counts a failed attempt at a pending alert and keeps its reason: pending again from
    /// `retry_at`, or `failed` when there is none.
    async fn record_alert_failure(
        &self,
        id: &str,
        failure: &FailedAttempt,
    ) -> Result<(), StoreError>;
    /// Newest first, optionally only alerts with `status`.
    async fn list_alerts(
        &self,
        limit: u32,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, StoreError>;
    /// Makes a `failed` alert pending and due again with its attempts reset, in one
    /// conditional update: `false` when the alert is not failed.
    async fn retry_alert(&self, id: &str) -> Result<bool, StoreError>;
    /// How many alerts are in each status (one grouped query, for `/metrics`).
    async fn count_alerts_by_status(&self) -> Result<BTreeMap<AlertStatus, u64>, StoreError>;

    // --- runs ---

    /// Creates a `pending` run, linked to its alert in the same transaction.
    async fn create_run(&self, run: &NewRun) -> Result<(), StoreError>;
    /// Links another alert to a run (coalescing); linking twice is harmless.
    async fn attach_alert(&self, run_id: &str, alert_id: &str) -> Result<(), StoreError>;
    /// One atomic step across replicas: when `run`'s (playbook, principal) has an incident
    /// opened at or after `since`, answers the incident's latest run (the caller then joins
    /// it or follows it up); otherwise opens a new incident whose first run is `run`.
    async fn create_or_join_run(
        &self,
        run: &NewRun,
        since: DateTime<Utc>,
    ) -> Result<Joined, StoreError>;
    /// Creates `run` as the follow-up of `run.follows` in its incident, if that is still the
    /// incident's latest run; otherwise (another replica made a follow-up first) links the
    /// alert to the latest run instead and answers its id.
    async fn create_follow_up(&self, run: &NewRun) -> Result<Option<String>, StoreError>;
    /// Every run of an incident, oldest first.
    async fn incident_runs(&self, incident_id: &str) -> Result<Vec<RunRecord>, StoreError>;
    /// The newest unfinished run of `playbook` for `principal_key` created at or after `since`:
    /// the run a duplicate alert joins instead of starting another.
    async fn find_open_run(
        &self,
        playbook: &str,
        principal_key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;
    /// Moves a run to `status`; a `cancelled` run stays cancelled (the call does nothing),
    /// so a worker that was planning it cannot carry it on.
    async fn set_run_status(&self, id: &str, status: RunStatus) -> Result<(), StoreError>;
    /// As [`Store::set_run_status`], by the holder of `fence` only.
    async fn set_run_status_fenced(
        &self,
        id: &str,
        fence: Fence,
        status: RunStatus,
    ) -> Result<(), StoreError>;
    /// Counts a failed planning attempt of a run that is still being worked on (`pending`,
    /// `planning` or `running`) and keeps its reason: claimable again from `retry_at`, or
    /// `failed` when there is none.
    async fn record_run_failure(&self, id: &str, failure: &FailedAttempt)
    -> Result<(), StoreError>;
    /// Cancels a run that has not started executing (`pending`, `planning`,
    /// `awaiting_approval`) in one conditional update: `false` when its status is another.
    async fn cancel_run(&self, id: &str) -> Result<bool, StoreError>;
    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Newest first, optionally only runs with `status`.
    async fn list_runs(
        &self,
        limit: u32,
        status: Option<RunStatus>,
    ) -> Result<Vec<RunRecord>, StoreError>;
    /// Stores the run's plan, by the holder of `fence` only.
    async fn save_plan(
        &self,
        run_id: &str,
        fence: Fence,
        plan: &Value,
        plan_hash: &str,
    ) -> Result<(), StoreError>;
    /// Keeps the execution report of a run (replacing an earlier one: a resumed run reports
    /// again, over everything it did), by the holder of `fence` only.
    async fn save_report(
        &self,
        run_id: &str,
        fence: Fence,
        report: &Value,
    ) -> Result<(), StoreError>;
    /// How many runs are in each status (one grouped query, for `/metrics`).
    async fn count_runs_by_status(&self) -> Result<BTreeMap<RunStatus, u64>, StoreError>;

    // --- journal ---

    /// Appends one step transition; written before and after every side effect, by the holder
    /// of `fence` only ([`StoreError::Fenced`] otherwise, and nothing is written).
    async fn journal(
        &self,
        run_id: &str,
        fence: Fence,
        step_id: &str,
        item: u32,
        state: StepState,
        detail: &Value,
    ) -> Result<JournalEntry, StoreError>;
    /// A run's whole journal in the order it was written.
    async fn journal_for(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError>;
    /// The last entry of every `(step_id, item)` of a run, sorted by step and item: what
    /// recovery resumes from.
    async fn latest_step_states(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError>;

    // --- leases (recovery and replicas, DESIGN.md §4) ---

    /// Leases up to `limit` runs that are `pending`, `planning` or `running`, whose lease is
    /// absent or lapsed and whose next attempt is due, to `worker_id` for `lease`. No run is
    /// ever leased to two workers; each claim gets the run's next fencing number.
    async fn claim_runs(
        &self,
        worker_id: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Claim>, StoreError>;
    /// Leases one run, whatever its status, when nobody else holds it (or `worker_id` does):
    /// a person driving a run from the command line or the API works under a claim too.
    /// `None` when another worker holds it.
    async fn claim_run(
        &self,
        worker_id: &str,
        run_id: &str,
        lease: Duration,
    ) -> Result<Option<Fence>, StoreError>;
    /// Extends a lease the worker still holds; [`StoreError::LeaseLost`] when it does not.
    async fn heartbeat(
        &self,
        worker_id: &str,
        run_id: &str,
        lease: Duration,
    ) -> Result<(), StoreError>;
    /// Gives a run back (finished, or shutting down); a lease held by another is left alone.
    async fn release(&self, worker_id: &str, run_id: &str) -> Result<(), StoreError>;

    // --- approvals ---

    async fn record_approval(&self, approval: &Approval) -> Result<(), StoreError>;
    /// In the order they were given.
    async fn approvals_for(&self, run_id: &str) -> Result<Vec<Approval>, StoreError>;

    // --- guardrail counters, shared by replicas ---

    /// Records that `action` changed `principal_key` in `tenant`.
    async fn record_effect(
        &self,
        tenant: &str,
        action: &str,
        principal_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Effects of `action` in `tenant` at or after `since`.
    async fn count_effects(
        &self,
        tenant: &str,
        action: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Distinct principals affected in `tenant` at or after `since` (blast radius).
    async fn count_principals(&self, tenant: &str, since: DateTime<Utc>)
    -> Result<u64, StoreError>;
    // --- throttle holds, shared by replicas (DESIGN.md §4) ---

    /// Until when requests to `api` for `budget_key` must wait; `None` when they need not.
    async fn throttle_held_until(
        &self,
        budget_key: &str,
        api: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Holds requests to `api` for `budget_key` until `until`; an earlier hold never shortens
    /// a later one.
    async fn hold_throttle(
        &self,
        budget_key: &str,
        api: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// When riposte last recorded each action's effect on `principal_key` in `tenant`.
    async fn latest_effects(
        &self,
        tenant: &str,
        principal_key: &str,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError>;
    /// Reserves a place for `principal_key` under the blast-radius cap of `cap` distinct
    /// principals since `since`, in one transaction serialised per tenant: concurrent
    /// reservations on any number of replicas never grant more than `cap`. A principal already
    /// affected or reserved in the window is granted without taking another place.
    async fn reserve_principal(
        &self,
        tenant: &str,
        principal_key: &str,
        cap: u64,
        since: DateTime<Utc>,
    ) -> Result<Reservation, StoreError>;

    // --- evidence ---

    /// Stores bytes and their sha256, computed here so the digest is of what was stored.
    async fn store_evidence(&self, evidence: &NewEvidence) -> Result<EvidenceRecord, StoreError>;
    /// Digests only, in the order stored.
    async fn evidence_for(&self, run_id: &str) -> Result<Vec<EvidenceRecord>, StoreError>;
    async fn get_evidence(&self, id: &str) -> Result<Option<Evidence>, StoreError>;

    // --- audit trail ---

    /// Appends to the hash chain. Appends are serialised on the head row, so concurrent
    /// appends (from any replica) never fork the chain.
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError>;
    /// Records with `seq >= from_seq`, in order.
    async fn audit_records(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Walks the whole chain: the number of records checked, or
    /// [`StoreError::AuditChainBroken`] naming the first bad one. An edited record, a removed
    /// record and a truncated tail are all detected; someone able to rewrite every record
    /// *and* the head row is not — publish the head hash elsewhere to cover that.
    async fn verify_audit(&self) -> Result<u64, StoreError>;
}

/// Now, at the resolution both backends keep.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

pub(crate) fn lease_until(lease: Duration) -> DateTime<Utc> {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    now()
        .checked_add_signed(lease)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn parse_mode(s: &str) -> Result<Mode, StoreError> {
    match s {
        "dry-run" => Ok(Mode::DryRun),
        "enforce" => Ok(Mode::Enforce),
        other => Err(StoreError::Corrupt(format!("unknown run mode `{other}`"))),
    }
}

pub(crate) fn parse_status(s: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{s}`")))
}

pub(crate) fn parse_alert_status(s: &str) -> Result<AlertStatus, StoreError> {
    AlertStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown alert status `{s}`")))
}

pub(crate) fn parse_state(s: &str) -> Result<StepState, StoreError> {
    StepState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown step state `{s}`")))
}

pub(crate) fn parse_decision(s: &str) -> Result<ApprovalDecision, StoreError> {
    ApprovalDecision::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown approval decision `{s}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        for s in AlertStatus::ALL {
            assert_eq!(AlertStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        for s in StepState::ALL {
            assert_eq!(StepState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
    }

    #[test]
    fn unsupported_url_hides_everything_but_the_scheme() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = match rt.block_on(open("mysql://root:hunter2@db/x")) {
            Err(e) => e,
            Ok(_) => panic!("mysql is not supported"),
        };
        let text = err.to_string();
        assert!(text.contains("`mysql`"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
