//! The durable service against the emulator: ingestion, matching, coalescing, approvals
//! bound to the plan hash, execution and the audit trail — on SQLite, and on PostgreSQL when
//! `RIPOSTE_TEST_POSTGRES_URL` is set.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use riposte::engine::service::{Caller, ServiceApi, ServiceError};
use riposte::engine::{Service, ServiceOptions};
use riposte::store::RunStatus;
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};

struct Fixture {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

/// A service on SQLite, or on PostgreSQL (`None` when none is configured).
async fn fixture(mode: &str, postgres: bool) -> Option<Fixture> {
    riposte::connectors::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("riposte=warn"))
        .with_test_writer()
        .try_init();
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = if postgres {
        match common::postgres_url("service").await {
            Some(url) => url,
            None => {
                eprintln!("RIPOSTE_TEST_POSTGRES_URL is not set: skipped");
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
    let service = riposte::app::App::new(config)
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap();
    Some(Fixture {
        emulator,
        service,
        _dir: dir,
    })
}

fn caller(name: &str) -> Caller {
    Caller { name: name.into() }
}

/// Drives every claimable run to where it stops (finished or awaiting approval).
async fn settle(service: &Arc<Service>) {
    service.process_alerts().await.unwrap();
    for _ in 0..20 {
        let runs = service.runs(1000, None).await.unwrap();
        let open: Vec<_> = runs
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    RunStatus::Pending | RunStatus::Planning | RunStatus::Running
                )
            })
            .collect();
        if open.is_empty() {
            return;
        }
        for r in open {
            service.drive(&r.id, None).await.unwrap();
        }
    }
    panic!("runs did not settle");
}

async fn counter(f: &Fixture, name: &str) -> u64 {
    f.emulator.state().counter(name)
}

async fn a_lacework_webhook_alert_is_enriched_and_contains_the_user(postgres: bool) {
    let Some(f) = fixture("enforce", postgres).await else {
        return;
    };
    let body = common::fixture("lacework-webhook.json");
    let ingested = f
        .service
        .ingest("lacework", &body, &caller("lacework-webhook"))
        .await
        .unwrap();
    assert!(!ingested.duplicate);
    settle(&f.service).await;
    let runs = f.service.runs(10, None).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let view = f.service.run(&runs[0].id).await.unwrap();
    assert_eq!(view.run.status, RunStatus::Succeeded, "{:#?}", view.report);
    // Lacework is asked for the Details once: planning reads the enriched alert from the store.
    let details: Vec<_> = f
        .emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.api == "lacework" && r.path.starts_with("/api/v2/Alerts"))
        .collect();
    assert_eq!(details.len(), 1, "{details:#?}");
    assert_eq!(counter(&f, "user_disabled").await, 1);
    assert_eq!(counter(&f, "sessions_revoked").await, 1);
    assert!(counter(&f, "snapshots_created").await >= 2);
    assert!(counter(&f, "locks_created").await >= 2);
    assert!(counter(&f, "role_assignments_deleted").await >= 1);
    assert_eq!(counter(&f, "group_member_added").await, 1);
    assert!(
        !view.evidence.is_empty(),
        "evidence is stored with its digest"
    );
    assert!(
        view.evidence
            .iter()
            .all(|e| e.sha256.starts_with("sha256:") && e.sha256.len() == 71)
    );
    // The same alert again: stored once, nothing new starts.
    let again = f
        .service
        .ingest("lacework", &body, &caller("lacework-webhook"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.alert_id, ingested.alert_id);
    settle(&f.service).await;
    assert_eq!(f.service.runs(10, None).await.unwrap().len(), 1);
    assert_eq!(counter(&f, "user_disabled").await, 1);
    assert!(f.service.store().verify_audit().await.unwrap() > 5);
    f.emulator.shutdown().await;
}

