//! Nothing spins: what to do after an alert could not be enriched or a run could not be
//! planned. A failure that may pass (upstream unavailable, 5xx, 429, a timeout) is tried again
//! after a capped, jittered exponential backoff, at most `attempts` times in all; one that
//! cannot pass (4xx, an alert that cannot be read, a playbook that cannot be planned) gives up
//! at once. The schedule is stored (`next_attempt_at`), so a restart or another replica keeps
//! it, and the worker never picks the alert or run up before then.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::events::Audit;
use super::runtime::{Service, internal};
use super::service::ServiceError;
use crate::alert::EnrichError;
use crate::connectors::ApiError;
use crate::store::{AlertRecord, FailedAttempt};

/// How often and how patiently to try again (`[engine] retry_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last failed one, give up.
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
}

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// May pass: try again after the backoff, or after `not_before` when the upstream asked
    /// for longer (`Retry-After`).
    Transient {
        reason: String,
        not_before: Option<Duration>,
    },
    /// Will fail the same way every time: give up now.
    Permanent { reason: String },
}

impl Failure {
    /// An enrichment failure: only an upstream that may answer next time is transient.
    pub fn of_enrichment(e: &EnrichError) -> Failure {
        let reason = e.to_string();
        match e {
            EnrichError::Api { source, .. } if source.is_retryable() => Failure::Transient {
                reason,
                not_before: match source {
                    ApiError::Throttled { retry_after, .. } => *retry_after,
                    _ => None,
                },
            },
            _ => Failure::Permanent { reason },
        }
    }

