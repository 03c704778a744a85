//! Trust boundaries that the run spec and strict ids close: nothing in an alert chooses the
//! playbook's inputs, and an ARM id that would climb to another resource group is no target.

use crate::common;

use std::sync::Arc;

use riposte::engine::Service;
use riposte::engine::service::{Caller, ServiceApi};
use riposte_emulator::{EmulatorHandle, Tenant};
use serde_json::Value;

const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";

struct World {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let (emulator, service, dir) =
        common::service_on_emulator(Tenant::default_fixture(), "dry-run").await;
    World {
        emulator,
        service,
        _dir: dir,
    }
}

/// Ingests a Lacework Details alert edited by `edit` and returns the plan of its run.
async fn plan_for(world: &World, edit: impl FnOnce(&mut Value)) -> Value {
    let mut alert: Value =
        serde_json::from_slice(&common::fixture("lacework-details.json")).unwrap();
    edit(&mut alert);
    let caller = Caller {
        name: "token:lacework".into(),
    };
    world
        .service
        .ingest("lacework", &serde_json::to_vec(&alert).unwrap(), &caller)
        .await
        .unwrap();
    world.service.process_alerts().await.unwrap();
    let runs = world.service.runs(10, None).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    world.service.drive(&runs[0].id, None).await.unwrap();
    world
        .service
        .run(&runs[0].id)
        .await
        .unwrap()
        .run
        .plan
        .unwrap()
}

/// The old engine read a run's inputs from `alert.raw.inputs`: an alert could shrink the
/// evidence window to one second. Inputs now come only from the run spec (the playbook's
/// defaults, `--input`, or a responder's invoke call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_body_cannot_set_the_playbooks_inputs() {
    let world = world().await;
    let plan = plan_for(&world, |a| {
        a["inputs"] = serde_json::json!({"lookback": "PT1S"});
        a["data"]["inputs"] = serde_json::json!({"lookback": "PT1S"});
    })
    .await;
    assert_eq!(plan["inputs"]["lookback"], "P30D", "{:#}", plan["inputs"]);
    assert!(
        !plan["steps"].to_string().contains("PT1S"),
        "{:#}",
        plan["steps"]
    );
    world.emulator.shutdown().await;
}

/// `..` in a resource id of the alert would make the request reach another resource group
/// than the one the plan and the policy saw; such an id is not a target at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_id_that_climbs_to_another_group_is_no_target() {
    let world = world().await;
    // Six `..` climb from the VM back to the subscription, then into rg-other.
    let climbing = format!(
        "{VM}/../../../../../../resourceGroups/rg-other/providers/Microsoft.Compute/virtualMachines/vm-x"
    );
    let plan = plan_for(&world, |a| {
        let text = a.to_string().replace(VM, &climbing);
        *a = serde_json::from_str(&text).unwrap();
    })
    .await;
    let urls: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["requests"].as_array().cloned().unwrap_or_default())
        .map(|r| r["url"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        urls.iter()
            .all(|u| !u.contains("..") && !u.contains("rg-other") && !u.contains("%2E%2E")),
        "{urls:#?}"
    );
    let read = world.emulator.state().requests();
    assert!(
        read.iter()
            .all(|r| !r.path.contains("rg-other") && !r.path.contains("..")),
        "{read:#?}"
    );
    world.emulator.shutdown().await;
}

/// An alert naming thousands of resources would cost tens of thousands of ARM reads: more
/// than `[alerts] max_resources` is refused at the door (400), and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_naming_too_many_resources_is_refused_and_not_stored() {
    let world = world().await;
    let resources: Vec<String> = (0..21)
        .map(|i| {
            format!(
                "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-{i}"
            )
        })
        .collect();
    let body = serde_json::json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/providers/Microsoft.AlertsManagement/alerts/storm",
                "alertRule": "First access",
                "severity": "Sev1",
                "firedDateTime": "2026-11-20T04:00:00Z",
                "alertTargetIDs": resources,
            },
            "alertContext": {}
        }
    });
    let caller = Caller {
        name: "token:monitor".into(),
    };
    let err = world
        .service
        .ingest(
            "azure-monitor",
            &serde_json::to_vec(&body).unwrap(),
            &caller,
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400, "{err}");
    assert!(err.to_string().contains("max_resources"), "{err}");
    assert!(
        world
            .service
            .store()
            .pending_alerts(10)
            .await
            .unwrap()
            .is_empty()
    );
    world.emulator.shutdown().await;
}

/// One budget of upstream reads per planning (`[actions] max_planning_reads`): a plan that
/// needs more fails with an error naming the budget, and no partial plan is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planning_past_its_read_budget_fails_and_stores_no_plan() {
    let (emulator, service, _dir) =
        common::service_on_emulator_with(Tenant::default_fixture(), "enforce", |toml| {
            assert!(
                toml.contains("[actions]\n"),
                "the emulator's configuration changed"
            );
            toml.replacen("[actions]\n", "[actions]\nmax_planning_reads = 3\n", 1)
        })
        .await;
    let caller = Caller {
        name: "token:lacework".into(),
    };
    service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller,
        )
        .await
        .unwrap();
    service.process_alerts().await.unwrap();
    let runs = service.runs(10, None).await.unwrap();
    emulator.state().clear_requests();
    let err = service.drive(&runs[0].id, None).await.unwrap_err();
    assert!(
        err.to_string().contains("[actions] max_planning_reads"),
        "{err}"
    );
    assert!(service.run(&runs[0].id).await.unwrap().run.plan.is_none());
    let upstream: Vec<_> = emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.api != "entra")
        .collect();
    assert_eq!(upstream.len(), 3, "{upstream:#?}");
    emulator.shutdown().await;
}
