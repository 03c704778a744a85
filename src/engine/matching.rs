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
use crate::store::{NewRun, StoreError};

impl Service {
    /// Matches stored alerts that are due to playbooks: a new run, or the open run for the
    /// same principal and playbook. An alert that cannot be enriched now waits for its next
    /// attempt (or fails) without holding up the others. Returns how many alerts it looked at.
    pub async fn process_alerts(&self) -> Result<usize, ServiceError> {
        let pending = self.store.pending_alerts(256).await.map_err(internal)?;
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
            let alert = match alert::enrich(alert, self.connectors.lacework(), &self.alerts).await {
                Ok(a) => a,
                Err(e) => {
                    self.alert_attempt_failed(&record, Failure::of_enrichment(&e))
                        .await?;
                    continue;
                }
            };
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
                    self.emit(
                        Audit::RunCoalesced {
                            run_id: &open,
                            alert_id: &record.id,
                        },
                        None,
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
                        tenant: self.tenant.clone(),
                        mode: self.mode,
                        // The identity that delivered the alert asked for this run: it may
                        // not approve or roll it back.
                        requested_by: Some(
                            record
                                .ingested_by
                                .clone()
                                .unwrap_or_else(|| format!("alert:{}", alert.source)),
                        ),
                        alert_id: Some(record.id.clone()),
                        // The playbook as it is now: a later edit of the file changes later
                        // runs, never this one.
                        spec: playbook_spec(p, Default::default()),
                    })
                    .await;
                match created {
                    Ok(()) => {
                        self.emit(
                            Audit::RunCreated {
                                run_id: &run_id,
                                playbook: &p.name,
                                playbook_sha256: Some(&p.sha256),
                                alert_id: Some(&record.id),
                                source: None,
                            },
                            None,
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
        // Only new runs are worth waking the worker for: waking it for alerts that were
        // just deferred would make it look again straight away, for nothing.
        if matched_any {
            self.wake.notify_one();
        }
        Ok(n)
    }
}

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
