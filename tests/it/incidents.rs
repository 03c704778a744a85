//! One response per incident, in enforce mode against the emulator: a storm acts once per
//! target, a late repeat of a finished incident sends nothing again, a repeat naming a new
//! resource gets a follow-up holding only the delta, the blast-radius cap holds under
//! concurrency, and a worker that lost its claim can no longer write — on SQLite, and on
//! PostgreSQL when `RIPOSTE_TEST_POSTGRES_URL` is set.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use riposte::connectors::Lookup as _;
use riposte::engine::service::{Caller, ServiceApi, ServiceError};
use riposte::engine::{Service, ServiceOptions};
use riposte::plan::StepStatus;
use riposte::store::{Fence, Joined, NewRun, RunSpec, RunStatus, RunTarget, StepState, StoreError};
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::json;

const SUB: &str = "b1c2d3e4-0000-4a5b-8c6d-000000000001";

/// Where the generic source finds each field of the alerts below.
const GENERIC: &str = r#"
[alerts.generic]
id = "/alert/uid"
title = "/alert/rule"
severity = "/alert/risk"
observed_at = "/alert/detected"
principal_upn = "/alert/actor/login"
principal_object_id = "/alert/actor/aad_object_id"
tenant_id = "/alert/actor/tenant"
resources = "/alert/targets"
operation = "/alert/action"
source_ip = "/alert/actor/ip"
"#;

struct Fixture {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

fn vm_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

fn user_id(n: usize) -> String {
    format!("b0000000-0000-4000-8000-{n:012}")
}

/// The default tenant with twenty more plain users and a second VM (one disk).
fn tenant() -> Tenant {
    let mut t = Tenant::default_fixture();
    let model = t.users[0].clone();
    for n in 0..20 {
        let mut u = model.clone();
        u.id = user_id(n);
        u.user_principal_name = format!("user{n}@contoso.com");
        u.display_name = format!("User {n}");
        u.mail = Some(u.user_principal_name.clone());
        t.users.push(u);
    }
    let mut vm = t.azure.virtual_machines[0].clone();
    vm.name = "vm-web-02".into();
    vm.os_disk = "vm-web-02_OsDisk_1".into();
    vm.data_disks = vec![];
    vm.vm_id = "0f3c9a2e-6b1d-4f7a-8c5e-000000000602".into();
    t.azure.virtual_machines.push(vm);
    let mut disk = t.azure.disks[0].clone();
    disk.name = "vm-web-02_OsDisk_1".into();
    disk.managed_by = Some(vm_id("vm-web-02"));
    disk.unique_id = "5e1f7c3a-2b4d-4e6f-8a9b-000000000703".into();
    t.azure.disks.push(disk);
    t
}

async fn fixture(guardrails: &str, postgres: bool) -> Option<Fixture> {
    fixture_with(guardrails, ServiceOptions::default(), postgres).await
}

async fn fixture_with(
    guardrails: &str,
    options: ServiceOptions,
    postgres: bool,
) -> Option<Fixture> {
    riposte::connectors::install_crypto_provider();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), tenant()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = if postgres {
        match common::postgres_url("incidents").await {
            Some(url) => url,
            None => {
                emulator.shutdown().await;
                return None;
            }
        }
    } else {
        format!("sqlite://{}", dir.path().join("riposte.db").display())
    };
    // `guardrails` lines go into the emulator configuration's own [guardrails] table.
    let toml = format!(
        "{}\n{GENERIC}",
        common::emulator_toml(&emulator.base_url(), &store_url, "enforce")
            .replace("[guardrails]\n", &format!("[guardrails]\n{guardrails}"))
    );
    let config = common::config_from_toml(dir.path(), &toml);
    let service = riposte::app::App::new(config)
        .unwrap()
        .service_with(options)
        .await
        .unwrap();
    Some(Fixture {
        emulator,
        service,
        _dir: dir,
    })
}

