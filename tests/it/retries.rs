//! Nothing spins: alerts that cannot be enriched and runs that cannot be planned retry with
//! backoff, a bounded number of times, then are `failed` with their reason; they never delay
//! other alerts; operators retry failed alerts and cancel runs that have not started executing.
//! Against the emulator with faults on Lacework's Details route, with small backoffs.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use riposte::connectors::{Connectors, HttpOptions};
use riposte::engine::service::{Caller, ServiceApi, ServiceError};
use riposte::engine::{RetryPolicy, Service, ServiceOptions};
use riposte::store::{AlertStatus, RunStatus};
use riposte_emulator::{Emulator, EmulatorHandle, FaultKind, FaultSpec, Tenant};
use serde_json::{Value, json};

struct Fixture {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

/// The bundled alert's Lacework id: the emulator's tenant holds its Details.
const SEEDED_ID: &str = "51234";

/// A service on SQLite (or PostgreSQL; `None` when none is configured) whose HTTP layer does
/// not retry by itself, so every Details request the emulator sees is one attempt.
async fn fixture(mode: &str, postgres: bool, retry: RetryPolicy) -> Option<Fixture> {
    riposte::connectors::install_crypto_provider();
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = if postgres {
        match common::postgres_url("retries").await {
            Some(url) => url,
            None => {
                emulator.shutdown().await;
                return None;
            }
        }
    } else {
        format!("sqlite://{}", dir.path().join("riposte.db").display())
    };
    let config = common::config_from_toml(
        dir.path(),
        &common::emulator_toml(&emulator.base_url(), &store_url, mode),
    );
    let mut app = riposte::app::App::new(config).unwrap();
    app.connectors = Connectors::new(
        &app.config.azure,
        app.config.lacework.as_ref(),
        HttpOptions {
            max_retries: 0,
            timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        },
    )
    .unwrap();
    let service = app
        .service_with(ServiceOptions {
            retry,
            ..ServiceOptions::default()
        })
        .await
        .unwrap();
    Some(Fixture {
        emulator,
        service,
        _dir: dir,
    })
}

fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base: Duration::from_millis(20),
        max: Duration::from_millis(80),
    }
}

fn caller(name: &str) -> Caller {
    Caller { name: name.into() }
}

/// The bundled Lacework webhook (needs its Details) with Lacework id `id`.
fn webhook(id: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&common::fixture("lacework-webhook.json")).unwrap();
    v["event_id"] = json!(id);
    v.to_string().into_bytes()
}

/// A complete Lacework alert (no Details needed) with Lacework id `id`.
fn complete(id: u64) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&common::fixture("lacework-details.json")).unwrap();
    v["data"]["alertId"] = json!(id);
    v.to_string().into_bytes()
}

/// [`complete`], about a principal of its own (so its run does not coalesce with others).
fn complete_for_own_principal(id: u64) -> Vec<u8> {
    String::from_utf8(complete(id))
        .unwrap()
        .replace(
            "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
            &format!("00000000-0000-4000-8000-{id:012}"),
        )
        .into_bytes()
}

/// Lacework's Details answers 503 for alert `id`, forever.
fn details_down(f: &Fixture, id: &str) {
    f.emulator
        .state()
        .add_fault(FaultSpec {
            route: format!("GET /api/v2/Alerts/{id}"),
            kind: FaultKind::Error,
            latency_ms: None,
            retry_after: None,
            status: Some(503),
            count: None,
        })
        .unwrap();
}

/// Details requests the emulator received for alert `id`.
fn details_calls(f: &Fixture, id: &str) -> usize {
    let path = format!("/api/v2/Alerts/{id}");
    f.emulator
        .state()
        .requests()
        .iter()
        .filter(|r| r.path == path)
        .count()
}

/// Waits (bounded) until `done` holds; the bound is a safety net, not a timing assertion.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

async fn alert_status(f: &Fixture, id: &str) -> AlertStatus {
    f.service
        .store()
        .get_alert(id)
        .await
        .unwrap()
        .unwrap()
        .status
}

async fn audit_kinds(f: &Fixture) -> Vec<(String, Value)> {
    f.service
        .store()
        .audit_records(1, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.body))
        .collect()
}

