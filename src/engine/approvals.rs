//! Approvals: a person other than the requester approves a plan by its hash (after riposte
//! checked the tenant has not drifted from it), or rejects the run.

use chrono::Utc;

use super::events::Audit;
use super::runtime::{Service, internal};
use super::service::{Caller, ServiceError};
use crate::store::{Approval, ApprovalDecision, RunRecord, RunStatus};

impl Service {
    pub(super) async fn approve_run(
        &self,
        id: &str,
        plan_hash: &str,
        caller: &Caller,
    ) -> Result<RunRecord, ServiceError> {
        let run = self.awaiting_approval(id).await?;
        // The identity that asked for a run — a responder, or the token that delivered its
        // alert — is not the one who approves it.
        if run.requested_by.as_deref() == Some(caller.name.as_str()) {
            return Err(ServiceError::Forbidden(
                "an approver cannot approve a run they requested or whose alert they ingested"
                    .into(),
            ));
        }
        if run.plan_hash.as_deref() != Some(plan_hash) {
            return Err(ServiceError::Conflict(format!(
                "plan hash {plan_hash} is not the run's current plan ({}); review the current plan",
                run.plan_hash.as_deref().unwrap_or("none")
            )));
        }
        // State may have drifted since the plan was made: plan again and compare (under a
        // claim, like every write of a plan).
        let fence = self.claim(id).await?;
        let current = self.plan_run(&run, fence).await;
        let _ = self.store.release(&self.worker_id, id).await;
        let current = current?;
        if current.plan_hash != plan_hash {
            self.emit(
                Audit::ApprovalStale {
                    run_id: id,
                    approved: plan_hash,
                    current: &current.plan_hash,
                },
                Some(&caller.name),
            )
            .await;
            return Err(ServiceError::Conflict(format!(
                "the tenant changed since plan {plan_hash}; the run was planned again as {}: review and approve that",
                current.plan_hash
            )));
        }
        let now = Utc::now();
        self.store
            .record_approval(&Approval {
                run_id: id.into(),
                plan_hash: plan_hash.into(),
                approver: caller.name.clone(),
                decision: ApprovalDecision::Approve,
                expires_at: Some(
                    now + chrono::Duration::from_std(self.options.approval_ttl).unwrap_or_default(),
                ),
                at: now,
            })
            .await
            .map_err(internal)?;
        self.emit(
            Audit::ApprovalRecorded {
                run_id: id,
                plan_hash,
            },
            Some(&caller.name),
        )
        .await;
        self.store
            .set_run_status(id, RunStatus::Running)
            .await
            .map_err(internal)?;
        self.wake.notify_one();
        self.get_run(id).await
    }

    pub(super) async fn reject_run(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<RunRecord, ServiceError> {
        let run = self.awaiting_approval(id).await?;
        let now = Utc::now();
        self.store
            .record_approval(&Approval {
                run_id: id.into(),
                plan_hash: run.plan_hash.clone().unwrap_or_default(),
                approver: caller.name.clone(),
                decision: ApprovalDecision::Reject,
                expires_at: None,
                at: now,
            })
            .await
            .map_err(internal)?;
        self.emit(
            Audit::ApprovalRejected {
                run_id: id,
                plan_hash: run.plan_hash.as_deref(),
            },
            Some(&caller.name),
        )
        .await;
        self.store
            .set_run_status(id, RunStatus::Denied)
            .await
            .map_err(internal)?;
        self.get_run(id).await
    }

    /// The run, if it waits for a decision; anything else is a conflict.
    async fn awaiting_approval(&self, id: &str) -> Result<RunRecord, ServiceError> {
        let run = self.get_run(id).await?;
        if run.status != RunStatus::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "run {id} is {:?}, not awaiting approval",
                run.status
            )));
        }
        Ok(run)
    }

    /// Whether an unexpired approval of exactly this plan exists.
    pub(super) async fn valid_approval(
        &self,
        run: &RunRecord,
        plan_hash: &str,
    ) -> Result<bool, ServiceError> {
        let now = Utc::now();
        Ok(self
            .store
            .approvals_for(&run.id)
            .await
            .map_err(internal)?
            .iter()
            .any(|a| {
                a.decision == ApprovalDecision::Approve
                    && a.plan_hash == plan_hash
                    && a.expires_at.is_none_or(|t| t > now)
            }))
    }
}