/// A generic first-access alert about user `n` touching `targets`.
fn alert(uid: &str, n: usize, targets: &[&str]) -> Vec<u8> {
    let targets: Vec<String> = targets.iter().map(|t| vm_id(t)).collect();
    serde_json::to_vec(&json!({
        "schema": "acme-siem/v3",
        "alert": {
            "uid": uid,
            "rule": "New Azure API Call Invoked by User Accessed Resource for the First Time",
            "risk": "high",
            "detected": "2026-04-21T04:03:00Z",
            "actor": {
                "login": format!("user{n}@contoso.com"),
                "aad_object_id": user_id(n),
                "tenant": "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11",
                "ip": "203.0.113.45"
            },
            "targets": targets,
            "action": "Microsoft.Compute/virtualMachines/runCommand/action"
        }
    }))
    .unwrap()
}

fn sender() -> Caller {
    Caller {
        name: "token:siem".into(),
    }
}

/// Lets the service's own worker run until every alert is matched and no run can move.
async fn settle(f: &Fixture) {
    let worker = f.service.spawn_worker();
    let store = f.service.store().clone();
    // A bound on polling, not an assertion on time: a broken build fails here, not hangs.
    for _ in 0..1200 {
        let pending = store
            .list_alerts(1, Some(riposte::store::AlertStatus::Pending))
            .await
            .unwrap();
        let runs = store.list_runs(10_000, None).await.unwrap();
        let moving = runs.iter().any(|r| {
            matches!(
                r.status,
                RunStatus::Pending | RunStatus::Planning | RunStatus::Running
            ) && r.follows_run_id.as_ref().is_none_or(|p| {
                runs.iter()
                    .find(|q| &q.id == p)
                    .is_none_or(|q| q.status.is_terminal())
            })
        });
        if pending.is_empty() && !moving {
            worker.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("runs did not settle");
}

/// Posts one alert (see [`alert`]) and lets the service respond to it.
async fn alert_and_settle(f: &Fixture, uid: &str, n: usize, targets: &[&str]) {
    f.service
        .ingest("generic", &alert(uid, n, targets), &sender())
        .await
        .unwrap();
    settle(f).await;
}

fn counter(f: &Fixture, name: &str) -> u64 {
    f.emulator.state().counter(name)
}

async fn a_storm_acts_once_per_target(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    // 500 alerts about five users, posted at once while the worker matches and executes.
    let worker = f.service.spawn_worker();
    let posts = (0..500).map(|i| {
        let service = Arc::clone(&f.service);
        tokio::spawn(async move {
            let body = alert(&format!("STORM-{i}"), i % 5, &["vm-web-01"]);
            service.ingest("generic", &body, &sender()).await.unwrap();
        })
    });
    for p in futures::future::join_all(posts).await {
        p.unwrap();
    }
    worker.stop().await;
    settle(&f).await;
    let runs = f.service.store().list_runs(1000, None).await.unwrap();
    assert_eq!(runs.len(), 5, "one run per user");
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{:?}",
        runs.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        runs.iter().map(|r| r.alerts.len()).sum::<usize>(),
        500,
        "every alert is attached to its incident's run"
    );
    // Effects ÷ distinct targets = 1 for every kind: five users, each VM's two disks once
    // per incident.
    assert_eq!(counter(&f, "user_disabled"), 5);
    assert_eq!(counter(&f, "sessions_revoked"), 5);
    assert_eq!(counter(&f, "group_member_added"), 5);
    assert_eq!(counter(&f, "snapshots_created"), 10);
    assert_eq!(counter(&f, "locks_created"), 10);
    f.emulator.shutdown().await;
}

async fn a_late_repeat_of_a_finished_incident_sends_nothing_again(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    alert_and_settle(&f, "FIRST", 1, &["vm-web-01"]).await;
    let before = f.emulator.state().counters();
    assert_eq!(counter(&f, "user_disabled"), 1);
    // The detector fires again after the run finished: it joins the finished run.
    alert_and_settle(&f, "AGAIN", 1, &["vm-web-01"]).await;
    let runs = f.service.store().list_runs(10, None).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].alerts.len(), 2);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    let after = f.emulator.state().counters();
    for kind in [
        "user_disabled",
        "sessions_revoked",
        "snapshots_created",
        "locks_created",
    ] {
        assert_eq!(before.get(kind), after.get(kind), "{kind} was sent again");
    }
    f.emulator.shutdown().await;
}

