//! The `ServiceApi` the HTTP API and the CLI call: ingestion, reading runs, and the operations
//! whose rules live in the other modules (approvals, manual runs, rollback).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;

use super::events::Audit;
use super::matching::principal_key;
use super::runtime::{Service, internal, unavailable};
use super::service::{
    Caller, Ingested, Invocation, RunView, ServiceApi, ServiceError, ServiceStats,
};
use super::{RollbackReport, StepState, rollback};
use crate::alert;
use crate::store::{
    AlertRecord, AlertStatus, Evidence, EvidenceRecord, InsertOutcome, NewAlert, RunRecord,
    RunStatus,
};

#[async_trait]
impl ServiceApi for Service {
    async fn ingest(
        &self,
        source: &str,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Ingested, ServiceError> {
        let alert = match alert::parse_alert(body, Some(source), &self.alerts) {
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
            ingested_by: Some(caller.name.clone()),
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
        let timeline = self.store.journal_for(id).await.map_err(internal)?;
        let evidence = self.store.evidence_for(id).await.map_err(internal)?;
        let report = run.report.clone();
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
        self.approve_run(id, plan_hash, caller).await
    }

    async fn reject(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError> {
        self.reject_run(id, caller).await
    }

    async fn rollback(&self, id: &str, caller: &Caller) -> Result<RollbackReport, ServiceError> {
        let run = self.get_run(id).await?;
        if run.requested_by.as_deref() == Some(caller.name.as_str()) {
            return Err(ServiceError::Forbidden(format!(
                "{} requested or ingested run {id}; another identity must roll it back",
                caller.name
            )));
        }
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
        // Undoing sends requests too: under a claim, so no worker executes the run meanwhile.
        let fence = self.claim(id).await?;
        let lease = self.lease_clock();
        let result = self
            .under_lease(id, &lease, async {
                let result = rollback(&report, &self.connectors).await;
                for (step, _) in &result.undone {
                    self.store
                        .journal(id, fence, step, 0, StepState::Compensated, &Value::Null)
                        .await
                        .map_err(internal)?;
                }
                Ok::<_, ServiceError>(result)
            })
            .await;
        let _ = self.store.release(&self.worker_id, id).await;
        let result = result?;
        // Undoing a disable enables the account: a later plan must not take an earlier
        // revocation as still holding (sessions may start again from here).
        let enabled = result.undone.iter().any(|(step, _)| {
            report
                .steps
                .iter()
                .any(|s| &s.id == step && s.action == "entra.disable_user")
        });
        if enabled && let (Some(tenant), Some(key)) = (&run.tenant, &run.principal_key) {
            self.store
                .record_effect(tenant, "entra.enable_user", key, chrono::Utc::now())
                .await
                .map_err(internal)?;
        }
        self.emit(
            Audit::RunRolledBack {
                run_id: id,
                result: &result,
            },
            Some(&caller.name),
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
        self.invoke_playbook_by_name(name, invocation, caller).await
    }

    async fn invoke_action(
        &self,
        name: &str,
        params: BTreeMap<String, Value>,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        self.invoke_single_action(name, params, caller).await
    }

    async fn alerts(
        &self,
        limit: u32,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, ServiceError> {
        self.list_alerts(limit, status).await
    }

    async fn retry_alert(&self, id: &str, caller: &Caller) -> Result<AlertRecord, ServiceError> {
        self.retry_failed_alert(id, caller).await
    }

    async fn cancel(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError> {
        self.cancel_run(id, caller).await
    }

    async fn evidence(&self, id: &str) -> Result<Vec<EvidenceRecord>, ServiceError> {
        self.get_run(id).await?;
        self.store.evidence_for(id).await.map_err(internal)
    }

    async fn evidence_item(
        &self,
        id: &str,
        step: &str,
        n: usize,
    ) -> Result<Evidence, ServiceError> {
        let listed = self.evidence(id).await?;
        let of_step: Vec<&EvidenceRecord> = listed.iter().filter(|e| e.step_id == step).collect();
        let record = of_step.get(n).ok_or_else(|| {
            ServiceError::NotFound(match of_step.len() {
                0 => format!("run {id} has no evidence from step `{step}`"),
                len => {
                    format!("step `{step}` of run {id} has {len} evidence item(s); {n} is not one")
                }
            })
        })?;
        self.store
            .get_evidence(&record.id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ServiceError::NotFound(format!("evidence {} is gone", record.id)))
    }

    async fn ready(&self) -> bool {
        self.store.list_runs(1, None).await.is_ok() && !self.playbooks.is_empty()
    }

    async fn stats(&self) -> ServiceStats {
        let counts = self.store.count_runs_by_status().await.unwrap_or_default();
        let runs_by_status = RunStatus::ALL
            .into_iter()
            .map(|s| (s.as_str().to_string(), counts.get(&s).copied().unwrap_or(0)))
            .collect();
        let alert_counts = self
            .store
            .count_alerts_by_status()
            .await
            .unwrap_or_default();
        let alerts_by_status = AlertStatus::ALL
            .into_iter()
            .map(|s| {
                let n = alert_counts.get(&s).copied().unwrap_or(0);
                (s.as_str().to_string(), n)
            })
            .collect();
        ServiceStats {
            alerts_received: self.received.load(Ordering::Relaxed),
            alerts_duplicate: self.duplicates.load(Ordering::Relaxed),
            alerts_rejected: self.rejected.load(Ordering::Relaxed),
            runs_by_status,
            alerts_by_status,
        }
    }

    fn sessions(&self) -> Option<&dyn crate::store::SessionStore> {
        Some(&*self.store)
    }
}
