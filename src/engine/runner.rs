//! The durable service: alerts in, runs out, every transition in the store.
//!
//! Ingestion stores the alert (durable before acknowledging) and wakes the worker. The worker
//! matches stored alerts to playbooks (coalescing repeats for the same principal), claims runs
//! with a lease, plans them with real lookups, waits for approval where the plan needs it,
//! executes, verifies and records. After a crash, unprocessed alerts are matched again
//! (run ids are derived from alert + playbook, so nothing is created twice) and leased runs
//! whose lease lapsed are resumed from the journal: finished steps are kept, steps that may
//! have sent a request are verified by reading state back before anything is re-sent.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore};

use super::report::{RunOutcome, RunReport, StepOutcome, StepReport};
use super::service::{
    Caller, Ingested, Invocation, RunView, ServiceApi, ServiceError, ServiceStats,
};
use super::{Event, Executor, RollbackReport, StepState, rollback};
use crate::actions::{self, Effect, Executed, Verification};
use crate::alert::{self, Alert};
use crate::config::Config;
use crate::connectors::{Connectors, Endpoints, Lookup, NoLookup};
use crate::plan::{Mode, Plan, Planner, StepStatus};
use crate::playbook::{self, Playbook};
use crate::policy::Guard;
use crate::store::{
    Approval, ApprovalDecision, AuditEvent, InsertOutcome, NewAlert, NewEvidence, NewRun,
    RunRecord, RunStatus, Store, StoreError,
};

/// Journal step id under which a run's final report is kept.
const REPORT_STEP: &str = "_run";

/// Tunables of the service, with defaults suited to one team's tenant.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Alerts for the same principal and playbook within this window join the open run.
    pub coalesce_window: Duration,
    /// How long an approval lets its plan run.
    pub approval_ttl: Duration,
    /// How long a worker's claim on a run lasts without a heartbeat.
    pub lease: Duration,
    /// Runs executing at once (per tenant: one tenant per service).
    pub max_concurrent_runs: usize,
    /// Steps executing at once within a run.
    pub step_concurrency: usize,
}

impl ServiceOptions {
    /// The options `[engine]` configures.
    pub fn from_settings(e: &crate::config::EngineSettings) -> ServiceOptions {
        ServiceOptions {
            coalesce_window: Duration::from_secs(e.coalesce_window_secs),
            approval_ttl: Duration::from_secs(e.approval_ttl_secs),
            lease: Duration::from_secs(e.lease_secs.max(1)),
            max_concurrent_runs: e.max_concurrent_runs.max(1),
            ..ServiceOptions::default()
        }
    }
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            coalesce_window: Duration::from_secs(15 * 60),
            approval_ttl: Duration::from_secs(60 * 60),
            lease: Duration::from_secs(60),
            max_concurrent_runs: 8,
            step_concurrency: 8,
        }
    }
}

/// The background worker of a [`Service`].
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Stops taking new work and waits until the worker loop returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    /// Group commit for ingestion: concurrent alerts share one durable transaction, and each
    /// caller is answered only after it committed.
    batcher: crate::store::Batcher,
    config: Config,
    connectors: Connectors,
    endpoints: Endpoints,
    playbooks: Vec<Playbook>,
    /// Playbooks given on the command line (a file, `act`): known to this process only.
    ad_hoc: std::sync::Mutex<HashMap<String, Playbook>>,
    /// Plans made moments ago by this process, which may execute without planning again.
    fresh: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// Inputs given on the command line, by run id (`run_now` drives those runs itself).
    ad_hoc_inputs: std::sync::Mutex<HashMap<String, BTreeMap<String, String>>>,
    guard: Box<dyn Guard>,
    options: ServiceOptions,
    worker_id: String,
    wake: Notify,
    runs_sem: Semaphore,
    received: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

