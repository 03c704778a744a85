//! Facts for every target (DESIGN.md §3 trust boundaries): before the guardrails decide on a
//! mutating step, riposte reads the target itself — a resource's tags, what a `principal` is —
//! whether or not the playbook has a lookup step, and a single action too. What cannot be
//! read is not acted on.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use riposte::engine::Service;
use riposte::engine::service::{Caller, Invocation, ServiceApi};
use riposte::plan::{Plan, StepStatus};
use riposte::store::RunStatus;
use riposte_emulator::{EmulatorHandle, FaultKind, FaultSpec, Tenant};
use serde_json::{Value, json};

const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";
const ALEX_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
/// A deployment pipeline's service principal (object id, application id), added to the
/// fixture tenant with Contributor on the VM.
const PIPELINE: (&str, &str) = (
    "7a1b2c3d-0000-4e5f-8a9b-000000000a01",
    "7a1b2c3d-0000-4e5f-8a9b-000000000a02",
);

struct World {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

/// The fixture tenant with vm-web-01 tagged `riposte:protected` (when `protected`) and the
/// pipeline's service principal holding a role on the VM.
fn tenant(protected: bool) -> Tenant {
    let mut text =
        std::fs::read_to_string(common::root().join("tests/fixtures/tenant.yaml")).unwrap();
    let marker = "      name: vm-web-01\n";
    assert!(text.contains(marker), "fixture layout changed");
    if protected {
        text = text.replacen(
            marker,
            &format!("{marker}      tags: {{ \"riposte:protected\": \"true\" }}\n"),
            1,
        );
    }
    let apps = "apps:\n";
    let app = format!(
        "{apps}  - client_id: {}\n    display_name: deploy-pipeline\n    object_id: {}\n",
        PIPELINE.1, PIPELINE.0
    );
    let assignments = "  role_assignments:\n";
    let assignment = format!(
        "{assignments}    - name: 4f8e2d1c-0b3a-4c5d-9e6f-000000000899\n      scope: {VM}\n      principal_id: {}\n      principal_type: ServicePrincipal\n      role_definition: b24988ac-6180-42a0-ab88-20f7382dd24c\n",
        PIPELINE.0
    );
    assert!(text.contains(apps) && text.contains(assignments));
    let text = text
        .replacen(apps, &app, 1)
        .replacen(assignments, &assignment, 1);
    Tenant::from_yaml_str(&text).unwrap()
}

async fn world(tenant: Tenant, edit: impl FnOnce(String) -> String) -> World {
    let (emulator, service, dir) = common::service_on_emulator_with(tenant, "enforce", edit).await;
    World {
        emulator,
        service,
        _dir: dir,
    }
}

fn responder() -> Caller {
    Caller {
        name: "token:responder".into(),
    }
}

/// Runs one action as `POST /v1/actions/{name}` does and drives it; the run and its plan.
async fn act(w: &World, action: &str, params: Value) -> (RunStatus, Plan) {
    let params: BTreeMap<String, Value> =
        serde_json::from_value(params).expect("params are an object");
    let id = w
        .service
        .invoke_action(action, params, &responder())
        .await
        .unwrap();
    finish(w, &id).await
}

async fn finish(w: &World, id: &str) -> (RunStatus, Plan) {
    let mut run = w.service.drive(id, None).await.unwrap();
    if run.status == RunStatus::Running {
        run = w.service.drive(id, None).await.unwrap();
    }
    let plan = w.service.plan_of(id).await.unwrap().expect("a plan");
    (run.status, plan)
}

fn mutations(w: &World) -> usize {
    w.emulator
        .state()
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.api != "entra")
        .count()
}

/// A single action names only a resource id: the planner reads the resource's tags itself,
/// so a protected VM is not locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_action_on_a_protected_resource_is_denied() {
    let w = world(tenant(true), |t| t).await;
    let (status, plan) = act(&w, "arm.lock_resource", json!({"resource": VM})).await;
    assert_eq!(status, RunStatus::Denied, "{plan:#?}");
    let reasons = &plan.steps[0].policy.as_ref().unwrap().reasons;
    assert!(
        reasons.iter().any(|r| r.contains("riposte:protected")),
        "{reasons:?}"
    );
    assert_eq!(mutations(&w), 0, "something was sent");
    assert_eq!(w.emulator.state().counter("locks_created"), 0);

    // The same action on an unprotected VM is allowed and runs: the denial is the tag's.
    let w2 = world(tenant(false), |t| t).await;
    let (status, plan) = act(&w2, "arm.lock_resource", json!({"resource": VM})).await;
    assert_eq!(status, RunStatus::Succeeded, "{plan:#?}");
    w.emulator.shutdown().await;
    w2.emulator.shutdown().await;
}