/// A poison webhook next to a genuine alert, with the worker running: the genuine one gets
/// its run, the poison one costs exactly its attempts at Lacework and ends `failed` with the
/// reason; one Lacework does not know fails at its first attempt; `retry` brings the poison
/// one back, and it matches once Lacework answers.
async fn a_poison_alert_costs_its_attempts_and_fails_without_delaying_a_genuine_one(
    postgres: bool,
) {
    let Some(f) = fixture("dry-run", postgres, quick(4)).await else {
        return;
    };
    details_down(&f, SEEDED_ID);
    let worker = f.service.spawn_worker();
    let poison = f
        .service
        .ingest("lacework", &webhook(SEEDED_ID), &caller("lacework"))
        .await
        .unwrap();
    let unknown = f
        .service
        .ingest("lacework", &webhook("77777"), &caller("lacework"))
        .await
        .unwrap();
    let genuine = f
        .service
        .ingest("lacework", &complete(600_001), &caller("lacework"))
        .await
        .unwrap();

    eventually("the genuine alert's run", || async {
        alert_status(&f, &genuine.alert_id).await == AlertStatus::Matched
    })
    .await;
    eventually("the poison alert failing", || async {
        alert_status(&f, &poison.alert_id).await == AlertStatus::Failed
    })
    .await;
    let failed = f
        .service
        .store()
        .get_alert(&poison.alert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.attempts, 4);
    let reason = failed.last_error.unwrap();
    assert!(
        reason.contains("Lacework Details") && reason.contains("gave up after 4 attempts"),
        "{reason}"
    );
    assert_eq!(
        details_calls(&f, SEEDED_ID),
        4,
        "one Details call per attempt"
    );

    // Lacework does not know this alert (404): permanent, one call.
    assert_eq!(
        alert_status(&f, &unknown.alert_id).await,
        AlertStatus::Failed
    );
    assert_eq!(details_calls(&f, "77777"), 1);
    let unknown = f
        .service
        .store()
        .get_alert(&unknown.alert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unknown.attempts, 1);
    assert!(
        unknown.last_error.as_deref().unwrap().contains("404"),
        "{unknown:?}"
    );

    eventually("both alert.failed audit records", || async {
        audit_kinds(&f)
            .await
            .iter()
            .filter(|(k, _)| k == "alert.failed")
            .count()
            == 2
    })
    .await;
    let failures: Vec<_> = audit_kinds(&f)
        .await
        .into_iter()
        .filter(|(k, _)| k == "alert.failed")
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|(_, b)| b["alert_id"] == poison.alert_id
                && b["attempts"] == 4
                && b["reason"].as_str().unwrap().contains("transient failure")),
        "{failures:?}"
    );
    let listed = f
        .service
        .alerts(10, Some(AlertStatus::Failed))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(f.service.stats().await.alerts_by_status["failed"], 2);

    // Nothing more reaches Lacework for it while it is failed; a matched alert cannot be
    // retried; the poison one can, and matches now that Lacework answers.
    assert!(matches!(
        f.service
            .retry_alert(&genuine.alert_id, &caller("token:oncall"))
            .await,
        Err(ServiceError::Conflict(_))
    ));
    f.emulator.state().clear_faults();
    let retried = f
        .service
        .retry_alert(&poison.alert_id, &caller("token:oncall"))
        .await
        .unwrap();
    assert_eq!(retried.status, AlertStatus::Pending);
    assert_eq!(retried.attempts, 0);
    eventually("the retried alert matching", || async {
        alert_status(&f, &poison.alert_id).await == AlertStatus::Matched
    })
    .await;
    eventually("the retried alert in a planned run", || async {
        f.service.runs(10, None).await.unwrap().iter().any(|r| {
            r.status == RunStatus::AwaitingApproval
                && r.alerts.iter().any(|a| a.alert_id == poison.alert_id)
        })
    })
    .await;
    assert_eq!(
        details_calls(&f, SEEDED_ID),
        4 + 1,
        "one more to match: it joins the genuine alert's run (the same user), already planned"
    );
    assert!(
        audit_kinds(&f)
            .await
            .iter()
            .any(|(k, b)| k == "alert.retried" && b["alert_id"] == poison.alert_id)
    );
    worker.stop().await;
    f.emulator.shutdown().await;
}

/// 300 alerts waiting for their next attempt: a newer alert is matched on the next pass
/// instead of waiting behind them.
async fn deferred_alerts_do_not_delay_a_newer_one(postgres: bool) {
    let patient = RetryPolicy {
        attempts: 8,
        base: Duration::from_secs(3600),
        max: Duration::from_secs(3600),
    };
    let Some(f) = fixture("dry-run", postgres, patient).await else {
        return;
    };
    details_down(&f, "*");
    for i in 0..300 {
        f.service
            .ingest(
                "lacework",
                &webhook(&format!("7{i:04}")),
                &caller("lacework"),
            )
            .await
            .unwrap();
    }
    // Each is tried once and deferred by an hour.
    let mut looked_at = 0;
    loop {
        let n = f.service.process_alerts().await.unwrap();
        if n == 0 {
            break;
        }
        looked_at += n;
    }
    assert_eq!(looked_at, 300);
    let genuine = f
        .service
        .ingest("lacework", &complete(600_002), &caller("lacework"))
        .await
        .unwrap();
    assert_eq!(
        f.service.process_alerts().await.unwrap(),
        1,
        "only the new alert is due"
    );
    assert_eq!(
        alert_status(&f, &genuine.alert_id).await,
        AlertStatus::Matched
    );
    assert_eq!(f.service.runs(10, None).await.unwrap().len(), 1);
    assert_eq!(f.service.stats().await.alerts_by_status["pending"], 300);
    f.emulator.shutdown().await;
}