impl Service {
    /// Builds the service from configuration: opens (and migrates) the store, loads the
    /// playbooks and the guardrail policies, sets up the connectors.
    pub async fn from_config(
        config: Config,
        options: ServiceOptions,
    ) -> anyhow::Result<Arc<Service>> {
        let store = crate::store::open(&config.store.url).await?;
        let (playbooks, problems) = playbook::load_all(std::slice::from_ref(&config.playbooks));
        if !problems.is_empty() {
            anyhow::bail!(
                "playbooks have problems:\n{}",
                playbook::Diagnostics(problems)
            );
        }
        let guard = crate::policy::guard_for(&config)?;
        Service::new(store, config, playbooks, guard, options)
    }

    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        playbooks: Vec<Playbook>,
        guard: Box<dyn Guard>,
        options: ServiceOptions,
    ) -> anyhow::Result<Arc<Service>> {
        let connectors = Connectors::new(
            &config.azure,
            config.lacework.as_ref(),
            crate::connectors::HttpOptions::default(),
        )?;
        let endpoints = config.azure.endpoints()?;
        Ok(Arc::new(Service {
            batcher: crate::store::Batcher::spawn(Arc::clone(&store)),
            store,
            connectors,
            endpoints,
            playbooks,
            ad_hoc: std::sync::Mutex::new(HashMap::new()),
            ad_hoc_inputs: std::sync::Mutex::new(HashMap::new()),
            fresh: std::sync::Mutex::new(std::collections::HashSet::new()),
            guard,
            runs_sem: Semaphore::new(options.max_concurrent_runs.max(1)),
            options,
            config,
            worker_id: format!("{}-{}", hostname(), uuid::Uuid::now_v7()),
            wake: Notify::new(),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs the background worker until `shutdown` resolves: match alerts, claim runs, drive
    /// them. In-flight runs finish their current step; their leases lapse and another worker
    /// (or this one after a restart) resumes them from the journal.
    pub async fn work(self: &Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.process_alerts().await {
                tracing::error!(message = "Matching alerts failed.", %error);
            }
            match self
                .store
                .claim_runs(&self.worker_id, self.options.lease, 16)
                .await
            {
                Ok(ids) => {
                    for id in ids {
                        let me = Arc::clone(self);
                        tokio::spawn(async move {
                            let _permit = me.runs_sem.acquire().await;
                            // Renew the lease while working, so a long run is not taken over.
                            let beat = {
                                let me = Arc::clone(&me);
                                let id = id.clone();
                                tokio::spawn(async move {
                                    loop {
                                        tokio::time::sleep(me.options.lease / 3).await;
                                        if me
                                            .store
                                            .heartbeat(&me.worker_id, &id, me.options.lease)
                                            .await
                                            .is_err()
                                        {
                                            break;
                                        }
                                    }
                                })
                            };
                            if let Err(error) = me.drive(&id, None).await {
                                tracing::error!(message = "Run failed to progress.", run_id = %id, %error);
                            }
                            beat.abort();
                            let _ = me.store.release(&me.worker_id, &id).await;
                            me.wake.notify_one();
                        });
                    }
                }
                Err(error) => tracing::error!(message = "Claiming runs failed.", %error),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Starts [`Service::work`] in the background; [`Worker::stop`] ends it.
    pub fn spawn_worker(self: &Arc<Self>) -> Worker {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let service = Arc::clone(self);
        let task = tokio::spawn(async move {
            service
                .work(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        Worker { stop, task }
    }

    /// Matches stored, unprocessed alerts to playbooks: a new run, or the open run for the same
    /// principal and playbook.
    pub async fn process_alerts(&self) -> Result<usize, ServiceError> {
        let pending = self.store.pending_alerts(256).await.map_err(internal)?;
        let n = pending.len();
        for record in pending {
            let alert: Alert = match serde_json::from_value(record.body.clone()) {
                Ok(a) => a,
                Err(e) => {
                    self.audit(
                        "alert.unreadable",
                        None,
                        None,
                        json!({"alert_id": record.id, "error": e.to_string()}),
                    )
                    .await;
                    self.store
                        .mark_alert_processed(&record.id)
                        .await
                        .map_err(internal)?;
                    continue;
                }
            };
            let alert = match alert::enrich(alert, self.connectors.lacework(), &self.config.alerts)
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    // Leave it pending: Lacework may answer on the next pass.
                    tracing::warn!(message = "Enrichment failed; will retry.", alert_id = %record.id, error = %e);
                    continue;
                }
            };
            self.audit(
                "alert.received",
                None,
                None,
                json!({"alert_id": record.id, "source": record.source, "source_id": record.source_id, "received_at": record.received_at}),
            )
            .await;
            let principal = principal_key(&alert);
            let matched = crate::plan::select(&self.playbooks, &alert);
            if matched.is_empty() {
                self.audit(
                    "alert.unmatched",
                    None,
                    None,
                    json!({"alert_id": record.id}),
                )
                .await;
            }
            for p in matched {
                let since = Utc::now()
                    - chrono::Duration::from_std(self.options.coalesce_window).unwrap_or_default();
                if let Some(key) = &principal
                    && let Some(open) = self
                        .store
                        .find_open_run(&p.name, key, since)
                        .await
                        .map_err(internal)?
                {
                    self.store
                        .attach_alert(&open, &record.id)
                        .await
                        .map_err(internal)?;
                    self.audit(
                        "run.coalesced",
                        Some(&open),
                        None,
                        json!({"alert_id": record.id}),
                    )
                    .await;
                    continue;
                }
                let run_id = derived_run_id(&record.id, &p.name);
                let created = self
                    .store
                    .create_run(&NewRun {
                        id: run_id.clone(),
                        playbook: p.name.clone(),
                        principal_key: principal.clone(),
                        tenant: self.config.azure.tenant_id.clone(),
                        mode: self.config.mode,
                        requested_by: Some(format!("alert:{}", alert.source)),
                        alert_id: Some(record.id.clone()),
                    })
                    .await;
                match created {
                    Ok(()) => {
                        self.audit(
                            "run.created",
                            Some(&run_id),
                            None,
                            json!({"alert_id": record.id, "playbook": p.name}),
                        )
                        .await
                    }
                    // Created before a crash interrupted matching: the derived id makes the
                    // retry find it instead of making a second run.
                    Err(StoreError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(internal(e)),
                }
            }
            self.store
                .mark_alert_processed(&record.id)
                .await
                .map_err(internal)?;
        }
        if n > 0 {
            self.wake.notify_one();
        }
        Ok(n)
    }

    /// Moves one run forward as far as it can go now: plan, wait for approval, or execute.
    /// `on_event` receives progress (the CLI prints it).
    pub async fn drive(
        &self,
        run_id: &str,
        on_event: Option<&(dyn Fn(&Event<'_>) + Send + Sync)>,
    ) -> Result<RunRecord, ServiceError> {
        let run = self.get_run(run_id).await?;
        match run.status {
            RunStatus::Pending | RunStatus::Planning => {
                self.store
                    .set_run_status(run_id, RunStatus::Planning)
                    .await
                    .map_err(internal)?;
                let plan = self.plan_run(&run).await?;
                // Made just now: executing it straight away needs no second look.
                if let Ok(mut fresh) = self.fresh.lock() {
                    fresh.insert((run.id.clone(), plan.plan_hash.clone()));
                }
                self.audit(
                    "plan.created",
                    Some(run_id),
                    None,
                    json!({"plan_hash": plan.plan_hash, "steps": plan.steps.iter().map(|s| json!({"id": s.id, "status": s.status, "policy": s.policy})).collect::<Vec<_>>()}),
                )
                .await;
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
                let next = if all_denied {
                    RunStatus::Denied
                } else if needs_approval {
                    RunStatus::AwaitingApproval
                } else {
                    RunStatus::Running
                };
                self.store
                    .set_run_status(run_id, next)
                    .await
                    .map_err(internal)?;
                if next == RunStatus::Running {
                    return Box::pin(self.drive(run_id, on_event)).await;
                }
                self.get_run(run_id).await
            }
            RunStatus::Running => self.execute_run(&run, on_event).await,
            _ => Ok(run),
        }
    }

    async fn plan_run(&self, run: &RunRecord) -> Result<Plan, ServiceError> {
        let (playbook, alert, inputs) = self.run_inputs(run).await?;
        let lookup: Box<dyn Lookup> = if self.connectors.has_azure_credentials() {
            Box::new(self.connectors.read_only())
        } else {
            Box::new(NoLookup)
        };
        let planner = Planner {
            endpoints: &self.endpoints,
            lookup: lookup.as_ref(),
            settings: &self.config.actions,
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
        let value =
            serde_json::to_value(&plan).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .save_plan(&run.id, &value, &plan.plan_hash)
            .await
            .map_err(internal)?;
        Ok(plan)
    }

    /// Recent activity in the run's tenant, for the blast-radius guardrails.
    async fn counters(
        &self,
        run: &RunRecord,
        playbook: &Playbook,
    ) -> Result<crate::policy::Counters, ServiceError> {
        let Some(tenant) = &run.tenant else {
            return Ok(crate::policy::Counters::default());
        };
        let since = Utc::now() - chrono::Duration::hours(1);
        let principals = self
            .store
            .count_principals(tenant, since)
            .await
            .map_err(internal)?;
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
        on_event: Option<&(dyn Fn(&Event<'_>) + Send + Sync)>,
    ) -> Result<RunRecord, ServiceError> {
        let stored: Option<Plan> = match &run.plan {
            Some(p) => Some(
                serde_json::from_value(p.clone())
                    .map_err(|e| ServiceError::Internal(format!("stored plan: {e}")))?,
            ),
            None => None,
        };
        // The guardrails are asked again just before anything is sent: plan again (fresh
        // lookups, fresh counters, fresh decisions) and compare. A plan that changed after it
        // was approved, or that now needs approval, waits for a new approval; otherwise the
        // plan as it is now runs.
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
            Some(old) => self.recover_completed(old, &lookup).await?,
            None => HashMap::new(),
        };
        let plan = match stored {
            Some(old) if just_made(&old.plan_hash) => old,
            Some(old) => {
                let approved_old = self.valid_approval(run, &old.plan_hash).await?;
                let now = self.plan_run(run).await?;
                if now.plan_hash != old.plan_hash {
                    self.audit(
                        "plan.changed",
                        Some(&run.id),
                        None,
                        json!({"was": old.plan_hash, "now": now.plan_hash}),
                    )
                    .await;
                    let needs_approval = now
                        .steps
                        .iter()
                        .any(|s| s.status == StepStatus::NeedsApproval);
                    if approved_old || needs_approval {
                        self.store
                            .set_run_status(&run.id, RunStatus::AwaitingApproval)
                            .await
                            .map_err(internal)?;
                        return self.get_run(&run.id).await;
                    }
                }
                now
            }
            None => self.plan_run(run).await?,
        };
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.remove(&(run.id.clone(), plan.plan_hash.clone()));
        }
        let (playbook, _, _) = self.run_inputs(run).await?;
        let approved = self.valid_approval(run, &plan.plan_hash).await?;
        let silent = |_: &Event<'_>| {};
        let executor = Executor {
            transport: &self.connectors,
            lookup: &lookup,
            journal: &self.store,
            settings: &self.config.actions,
            endpoints: &self.endpoints,
            concurrency: self.options.step_concurrency,
            approved,
            completed: &completed,
            on_event: on_event.unwrap_or(&silent),
        };
        let report = executor.execute(&plan, &playbook).await;
        self.record_report(run, &report).await?;
        let status = match report.outcome {
            RunOutcome::Succeeded => RunStatus::Succeeded,
            RunOutcome::AwaitingApproval => RunStatus::AwaitingApproval,
            RunOutcome::Failed => RunStatus::Failed,
            RunOutcome::Compensated => RunStatus::RolledBack,
        };
        self.store
            .set_run_status(&run.id, status)
            .await
            .map_err(internal)?;
        self.audit(
            "run.finished",
            Some(&run.id),
            None,
            json!({"outcome": report.outcome, "plan_hash": plan.plan_hash}),
        )
        .await;
        self.get_run(&run.id).await
    }

    /// Steps a previous attempt finished (their journaled reports), plus steps that may have
    /// sent requests before a crash and whose effect reading back confirms.
    async fn recover_completed(
        &self,
        plan: &Plan,
        lookup: &dyn Lookup,
    ) -> Result<HashMap<String, StepReport>, ServiceError> {
        let journal = self
            .store
            .journal_for(&plan.run_id)
            .await
            .map_err(internal)?;
        let mut completed = HashMap::new();
        let mut touched: Vec<String> = Vec::new();
        for entry in &journal {
            let final_state = matches!(
                entry.state,
                StepState::Succeeded | StepState::AlreadySatisfied
            );
            if final_state
                && let Ok(report) = serde_json::from_value::<StepReport>(entry.detail.clone())
            {
                completed.insert(entry.step_id.clone(), report);
                continue;
            }
            if matches!(
                entry.state,
                StepState::Started | StepState::RequestSent | StepState::InDoubt
            ) && !touched.contains(&entry.step_id)
            {
                touched.push(entry.step_id.clone());
            }
        }
        for step_id in touched {
            if completed.contains_key(&step_id) {
                continue;
            }
            let Some(step) = plan.steps.iter().find(|s| s.id == step_id) else {
                continue;
            };
            let Some(action) = actions::find(&step.action) else {
                continue;
            };
            if action.info().effect != Effect::Mutate {
                continue; // reads and evidence are simply repeated
            }
            // In doubt: verify each item by reading state back; only a confirmed effect
            // counts as done, anything else is sent again (the requests are idempotent).
            let items = super::executor::split_items(step);
            let mut verified = Vec::new();
            for item in &items {
                let done = Executed {
                    run_id: &plan.run_id,
                    params: &item.params,
                    pre_state: &item.pre_state,
                    desired_state: &item.desired_state,
                    requests: item.requests,
                    responses: &[],
                };
                match action.verify_done(&done, lookup).await {
                    Ok(v @ Verification::Verified(_)) => {
                        verified.push((v, action.compensation(&done, &self.endpoints)))
                    }
                    _ => break,
                }
            }
            self.store
                .journal(
                    &plan.run_id,
                    &step_id,
                    0,
                    StepState::InDoubt,
                    &json!({"verified_items": verified.len(), "items": items.len()}),
                )
                .await
                .map_err(internal)?;
            if verified.len() == items.len() {
                let (verification, compensation) = verified.into_iter().unzip();
                completed.insert(
                    step_id.clone(),
                    StepReport {
                        id: step_id.clone(),
                        action: step.action.clone(),
                        outcome: StepOutcome::Succeeded,
                        reason: Some("in doubt after a restart; reading back confirmed the effect, so nothing was re-sent".into()),
                        requests: Vec::new(),
                        verification,
                        compensation,
                        evidence: Vec::new(),
                        finished_seq: 0,
                    },
                );
            }
        }
        Ok(completed)
    }

    async fn record_report(&self, run: &RunRecord, report: &RunReport) -> Result<(), ServiceError> {
        for step in &report.steps {
            for r in &step.requests {
                self.audit(
                    "request",
                    Some(&run.id),
                    None,
                    json!({"step": step.id, "method": r.method, "url": redact_query(&r.url), "status": r.status, "request_id": r.request_id, "body_sha256": r.body_sha256, "error": r.error}),
                )
                .await;
            }
            self.audit("step.finished", Some(&run.id), None, json!({"step": step.id, "action": step.action, "outcome": step.outcome, "reason": step.reason}))
                .await;
            for e in &step.evidence {
                let bytes = serde_json::to_vec(&e.body).unwrap_or_default();
                self.store
                    .store_evidence(&NewEvidence {
                        run_id: run.id.clone(),
                        step_id: step.id.clone(),
                        name: e.name.clone(),
                        content_type: "application/json".into(),
                        bytes,
                    })
                    .await
                    .map_err(internal)?;
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
            .journal(&run.id, REPORT_STEP, 0, StepState::Succeeded, &value)
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// The playbook, alert and inputs a run acts on.
    async fn run_inputs(
        &self,
        run: &RunRecord,
    ) -> Result<(Playbook, Alert, BTreeMap<String, String>), ServiceError> {
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
        let alert = alert::enrich(alert, self.connectors.lacework(), &self.config.alerts)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let given = self
            .ad_hoc_inputs
            .lock()
            .ok()
            .and_then(|all| all.get(&run.id).cloned());
        let inputs: BTreeMap<String, String> = given.unwrap_or_else(|| {
            alert
                .raw
                .get("inputs")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        });
        let playbook = match run.playbook.strip_prefix("action:") {
            Some(action) => {
                single_action_playbook(action, alert.raw.get("params").unwrap_or(&Value::Null))?
            }
            None => self
                .playbooks
                .iter()
                .find(|p| p.name == run.playbook)
                .cloned()
                .ok_or_else(|| {
                    ServiceError::NotFound(format!("playbook `{}` is not loaded", run.playbook))
                })?,
        };
        Ok((playbook, alert, inputs))
    }

    async fn valid_approval(&self, run: &RunRecord, plan_hash: &str) -> Result<bool, ServiceError> {
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

    async fn get_run(&self, id: &str) -> Result<RunRecord, ServiceError> {
        self.store
            .get_run(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ServiceError::NotFound(format!("no run `{id}`")))
    }

    async fn audit(&self, kind: &str, run_id: Option<&str>, actor: Option<&str>, body: Value) {
        let event = AuditEvent {
            kind: kind.into(),
            run_id: run_id.map(str::to_string),
            actor: actor.map(str::to_string),
            body,
        };
        if let Err(error) = self.store.append_audit(&event).await {
            tracing::error!(message = "Audit append failed.", %kind, %error);
        }
    }

    /// Stores a manual alert (durable, like any other) and its run, then wakes the worker.
    async fn start_manual(
        &self,
        playbook: &str,
        alert: Alert,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        let run_id = self
            .store_alert_and_run("manual", &alert, playbook, false, caller)
            .await?;
        self.wake.notify_one();
        Ok(run_id)
    }

    /// Stores an alert as already matched and a run of `playbook` for it, requested by
    /// `caller` (manual invocations: nothing is left for the matcher). `unique` gives the run
    /// an id of its own even for an alert seen before (a responder running it again).
    async fn store_alert_and_run(
        &self,
        source: &str,
        alert: &Alert,
        playbook: &str,
        unique: bool,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        let body =
            serde_json::to_value(alert).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let outcome = self
            .store
            .insert_alert(&NewAlert {
                source: source.into(),
                source_id: alert.id.clone(),
                principal_key: principal_key(alert),
                body,
                received_at: Utc::now(),
            })
            .await
            .map_err(unavailable)?;
        let alert_id = match outcome {
            InsertOutcome::Inserted { alert_id } | InsertOutcome::Duplicate { alert_id, .. } => {
                alert_id
            }
        };
        self.store
            .mark_alert_processed(&alert_id)
            .await
            .map_err(internal)?;
        let key = if unique {
            format!("{alert_id}:{}", uuid::Uuid::now_v7())
        } else {
            alert_id.clone()
        };
        let run_id = derived_run_id(&key, playbook);
        self.store
            .create_run(&NewRun {
                id: run_id.clone(),
                playbook: playbook.into(),
                principal_key: principal_key(alert),
                tenant: self.config.azure.tenant_id.clone(),
                mode: self.config.mode,
                requested_by: Some(caller.name.clone()),
                alert_id: Some(alert_id),
            })
            .await
            .map_err(internal)?;
        self.audit(
            "run.created",
            Some(&run_id),
            Some(&caller.name),
            json!({"playbook": playbook, "source": source}),
        )
        .await;
        Ok(run_id)
    }

    /// Runs a playbook for an alert now, in this task (the CLI's `run --enforce` and `act`):
    /// the alert and the run are stored like any other, so `runs show` and `rollback` work on
    /// them, and progress goes to `on_event`.
    pub async fn run_now(
        &self,
        playbook: &Playbook,
        alert: &Alert,
        inputs: &BTreeMap<String, String>,
        caller: &Caller,
        on_event: &(dyn Fn(&Event<'_>) + Send + Sync),
    ) -> Result<RunRecord, ServiceError> {
        if !self.playbooks.iter().any(|p| p.name == playbook.name)
            && !playbook.name.starts_with("action:")
            && let Ok(mut ad_hoc) = self.ad_hoc.lock()
        {
            ad_hoc.insert(playbook.name.clone(), playbook.clone());
        }
        let run_id = self
            .store_alert_and_run(
                &alert.source.to_string(),
                alert,
                &playbook.name,
                true,
                caller,
            )
            .await?;
        if let Ok(mut all) = self.ad_hoc_inputs.lock() {
            all.insert(run_id.clone(), inputs.clone());
        }
        let mut run = self.drive(&run_id, Some(on_event)).await?;
        // A plan that needs nothing approved runs straight on (drive returns at each stop).
        if run.status == RunStatus::Running {
            run = self.drive(&run_id, Some(on_event)).await?;
        }
        Ok(run)
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
        let journal = self.store.journal_for(run_id).await.map_err(internal)?;
        Ok(journal
            .iter()
            .rev()
            .find(|e| e.step_id == REPORT_STEP)
            .and_then(|e| serde_json::from_value(e.detail.clone()).ok()))
    }
}

#[async_trait]
impl ServiceApi for Service {
    async fn ingest(
        &self,
        source: &str,
        body: &[u8],
        _caller: &Caller,
    ) -> Result<Ingested, ServiceError> {
        let alert = match alert::parse_alert(body, Some(source), &self.config.alerts) {
            Ok(a) => a,
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ServiceError::BadRequest(e.to_string()));
            }
        };
        self.received.fetch_add(1, Ordering::Relaxed);
        let record = NewAlert {
            source: alert.source.to_string(),
            source_id: alert.id.clone(),
            principal_key: principal_key(&alert),
            body: serde_json::to_value(&alert)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            received_at: Utc::now(),
        };
        let outcome = self.batcher.insert(record).await.map_err(unavailable)?;
        let ingested = match outcome {
            InsertOutcome::Inserted { alert_id } => {
                // The stored alert is the durable record; the matcher writes its audit entry
                // (`alert.received`), so acknowledging costs one group-committed insert.
                self.wake.notify_one();
                Ingested {
                    alert_id,
                    source_id: alert.id,
                    duplicate: false,
                    run_ids: Vec::new(),
                }
            }
            InsertOutcome::Duplicate { alert_id, run_ids } => {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                Ingested {
                    alert_id,
                    source_id: alert.id,
                    duplicate: true,
                    run_ids,
                }
            }
        };
        Ok(ingested)
    }

    async fn runs(
        &self,
        limit: u32,
        status: Option<RunStatus>,
    ) -> Result<Vec<RunRecord>, ServiceError> {
        self.store.list_runs(limit, status).await.map_err(internal)
    }

    async fn run(&self, id: &str) -> Result<RunView, ServiceError> {
        let run = self.get_run(id).await?;
        let timeline = self
            .store
            .journal_for(id)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|e| e.step_id != REPORT_STEP)
            .collect();
        let evidence = self.store.evidence_for(id).await.map_err(internal)?;
        let report = self
            .report(id)
            .await?
            .and_then(|r| serde_json::to_value(r).ok());
        Ok(RunView {
            run,
            timeline,
            evidence,
            report,
        })
    }

    async fn approve(
        &self,
        id: &str,
        plan_hash: &str,
        caller: &Caller,
    ) -> Result<RunRecord, ServiceError> {
        let run = self.get_run(id).await?;
        if run.status != RunStatus::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "run {id} is {:?}, not awaiting approval",
                run.status
            )));
        }
        if run.requested_by.as_deref() == Some(caller.name.as_str()) {
            return Err(ServiceError::Forbidden(
                "an approver cannot approve a run they requested".into(),
            ));
        }
        if run.plan_hash.as_deref() != Some(plan_hash) {
            return Err(ServiceError::Conflict(format!(
                "plan hash {plan_hash} is not the run's current plan ({}); review the current plan",
                run.plan_hash.as_deref().unwrap_or("none")
            )));
        }
        // State may have drifted since the plan was made: plan again and compare.
        let current = self.plan_run(&run).await?;
        if current.plan_hash != plan_hash {
            self.audit(
                "approval.stale",
                Some(id),
                Some(&caller.name),
                json!({"approved": plan_hash, "current": current.plan_hash}),
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
        self.audit(
            "approval.recorded",
            Some(id),
            Some(&caller.name),
            json!({"plan_hash": plan_hash}),
        )
        .await;
        self.store
            .set_run_status(id, RunStatus::Running)
            .await
            .map_err(internal)?;
        self.wake.notify_one();
        self.get_run(id).await
    }

    async fn reject(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError> {
        let run = self.get_run(id).await?;
        if run.status != RunStatus::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "run {id} is {:?}, not awaiting approval",
                run.status
            )));
        }
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
        self.audit(
            "approval.rejected",
            Some(id),
            Some(&caller.name),
            json!({"plan_hash": run.plan_hash}),
        )
        .await;
        self.store
            .set_run_status(id, RunStatus::Denied)
            .await
            .map_err(internal)?;
        self.get_run(id).await
    }

    async fn rollback(&self, id: &str, caller: &Caller) -> Result<RollbackReport, ServiceError> {
        let run = self.get_run(id).await?;
        let report = self.report(id).await?.ok_or_else(|| {
            ServiceError::Conflict(format!(
                "run {id} has not executed; there is nothing to roll back"
            ))
        })?;
        if run.status == RunStatus::RolledBack {
            return Err(ServiceError::Conflict(format!(
                "run {id} was already rolled back"
            )));
        }
        let result = rollback(&report, &self.connectors).await;
        for (step, _) in &result.undone {
            self.store
                .journal(id, step, 0, StepState::Compensated, &Value::Null)
                .await
                .map_err(internal)?;
        }
        self.audit(
            "run.rolled_back",
            Some(id),
            Some(&caller.name),
            serde_json::to_value(&result).unwrap_or(Value::Null),
        )
        .await;
        if result.failed.is_empty() {
            self.store
                .set_run_status(id, RunStatus::RolledBack)
                .await
                .map_err(internal)?;
        }
        Ok(result)
    }

    async fn invoke_playbook(
        &self,
        name: &str,
        invocation: Invocation,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        if !self.playbooks.iter().any(|p| p.name == name) {
            return Err(ServiceError::NotFound(format!("no playbook `{name}`")));
        }
        let id = format!("manual-{}", uuid::Uuid::now_v7());
        let mut alert = Alert::manual(
            id,
            format!("manual run of {name}"),
            invocation.principal.clone(),
            &invocation.resources,
            Utc::now(),
        );
        alert.raw =
            json!({"manual": true, "inputs": invocation.inputs, "requested_by": caller.name});
        self.start_manual(name, alert, caller).await
    }

    async fn invoke_action(
        &self,
        name: &str,
        params: BTreeMap<String, Value>,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        let params_value = Value::Object(params.clone().into_iter().collect());
        single_action_playbook(name, &params_value)?;
        let upn = params
            .get("user")
            .and_then(Value::as_str)
            .map(str::to_string);
        let resources: Vec<String> = params
            .get("resource")
            .and_then(Value::as_str)
            .map(|r| vec![r.to_string()])
            .unwrap_or_default();
        let id = format!("manual-{}", uuid::Uuid::now_v7());
        let mut alert = Alert::manual(id, format!("manual {name}"), upn, &resources, Utc::now());
        alert.raw = json!({"manual": true, "params": params_value, "requested_by": caller.name});
        self.start_manual(&format!("action:{name}"), alert, caller)
            .await
    }

    async fn ready(&self) -> bool {
        self.store.list_runs(1, None).await.is_ok() && !self.playbooks.is_empty()
    }

    async fn stats(&self) -> ServiceStats {
        let mut runs_by_status = BTreeMap::new();
        for status in RunStatus::ALL {
            let n = self
                .store
                .list_runs(10_000, Some(status))
                .await
                .map(|r| r.len() as u64)
                .unwrap_or(0);
            runs_by_status.insert(
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                n,
            );
        }
        ServiceStats {
            alerts_received: self.received.load(Ordering::Relaxed),
            alerts_duplicate: self.duplicates.load(Ordering::Relaxed),
            alerts_rejected: self.rejected.load(Ordering::Relaxed),
            runs_by_status,
        }
    }
}

/// The playbook a single-action run executes: one step, its parameters as literals.
pub fn single_action_playbook(action: &str, params: &Value) -> Result<Playbook, ServiceError> {
    if actions::find(action).is_none() {
        return Err(ServiceError::NotFound(format!("no action `{action}`")));
    }
    // JSON is YAML: the parameters go in as data, never as template text.
    let with = serde_json::to_string(&params_without_templates(params))
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let text = format!("name: act\nsteps:\n  - id: act\n    uses: {action}\n    with: {with}\n");
    playbook::load_str(&text, Path::new("act.yaml"))
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// Parameters arrive as data; a `${{` inside one must stay text, so it is broken up.
fn params_without_templates(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("${{", "$\u{200b}{{")),
        Value::Array(a) => Value::Array(a.iter().map(params_without_templates).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), params_without_templates(v)))
                .collect(),
        ),
        Value::Null => json!({}),
        other => other.clone(),
    }
}

/// The key runs coalesce on: the principal's object id, else its UPN in lower case.
fn principal_key(alert: &Alert) -> Option<String> {
    let p = alert.principal.as_ref()?;
    p.object_id
        .clone()
        .or_else(|| p.upn.as_ref().map(|u| u.to_lowercase()))
}

/// A run id fixed by its alert and playbook, so matching the same alert again after a crash
/// finds the run instead of creating another. Shaped like a UUID.
fn derived_run_id(alert_id: &str, playbook: &str) -> String {
    let h = Sha256::digest(format!("{alert_id}\n{playbook}").as_bytes());
    let hex = hex::encode(&h[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
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

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "riposte".into())
}

fn internal(e: StoreError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

fn unavailable(e: StoreError) -> ServiceError {
    ServiceError::Unavailable(format!("the alert was not stored: {e}"))
}
