//! Matching: stored alerts to runs. An alert starts a run of every playbook it matches, or
//! joins the open run for the same principal and playbook (coalescing).

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::events::Audit;
use super::retry::Failure;
use super::runtime::{Service, internal};
use super::service::ServiceError;
use super::spec::playbook_spec;
use crate::alert::{self, Alert};
use crate::playbook::Playbook;
use crate::store::{AlertRecord, Follows, Joined, NewRun, StoreError};

impl Service {
    /// Matches stored alerts that are due to playbooks: a new run, or the open run for the
    /// same principal and playbook. An alert that cannot be enriched now waits for its next
    /// attempt (or fails) without holding up the others. Returns how many alerts it looked at.
    pub async fn process_alerts(&self) -> Result<usize, ServiceError> {
        let pending = self
            .store
            .claim_alerts(256, self.options.lease)
            .await
            .map_err(internal)?;
        // Resources each incident handles, as learnt in this pass: a storm of alerts about
        // one incident reads its runs once, not once per alert.
        let mut handled = HandledResources::new();
        let n = pending.len();
        let mut matched_any = false;
        for record in pending {
            let alert: Alert = match serde_json::from_value(record.body.clone()) {
                Ok(a) => a,
                Err(e) => {
                    let reason = format!("the stored alert cannot be read: {e}");
                    self.alert_attempt_failed(&record, Failure::Permanent { reason })
                        .await?;
                    continue;
                }
            };
            let needed_enrichment = alert.needs_enrichment;
            let alert = match alert::enrich(alert, self.connectors.lacework(), &self.alerts).await {
                Ok(a) => a,
                Err(e) => {
                    self.alert_attempt_failed(&record, Failure::of_enrichment(&e))
                        .await?;
                    continue;
                }
            };
            // Kept before any run can plan from it: the source is asked once per alert, not
            // again by every planning pass (or every replica).
            if needed_enrichment {
                let body = serde_json::to_value(&alert)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                self.store
                    .save_enriched_alert(&record.id, &body)
                    .await
                    .map_err(internal)?;
            }
            matched_any = true;
            self.emit(
                Audit::AlertReceived {
                    alert_id: &record.id,
                    source: &record.source,
                    source_id: &record.source_id,
                    received_at: record.received_at,
                },
                None,
            )
            .await;
            let principal = principal_key(&alert);
            let matched = crate::plan::select(&self.playbooks, &alert);
            if matched.is_empty() {
                self.emit(
                    Audit::AlertUnmatched {
                        alert_id: &record.id,
                    },
                    None,
                )
                .await;
            }
            for p in matched {
                self.respond(&record, &alert, principal.as_deref(), p, &mut handled)
                    .await?;
            }
            self.store
                .mark_alert_processed(&record.id)
                .await
                .map_err(internal)?;
        }
        // Only new runs are worth waking the worker for: waking it for alerts that were
        // just deferred would make it look again straight away, for nothing.
        if matched_any {
            self.wake.notify_one();
        }
        Ok(n)
    }
}

impl Service {
    /// Answers one alert with `playbook`, once per incident: a new incident opens a run; an
    /// alert within the coalescing window joins the incident's latest run, whatever its
    /// status, unless it names resources the incident has not handled — then a follow-up run
    /// is made for those alone (it plans once the run before it finished, leaving out what
    /// that run did). Every step is atomic in the store, so replicas agree.
    async fn respond(
        &self,
        record: &AlertRecord,
        alert: &Alert,
        principal: Option<&str>,
        playbook: &Playbook,
        known: &mut HandledResources,
    ) -> Result<(), ServiceError> {
        let since = Utc::now()
            - chrono::Duration::from_std(self.options.coalesce_window).unwrap_or_default();
        let first = self.new_run(record, alert, principal, playbook, &record.id, None, None);
        let (incident_id, mut latest) = match self.store.create_or_join_run(&first, since).await {
            Ok(Joined::Created) => {
                self.run_created(&first, playbook, &record.id).await;
                return Ok(());
            }
            Ok(Joined::Existing {
                incident_id,
                run_id,
                ..
            }) => (incident_id, run_id),
            // Created before a crash interrupted matching: the derived id makes the retry
            // find it instead of making a second run.
            Err(StoreError::AlreadyExists { .. }) => return Ok(()),
            Err(e) => return Err(internal(e)),
        };
        // A few turns at most: each lost race means another matcher just made a follow-up,
        // which may well cover this alert's resources.
        for _ in 0..3 {
            let handled = match known.get(&incident_id) {
                Some(h) => h,
                None => {
                    let h = self.handled_resources(&incident_id).await?;
                    known.entry(incident_id.clone()).or_insert(h)
                }
            };
            let fresh: Vec<String> = alert
                .resources
                .iter()
                .map(|r| r.id.clone())
                .filter(|id| !handled.iter().any(|h| h.eq_ignore_ascii_case(id)))
                .collect();
            if fresh.is_empty() {
                break;
            }
            let follow_up = self.new_run(
                record,
                alert,
                principal,
                playbook,
                &format!("{}\n{latest}", record.id),
                Some(fresh.clone()),
                Some(Follows {
                    incident_id: incident_id.clone(),
                    run_id: latest.clone(),
                }),
            );
            match self.store.create_follow_up(&follow_up).await {
                Ok(None) => {
                    known.entry(incident_id).or_default().extend(fresh);
                    self.run_created(&follow_up, playbook, &record.id).await;
                    return Ok(());
                }
                Ok(Some(other)) => {
                    // Another matcher moved the incident on: learn what it covers afresh.
                    known.remove(&incident_id);
                    latest = other;
                }
                Err(StoreError::AlreadyExists { .. }) => return Ok(()),
                Err(e) => return Err(internal(e)),
            }
        }
        self.store
            .attach_alert(&latest, &record.id)
            .await
            .map_err(internal)?;
        self.emit(
            Audit::RunCoalesced {
                run_id: &latest,
                alert_id: &record.id,
            },
            None,
        )
        .await;
        Ok(())
    }

