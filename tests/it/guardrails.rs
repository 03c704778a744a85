//! The shipped guardrails, end to end in enforce mode against the emulator: nothing is sent
//! for a denied step, approval-gated steps wait, the blast radius is capped, and protected
//! resources are never modified (their disks are still snapshotted).

use crate::common;

use std::sync::Arc;

use riposte::engine::Service;
use riposte::engine::service::{Caller, ServiceApi};
use riposte::plan::StepStatus;
use riposte::store::RunStatus;
use riposte_emulator::{EmulatorHandle, Tenant};

const ALEX: (&str, &str) = (
    "alex.wilber@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
);
const BREAK_GLASS: (&str, &str) = (
    "breakglass01@contoso.onmicrosoft.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000006",
);
const GLOBAL_ADMIN: (&str, &str) = (
    "grady.archie@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000005",
);

struct World {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

async fn world(tenant: Tenant) -> World {
    let (emulator, service, dir) = common::service_on_emulator(tenant, "enforce").await;
    World {
        emulator,
        service,
        _dir: dir,
    }
}

fn alert_for((upn, oid): (&str, &str), alert_id: u64) -> Vec<u8> {
    let text = String::from_utf8(common::fixture("lacework-details.json")).unwrap();
    let text = text.replace(ALEX.0, upn).replace(ALEX.1, oid);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data"]["alertId"] = serde_json::json!(alert_id);
    serde_json::to_vec(&v).unwrap()
}

/// Ingests, matches and drives the alert's run; returns the run and its plan.
async fn contain(w: &World, alert: &[u8]) -> (riposte::store::RunRecord, riposte::plan::Plan) {
    w.service
        .ingest(
            "lacework",
            alert,
            &Caller {
                name: "lacework".into(),
            },
        )
        .await
        .unwrap();
    w.service.process_alerts().await.unwrap();
    let pending = w.service.runs(100, Some(RunStatus::Pending)).await.unwrap();
    assert_eq!(pending.len(), 1);
    let run = w.service.drive(&pending[0].id, None).await.unwrap();
    let plan = w.service.plan_of(&run.id).await.unwrap().unwrap();
    (run, plan)
}

fn mutating_requests_sent(w: &World) -> usize {
    w.emulator
        .state()
        .requests()
        .iter()
        .filter(|r| {
            r.method != "GET" && !r.path.contains("/oauth2/") && !r.path.starts_with("/api/v2")
        })
        .count()
}

fn mutating_steps(plan: &riposte::plan::Plan) -> Vec<&riposte::plan::PlannedStep> {
    plan.steps
        .iter()
        .filter(|s| s.effect == riposte::actions::Effect::Mutate)
        .collect()
}

#[tokio::test]
async fn a_break_glass_account_is_never_touched() {
    let w = world(Tenant::default_fixture()).await;
    let (run, plan) = contain(&w, &alert_for(BREAK_GLASS, 80_001)).await;
    for s in mutating_steps(&plan) {
        if s.id == "snapshot" || s.id == "lock_snapshots" {
            continue; // evidence of the resource, not an action on the account
        }
        assert_eq!(s.status, StepStatus::Denied, "{} {:?}", s.id, s.policy);
    }
    let user_steps: Vec<_> = mutating_steps(&plan)
        .into_iter()
        .filter(|s| s.action.starts_with("entra."))
        .collect();
    assert!(!user_steps.is_empty());
    assert!(user_steps.iter().all(|s| s.status == StepStatus::Denied));
    assert!(
        user_steps[0]
            .policy
            .as_ref()
            .unwrap()
            .reasons
            .iter()
            .any(|r| r.contains("break-glass")),
        "{:?}",
        user_steps[0].policy
    );
    assert_eq!(w.emulator.state().counter("user_disabled"), 0);
    assert_eq!(w.emulator.state().counter("sessions_revoked"), 0);
    assert_eq!(w.emulator.state().counter("group_member_added"), 0);
    let _ = run;
    w.emulator.shutdown().await;
}

#[tokio::test]
async fn a_global_administrator_needs_approval_and_nothing_is_sent_before() {
    let w = world(Tenant::default_fixture()).await;
    let (run, plan) = contain(&w, &alert_for(GLOBAL_ADMIN, 80_002)).await;
    assert_eq!(run.status, RunStatus::AwaitingApproval);
    let user_steps: Vec<_> = mutating_steps(&plan)
        .into_iter()
        .filter(|s| s.action.starts_with("entra."))
        .collect();
    assert!(
        user_steps.iter().all(|s| matches!(
            s.status,
            StepStatus::NeedsApproval | StepStatus::AlreadySatisfied
        )),
        "{user_steps:#?}"
    );
    assert_eq!(
        user_steps
            .iter()
            .find(|s| s.id == "suspend")
            .unwrap()
            .status,
        StepStatus::NeedsApproval
    );
    assert!(
        user_steps[0]
            .policy
            .as_ref()
            .unwrap()
            .reasons
            .iter()
            .any(|r| r.contains("Global Administrator"))
    );
    assert_eq!(
        mutating_requests_sent(&w),
        0,
        "nothing is sent while the run waits"
    );
    w.emulator.shutdown().await;
}

#[tokio::test]
async fn the_eleventh_disable_in_an_hour_needs_approval() {
    let w = world(Tenant::default_fixture()).await;
    // Ten principals were contained in this tenant in the last hour.
    for i in 0..10 {
        w.service
            .store()
            .record_effect(
                "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11",
                "entra.disable_user",
                &format!("principal-{i}"),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }
    let (run, plan) = contain(&w, &alert_for(ALEX, 80_003)).await;
    let suspend = plan.steps.iter().find(|s| s.id == "suspend").unwrap();
    assert_eq!(
        suspend.status,
        StepStatus::NeedsApproval,
        "{:?}",
        suspend.policy
    );
    assert_eq!(run.status, RunStatus::AwaitingApproval);
    assert_eq!(w.emulator.state().counter("user_disabled"), 0);
    w.emulator.shutdown().await;
}

#[tokio::test]
async fn a_protected_resource_is_never_modified_but_its_disks_are_snapshotted() {
    let text = std::fs::read_to_string(common::root().join("tests/fixtures/tenant.yaml")).unwrap();
    // Tag vm-web-01 riposte:protected.
    let marker = "      name: vm-web-01\n";
    assert!(text.contains(marker), "fixture layout changed");
    let text = text.replacen(
        marker,
        &format!("{marker}      tags: {{ \"riposte:protected\": \"true\" }}\n"),
        1,
    );
    let w = world(Tenant::from_yaml_str(&text).unwrap()).await;
    let (run, plan) = contain(&w, &alert_for(ALEX, 80_004)).await;
    let remove = plan.steps.iter().find(|s| s.id == "remove_roles").unwrap();
    assert_eq!(remove.status, StepStatus::Denied, "{:?}", remove.policy);
    let snapshot = plan.steps.iter().find(|s| s.id == "snapshot").unwrap();
    assert_eq!(
        snapshot.status,
        StepStatus::Planned,
        "{:?}",
        snapshot.policy
    );
    let _ = run;
    assert_eq!(
        w.emulator.state().counter("role_assignments_deleted"),
        0,
        "the protected VM's access is left alone"
    );
    assert_eq!(
        w.emulator.state().counter("snapshots_created"),
        2,
        "its disks are still preserved"
    );
    assert_eq!(
        w.emulator.state().counter("user_disabled"),
        1,
        "the user is still contained"
    );
    w.emulator.shutdown().await;
}
