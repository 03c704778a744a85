//! A run's life: planned (with real lookups and fresh guardrail counters), waiting for
//! approval where the plan needs it, executed, and recorded (report, evidence, effects).

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use serde_json::json;

use super::events::{Audit, RedactedRequest};
use super::report::{RunOutcome, RunReport, StepOutcome};
use super::runtime::{Service, internal};
use super::service::ServiceError;
use super::{Event, Executor, FencedJournal, LeaseClock};
use crate::actions::{self, Effect};
use crate::alert::{self, Alert};
use crate::mode::Mode;
use crate::plan::{DoneStep, Plan, Planner, StepStatus};
use crate::playbook::Playbook;
use crate::store::{Fence, NewEvidence, RunRecord, RunStatus};

impl Service {
    /// Moves one run forward as far as it can go now — plan, wait for approval, or execute —
    /// under this worker's claim `fence`: every write it makes carries the fence.
    /// `on_event` receives progress (the CLI prints it).
    pub(super) async fn drive_held(
        &self,
        run_id: &str,
        fence: Fence,
        lease: &LeaseClock,
        on_event: Option<&(dyn Fn(&Event<'_>) + Send + Sync)>,
    ) -> Result<RunRecord, ServiceError> {
        let run = self.get_run(run_id).await?;
        match run.status {
            RunStatus::Pending | RunStatus::Planning => {
                self.store
                    .set_run_status_fenced(run_id, fence, RunStatus::Planning)
                    .await
                    .map_err(internal)?;
                let plan = self.plan_run(&run, fence).await?;
                // Made just now: executing it straight away needs no second look.
                if let Ok(mut fresh) = self.fresh.lock() {
                    fresh.insert((run.id.clone(), plan.plan_hash.clone()));
                }
                let steps = plan
                    .steps
                    .iter()
                    .map(|s| json!({"id": s.id, "status": s.status, "policy": s.policy}))
                    .collect();
                self.emit(
                    Audit::PlanCreated {
                        run_id,
                        plan_hash: &plan.plan_hash,
                        steps,
                    },
                    None,
                )
                .await;
                let next = next_status(&plan);
                self.store
                    .set_run_status_fenced(run_id, fence, next)
                    .await
                    .map_err(internal)?;
                if next == RunStatus::Running {
                    return Box::pin(self.drive_held(run_id, fence, lease, on_event)).await;
                }
                self.get_run(run_id).await
            }
            RunStatus::Running => self.execute_run(&run, fence, lease, on_event).await,
            _ => Ok(run),
        }
    }

    /// Plans the run as the tenant is now and stores the plan.
    pub(super) async fn plan_run(
        &self,
        run: &RunRecord,
        fence: Fence,
    ) -> Result<Plan, ServiceError> {
        let (playbook, inputs) = self.run_spec(run)?;
        let alert = self.run_alert(run).await?;
        let lookup = self.connectors.planning_lookup();
        let planner = Planner {
            endpoints: &self.endpoints,
            lookup: lookup.as_ref(),
            settings: &self.actions,
            guard: self.guard.as_ref(),
        };
        // The run's creation time is its clock: re-planning the same state gives the same
        // plan, so a plan hash identifies "what would be sent", and drift is a real change.
        let counters = self.counters(run, &playbook).await?;
        let plan = planner
            .plan_with_counters(
                &playbook,
                &alert,
                &inputs,
                run.mode,
                &run.id,
                run.created_at,
                &counters,
            )
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let mut plan = plan;
        if run.follows_run_id.is_some() {
            let done = self.done_in_incident(run).await?;
            crate::plan::leave_out_done(&mut plan, &done);
        }
        if let Some(revoked_at) = self.revocation_still_holds(run).await? {
            crate::plan::leave_out_revocation(&mut plan, revoked_at);
        }
        let value =
            serde_json::to_value(&plan).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .save_plan(&run.id, fence, &value, &plan.plan_hash)
            .await
            .map_err(internal)?;
        Ok(plan)
    }

    /// When riposte last revoked the principal's sessions, if it has not enabled the account
    /// since it last disabled it and that disable came before the revocation — with the plan
    /// finding the account disabled now, no session can have started since.
    async fn revocation_still_holds(
        &self,
        run: &RunRecord,
    ) -> Result<Option<chrono::DateTime<Utc>>, ServiceError> {
        let (Some(tenant), Some(key)) = (&run.tenant, &run.principal_key) else {
            return Ok(None);
        };
        let last = self
            .store
            .latest_effects(tenant, key)
            .await
            .map_err(internal)?;
        let (Some(revoked), Some(disabled)) = (
            last.get("entra.revoke_sessions"),
            last.get("entra.disable_user"),
        ) else {
            return Ok(None);
        };
        let enabled_since = last.get("entra.enable_user").is_some_and(|e| e >= disabled);
        Ok((disabled <= revoked && !enabled_since).then_some(*revoked))
    }

    /// What the runs of `run`'s incident before it finished: each step that succeeded (or
    /// found its change already made), with the parameters its plan gave it.
    async fn done_in_incident(&self, run: &RunRecord) -> Result<Vec<DoneStep>, ServiceError> {
        let Some(incident) = &run.incident_id else {
            return Ok(Vec::new());
        };
        let mut done = Vec::new();
        for earlier in self.store.incident_runs(incident).await.map_err(internal)? {
            if earlier.id == run.id || earlier.created_at > run.created_at {
                continue;
            }
            let (Some(plan), Some(report)) = (&earlier.plan, &earlier.report) else {
                continue;
            };
            let (Ok(plan), Ok(report)) = (
                serde_json::from_value::<Plan>(plan.clone()),
                serde_json::from_value::<RunReport>(report.clone()),
            ) else {
                continue;
            };
            for step in &report.steps {
                if !matches!(
                    step.outcome,
                    StepOutcome::Succeeded | StepOutcome::AlreadySatisfied
                ) {
                    continue;
                }
                if let Some(planned) = plan.steps.iter().find(|s| s.id == step.id) {
                    done.push(DoneStep {
                        run_id: earlier.id.clone(),
                        action: planned.action.clone(),
                        with: planned.with.clone(),
                    });
                }
            }
        }
        Ok(done)
    }

    /// The alert a run answers (its first), enriched as matching saw it; a follow-up run's
    /// alert keeps only the resources the follow-up is for.
    pub(super) async fn run_alert(&self, run: &RunRecord) -> Result<Alert, ServiceError> {
        let alert_ref = run
            .alerts
            .first()
            .ok_or_else(|| ServiceError::Internal(format!("run {} has no alert", run.id)))?;
        let record = self
            .store
            .get_alert(&alert_ref.alert_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                ServiceError::Internal(format!("alert {} is missing", alert_ref.alert_id))
            })?;
        let alert: Alert = serde_json::from_value(record.body.clone())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        // Only a failure that may pass is "unavailable" (retried with backoff); one that will
        // not (a 4xx, an alert that is no longer admissible) fails the run at once.
        let mut alert = alert::enrich(alert, self.connectors.lacework(), &self.alerts)
            .await
            .map_err(|e| match super::Failure::of_enrichment(&e) {
                super::Failure::Transient { reason, .. } => ServiceError::Unavailable(reason),
                super::Failure::Permanent { reason } => ServiceError::BadRequest(reason),
            })?;
        if let Some(only) = run.spec.as_ref().and_then(|s| s.only_resources.as_ref()) {
            alert
                .resources
                .retain(|r| only.iter().any(|o| o.eq_ignore_ascii_case(&r.id)));
        }
        Ok(alert)
    }

    /// Recent activity in the run's tenant, for the blast-radius guardrails. A run that may
    /// act on its principal without a person (enforce mode, a mutating step) first reserves
    /// the principal's place under the cap, atomically across replicas; the policy then sees
    /// the principals ahead of it, so concurrent runs never get past the cap together.
    async fn counters(
        &self,
        run: &RunRecord,
        playbook: &Playbook,
    ) -> Result<crate::policy::Counters, ServiceError> {
        let Some(tenant) = &run.tenant else {
            return Ok(crate::policy::Counters::default());
        };
        let since = Utc::now() - chrono::Duration::hours(1);
        let mutates = playbook
            .steps
            .iter()
            .any(|s| actions::find(&s.uses).is_some_and(|a| a.info().effect == Effect::Mutate));
        let principals = match (&run.principal_key, self.guard.principal_cap()) {
            (Some(key), Some(cap)) if run.mode == Mode::Enforce && mutates => {
                let r = self
                    .store
                    .reserve_principal(tenant, key, cap, since)
                    .await
                    .map_err(internal)?;
                if r.granted {
                    // It holds a place: however many reserved after it, it is within the cap.
                    r.others.min(cap.saturating_sub(1))
                } else {
                    r.others.max(cap)
                }
            }
            _ => self
                .store
                .count_principals(tenant, since)
                .await
                .map_err(internal)?,
        };
        let mut actions_last_hour = BTreeMap::new();
        for step in &playbook.steps {
            if !actions_last_hour.contains_key(&step.uses) {
                let n = self
                    .store
                    .count_effects(tenant, &step.uses, since)
                    .await
                    .map_err(internal)?;
                actions_last_hour.insert(step.uses.clone(), n);
            }
        }
        Ok(crate::policy::Counters {
            principals_contained_last_hour: principals,
            actions_last_hour,
        })
    }

    async fn execute_run(
        &self,
        run: &RunRecord,
        fence: Fence,
        lease: &LeaseClock,
        on_event: Option<&(dyn Fn(&Event<'_>) + Send + Sync)>,
    ) -> Result<RunRecord, ServiceError> {
        let stored: Option<Plan> = match &run.plan {
            Some(p) => Some(
                serde_json::from_value(p.clone())
                    .map_err(|e| ServiceError::Internal(format!("stored plan: {e}")))?,
            ),
            None => None,
        };
        let just_made = |hash: &str| {
            self.fresh
                .lock()
                .map(|f| f.contains(&(run.id.clone(), hash.to_string())))
                .unwrap_or(false)
        };
        // What a previous attempt finished, judged against the plan it executed (its pre-state
        // is what undoing must restore), before anything is planned again.
        let lookup = self.connectors.read_only();
        let completed = match &stored {
            Some(old) => self.recover_completed(old, fence, &lookup).await?,
            None => HashMap::new(),
        };
        // The guardrails are asked again just before anything is sent: plan again (fresh
        // lookups, fresh counters, fresh decisions) and compare. A plan that changed after it
        // was approved, or that now needs approval, waits for a new approval; otherwise the
        // plan as it is now runs.
        let plan = match stored {
            Some(old) if just_made(&old.plan_hash) => old,
            Some(old) => {
                let approved_old = self.valid_approval(run, &old.plan_hash).await?;
                let now = self.plan_run(run, fence).await?;
                if now.plan_hash != old.plan_hash {
                    self.emit(
                        Audit::PlanChanged {
                            run_id: &run.id,
                            was: &old.plan_hash,
                            now: &now.plan_hash,
                        },
                        None,
                    )
                    .await;
                    let needs_approval = now
                        .steps
                        .iter()
                        .any(|s| s.status == StepStatus::NeedsApproval);
                    if approved_old || needs_approval {
                        self.store
                            .set_run_status_fenced(&run.id, fence, RunStatus::AwaitingApproval)
                            .await
                            .map_err(internal)?;
                        return self.get_run(&run.id).await;
                    }
                }
                now
            }
            None => self.plan_run(run, fence).await?,
        };
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.remove(&(run.id.clone(), plan.plan_hash.clone()));
        }
        let (playbook, _) = self.run_spec(run)?;
        let approved = self.valid_approval(run, &plan.plan_hash).await?;
        let silent = |_: &Event<'_>| {};
        let journal = FencedJournal {
            store: &self.store,
            fence,
            lease: Some(lease),
        };
        let executor = Executor {
            transport: &self.connectors,
            lookup: &lookup,
            journal: &journal,
            settings: &self.actions,
            endpoints: &self.endpoints,
            concurrency: self.options.step_concurrency,
            approved,
            completed: &completed,
            on_event: on_event.unwrap_or(&silent),
        };
        let report = executor.execute(&plan, &playbook).await;
        self.record_report(run, fence, &report).await?;
        let status = match report.outcome {
            RunOutcome::Succeeded => RunStatus::Succeeded,
            RunOutcome::AwaitingApproval => RunStatus::AwaitingApproval,
            RunOutcome::Failed => RunStatus::Failed,
            RunOutcome::Compensated => RunStatus::RolledBack,
        };
        self.store
            .set_run_status_fenced(&run.id, fence, status)
            .await
            .map_err(internal)?;
        self.emit(
            Audit::RunFinished {
                run_id: &run.id,
                outcome: report.outcome,
                plan_hash: &plan.plan_hash,
            },
            None,
        )
        .await;
        self.get_run(&run.id).await
    }

    /// The run's report in its own column; its requests, steps and evidence in the audit trail
    /// and the evidence table; its mutations in the blast-radius counters.
    async fn record_report(
        &self,
        run: &RunRecord,
        fence: Fence,
        report: &RunReport,
    ) -> Result<(), ServiceError> {
        for step in &report.steps {
            for r in &step.requests {
                self.emit(
                    Audit::Request {
                        run_id: &run.id,
                        step: &step.id,
                        record: RedactedRequest::of(r),
                    },
                    None,
                )
                .await;
            }
            self.emit(
                Audit::StepFinished {
                    run_id: &run.id,
                    step: &step.id,
                    action: &step.action,
                    outcome: step.outcome,
                    reason: step.reason.as_deref(),
                },
                None,
            )
            .await;
            for e in &step.evidence {
                // The canonical JSON is what the report's digest covers, so the stored bytes
                // hash to the digest the report, the run page and the audit trail show.
                let mut text = String::new();
                crate::text::canonical_json(&e.body, &mut text);
                let bytes = text.into_bytes();
                let stored = self
                    .store
                    .store_evidence(&NewEvidence {
                        run_id: run.id.clone(),
                        step_id: step.id.clone(),
                        name: e.name.clone(),
                        content_type: "application/json".into(),
                        bytes,
                    })
                    .await
                    .map_err(internal)?;
                self.emit(
                    Audit::EvidenceStored {
                        run_id: &run.id,
                        step: &step.id,
                        evidence_id: &stored.id,
                        name: &stored.name,
                        sha256: &stored.sha256,
                        size: stored.size,
                    },
                    None,
                )
                .await;
            }
            if step.outcome == StepOutcome::Succeeded
                && !step.requests.is_empty()
                && let (Some(tenant), Some(key)) = (&run.tenant, &run.principal_key)
                && actions::find(&step.action).is_some_and(|a| a.info().effect == Effect::Mutate)
            {
                self.store
                    .record_effect(tenant, &step.action, key, Utc::now())
                    .await
                    .map_err(internal)?;
            }
        }
        let value =
            serde_json::to_value(report).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .save_report(&run.id, fence, &value)
            .await
            .map_err(internal)
    }

    /// The stored plan of a run.
    pub async fn plan_of(&self, run_id: &str) -> Result<Option<Plan>, ServiceError> {
        Ok(self
            .get_run(run_id)
            .await?
            .plan
            .and_then(|p| serde_json::from_value(p).ok()))
    }

    /// The stored execution report of a run, once it executed.
    pub async fn report(&self, run_id: &str) -> Result<Option<RunReport>, ServiceError> {
        Ok(self
            .get_run(run_id)
            .await?
            .report
            .and_then(|r| serde_json::from_value(r).ok()))
    }
}

/// Where a freshly made plan sends its run: denied when every mutating step is, waiting for
/// approval in dry-run or when a step needs it, else straight on.
fn next_status(plan: &Plan) -> RunStatus {
    let needs_approval = plan.mode == Mode::DryRun
        || plan
            .steps
            .iter()
            .any(|s| s.status == StepStatus::NeedsApproval);
    let all_denied = plan
        .steps
        .iter()
        .filter(|s| s.effect == Effect::Mutate)
        .all(|s| s.status == StepStatus::Denied)
        && plan.steps.iter().any(|s| s.status == StepStatus::Denied);
    if all_denied {
        RunStatus::Denied
    } else if needs_approval {
        RunStatus::AwaitingApproval
    } else {
        RunStatus::Running
    }
}
