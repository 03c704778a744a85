//! Crash safety: `riposte serve` is killed with SIGKILL at many points while it contains
//! several users, then restarted; in the end no alert is lost and every effect happened
//! exactly as often as in an uninterrupted run. On SQLite, and on PostgreSQL when
//! `RIPOSTE_TEST_POSTGRES_URL` is set.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riposte::engine::service::{Caller, ServiceApi};
use riposte::engine::{Service, ServiceOptions};
use riposte::store::RunStatus;
use riposte_emulator::{Emulator, EmulatorHandle, FaultKind, FaultSpec, Tenant};

/// The users the alerts name: (UPN, object id) from the fixture tenant.
const USERS: [(&str, &str); 3] = [
    (
        "alex.wilber@contoso.com",
        "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
    ),
    (
        "megan.o'brien@contoso.com",
        "a1e7d1c2-5b3f-4c8e-9d21-000000000003",
    ),
    (
        "AdeleVance_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "a1e7d1c2-5b3f-4c8e-9d21-000000000002",
    ),
];

/// Effects counted by the emulator that a containment run causes.
const EFFECTS: [&str; 7] = [
    "user_disabled",
    "sessions_revoked",
    "password_profile_updated",
    "group_member_added",
    "snapshots_created",
    "locks_created",
    "role_assignments_deleted",
];

fn alert_for(i: usize) -> Vec<u8> {
    let (upn, oid) = USERS[i];
    let text = String::from_utf8(common::fixture("lacework-details.json")).unwrap();
    let text = text
        .replace("alex.wilber@contoso.com", &upn.replace('\'', "\\u0027"))
        .replace("a1e7d1c2-5b3f-4c8e-9d21-000000000001", oid);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data"]["alertId"] = serde_json::json!(70_000 + i);
    serde_json::to_vec(&v).unwrap()
}

fn effects(emulator: &EmulatorHandle) -> BTreeMap<&'static str, u64> {
    EFFECTS
        .iter()
        .map(|e| (*e, emulator.state().counter(e)))
        .collect()
}

fn config_text(base: &str, store_url: &str) -> String {
    format!(
        "{}\n[engine]\nlease_secs = 1\n\n[server]\nlisten = \"127.0.0.1:0\"\n",
        common::emulator_toml(base, store_url, "enforce")
    )
}

async fn service_for(
    dir: &std::path::Path,
    base: &str,
    store_url: &str,
) -> std::sync::Arc<Service> {
    let config = common::config_from_toml(dir, &config_text(base, store_url));
    riposte::app::App::new(config)
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap()
}

fn spawn_serve(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RIPOSTE_LOG", "riposte=info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(config.with_file_name("serve.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .unwrap()
}

async fn wait_all_finished(service: &Service, runs: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let all = service.runs(100, None).await.unwrap();
        if all.len() == runs
            && all
                .iter()
                .all(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::Failed))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// What an uninterrupted service does with the same alerts.
async fn reference_effects() -> BTreeMap<&'static str, u64> {
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ref.db").display());
    let service = service_for(dir.path(), &emulator.base_url(), &url).await;
    for i in 0..USERS.len() {
        service
            .ingest(
                "lacework",
                &alert_for(i),
                &Caller {
                    name: "lacework".into(),
                },
            )
            .await
            .unwrap();
    }
    service.process_alerts().await.unwrap();
    for run in service.runs(10, None).await.unwrap() {
        service.drive(&run.id, None).await.unwrap();
    }
    for run in service.runs(10, None).await.unwrap() {
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "reference run {} ended {:?}",
            run.id,
            run.status
        );
    }
    let e = effects(&emulator);
    emulator.shutdown().await;
    e
}

async fn killed_many_times(store_url: String, dir: tempfile::TempDir) {
    riposte::connectors::install_crypto_provider();
    let expected = reference_effects().await;
    assert!(expected.values().all(|n| *n > 0), "{expected:?}");

    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    // Every request takes a while, so kills land in the middle of runs.
    emulator
        .state()
        .add_fault(FaultSpec {
            route: "*".into(),
            kind: FaultKind::Latency,
            latency_ms: Some(40),
            retry_after: None,
            status: None,
            count: None,
        })
        .unwrap();
    let base = emulator.base_url();
    let config_path = dir.path().join("riposte.toml");
    std::fs::write(&config_path, config_text(&base, &store_url)).unwrap();
    let ingest = service_for(dir.path(), &base, &store_url).await;
    for i in 0..USERS.len() {
        ingest
            .ingest(
                "lacework",
                &alert_for(i),
                &Caller {
                    name: "lacework".into(),
                },
            )
            .await
            .unwrap();
    }

    // Kill at many points: while matching, planning, in the middle of steps, between steps.
    for after_ms in [60u64, 250, 1000, 180, 200, 220, 250, 280, 320, 400, 500] {
        let mut child = spawn_serve(&config_path);
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown code runs
        child.wait().unwrap();
        let statuses: Vec<_> = ingest
            .runs(10, None)
            .await
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        eprintln!("killed after {after_ms} ms: {statuses:?}");
        // Let the dead worker's leases lapse, as they would for a replica taking over.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let mut child = spawn_serve(&config_path);
    let finished = wait_all_finished(&ingest, USERS.len(), Duration::from_secs(90)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    if !finished {
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let runs: Vec<_> = ingest
            .runs(10, None)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.id.clone(), r.status))
            .collect();
        panic!(
            "runs did not finish: {runs:?}\nserve.log, newest first:\n{}",
            tail.join("\n")
        );
    }

    let runs = ingest.runs(10, None).await.unwrap();
    assert_eq!(
        runs.len(),
        USERS.len(),
        "one run per alert: none lost, none doubled"
    );
    for run in &runs {
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "run {} ended {:?}: {:#?}",
            run.id,
            run.status,
            ingest.run(&run.id).await.unwrap().report
        );
    }
    assert_eq!(
        effects(&emulator),
        expected,
        "every effect exactly as often as without crashes"
    );
    assert!(ingest.store().verify_audit().await.unwrap() > 0);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_many_points_loses_nothing_and_repeats_nothing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("riposte.db").display());
    killed_many_times(url, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_many_points_loses_nothing_and_repeats_nothing_postgres() {
    let Some(url) = common::postgres_url("crash").await else {
        eprintln!("RIPOSTE_TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    killed_many_times(url, tempfile::tempdir().unwrap()).await;
}