    /// The resources an incident's runs act on: each planned run's as its plan shows them,
    /// each run not planned yet as its alert names them.
    async fn handled_resources(&self, incident_id: &str) -> Result<Vec<String>, ServiceError> {
        let mut handled = Vec::new();
        for run in self
            .store
            .incident_runs(incident_id)
            .await
            .map_err(internal)?
        {
            let planned = run
                .plan
                .as_ref()
                .and_then(|p| p.get("alert"))
                .and_then(|a| serde_json::from_value::<Alert>(a.clone()).ok());
            let alert = match planned {
                Some(a) => a,
                None => self.run_alert(&run).await?,
            };
            handled.extend(alert.resources.into_iter().map(|r| r.id));
        }
        Ok(handled)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_run(
        &self,
        record: &AlertRecord,
        alert: &Alert,
        principal: Option<&str>,
        playbook: &Playbook,
        id_key: &str,
        only_resources: Option<Vec<String>>,
        follows: Option<Follows>,
    ) -> NewRun {
        let mut spec = playbook_spec(playbook, Default::default());
        spec.only_resources = only_resources;
        NewRun {
            id: derived_run_id(id_key, &playbook.name),
            playbook: playbook.name.clone(),
            principal_key: principal.map(str::to_string),
            tenant: self.tenant.clone(),
            mode: self.mode,
            // The identity that delivered the alert asked for this run: it may not approve
            // or roll it back.
            requested_by: Some(
                record
                    .ingested_by
                    .clone()
                    .unwrap_or_else(|| format!("alert:{}", alert.source)),
            ),
            alert_id: Some(record.id.clone()),
            // The playbook as it is now: a later edit of the file changes later runs, never
            // this one.
            spec,
            follows,
        }
    }

    async fn run_created(&self, run: &NewRun, playbook: &Playbook, alert_id: &str) {
        self.emit(
            Audit::RunCreated {
                run_id: &run.id,
                playbook: &playbook.name,
                playbook_sha256: Some(&playbook.sha256),
                alert_id: Some(alert_id),
                source: None,
            },
            None,
        )
        .await
    }
}

/// Resources handled per incident id.
type HandledResources = std::collections::HashMap<String, Vec<String>>;

/// The key runs coalesce on: the principal's object id, else its UPN in lower case.
pub(super) fn principal_key(alert: &Alert) -> Option<String> {
    let p = alert.principal.as_ref()?;
    p.object_id
        .clone()
        .or_else(|| p.upn.as_ref().map(|u| u.to_lowercase()))
}

/// A run id fixed by its alert and playbook, so matching the same alert again after a crash
/// finds the run instead of creating another. Shaped like a UUID.
pub(super) fn derived_run_id(alert_id: &str, playbook: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_fixed_by_alert_and_playbook() {
        let a = derived_run_id("alert-1", "p");
        assert_eq!(a, derived_run_id("alert-1", "p"));
        assert_ne!(a, derived_run_id("alert-1", "q"));
        assert_ne!(a, derived_run_id("alert-2", "p"));
        assert_eq!(a.len(), 36);
    }
}
