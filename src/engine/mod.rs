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
}

/// The store's journal under one claim of a run: every write carries the claim's fencing
/// number, so a worker that lost its lease can neither journal nor (since a request is sent
/// only after its journal entry) send for the run again.
pub struct FencedJournal<'a> {
    pub store: &'a std::sync::Arc<dyn crate::store::Store>,
    pub fence: crate::store::Fence,
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
