//! `riposte alerts list|retry` and `riposte cancel` on the local store: what an operator does
//! about an alert that could not be enriched and a run that should not go ahead.

use crate::common;

use std::process::Output;
use std::time::Duration;

use riposte::connectors::{Connectors, HttpOptions};
use riposte::engine::service::{Caller, ServiceApi};
use riposte::store::{AlertStatus, RunStatus};
use riposte_emulator::{Emulator, EmulatorHandle, FaultKind, FaultSpec, Tenant};
use serde_json::{Value, json};

struct World {
    emulator: EmulatorHandle,
    dir: tempfile::TempDir,
}

impl World {
    /// One attempt only (`[engine] retry_attempts = 1`): a failed enrichment fails the alert.
    fn start() -> World {
        riposte::connectors::install_crypto_provider();
        let emulator =
            Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
        let toml = format!(
            "{}\n[engine]\nretry_attempts = 1\n",
            common::emulator_toml(&emulator.base_url(), &store, "dry-run")
        );
        std::fs::write(dir.path().join("riposte.toml"), toml).unwrap();
        World { emulator, dir }
    }

    /// The service on the same store, in this process, with an HTTP layer that does not retry.
    async fn service(&self) -> std::sync::Arc<riposte::engine::Service> {
        let config =
            riposte::config::Config::load(Some(&self.dir.path().join("riposte.toml"))).unwrap();
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
        app.service().await.unwrap()
    }

    async fn riposte(&self, args: &[&str]) -> Output {
        let dir = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
                .current_dir(&dir)
                .arg("--config")
                .arg(dir.join("riposte.toml"))
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("USER", "oncall")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

fn refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(needle),
        "stderr lacks `{needle}`:\n{stderr}"
    );
}

fn caller() -> Caller {
    Caller {
        name: "token:lacework".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_alert_is_listed_with_its_reason_and_retried_once() {
    let world = World::start();
    world
        .emulator
        .state()
        .add_fault(FaultSpec {
            route: "GET /api/v2/Alerts/*".into(),
            kind: FaultKind::Error,
            latency_ms: None,
            retry_after: None,
            status: Some(503),
            count: None,
        })
        .unwrap();
    let service = world.service().await;
    let webhook = common::fixture("lacework-webhook.json");
    let poison = service
        .ingest("lacework", &webhook, &caller())
        .await
        .unwrap();
    service.process_alerts().await.unwrap();
    drop(service);

    let listed: Value = serde_json::from_str(&ok(&world
        .riposte(&["alerts", "list", "--status", "failed", "--format", "json"])
        .await))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["id"], json!(poison.alert_id));
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["attempts"], 1);
    assert!(
        listed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 1 attempts"),
        "{listed:#?}"
    );
    let table = ok(&world.riposte(&["alerts", "list"]).await);
    assert!(
        table.contains(&poison.alert_id) && table.contains("failed"),
        "{table}"
    );
    let none: Value = serde_json::from_str(&ok(&world
        .riposte(&["alerts", "list", "--status", "pending", "--format", "json"])
        .await))
    .unwrap();
    assert_eq!(none, json!([]));
    refused(
        &world
            .riposte(&["alerts", "list", "--status", "stuck"])
            .await,
        "pending, matched, unmatched, failed",
    );

    let said = ok(&world.riposte(&["alerts", "retry", &poison.alert_id]).await);
    assert!(said.contains("pending"), "{said}");
    let service = world.service().await;
    let alert = service
        .store()
        .get_alert(&poison.alert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((alert.status, alert.attempts), (AlertStatus::Pending, 0));
    refused(
        &world.riposte(&["alerts", "retry", &poison.alert_id]).await,
        "only a failed alert can be retried",
    );
    refused(
        &world.riposte(&["alerts", "retry", "no-such-alert"]).await,
        "no alert `no-such-alert`",
    );
    world.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_pending_run_once() {
    let world = World::start();
    let service = world.service().await;
    service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller(),
        )
        .await
        .unwrap();
    service.process_alerts().await.unwrap();
    let run = service.runs(10, None).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Pending);
    drop(service);

    let said = ok(&world.riposte(&["cancel", &run.id]).await);
    assert!(said.contains("cancelled"), "{said}");
    refused(
        &world.riposte(&["cancel", &run.id]).await,
        "only a pending, planning or awaiting_approval run can be cancelled",
    );
    let listed: Value = serde_json::from_str(&ok(&world
        .riposte(&["runs", "list", "--status", "cancelled", "--format", "json"])
        .await))
    .unwrap();
    assert_eq!(listed[0]["id"], json!(run.id));
    let service = world.service().await;
    let audit = service.store().audit_records(1, 1000).await.unwrap();
    let cancel = audit.iter().find(|r| r.kind == "run.cancelled").unwrap();
    assert_eq!(cancel.actor.as_deref(), Some("cli:oncall"));
    world.emulator.shutdown().await;
}
