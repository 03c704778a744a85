//! Runs a person asks for: a playbook by name with inputs, one action with parameters (both
//! from the API), or a playbook or action run now from the command line. Each stores a manual
//! alert and a run whose spec says exactly what it runs, so recovery, approval and rollback
//! work on it like on any other run.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::Event;
use super::events::Audit;
use super::matching::{derived_run_id, principal_key};
use super::runtime::{Service, internal, unavailable};
use super::service::{Caller, Invocation, ServiceError};
use super::spec::{action_spec, playbook_spec};
use crate::alert::Alert;
use crate::store::{InsertOutcome, NewAlert, NewRun, RunRecord, RunSpec, RunStatus};

impl Service {
    /// Runs `spec` for an alert now, in this task (the CLI's `run --enforce` and `act`): the
    /// alert and the run are stored like any other, so `runs show` and `rollback` work on
    /// them, and progress goes to `on_event`.
    pub async fn run_now(
        &self,
        spec: RunSpec,
        alert: &Alert,
        caller: &Caller,
        on_event: &(dyn Fn(&Event<'_>) + Send + Sync),
    ) -> Result<RunRecord, ServiceError> {
        let run_id = self
            .store_alert_and_run(&alert.source.to_string(), alert, spec, true, caller)
            .await?;
        let mut run = self.drive(&run_id, Some(on_event)).await?;
        // A plan that needs nothing approved runs straight on (drive returns at each stop).
        if run.status == RunStatus::Running {
            run = self.drive(&run_id, Some(on_event)).await?;
        }
        Ok(run)
    }

    pub(super) async fn invoke_playbook_by_name(
        &self,
        name: &str,
        invocation: Invocation,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        let playbook = self
            .playbooks
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("no playbook `{name}`")))?;
        let alert = crate::alert::admissible(
            manual_alert(
                format!("manual run of {name}"),
                invocation.principal.clone(),
                &invocation.resources,
                caller,
            ),
            &self.alerts,
        )
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let spec = playbook_spec(playbook, invocation.inputs);
        self.start_manual(spec, alert, caller).await
    }

    pub(super) async fn invoke_single_action(
        &self,
        name: &str,
        params: BTreeMap<String, Value>,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        let params: Map<String, Value> = params.into_iter().collect();
        let principal = crate::actions::principal_param(&params).map(str::to_string);
        let resources: Vec<String> = params
            .get("resource")
            .and_then(Value::as_str)
            .map(|r| vec![r.to_string()])
            .unwrap_or_default();
        let spec = action_spec(name, params)?;
        let alert = manual_alert(format!("manual {name}"), principal, &resources, caller);
        self.start_manual(spec, alert, caller).await
    }

    /// Stores a manual alert (durable, like any other) and its run, then wakes the worker.
    async fn start_manual(
        &self,
        spec: RunSpec,
        alert: Alert,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        let run_id = self
            .store_alert_and_run("manual", &alert, spec, false, caller)
            .await?;
        self.wake.notify_one();
        Ok(run_id)
    }

    /// Stores an alert as already matched and a run of `spec` for it, requested by `caller`
    /// (manual invocations: nothing is left for the matcher). `unique` gives the run an id of
    /// its own even for an alert seen before (a responder running it again).
    async fn store_alert_and_run(
        &self,
        source: &str,
        alert: &Alert,
        spec: RunSpec,
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
                ingested_by: Some(caller.name.clone()),
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
        let label = spec.label();
        let run_id = derived_run_id(&key, &label);
        self.store
            .create_run(&NewRun {
                id: run_id.clone(),
                playbook: label.clone(),
                principal_key: principal_key(alert),
                tenant: self.tenant.clone(),
                mode: self.mode,
                requested_by: Some(caller.name.clone()),
                alert_id: Some(alert_id),
                spec,
                follows: None,
            })
            .await
            .map_err(internal)?;
        self.emit(
            Audit::RunCreated {
                run_id: &run_id,
                playbook: &label,
                playbook_sha256: None,
                alert_id: None,
                source: Some(source),
            },
            Some(&caller.name),
        )
        .await;
        Ok(run_id)
    }
}

/// The alert a manual run answers: who asked, about whom and which resources.
fn manual_alert(
    title: String,
    principal: Option<String>,
    resources: &[String],
    caller: &Caller,
) -> Alert {
    let id = format!("manual-{}", uuid::Uuid::now_v7());
    let mut alert = Alert::manual(id, title, principal, resources, Utc::now());
    alert.raw = json!({"manual": true, "requested_by": caller.name});
    alert
}