/// Planning that keeps failing (Lacework down when the run is planned) is retried with
/// backoff by the worker and ends `failed` with its reason after the configured attempts.
async fn a_run_whose_planning_keeps_failing_ends_failed(postgres: bool) {
    let Some(f) = fixture("dry-run", postgres, quick(3)).await else {
        return;
    };
    let ingested = f
        .service
        .ingest("lacework", &webhook(SEEDED_ID), &caller("lacework"))
        .await
        .unwrap();
    let store = f.service.store();
    let as_received = store
        .get_alert(&ingested.alert_id)
        .await
        .unwrap()
        .unwrap()
        .body;
    f.service.process_alerts().await.unwrap();
    let run = f.service.runs(10, None).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Pending);
    // Matching stores the enriched alert, so planning never asks Lacework; an alert stored
    // without it (by an older version) makes planning ask, and here fail.
    store
        .save_enriched_alert(&ingested.alert_id, &as_received)
        .await
        .unwrap();
    details_down(&f, SEEDED_ID);
    let worker = f.service.spawn_worker();
    eventually("the run failing", || async {
        f.service.run(&run.id).await.unwrap().run.status == RunStatus::Failed
    })
    .await;
    worker.stop().await;
    let failed = f.service.run(&run.id).await.unwrap().run;
    assert_eq!(failed.attempts, 3);
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{failed:?}"
    );
    assert_eq!(failed.plan, None, "it was never planned");
    assert_eq!(
        details_calls(&f, SEEDED_ID),
        1 + 3,
        "one to match, one per planning attempt"
    );
    // The event follows the stored failure, from the worker's own task.
    eventually("the run.planning_failed audit record", || async {
        audit_kinds(&f)
            .await
            .iter()
            .any(|(k, b)| k == "run.planning_failed" && b["attempts"] == 3)
    })
    .await;
    f.emulator.shutdown().await;
}

/// Cancel stops a pending run before it is planned and one awaiting approval before it is
/// approved; a run a worker has started executing is a conflict.
async fn cancel_stops_runs_that_have_not_started_executing(postgres: bool) {
    let Some(f) = fixture("dry-run", postgres, quick(3)).await else {
        return;
    };
    for id in [600_010, 600_011, 600_012] {
        f.service
            .ingest(
                "lacework",
                &complete_for_own_principal(id),
                &caller("lacework"),
            )
            .await
            .unwrap();
    }
    f.service.process_alerts().await.unwrap();
    let runs = f.service.runs(10, None).await.unwrap();
    assert_eq!(runs.len(), 3);
    let (pending, waiting, running) = (&runs[0].id, &runs[1].id, &runs[2].id);

    let cancelled = f
        .service
        .cancel(pending, &caller("token:oncall"))
        .await
        .unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    // A worker that claimed it before the cancel finds nothing to do.
    let after = f.service.drive(pending, None).await.unwrap();
    assert_eq!(after.status, RunStatus::Cancelled);
    assert_eq!(after.plan, None);

    let planned = f.service.drive(waiting, None).await.unwrap();
    assert_eq!(planned.status, RunStatus::AwaitingApproval);
    f.service
        .cancel(waiting, &caller("token:oncall"))
        .await
        .unwrap();
    let approve = f
        .service
        .approve(
            waiting,
            planned.plan_hash.as_deref().unwrap(),
            &caller("token:approver"),
        )
        .await;
    assert!(
        matches!(approve, Err(ServiceError::Conflict(_))),
        "{approve:?}"
    );

    // As if a worker had started executing it.
    f.service
        .store()
        .set_run_status(running, RunStatus::Running)
        .await
        .unwrap();
    match f.service.cancel(running, &caller("token:oncall")).await {
        Err(e @ ServiceError::Conflict(_)) => {
            assert_eq!(e.http_status(), 409);
            assert!(e.to_string().contains("is running"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.service.cancel("no-such-run", &caller("x")).await,
        Err(ServiceError::NotFound(_))
    ));
    let cancels: Vec<_> = audit_kinds(&f)
        .await
        .into_iter()
        .filter(|(k, _)| k == "run.cancelled")
        .map(|(_, b)| b["was"].clone())
        .collect();
    assert_eq!(cancels, [json!("pending"), json!("awaiting_approval")]);
    assert_eq!(f.service.stats().await.runs_by_status["cancelled"], 2);
    f.emulator.shutdown().await;
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(false).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(true).await
                }
            )*
        }
    };
}

on_both_backends!(
    a_poison_alert_costs_its_attempts_and_fails_without_delaying_a_genuine_one,
    deferred_alerts_do_not_delay_a_newer_one,
    a_run_whose_planning_keeps_failing_ends_failed,
    cancel_stops_runs_that_have_not_started_executing,
);
