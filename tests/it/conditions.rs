//! Run-time conditions and `on_error: continue`, end to end in enforce mode: the service plans
//! with real lookups against the emulator, executes, and the emulator's own state says what
//! happened. Faults stand in for a misconfigured workspace and a refused disable.

use crate::common;

use std::sync::Arc;

use riposte::engine::service::{Caller, ServiceApi};
use riposte::engine::{Service, playbook_spec};
use riposte::store::RunStatus;
use riposte_emulator::{FaultKind, FaultSpec, Tenant};
use serde_json::Value;

const ALEX_UPN: &str = "alex.wilber@contoso.com";

fn caller(name: &str) -> Caller {
    Caller { name: name.into() }
}

/// An error fault on every request matching `route`.
fn failing(route: &str, status: u16) -> FaultSpec {
    FaultSpec {
        route: route.into(),
        kind: FaultKind::Error,
        latency_ms: None,
        retry_after: None,
        status: Some(status),
        count: None,
    }
}

/// Drives every claimable run to where it stops.
async fn settle(service: &Arc<Service>) {
    service.process_alerts().await.unwrap();
    for _ in 0..20 {
        let open: Vec<_> = service
            .runs(100, None)
            .await
            .unwrap()
            .into_iter()
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

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {report:#}"))
}

/// An enforcing service on the emulator whose notifications go to a webhook receiver.
async fn service_with_notifications() -> (
    riposte_emulator::EmulatorHandle,
    Arc<Service>,
    tempfile::TempDir,
    wiremock::MockServer,
) {
    riposte::connectors::install_crypto_provider();
    let emulator = riposte_emulator::Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        Tenant::default_fixture(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
    let webhook = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .expect(1)
        .mount(&webhook)
        .await;
    let toml = common::emulator_toml(&emulator.base_url(), &store, "enforce").replace(
        "[actions]\n",
        &format!(
            "[actions]\nnotify_webhook_url = \"{}/hooks/secops\"\n",
            webhook.uri()
        ),
    );
    let config = common::config_from_toml(dir.path(), &toml);
    let service = riposte::app::App::new(config)
        .unwrap()
        .service_with(riposte::engine::ServiceOptions::default())
        .await
        .unwrap();
    (emulator, service, dir, webhook)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_workspace_never_blocks_containment_in_the_bundled_playbook() {
    let (emulator, service, _dir, webhook) = service_with_notifications().await;
    // The workspace riposte is configured with refuses every query.
    emulator
        .state()
        .add_fault(failing("POST /v1/workspaces/*/query", 403))
        .unwrap();
    service
        .ingest(
            "lacework",
            &common::fixture("lacework-webhook.json"),
            &caller("lacework-webhook"),
        )
        .await
        .unwrap();
    settle(&service).await;

    let runs = service.runs(10, None).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let view = service.run(&runs[0].id).await.unwrap();
    let report = view.report.clone().expect("the run executed");
    assert_eq!(view.run.status, RunStatus::Succeeded, "{report:#}");
    assert_eq!(report["outcome"], "succeeded");
    let state = emulator.state();
    assert_eq!(state.counter("user_disabled"), 1);
    assert_eq!(state.counter("sessions_revoked"), 1);
    assert!(state.counter("role_assignments_deleted") >= 1);
    assert_eq!(state.counter("group_member_added"), 1);
    // The failed queries are in the report, each with a warning naming it.
    for id in ["anomalies", "account_activity"] {
        let query = step(&report, id);
        assert_eq!(query["outcome"], "failed", "{query:#}");
        assert!(
            query["reason"].as_str().is_some_and(|r| r.contains("403")),
            "{query:#}"
        );
    }
    let warnings = report["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].as_str().unwrap().contains("`anomalies`"));
    assert!(warnings[1].as_str().unwrap().contains("`account_activity`"));
    for id in [
        "suspend",
        "revoke",
        "reset_password",
        "require_mfa",
        "notify",
    ] {
        assert_eq!(
            step(&report, id)["outcome"],
            "succeeded",
            "{id}: {report:#}"
        );
    }
    assert_eq!(step(&report, "activity")["outcome"], "succeeded");
    // The run's timeline shows the failed step too.
    assert!(
        view.timeline
            .iter()
            .any(|e| e.step_id == "anomalies" && e.state == riposte::store::StepState::Failed),
        "{:#?}",
        view.timeline
    );
    // The team was told, once.
    webhook.verify().await;
    emulator.shutdown().await;
}

/// Disables Alex; if (and only if) the disable failed, revokes their sessions instead.
const FALLBACK: &str = "name: disable-or-revoke\nsteps:\n  - id: user\n    uses: entra.get_user\n    with: { user: \"${{ alert.principal.upn }}\" }\n  - id: suspend\n    uses: entra.disable_user\n    needs: [user]\n    with: { user: \"${{ steps.user.outputs.id }}\" }\n  - id: revoke_instead\n    uses: entra.revoke_sessions\n    needs: [suspend]\n    if: steps.suspend.status == 'failed'\n    with: { user: \"${{ steps.user.outputs.id }}\" }\n";

async fn run_fallback(fault: Option<FaultSpec>) -> (Value, riposte_emulator::EmulatorState) {
    let (emulator, service, dir) =
        common::service_on_emulator(Tenant::default_fixture(), "enforce").await;
    if let Some(f) = fault {
        emulator.state().add_fault(f).unwrap();
    }
    let file = dir.path().join("fallback.yaml");
    std::fs::write(&file, FALLBACK).unwrap();
    let playbook = riposte::playbook::load_file(&file).unwrap();
    let alert = riposte::alert::Alert::manual(
        "manual-1",
        "manual run",
        Some(ALEX_UPN.to_string()),
        &[],
        chrono::Utc::now(),
    );
    let run = service
        .run_now(
            playbook_spec(&playbook, Default::default()),
            &alert,
            &caller("cli:responder"),
            &|_| {},
        )
        .await
        .unwrap();
    let view = service.run(&run.id).await.unwrap();
    let plan = view.run.plan.clone().expect("a plan");
    // The plan showed the fallback's exact request and carried its condition.
    let planned = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "revoke_instead")
        .unwrap();
    assert_eq!(planned["condition"], "steps.suspend.status == 'failed'");
    assert_eq!(planned["status"], "planned", "{planned:#}");
    assert!(
        planned["requests"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/revokeSignInSessions")
    );
    let mut report = view.report.expect("the run executed");
    report["run_status"] = serde_json::to_value(view.run.status).unwrap();
    let state = emulator.state();
    emulator.shutdown().await;
    (report, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_on_a_failed_disable_runs_only_when_the_disable_failed() {
    let (report, state) = run_fallback(Some(failing("PATCH /v1.0/users/*", 403))).await;
    assert_eq!(step(&report, "suspend")["outcome"], "failed", "{report:#}");
    assert_eq!(
        step(&report, "revoke_instead")["outcome"],
        "succeeded",
        "{report:#}"
    );
    assert_eq!(state.counter("user_disabled"), 0);
    assert_eq!(state.counter("sessions_revoked"), 1);
    // `suspend` fails the run (its on_error is `fail`); the fallback still ran.
    assert_eq!(report["run_status"], "failed");

    let (report, state) = run_fallback(None).await;
    assert_eq!(report["run_status"], "succeeded", "{report:#}");
    assert_eq!(step(&report, "suspend")["outcome"], "succeeded");
    let fallback = step(&report, "revoke_instead");
    assert_eq!(fallback["outcome"], "skipped");
    assert_eq!(
        fallback["reason"],
        "condition false: steps.suspend.status == 'failed'"
    );
    assert_eq!(state.counter("user_disabled"), 1);
    assert_eq!(state.counter("sessions_revoked"), 0);
}
