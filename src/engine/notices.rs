//! Telling people: the notifier follows the audit trail from its cursor in the store and
//! posts each service event `[notify] events` names (a run awaiting approval, finished,
//! failed) to the webhook, with who, what, why and a link to the run's review page.
//!
//! Following the trail instead of hooking each transition means an event is told once it is
//! durable and told even when it happened on another replica or just before a crash: the
//! cursor moves on only after the post (at least once), and its lease lets one replica follow
//! at a time. A webhook that keeps failing is given up on after a few tries, recorded in the
//! audit trail, and never holds up the events after it.

use std::time::Duration;

use serde_json::Value;

use super::events::Audit;
use super::report::{RunReport, StepOutcome};
use super::runtime::Service;
use crate::notify::{Notice, ServiceEvent, message};
use crate::plan::{Plan, StepStatus};
use crate::store::{AuditRecord, RunRecord, RunStatus};

/// The notifier's cursor in the store.
const CURSOR: &str = "notify";
/// Audit records read per pass.
const PAGE: u32 = 100;
/// Posts of one event before it is given up on.
const ATTEMPTS: u32 = 4;

impl Service {
    /// Follows the trail until `shutdown`, when a webhook is configured: every `every`, one
    /// pass over the records past the cursor.
    pub(super) async fn follow_notices(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.notify.webhook_url.is_none() {
            return;
        }
        loop {
            if let Err(error) = self.tell_pass().await {
                tracing::warn!(message = "Following the audit trail for notifications failed.", %error);
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(self.options.notify_every) => {}
            }
        }
    }

    /// One pass: claims the cursor, posts what the new records call for and moves the cursor
    /// past each record once it is handled. Returns how many messages were posted.
    pub async fn tell_pass(&self) -> Result<usize, crate::store::StoreError> {
        let lease = self.options.lease;
        let Some(from) = self
            .store
            .claim_cursor(CURSOR, &self.worker_id, lease)
            .await?
        else {
            return Ok(0);
        };
        let records = self.store.audit_records(from + 1, PAGE).await?;
        let mut posted = 0;
        for record in records {
            // `notice_for` answers only for the events `[notify] events` names.
            if let Some(notice) = self.notice_for(&record).await {
                self.post(&notice).await;
                posted += 1;
            }
            self.store
                .advance_cursor(CURSOR, &self.worker_id, record.seq)
                .await?;
        }
        Ok(posted)
    }

    /// Posts with a short backoff; a notice that cannot be delivered is recorded as such.
    async fn post(&self, notice: &Notice) {
        let Some(req) = message::request(&self.notify, notice) else {
            return;
        };
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250) * 2u32.pow(attempt)).await;
            }
            match self.connectors.send(&req).await {
                Ok(_) => return,
                Err(e) => last = e.to_string(),
            }
        }
        tracing::error!(message = "A notification could not be delivered.", run_id = %notice.run_id, event = notice.event.as_str(), error = %last);
        self.emit(
            Audit::NoticeFailed {
                run_id: &notice.run_id,
                event: notice.event.as_str(),
                error: &last,
            },
            None,
        )
        .await;
    }

    /// The notice an audit record calls for, if any.
    async fn notice_for(&self, record: &AuditRecord) -> Option<Notice> {
        let event = match record.kind.as_str() {
            "run.finished" => match record.body["outcome"].as_str()? {
                "awaiting_approval" => ServiceEvent::AwaitingApproval,
                "succeeded" | "compensated" => ServiceEvent::Finished,
                "failed" => ServiceEvent::Failed,
                _ => return None,
            },
            "run.planning_failed" => ServiceEvent::Failed,
            // A new or changed plan waits for an approval when the run is now awaiting one.
            "plan.created" | "plan.changed" => ServiceEvent::AwaitingApproval,
            _ => return None,
        };
        if !self.notify.wants(event) {
            return None;
        }
        let run = self.store.get_run(record.run_id.as_deref()?).await.ok()??;
        if record.kind.starts_with("plan.") && run.status != RunStatus::AwaitingApproval {
            return None;
        }
        Some(self.notice(event, &run, record).await)
    }

    async fn notice(&self, event: ServiceEvent, run: &RunRecord, record: &AuditRecord) -> Notice {
        let alert_title = match run.alerts.first() {
            Some(a) => match self.store.get_alert(&a.alert_id).await {
                Ok(Some(alert)) => alert.body["title"].as_str().map(str::to_string),
                _ => None,
            },
            None => None,
        };
        let reasons = match event {
            ServiceEvent::AwaitingApproval => approval_reasons(run.plan.as_ref()),
            ServiceEvent::Failed => failure_reasons(run, record),
            _ => Vec::new(),
        };
        Notice {
            event,
            run_id: run.id.clone(),
            playbook: run.playbook.clone(),
            principal: run.principal_key.clone(),
            mode: run.mode.as_str().to_string(),
            status: run.status.as_str().to_string(),
            alert_title,
            reasons,
            link: format!("{}/runs/{}", self.public_url.trim_end_matches('/'), run.id),
        }
    }
}

/// Each step waiting on an approval, with the policy's reasons: why the plan waits.
fn approval_reasons(plan: Option<&Value>) -> Vec<String> {
    let Some(plan) = plan.and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok()) else {
        return Vec::new();
    };
    plan.steps
        .iter()
        .filter(|s| s.status == StepStatus::NeedsApproval)
        .flat_map(|s| {
            let reasons = s
                .policy
                .as_ref()
                .map(|d| d.reasons.clone())
                .unwrap_or_default();
            if reasons.is_empty() {
                vec![format!("{}: approval required", s.id)]
            } else {
                reasons
                    .into_iter()
                    .map(|r| format!("{}: {r}", s.id))
                    .collect()
            }
        })
        .collect()
}

/// Why a run failed: planning's last error, or each failed step's reason.
fn failure_reasons(run: &RunRecord, record: &AuditRecord) -> Vec<String> {
    if let Some(reason) = record.body["reason"].as_str() {
        return vec![reason.to_string()];
    }
    let report = run
        .report
        .clone()
        .and_then(|r| serde_json::from_value::<RunReport>(r).ok());
    let failed: Vec<String> = report
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| s.outcome == StepOutcome::Failed)
        .map(|s| format!("{}: {}", s.id, s.reason.as_deref().unwrap_or("failed")))
        .collect();
    if failed.is_empty() {
        run.last_error.iter().cloned().collect()
    } else {
        failed
    }
}