    /// A planning failure: the service's 5xx kinds (unavailable upstream or store, internal)
    /// may pass; its 4xx kinds (a bad spec, bad inputs, a missing alert) will not.
    pub fn of_planning(e: &ServiceError) -> Failure {
        let reason = e.to_string();
        match e {
            ServiceError::Unavailable(_) | ServiceError::Internal(_) => Failure::Transient {
                reason,
                not_before: None,
            },
            ServiceError::BadRequest(_)
            | ServiceError::NotFound(_)
            | ServiceError::Forbidden(_)
            | ServiceError::Conflict(_) => Failure::Permanent { reason },
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure (1 = the first): `base · 2^(failures-1)`,
    /// capped at `max`, then drawn between half and all of it by `jitter` in `[0, 1]` — never
    /// less than half, so the schedule has a floor that bounds upstream calls, and spread so
    /// alerts that failed together do not come back together.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let step = self
            .base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// What to store after an attempt failed, when `failures` attempts (this one included)
    /// have failed by `now`: the next attempt's time, or none (give up).
    pub fn after(&self, failures: u32, failure: Failure, now: DateTime<Utc>) -> FailedAttempt {
        self.after_with_jitter(failures, failure, now, rand::random::<f64>())
    }

    fn after_with_jitter(
        &self,
        failures: u32,
        failure: Failure,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> FailedAttempt {
        match failure {
            Failure::Permanent { reason } => FailedAttempt {
                reason,
                retry_at: None,
            },
            Failure::Transient { reason, .. } if failures >= self.attempts => FailedAttempt {
                reason: format!("{reason} (gave up after {failures} attempts)"),
                retry_at: None,
            },
            Failure::Transient { reason, not_before } => {
                let wait = self
                    .delay(failures, jitter)
                    .max(not_before.unwrap_or_default().min(self.max));
                let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                FailedAttempt {
                    reason,
                    retry_at: Some(
                        now.checked_add_signed(wait)
                            .unwrap_or(DateTime::<Utc>::MAX_UTC),
                    ),
                }
            }
        }
    }
}

impl Service {
    /// Stores a failed attempt at an alert: its next attempt after the backoff, or `failed`
    /// with the reason (and an audit event) for a permanent failure or the last attempt.
    pub(super) async fn alert_attempt_failed(
        &self,
        record: &AlertRecord,
        failure: Failure,
    ) -> Result<(), ServiceError> {
        let failures = record.attempts.saturating_add(1);
        let next = self.options.retry.after(failures, failure, Utc::now());
        self.store
            .record_alert_failure(&record.id, &next)
            .await
            .map_err(internal)?;
        match next.retry_at {
            Some(at) => tracing::warn!(
                message = "Alert not matched; will try again.",
                alert_id = %record.id,
                attempt = failures,
                next_attempt_at = %at,
                reason = %next.reason
            ),
            None => {
                self.emit(
                    Audit::AlertFailed {
                        alert_id: &record.id,
                        attempts: failures,
                        reason: &next.reason,
                    },
                    None,
                )
                .await
            }
        }
        Ok(())
    }

    /// Stores a failed attempt at moving a run forward (its planning, mostly): claimable
    /// again after the backoff, or `failed` with the reason (and an audit event) for a
    /// permanent failure or the last attempt.
    pub(super) async fn run_attempt_failed(&self, run_id: &str, error: &ServiceError) {
        let failures = match self.store.get_run(run_id).await {
            Ok(Some(run)) => run.attempts.saturating_add(1),
            Ok(None) => return,
            Err(store) => {
                // Unrecorded, the run is retried when its lease lapses: slow, not hot.
                tracing::error!(message = "Cannot record a failed attempt.", %run_id, error = %store);
                return;
            }
        };
        let next = self
            .options
            .retry
            .after(failures, Failure::of_planning(error), Utc::now());
        if let Err(store) = self.store.record_run_failure(run_id, &next).await {
            tracing::error!(message = "Cannot record a failed attempt.", %run_id, error = %store);
            return;
        }
        match next.retry_at {
            Some(at) => tracing::warn!(
                message = "Run did not progress; will try again.",
                %run_id,
                attempt = failures,
                next_attempt_at = %at,
                reason = %next.reason
            ),
            None => {
                self.emit(
                    Audit::RunPlanningFailed {
                        run_id,
                        attempts: failures,
                        reason: &next.reason,
                    },
                    None,
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 8,
            base: Duration::from_secs(10),
            max: Duration::from_secs(600),
        }
    }

    #[test]
    fn the_wait_doubles_is_capped_and_keeps_a_floor_of_half() {
        let p = policy();
        let full: Vec<u64> = (1..=8).map(|n| p.delay(n, 1.0).as_secs()).collect();
        assert_eq!(full, [10, 20, 40, 80, 160, 320, 600, 600]);
        let least: Vec<u64> = (1..=8).map(|n| p.delay(n, 0.0).as_secs()).collect();
        assert_eq!(least, [5, 10, 20, 40, 80, 160, 300, 300]);
        // Far beyond the cap nothing overflows.
        assert_eq!(p.delay(u32::MAX, 1.0), p.max);
        assert_eq!(
            p.delay(1, 7.0),
            Duration::from_secs(10),
            "jitter is clamped"
        );
    }

    #[test]
    fn transient_failures_retry_until_the_last_attempt_then_give_up() {
        let p = policy();
        let now = Utc::now();
        let transient = || Failure::Transient {
            reason: "503".into(),
            not_before: None,
        };
        let next = p.after_with_jitter(1, transient(), now, 1.0);
        assert_eq!(next.retry_at, Some(now + chrono::Duration::seconds(10)));
        assert_eq!(next.reason, "503");
        let last = p.after_with_jitter(8, transient(), now, 1.0);
        assert_eq!(last.retry_at, None);
        assert!(
            last.reason.contains("gave up after 8 attempts"),
            "{}",
            last.reason
        );
    }

    #[test]
    fn a_permanent_failure_gives_up_at_once() {
        let p = policy();
        let f = p.after_with_jitter(
            1,
            Failure::Permanent {
                reason: "400".into(),
            },
            Utc::now(),
            0.5,
        );
        assert_eq!(
            f,
            FailedAttempt {
                reason: "400".into(),
                retry_at: None
            }
        );
    }

    #[test]
    fn retry_after_lengthens_the_wait_but_never_past_the_cap() {
        let p = policy();
        let now = Utc::now();
        let asked = |secs| Failure::Transient {
            reason: "429".into(),
            not_before: Some(Duration::from_secs(secs)),
        };
        let at = |f| p.after_with_jitter(1, f, now, 1.0).retry_at.unwrap();
        assert_eq!(at(asked(120)), now + chrono::Duration::seconds(120));
        assert_eq!(at(asked(1)), now + chrono::Duration::seconds(10));
        assert_eq!(at(asked(86_400)), now + chrono::Duration::seconds(600));
    }

    #[test]
    fn only_retryable_upstream_errors_are_transient() {
        let api = |source| EnrichError::Api {
            id: "1".into(),
            source,
        };
        let unavailable = api(ApiError::Transient {
            status: Some(503),
            message: "down".into(),
            request_id: None,
        });
        assert!(matches!(
            Failure::of_enrichment(&unavailable),
            Failure::Transient { .. }
        ));
        let throttled = api(ApiError::Throttled {
            retry_after: Some(Duration::from_secs(30)),
            request_id: None,
        });
        assert_eq!(
            Failure::of_enrichment(&throttled),
            Failure::Transient {
                reason: throttled.to_string(),
                not_before: Some(Duration::from_secs(30))
            }
        );
        let missing = api(ApiError::NotFound {
            code: "NotFound".into(),
            message: "no alert".into(),
            request_id: None,
        });
        assert!(matches!(
            Failure::of_enrichment(&missing),
            Failure::Permanent { .. }
        ));
        assert!(matches!(
            Failure::of_planning(&ServiceError::Unavailable("x".into())),
            Failure::Transient { .. }
        ));
        assert!(matches!(
            Failure::of_planning(&ServiceError::BadRequest("x".into())),
            Failure::Permanent { .. }
        ));
    }
}