async fn a_repeat_naming_a_new_resource_gets_a_follow_up_for_it_alone(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    alert_and_settle(&f, "FIRST", 2, &["vm-web-01"]).await;
    assert_eq!(counter(&f, "snapshots_created"), 2);
    // Both VMs now: only vm-web-02 is new to the incident.
    alert_and_settle(&f, "SECOND", 2, &["vm-web-01", "vm-web-02"]).await;
    let mut runs = f.service.store().list_runs(10, None).await.unwrap();
    runs.sort_by_key(|r| r.created_at);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let follow = &runs[1];
    assert_eq!(follow.follows_run_id.as_deref(), Some(runs[0].id.as_str()));
    assert_eq!(follow.incident_id.as_deref(), Some(runs[0].id.as_str()));
    assert_eq!(follow.status, RunStatus::Succeeded);
    let plan = f.service.plan_of(&follow.id).await.unwrap().unwrap();
    let resources: Vec<&str> = plan.alert.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(resources, [vm_id("vm-web-02")], "only the delta is planned");
    for id in ["suspend", "revoke", "reset_password", "require_mfa"] {
        let step = plan.steps.iter().find(|s| s.id == id).unwrap();
        assert_eq!(step.status, StepStatus::AlreadySatisfied, "{id}: {step:#?}");
        assert!(step.requests.is_empty(), "{id} sends nothing");
    }
    let snapshot = plan.steps.iter().find(|s| s.id == "snapshot").unwrap();
    assert!(
        snapshot
            .requests
            .iter()
            .all(|r| r.url.contains("vm-web-02")),
        "{:#?}",
        snapshot.requests
    );
    assert_eq!(counter(&f, "user_disabled"), 1);
    assert_eq!(counter(&f, "sessions_revoked"), 1);
    assert_eq!(counter(&f, "group_member_added"), 1);
    assert_eq!(counter(&f, "snapshots_created"), 3, "vm-web-02's one disk");
    f.emulator.shutdown().await;
}

async fn the_blast_radius_cap_holds_under_concurrency(postgres: bool) {
    let Some(f) = fixture("max_principals_per_hour = 5\n", postgres).await else {
        return;
    };
    for n in 0..20 {
        f.service
            .ingest(
                "generic",
                &alert(&format!("CAP-{n}"), n, &["vm-web-01"]),
                &sender(),
            )
            .await
            .unwrap();
    }
    settle(&f).await;
    let runs = f.service.store().list_runs(100, None).await.unwrap();
    assert_eq!(runs.len(), 20);
    let waiting = runs
        .iter()
        .filter(|r| r.status == RunStatus::AwaitingApproval)
        .count();
    assert_eq!(
        counter(&f, "user_disabled"),
        5,
        "the cap is 5 principals an hour"
    );
    assert_eq!(waiting, 15, "the rest wait for a person");
    f.emulator.shutdown().await;
}

async fn a_repeat_after_the_window_finds_the_revocation_still_holding(postgres: bool) {
    // A window of 0 s: every alert opens a new incident.
    let options = ServiceOptions {
        coalesce_window: Duration::ZERO,
        ..ServiceOptions::default()
    };
    let Some(f) = fixture_with("", options, postgres).await else {
        return;
    };
    alert_and_settle(&f, "FIRST", 4, &["vm-web-01"]).await;
    assert_eq!(counter(&f, "sessions_revoked"), 1);
    alert_and_settle(&f, "LATER", 4, &["vm-web-01"]).await;
    let mut runs = f.service.store().list_runs(10, None).await.unwrap();
    runs.sort_by_key(|r| r.created_at);
    assert_eq!(runs.len(), 2, "a new incident");
    let plan = f.service.plan_of(&runs[1].id).await.unwrap().unwrap();
    let revoke = plan.steps.iter().find(|s| s.id == "revoke").unwrap();
    assert_eq!(revoke.status, StepStatus::AlreadySatisfied, "{revoke:#?}");
    assert!(
        revoke
            .reason
            .as_deref()
            .unwrap()
            .contains("stayed disabled")
    );
    assert_eq!(counter(&f, "user_disabled"), 1);
    assert_eq!(counter(&f, "sessions_revoked"), 1, "not revoked again");
    // Rolled back, the account is enabled again: the next response revokes anew.
    f.service
        .rollback(
            &runs[0].id,
            &Caller {
                name: "token:oncall".into(),
            },
        )
        .await
        .unwrap();
    alert_and_settle(&f, "AFTER-ROLLBACK", 4, &["vm-web-01"]).await;
    assert_eq!(counter(&f, "user_disabled"), 2);
    assert_eq!(counter(&f, "sessions_revoked"), 2);
    f.emulator.shutdown().await;
}