async fn a_bad_alert_is_rejected_and_nothing_is_stored(postgres: bool) {
    let Some(f) = fixture("dry-run", postgres).await else {
        return;
    };
    let err = f
        .service
        .ingest(
            "azure-monitor",
            &common::fixture("bad-azure-monitor-time.json"),
            &caller("x"),
        )
        .await;
    match err {
        Err(ServiceError::BadRequest(m)) => assert!(m.contains("firedDateTime"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.service.process_alerts().await.unwrap(), 0);
    f.emulator.shutdown().await;
}

async fn an_alert_storm_for_five_users_gives_five_runs(postgres: bool) {
    let Some(f) = fixture("dry-run", postgres).await else {
        return;
    };
    let template: serde_json::Value =
        serde_json::from_slice(&common::fixture("lacework-details.json")).unwrap();
    let users = ["a", "b", "c", "d", "e"];
    for i in 0..500 {
        let mut alert = template.clone();
        let text = alert.to_string().replace(
            "alex.wilber@contoso.com",
            &format!("{}@contoso.com", users[i % 5]),
        );
        alert = serde_json::from_str(&text).unwrap();
        alert["data"]["alertId"] = serde_json::json!(100_000 + i);
        // The object id is what runs coalesce on; give each user their own.
        let text = alert.to_string().replace(
            "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
            &format!("00000000-0000-4000-8000-00000000000{}", i % 5),
        );
        f.service
            .ingest("lacework", text.as_bytes(), &caller("lacework"))
            .await
            .unwrap();
    }
    while f.service.process_alerts().await.unwrap() > 0 {}
    let runs = f.service.runs(1000, None).await.unwrap();
    assert_eq!(runs.len(), 5, "500 alerts for 5 users coalesce into 5 runs");
    assert!(
        runs.iter().all(|r| r.alerts.len() == 100),
        "{:?}",
        runs.iter().map(|r| r.alerts.len()).collect::<Vec<_>>()
    );
    f.emulator.shutdown().await;
}

async fn approval_is_bound_to_the_plan_hash_and_to_another_person(postgres: bool) {
    let Some(f) = fixture("dry-run", postgres).await else {
        return;
    };
    f.service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller("lacework"),
        )
        .await
        .unwrap();
    settle(&f.service).await;
    let run = f.service.runs(1, None).await.unwrap().remove(0);
    assert_eq!(
        run.status,
        RunStatus::AwaitingApproval,
        "dry-run waits for review"
    );
    assert_eq!(
        counter(&f, "user_disabled").await,
        0,
        "dry-run sends nothing"
    );
    let hash = run.plan_hash.clone().unwrap();

    // The requester may not approve their own run.
    let own = f.service.approve(&run.id, &hash, &caller("lacework")).await;
    assert!(matches!(own, Err(ServiceError::Forbidden(_))), "{own:?}");
    // A hash that is not the run's plan is refused.
    let wrong = f
        .service
        .approve(&run.id, "sha256:0000", &caller("oncall"))
        .await;
    assert!(matches!(wrong, Err(ServiceError::Conflict(_))), "{wrong:?}");

    // Drift: the user is disabled by someone else after the plan was made.
    let disable = riposte::connectors::ApiRequest::new(
        riposte::connectors::Method::Patch,
        riposte::connectors::Api::Graph,
        format!(
            "{}/v1.0/users/a1e7d1c2-5b3f-4c8e-9d21-000000000001",
            f.emulator.base_url()
        ),
    )
    .with_body(serde_json::json!({"accountEnabled": false}));
    let config = common::config_from_toml(
        f._dir.path(),
        &common::emulator_toml(&f.emulator.base_url(), "sqlite::memory:", "enforce"),
    );
    let connectors =
        riposte::connectors::Connectors::new(&config.azure, None, Default::default()).unwrap();
    connectors.send(&disable).await.unwrap();
    let drifted = f.service.approve(&run.id, &hash, &caller("oncall")).await;
    let Err(ServiceError::Conflict(msg)) = drifted else {
        panic!("{drifted:?}")
    };
    assert!(msg.contains("changed"), "{msg}");
    let replanned = f.service.run(&run.id).await.unwrap().run;
    let new_hash = replanned.plan_hash.unwrap();
    assert_ne!(new_hash, hash);

    // Approving the current plan runs it, and an approval expires with its TTL (not tested
    // on the clock here; the store keeps `expires_at`).
    let approved = f
        .service
        .approve(&run.id, &new_hash, &caller("oncall"))
        .await
        .unwrap();
    assert_eq!(approved.status, RunStatus::Running);
    f.service.drive(&run.id, None).await.unwrap();
    let done = f.service.run(&run.id).await.unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded, "{:#?}", done.report);
    assert_eq!(
        counter(&f, "user_disabled").await,
        1,
        "already disabled by the drift, not again"
    );
    assert_eq!(counter(&f, "sessions_revoked").await, 1);
    f.emulator.shutdown().await;
}

async fn rollback_undoes_what_can_be_undone(postgres: bool) {
    let Some(f) = fixture("enforce", postgres).await else {
        return;
    };
    f.service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller("lacework"),
        )
        .await
        .unwrap();
    settle(&f.service).await;
    let run = f.service.runs(1, None).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Succeeded);
    let report = f
        .service
        .rollback(&run.id, &caller("oncall"))
        .await
        .unwrap();
    assert!(
        report.undone.iter().any(|(s, _)| s == "suspend"),
        "{report:#?}"
    );
    assert!(
        report.refused.iter().any(|(s, _)| s == "revoke"),
        "{report:#?}"
    );
    assert_eq!(counter(&f, "user_enabled").await, 1);
    let after = f.service.run(&run.id).await.unwrap().run;
    assert_eq!(after.status, RunStatus::RolledBack);
    let again = f.service.rollback(&run.id, &caller("oncall")).await;
    assert!(matches!(again, Err(ServiceError::Conflict(_))));
    f.emulator.shutdown().await;
    let _ = Duration::ZERO;
}

/// Each scenario on SQLite and on PostgreSQL.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(false).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(true).await })*
        }
    };
}

on_both_stores!(
    a_lacework_webhook_alert_is_enriched_and_contains_the_user,
    a_bad_alert_is_rejected_and_nothing_is_stored,
    an_alert_storm_for_five_users_gives_five_runs,
    approval_is_bound_to_the_plan_hash_and_to_another_person,
    rollback_undoes_what_can_be_undone
);