/// A playbook that locks the alert's resource without an `arm.get_resource` step is guarded
/// on the resource's real tags all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_without_a_resource_read_is_guarded_on_the_resources_tags() {
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        playbooks.path().join("lock.yaml"),
        "name: lock-touched\nversion: \"1.0.0\"\ndescription: Lock what was touched.\nowner: secops@contoso.com\non:\n  - kind: first_access\nsteps:\n  - id: lock\n    uses: arm.lock_resource\n    with:\n      resource: ${{ alert.resources[0].id }}\n",
    )
    .unwrap();
    let shipped = common::root().join("playbooks").display().to_string();
    let ours = playbooks.path().display().to_string();
    let w = world(tenant(true), move |t| t.replace(&shipped, &ours)).await;
    let id = w
        .service
        .invoke_playbook(
            "lock-touched",
            Invocation {
                inputs: BTreeMap::new(),
                principal: Some(ALEX_ID.into()),
                resources: vec![VM.into()],
            },
            &responder(),
        )
        .await
        .unwrap();
    let (status, plan) = finish(&w, &id).await;
    assert_eq!(status, RunStatus::Denied, "{plan:#?}");
    assert_eq!(plan.steps[0].status, StepStatus::Denied);
    assert_eq!(w.emulator.state().counter("locks_created"), 0);
    w.emulator.shutdown().await;
}

/// `arm.remove_role_assignments` may name a service principal. The planner asks the
/// directory what the principal is; a break-glass entry naming the app by its application
/// id keeps its access, and nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_service_principal_keeps_its_role_assignments() {
    let entry = format!(
        "break_glass = [\"a1e7d1c2-5b3f-4c8e-9d21-000000000006\", \"{}\"]",
        PIPELINE.1
    );
    let w = world(tenant(false), move |t| {
        let shipped = "break_glass = [\"a1e7d1c2-5b3f-4c8e-9d21-000000000006\"]";
        assert!(t.contains(shipped), "the emulator's configuration changed");
        t.replace(shipped, &entry)
    })
    .await;
    let params = json!({"resource": VM, "principal": PIPELINE.0, "include_inherited": false});
    let (status, plan) = act(&w, "arm.remove_role_assignments", params.clone()).await;
    assert_eq!(status, RunStatus::Denied, "{plan:#?}");
    let reasons = &plan.steps[0].policy.as_ref().unwrap().reasons;
    assert!(
        reasons
            .iter()
            .any(|r| r == "service principal deploy-pipeline is a break-glass account: riposte never acts on it"),
        "{reasons:?}"
    );
    assert_eq!(w.emulator.state().counter("role_assignments_deleted"), 0);

    // Without the entry the same service principal loses its assignment.
    let w2 = world(tenant(false), |t| t).await;
    let (status, plan) = act(&w2, "arm.remove_role_assignments", params).await;
    assert_eq!(status, RunStatus::Succeeded, "{plan:#?}");
    assert_eq!(w2.emulator.state().counter("role_assignments_deleted"), 1);
    w.emulator.shutdown().await;
    w2.emulator.shutdown().await;
}

/// Facts that cannot be read are never "unknown, so allowed": a refused resource read or a
/// refused directory read denies the step, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_that_cannot_be_read_deny_the_step() {
    let w = world(tenant(false), |t| t).await;
    w.emulator
        .state()
        .add_fault(FaultSpec {
            route: "GET */virtualMachines/vm-web-01".into(),
            kind: FaultKind::Error,
            latency_ms: None,
            retry_after: None,
            status: Some(403),
            count: None,
        })
        .unwrap();
    let (status, plan) = act(&w, "arm.lock_resource", json!({"resource": VM})).await;
    assert_eq!(status, RunStatus::Denied, "{plan:#?}");
    let reasons = &plan.steps[0].policy.as_ref().unwrap().reasons;
    assert!(
        reasons[0].starts_with(&format!("cannot read the facts of `{VM}`")),
        "{reasons:?}"
    );
    w.emulator.state().clear_faults();
    w.emulator
        .state()
        .add_fault(FaultSpec {
            route: "GET */directoryObjects/*".into(),
            kind: FaultKind::Error,
            latency_ms: None,
            retry_after: None,
            status: Some(403),
            count: None,
        })
        .unwrap();
    let (status, plan) = act(
        &w,
        "arm.remove_role_assignments",
        json!({"resource": VM, "principal": ALEX_ID}),
    )
    .await;
    assert_eq!(status, RunStatus::Denied, "{plan:#?}");
    assert_eq!(mutations(&w), 0, "something was sent");
    w.emulator.shutdown().await;
}