async fn a_throttle_hold_is_honoured_by_every_replica(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    // Two replicas: two processes' worth of connectors over the one store.
    let path = f._dir.path().join("riposte.toml");
    let replica = || async {
        let app =
            riposte::app::App::new(riposte::config::Config::load(Some(&path)).unwrap()).unwrap();
        app.service_with(ServiceOptions::default()).await.unwrap();
        app
    };
    let (a, b) = (replica().await, replica().await);
    let tenant = a.config.azure.tenant_id.clone().unwrap();
    let base = f.emulator.base_url();
    let user = format!("{base}/v1.0/users/{}", user_id(7));
    let store = f.service.store().clone();

    // Microsoft tells replica A to back off: the hold lands in the shared store.
    f.emulator
        .state()
        .add_fault(
            serde_json::from_value(json!({
                "route": "GET /v1.0/users/*", "kind": "throttle", "retry_after": 1, "count": 1
            }))
            .unwrap(),
        )
        .unwrap();
    let lookup = a.connectors.read_only();
    let first = tokio::spawn({
        let user = user.clone();
        async move { lookup.get(riposte::connectors::Api::Graph, &user).await }
    });
    let mut held = None;
    for _ in 0..200 {
        held = store.throttle_held_until(&tenant, "graph").await.unwrap();
        if held.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(held.is_some(), "the 429 was shared through the store");
    first.await.unwrap().unwrap();

    // Another replica learnt of a hold: B sends nothing to Graph until it ends.
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    store.hold_throttle(&tenant, "graph", until).await.unwrap();
    f.emulator.state().clear_requests();
    let lookup = b.connectors.read_only();
    let second =
        tokio::spawn(async move { lookup.get(riposte::connectors::Api::Graph, &user).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent: Vec<_> = f
        .emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.api == "graph")
        .collect();
    assert!(sent.is_empty(), "B waited for the hold: {sent:#?}");
    second.await.unwrap().unwrap();
    assert!(
        f.emulator
            .state()
            .requests()
            .iter()
            .any(|r| r.api == "graph"),
        "and sent once it ended"
    );
    // An earlier hold never shortens a later one.
    store
        .hold_throttle(&tenant, "arm", until + chrono::Duration::seconds(60))
        .await
        .unwrap();
    store.hold_throttle(&tenant, "arm", until).await.unwrap();
    let kept = store
        .throttle_held_until(&tenant, "arm")
        .await
        .unwrap()
        .unwrap();
    assert!(kept > until);
    f.emulator.shutdown().await;
}

async fn matchers_claim_each_alert_once(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    let store = f.service.store().clone();
    for i in 0..40 {
        store
            .insert_alert(&riposte::store::NewAlert {
                source: "generic".into(),
                source_id: format!("CLAIM-{i}"),
                principal_key: None,
                body: json!({}),
                received_at: chrono::Utc::now(),
                ingested_by: None,
            })
            .await
            .unwrap();
    }
    // Four matchers (as on four replicas) claim at once: each alert goes to one of them.
    let hour = Duration::from_secs(3600);
    let claims = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_alerts(15, hour).await.unwrap() })
    });
    let mut ids: Vec<String> = Vec::new();
    for c in futures::future::join_all(claims).await {
        ids.extend(c.unwrap().into_iter().map(|a| a.id));
    }
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "an alert was claimed twice");
    assert_eq!(ids.len(), 40);
    assert!(store.claim_alerts(100, hour).await.unwrap().is_empty());
    // A matcher that died: once its hold passes, the alerts are due again.
    for i in 40..45 {
        store
            .insert_alert(&riposte::store::NewAlert {
                source: "generic".into(),
                source_id: format!("CLAIM-{i}"),
                principal_key: None,
                body: json!({}),
                received_at: chrono::Utc::now(),
                ingested_by: None,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store.claim_alerts(100, Duration::ZERO).await.unwrap().len(),
        5
    );
    assert_eq!(store.claim_alerts(100, hour).await.unwrap().len(), 5);
    f.emulator.shutdown().await;
}

fn spec() -> RunSpec {
    RunSpec {
        target: RunTarget::Action {
            action: "entra.disable_user".into(),
            params: json!({"user": user_id(3)}).as_object().unwrap().clone(),
        },
        inputs: Default::default(),
        only_resources: None,
    }
}

fn new_run(id: &str) -> NewRun {
    NewRun {
        id: id.into(),
        playbook: "p".into(),
        principal_key: Some(user_id(3)),
        tenant: Some("t".into()),
        mode: riposte::plan::Mode::Enforce,
        requested_by: None,
        alert_id: None,
        spec: spec(),
        follows: None,
    }
}

async fn a_worker_that_lost_its_claim_can_no_longer_write(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    let store = f.service.store();
    store.create_run(&new_run("fenced")).await.unwrap();
    // Worker A's claim lapses (it paused); worker B takes the run over.
    let a = store
        .claim_run("A", "fenced", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let b = store
        .claim_run("B", "fenced", Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    assert!(b.0 > a.0, "fencing numbers only grow");
    let refused = store
        .journal("fenced", a, "suspend", 0, StepState::Started, &json!({}))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        store
            .set_run_status_fenced("fenced", a, RunStatus::Failed)
            .await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        store.save_report("fenced", a, &json!({})).await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(
        store.journal_for("fenced").await.unwrap().is_empty(),
        "nothing of A's was written"
    );
    store
        .journal("fenced", b, "suspend", 0, StepState::Started, &json!({}))
        .await
        .unwrap();
    store
        .set_run_status_fenced("fenced", b, RunStatus::Running)
        .await
        .unwrap();
    // While B holds a live lease, nobody else may drive the run.
    let busy = f.service.drive("fenced", None).await;
    assert!(matches!(busy, Err(ServiceError::Conflict(_))), "{busy:?}");
    assert_eq!(
        store.get_run("fenced").await.unwrap().unwrap().status,
        RunStatus::Running
    );
    f.emulator.shutdown().await;
}

async fn creating_or_joining_an_incident_is_atomic(postgres: bool) {
    let Some(f) = fixture("", postgres).await else {
        return;
    };
    let since = chrono::Utc::now() - chrono::Duration::minutes(15);
    let tasks = (0..16).map(|i| {
        let store = f.service.store().clone();
        tokio::spawn(async move {
            store
                .create_or_join_run(&new_run(&format!("race-{i:02}")), since)
                .await
                .unwrap()
        })
    });
    let outcomes: Vec<Joined> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Joined::Created))
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    let joined: std::collections::BTreeSet<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Joined::Existing { run_id, .. } => Some(run_id),
            Joined::Created => None,
        })
        .collect();
    assert_eq!(joined.len(), 1, "every other matcher joined the one run");
    assert_eq!(
        f.service.store().list_runs(100, None).await.unwrap().len(),
        1
    );
    // Concurrent reservations under a cap of 5 grant exactly 5 places.
    let tasks = (0..20).map(|n| {
        let store = f.service.store().clone();
        tokio::spawn(async move {
            store
                .reserve_principal("t", &user_id(n), 5, since)
                .await
                .unwrap()
        })
    });
    let granted = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().granted)
        .count();
    assert_eq!(granted, 5);
    // A principal that holds a place keeps it.
    let again = f
        .service
        .store()
        .reserve_principal("t", &user_id(0), 5, since)
        .await
        .unwrap();
    let held = f
        .service
        .store()
        .count_principals("t", since)
        .await
        .unwrap();
    assert_eq!(held, 5);
    assert!(again.granted || again.others >= 5);
    let _ = Fence(0);
    f.emulator.shutdown().await;
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
    a_storm_acts_once_per_target,
    a_late_repeat_of_a_finished_incident_sends_nothing_again,
    a_repeat_naming_a_new_resource_gets_a_follow_up_for_it_alone,
    the_blast_radius_cap_holds_under_concurrency,
    a_worker_that_lost_its_claim_can_no_longer_write,
    creating_or_joining_an_incident_is_atomic,
    a_repeat_after_the_window_finds_the_revocation_still_holding,
    a_throttle_hold_is_honoured_by_every_replica,
    matchers_claim_each_alert_once,
);
