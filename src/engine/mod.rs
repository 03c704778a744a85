//! Runs: the durable service that turns stored alerts into runs and moves each run through
//! its life, and the executor that sends a plan's requests, verifies, journals and undoes.
//!
//! The engine never builds a request: it sends the plan's requests (each through its
//! action's `prepare`, which may only restore what the plan hid) via a [`Transport`], so what
//! a dry run shows is what an approved run sends, request for request.

mod api;
mod approvals;
mod conditions;
mod controls;
mod events;
mod executor;
mod lifecycle;
mod manual;
mod matching;
mod notices;
mod recovery;
mod report;
mod retry;
mod rollback;
mod runtime;
pub mod service;
mod settings;
mod spec;

use async_trait::async_trait;
use serde_json::Value;

pub use executor::{Event, Executor};
pub use report::{RequestRecord, RunOutcome, RunReport, StepOutcome, StepReport};
pub use retry::{Failure, RetryPolicy};
pub use rollback::{RollbackReport, rollback};
pub use runtime::{Service, ServiceOptions, ServiceParts, Worker};
pub use settings::EngineSettings;
pub use spec::{action_spec, playbook_of, playbook_spec};

use crate::connectors::{ApiError, ApiRequest, ApiResponse, Connectors};

/// Where requests go. The connectors in production; a recorder in tests.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError>;
}

#[async_trait]
impl Transport for Connectors {
    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        Connectors::send(self, req).await
    }
}

/// A step's transitions, written before and after its side effects (STYLE.md habit 6).
pub use crate::store::StepState;

/// A journal write that did not reach the store. Before a side effect it stops the effect:
/// a request is sent only once the journal says it may have been.
#[derive(Debug, thiserror::Error)]
#[error("the journal could not be written: {0}")]
pub struct JournalError(pub String);

/// Where the engine writes its journal.
#[async_trait]
pub trait Journal: Send + Sync {
    async fn record(
        &self,
        run_id: &str,
        step_id: &str,
        item: u32,
        state: StepState,
        detail: Value,
    ) -> Result<(), JournalError>;

    /// Asked right before each request is sent, after its journal entry: whether this worker
    /// still holds the run. A worker paused past its lease (or cut off from the store) finds
    /// out here and sends nothing.
    fn may_send(&self, _run_id: &str) -> Result<(), JournalError> {
        Ok(())
    }

    /// The same question, asked again by the HTTP client right before each attempt goes on
    /// the wire (`connectors::gate`): a request can wait after `may_send` (token bucket,
    /// throttle hold, retry backoff) long enough for the lease to lapse. `None`: not checked.
    fn send_gate(&self, _run_id: &str) -> Option<crate::connectors::gate::SendGate> {
        None
    }
}

/// The store's journal under one claim of a run: every write carries the claim's fencing
/// number, so a worker that lost its lease can neither journal nor (since a request is sent
/// only after its journal entry) send for the run again.
pub struct FencedJournal<'a> {
    pub store: &'a std::sync::Arc<dyn crate::store::Store>,
    pub fence: crate::store::Fence,
    /// Until when this worker's lease runs as it last renewed it; `None`: not checked.
    pub lease: Option<&'a LeaseClock>,
}

/// When a worker's lease on a run ends, as its last renewal set it. The fence check in the
/// store catches a stale write; this catches a stale send, which the store never sees.
/// Clones share one clock, so the HTTP client's last look sees every renewal.
#[derive(Debug, Default, Clone)]
pub struct LeaseClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl LeaseClock {
    /// Renewed (or claimed) now, for `lease`; a margin of a tenth of the lease stays unused,
    /// so a request never leaves in the last moment of a lease.
    pub fn renewed(&self, lease: std::time::Duration) {
        self.set(LeaseClock::deadline(lease));
    }

    /// When a lease of `lease` renewed now ends, less the margin (milliseconds since the epoch).
    pub fn deadline(lease: std::time::Duration) -> i64 {
        let usable = lease.saturating_sub(lease / 10);
        (chrono::Utc::now()
            + chrono::Duration::from_std(usable).unwrap_or(chrono::Duration::zero()))
        .timestamp_millis()
    }

    /// Sets the end of the lease (from [`LeaseClock::deadline`]).
    pub fn set(&self, until_ms: i64) {
        self.0.store(until_ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the lease is still running.
    pub fn holds(&self) -> bool {
        chrono::Utc::now().timestamp_millis() < self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Journal for FencedJournal<'_> {
    async fn record(
        &self,
        run_id: &str,
        step_id: &str,
        item: u32,
        state: StepState,
        detail: Value,
    ) -> Result<(), JournalError> {
        self.store
            .journal(run_id, self.fence, step_id, item, state, &detail)
            .await
            .map_err(|error| {
                tracing::error!(message = "Journal write failed.", %run_id, %step_id, %error);
                JournalError(error.to_string())
            })
            .map(drop)
    }

    fn may_send(&self, run_id: &str) -> Result<(), JournalError> {
        match self.lease {
            Some(lease) if !lease.holds() => Err(JournalError(format!(
                "this worker's lease on run {run_id} has run out (paused or cut off from the store); another worker may hold the run"
            ))),
            _ => Ok(()),
        }
    }

    fn send_gate(&self, run_id: &str) -> Option<crate::connectors::gate::SendGate> {
        let lease = self.lease?.clone();
        let run_id = run_id.to_string();
        Some(std::sync::Arc::new(move || {
            if lease.holds() {
                Ok(())
            } else {
                Err(format!(
                    "this worker's lease on run {run_id} ran out while the request waited; another worker may hold the run"
                ))
            }
        }))
    }
}

/// A journal that keeps nothing, for one-shot runs without a store.
pub struct NoJournal;

#[async_trait]
impl Journal for NoJournal {
    async fn record(
        &self,
        _: &str,
        _: &str,
        _: u32,
        _: StepState,
        _: Value,
    ) -> Result<(), JournalError> {
        Ok(())
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;

    #[test]
    fn a_lapsed_lease_refuses_the_send_and_a_live_one_allows_it() {
        let clock = LeaseClock::default();
        assert!(!clock.holds(), "never renewed");
        clock.renewed(std::time::Duration::from_secs(60));
        assert!(clock.holds());
        clock.set(LeaseClock::deadline(std::time::Duration::ZERO) - 1);
        assert!(!clock.holds());
    }

    /// The HTTP client's last look reads the same clock the renewals move, not a copy taken
    /// when the request was queued.
    #[tokio::test]
    async fn the_send_gate_follows_the_lease_clock() {
        let store: std::sync::Arc<dyn crate::store::Store> = std::sync::Arc::new(
            crate::store::SqliteStore::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        let clock = LeaseClock::default();
        clock.renewed(std::time::Duration::from_secs(60));
        let journal = FencedJournal {
            store: &store,
            fence: crate::store::Fence(1),
            lease: Some(&clock),
        };
        let gate = journal
            .send_gate("run-1")
            .expect("a fenced journal has a gate");
        assert!(gate().is_ok());
        clock.set(LeaseClock::deadline(std::time::Duration::ZERO) - 1);
        let refused = gate().unwrap_err();
        assert!(refused.contains("run-1"), "{refused}");
        assert!(
            FencedJournal {
                lease: None,
                ..journal
            }
            .send_gate("run-1")
            .is_none()
        );
    }
}
