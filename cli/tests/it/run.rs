//! Runs end to end: plan with real read-only lookups against the emulator, execute the plan's
//! DAG in-process, verify, roll back. Every effect is checked through the emulator's own state
//! and counters, and what the emulator received is compared with what the plan showed.
//!
//! Comparing requests: the planner's lookups, the executor's read-backs and the client's
//! long-running-operation polls are all GETs, and token requests go to the Entra token route;
//! none of them is in a plan. So the comparison is between every *non-GET, non-token* request the
//! emulator logged and every non-GET request of the plan that targets the emulator (the webhook
//! goes to its own server), exactly: method, path and query as sent, and JSON body.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use riposte::actions::{ActionSettings, Verification};
use riposte::alert::Alert;
use riposte::connectors::{Api, AzureSettings, Connectors, Endpoints, HttpOptions, Method};
use riposte::engine::{Executor, NoJournal, RunOutcome, RunReport, StepOutcome, rollback};
use riposte::plan::{Mode, Plan, Planner};
use riposte::playbook::Playbook;
use riposte::policy::Unguarded;
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::{Value, json};
use sha2::Digest;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
const CLIENT: &str = "c0ffee00-1111-4222-8333-444455556666";
const SUB: &str = "b1c2d3e4-0000-4a5b-8c6d-000000000001";
const ALEX: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
const GRADY: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000005";
const MFA_GROUP: &str = "9f0c7e3a-1d2b-4c5e-8f6a-000000000101";
const WEBHOOK_PATH: &str = "/hooks/T000/B000/secret-path";

fn vm() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"
    )
}

/// The emulator, a webhook receiver, and connectors pointed at them.
struct World {
    emulator: EmulatorHandle,
    webhook: MockServer,
    connectors: Connectors,
    endpoints: Endpoints,
    settings: ActionSettings,
}

fn http_options() -> HttpOptions {
    HttpOptions {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        poll_interval: Duration::from_millis(1),
        max_polls: 50,
        rate_per_second: 0.0,
        ..HttpOptions::default()
    }
}

impl World {
    async fn start() -> World {
        riposte::connectors::install_crypto_provider();
        let emulator =
            Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
        let base = emulator.base_url();
        let azure: AzureSettings = serde_json::from_value(json!({
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": "emulator-secret",
            "authority_host": base,
            "graph_endpoint": base,
            "arm_endpoint": base,
            "log_analytics_endpoint": base,
        }))
        .unwrap();
        let connectors =
            Connectors::with_env(&azure, None, http_options(), &|_: &str| None).unwrap();
        let endpoints = azure.endpoints().unwrap();
        let webhook = MockServer::start().await;
        let settings = common::action_settings(&format!("{}{WEBHOOK_PATH}", webhook.uri()));
        World {
            emulator,
            webhook,
            connectors,
            endpoints,
            settings,
        }
    }

    async fn stop(self) {
        self.emulator.shutdown().await;
    }

    async fn plan(&self, playbook: &Playbook, alert: &Alert, mode: Mode) -> Plan {
        let lookup = self.connectors.read_only();
        let planner = Planner {
            endpoints: &self.endpoints,
            lookup: &lookup,
            settings: &self.settings,
            guard: &Unguarded,
        };
        planner
            .plan(
                playbook,
                alert,
                &BTreeMap::new(),
                mode,
                common::RUN_ID,
                common::now(),
            )
            .await
            .unwrap()
    }

    async fn execute(&self, plan: &Plan, playbook: &Playbook) -> RunReport {
        let lookup = self.connectors.read_only();
        let executor = Executor {
            transport: &self.connectors,
            lookup: &lookup,
            journal: &NoJournal,
            settings: &self.settings,
            endpoints: &self.endpoints,
            concurrency: 8,
            approved: false,
            completed: &Default::default(),
            on_event: &|_| {},
        };
        executor.execute(plan, playbook).await
    }

    /// Plans in enforce mode and executes.
    async fn run(&self, playbook: &Playbook, alert: &Alert) -> (Plan, RunReport) {
        let plan = self.plan(playbook, alert, Mode::Enforce).await;
        let report = self.execute(&plan, playbook).await;
        (plan, report)
    }

    fn counter(&self, kind: &str) -> u64 {
        self.emulator.state().counter(kind)
    }

    fn state(&self) -> Value {
        self.emulator.state().view()
    }

    fn user(&self, id: &str) -> Value {
        self.state()["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .cloned()
            .unwrap()
    }

    /// `(method, path?query, body)` of every non-GET request the emulator answered, except
    /// token requests.
    fn mutating_requests_received(&self) -> Vec<(String, String, Option<Value>)> {
        let mut out: Vec<_> = self
            .emulator
            .state()
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.api != "entra" && r.api != "control")
            .map(|r| {
                let target = match &r.query {
                    Some(q) => format!("{}?{q}", r.path),
                    None => r.path.clone(),
                };
                (r.method, target, r.body)
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }
}

/// The plan's non-GET requests to the emulator, as they go on the wire (`reqwest` parses the
/// URL the same way before sending).
fn mutating_requests_planned(plan: &Plan) -> Vec<(String, String, Option<Value>)> {
    let mut out: Vec<_> = plan
        .steps
        .iter()
        .flat_map(|s| s.requests.iter())
        .filter(|r| r.method != Method::Get && r.api != Api::Webhook)
        .map(|r| {
            let url = url::Url::parse(&r.url).unwrap();
            let target = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            (r.method.as_str().to_string(), target, r.body.clone())
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

fn bundled() -> Playbook {
    riposte::playbook::load_file(&common::root().join("playbooks/first-access-containment.yaml"))
        .unwrap()
}

fn lacework_alert() -> Alert {
    riposte::alert::parse_alert(
        &common::fixture("lacework-details.json"),
        None,
        &common::alert_settings(),
    )
    .unwrap()
}

fn playbook(yaml: &str) -> Playbook {
    riposte::playbook::load_str(yaml, Path::new("test.yaml")).unwrap()
}

fn step<'a>(report: &'a RunReport, id: &str) -> &'a riposte::engine::StepReport {
    report.steps.iter().find(|s| s.id == id).unwrap()
}

fn role_assignments_of(state: &Value, principal: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = state["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["properties"]["principalId"] == principal)
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["properties"]["scope"].as_str().unwrap().to_lowercase(),
                a["properties"]["roleDefinitionId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn mfa_members(state: &Value) -> Vec<String> {
    let group = state["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == MFA_GROUP)
        .unwrap();
    serde_json::from_value(group["members"].clone()).unwrap()
}

async fn expect_webhook(world: &World, times: u64) {
    Mock::given(method("POST"))
        .and(path(WEBHOOK_PATH))
        .respond_with(ResponseTemplate::new(200))
        .expect(times)
        .mount(&world.webhook)
        .await;
}

#[tokio::test]
async fn bundled_playbook_contains_the_user_once_exactly_as_planned_and_rolls_back() {
    let world = World::start().await;
    expect_webhook(&world, 1).await;
    let before = world.state();
    let playbook = bundled();
    let (plan, report) = world.run(&playbook, &lacework_alert()).await;

    assert_eq!(
        report.outcome,
        RunOutcome::Succeeded,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    // The rare-process query is the playbook's option, off by default.
    assert_eq!(
        step(&report, "rare_processes").outcome,
        StepOutcome::Skipped
    );
    for s in report.steps.iter().filter(|s| s.id != "rare_processes") {
        assert_eq!(
            s.outcome,
            StepOutcome::Succeeded,
            "{}: {:?}",
            s.id,
            s.reason
        );
        assert!(
            !s.verification
                .iter()
                .any(|v| matches!(v, Verification::Mismatch(_))),
            "{}: {:?}",
            s.id,
            s.verification
        );
    }

    // Effects, each exactly once.
    let user = world.user(ALEX);
    assert_eq!(user["accountEnabled"], false);
    assert_eq!(user["forceChangePasswordNextSignIn"], true);
    assert_ne!(
        user["signInSessionsValidFromDateTime"],
        before["users"][0]["signInSessionsValidFromDateTime"]
    );
    assert!(role_assignments_of(&world.state(), ALEX).is_empty());
    assert!(mfa_members(&world.state()).contains(&ALEX.to_string()));
    for (kind, n) in [
        ("user_disabled", 1),
        ("sessions_revoked", 1),
        ("password_profile_updated", 1),
        ("group_member_added", 1),
        ("role_assignments_deleted", 3),
        ("snapshots_created", 2),
        ("locks_created", 2),
    ] {
        assert_eq!(world.counter(kind), n, "{kind}");
    }
    let state = world.state();
    let snapshots = state["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 2);
    for snap in snapshots {
        assert_eq!(snap["properties"]["provisioningState"], "Succeeded");
        assert!(
            state["locks"].as_array().unwrap().iter().any(|l| l["id"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .starts_with(&snap["id"].as_str().unwrap().to_lowercase())
                && l["properties"]["level"] == "CanNotDelete"),
            "snapshot {} is not locked",
            snap["id"]
        );
    }
    // The read-backs confirmed what the counters say.
    assert!(matches!(
        step(&report, "suspend").verification[0],
        Verification::Verified(_)
    ));
    assert!(matches!(
        step(&report, "require_mfa").verification[0],
        Verification::Verified(_)
    ));

    // Evidence is stored with the sha256 of its canonical JSON.
    for id in ["activity", "anomalies", "account_activity"] {
        let s = step(&report, id);
        assert!(!s.evidence.is_empty(), "{id}");
        for e in &s.evidence {
            let mut text = String::new();
            riposte::plan::canonical_json(&e.body, &mut text);
            let digest = format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(text.as_bytes()))
            );
            assert_eq!(e.sha256, digest, "{id}");
        }
    }
    assert!(step(&report, "activity").evidence[0].body["value"].is_array());
    assert!(step(&report, "anomalies").evidence[0].body["tables"].is_array());
    assert!(step(&report, "account_activity").evidence[0].body["tables"].is_array());

    // What the emulator received is what the plan showed, request for request.
    assert_eq!(
        world.mutating_requests_received(),
        mutating_requests_planned(&plan)
    );

    // The webhook got the real path; the plan showed only a fingerprint.
    let notify = plan.steps.iter().find(|s| s.id == "notify").unwrap();
    assert!(notify.requests[0].url.contains("⟨secret: webhook path"));
    assert!(
        !serde_json::to_string(&plan)
            .unwrap()
            .contains("secret-path")
    );
    world.webhook.verify().await;

    // Rollback: every reversible step undone, the irreversible ones refused with reasons.
    let locks_before_rollback = world.state()["locks"].clone();
    let undone = rollback(&report, &world.connectors).await;
    assert!(undone.failed.is_empty(), "{:?}", undone.failed);
    let refused: BTreeMap<&str, &str> = undone
        .refused
        .iter()
        .map(|(s, why)| (s.as_str(), why.as_str()))
        .collect();
    assert_eq!(refused.keys().copied().collect::<Vec<_>>(), vec!["revoke"]);
    assert!(refused["revoke"].contains("sessions cannot be restored"));
    // Evidence is never rolled back: the snapshots, their locks and the query results stay.
    let kept: BTreeMap<&str, &str> = undone
        .kept
        .iter()
        .map(|(s, why)| (s.as_str(), why.as_str()))
        .collect();
    assert!(kept["snapshot"].contains("evidence snapshots are kept"));
    assert!(kept["lock_snapshots"].contains("evidence snapshot"));
    assert!(kept.contains_key("activity"), "{kept:?}");
    let undone_steps: Vec<&str> = undone.undone.iter().map(|(s, _)| s.as_str()).collect();
    assert!(!undone_steps.contains(&"lock_snapshots"));
    for id in ["suspend", "remove_roles", "reset_password", "require_mfa"] {
        assert!(
            undone_steps.contains(&id),
            "{id} not undone: {undone_steps:?}"
        );
    }
    let after = world.state();
    let user = world.user(ALEX);
    assert_eq!(user["accountEnabled"], true);
    assert_eq!(user["forceChangePasswordNextSignIn"], false);
    assert_eq!(
        role_assignments_of(&after, ALEX),
        role_assignments_of(&before, ALEX)
    );
    assert_eq!(mfa_members(&after), mfa_members(&before));
    assert_eq!(
        after["locks"], locks_before_rollback,
        "the snapshot locks stay"
    );
    assert_eq!(after["locks"].as_array().unwrap().len(), 2);
    assert_eq!(after["snapshots"].as_array().unwrap().len(), 2);
    assert_eq!(world.counter("role_assignments_created"), 3);
    assert_eq!(world.counter("user_enabled"), 1);
    assert_eq!(world.counter("group_member_removed"), 1);
    assert_eq!(world.counter("locks_deleted"), 0);
    world.stop().await;
}

#[tokio::test]
async fn dry_run_sends_no_mutating_request() {
    let world = World::start().await;
    let plan = world
        .plan(&bundled(), &lacework_alert(), Mode::DryRun)
        .await;
    assert_eq!(plan.mode, Mode::DryRun);
    assert!(plan.steps.iter().any(|s| !s.requests.is_empty()));
    assert!(world.mutating_requests_received().is_empty());
    let requests = world.emulator.state().requests();
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" || r.api == "entra"),
        "{requests:#?}"
    );
    // Issuing tokens is the only thing planning may cause.
    let effects: Vec<String> = world
        .emulator
        .state()
        .counters()
        .into_keys()
        .filter(|k| k != "tokens_issued")
        .collect();
    assert!(effects.is_empty(), "{effects:?}");
    world.stop().await;
}

/// A journal whose writes fail from a given state on, as a store that went away would.
struct BrokenJournal {
    fails_from: riposte::engine::StepState,
}

#[async_trait::async_trait]
impl riposte::engine::Journal for BrokenJournal {
    async fn record(
        &self,
        _: &str,
        _: &str,
        _: u32,
        state: riposte::engine::StepState,
        _: Value,
    ) -> Result<(), riposte::engine::JournalError> {
        if state == self.fails_from {
            return Err(riposte::engine::JournalError("disk full".into()));
        }
        Ok(())
    }
}

/// ARCHITECTURE invariant: a step's transition is journaled before its side effect, so a
/// journal that cannot be written means the request is not sent.
#[tokio::test]
async fn a_journal_write_failure_means_the_request_is_not_sent() {
    use riposte::engine::StepState;
    let world = World::start().await;
    let playbook = playbook(DISABLE_ALEX);
    let plan = world
        .plan(&playbook, &lacework_alert(), Mode::Enforce)
        .await;
    for fails_from in [StepState::Started, StepState::RequestSent] {
        let lookup = world.connectors.read_only();
        let journal = BrokenJournal { fails_from };
        let executor = Executor {
            transport: &world.connectors,
            lookup: &lookup,
            journal: &journal,
            settings: &world.settings,
            endpoints: &world.endpoints,
            concurrency: 8,
            approved: false,
            completed: &Default::default(),
            on_event: &|_| {},
        };
        let report = executor.execute(&plan, &playbook).await;
        let suspend = step(&report, "suspend");
        assert_eq!(
            suspend.outcome,
            StepOutcome::Failed,
            "{fails_from:?}: {report:#?}"
        );
        assert!(
            format!("{suspend:?}").contains("the journal could not be written"),
            "{suspend:#?}"
        );
        assert!(
            world.mutating_requests_received().is_empty(),
            "{fails_from:?}"
        );
        assert_eq!(world.user(ALEX)["accountEnabled"], true);
    }
    world.stop().await;
}

/// A journal that writes, but whose worker's lease ran out between writing `request_sent` and
/// sending (a process paused past its lease).
struct PausedPastLease;

#[async_trait::async_trait]
impl riposte::engine::Journal for PausedPastLease {
    async fn record(
        &self,
        _: &str,
        _: &str,
        _: u32,
        _: riposte::engine::StepState,
        _: Value,
    ) -> Result<(), riposte::engine::JournalError> {
        Ok(())
    }

    fn may_send(&self, run_id: &str) -> Result<(), riposte::engine::JournalError> {
        Err(riposte::engine::JournalError(format!(
            "the lease on {run_id} has run out"
        )))
    }
}

/// The last look before a request leaves: a worker whose lease ran out sends nothing.
#[tokio::test]
async fn a_worker_whose_lease_ran_out_sends_nothing() {
    let world = World::start().await;
    let playbook = playbook(DISABLE_ALEX);
    let plan = world
        .plan(&playbook, &lacework_alert(), Mode::Enforce)
        .await;
    let lookup = world.connectors.read_only();
    let executor = Executor {
        transport: &world.connectors,
        lookup: &lookup,
        journal: &PausedPastLease,
        settings: &world.settings,
        endpoints: &world.endpoints,
        concurrency: 8,
        approved: false,
        completed: &Default::default(),
        on_event: &|_| {},
    };
    let report = executor.execute(&plan, &playbook).await;
    let suspend = step(&report, "suspend");
    assert_eq!(suspend.outcome, StepOutcome::Failed, "{report:#?}");
    assert!(
        format!("{suspend:?}").contains("has run out"),
        "{suspend:#?}"
    );
    assert!(world.mutating_requests_received().is_empty());
    assert_eq!(world.user(ALEX)["accountEnabled"], true);
    world.stop().await;
}

const DISABLE_ALEX: &str = "name: disable\nsteps:\n  - id: suspend\n    uses: entra.disable_user\n    with: { user: alex.wilber@contoso.com }\n";

#[tokio::test]
async fn throttling_and_server_errors_are_survived_with_one_effect() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    for fault in [
        json!({"route": "PATCH /v1.0/users/*", "kind": "throttle", "retry_after": 1, "count": 1}),
        json!({"route": "PATCH /v1.0/users/*", "kind": "error", "status": 503, "count": 2}),
    ] {
        let r = http
            .post(format!("{}/_emulator/faults", world.emulator.base_url()))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let playbook = playbook(DISABLE_ALEX);
    let (_, report) = world.run(&playbook, &lacework_alert()).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(step(&report, "suspend").requests[0].attempts, 4);
    assert_eq!(world.counter("user_disabled"), 1);
    assert_eq!(world.user(ALEX)["accountEnabled"], false);
    let patches: Vec<_> = world
        .emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(
        patches,
        vec![
            (Some(429), Some("throttle".to_string())),
            (Some(503), Some("error".to_string())),
            (Some(503), Some("error".to_string())),
            (Some(204), None),
        ]
    );
    world.stop().await;
}

#[tokio::test]
async fn a_failing_step_with_on_error_compensate_undoes_its_predecessors() {
    let world = World::start().await;
    // The lock is planned on a real VM (a target riposte cannot read is denied at planning, so
    // it would never fail at run time); ARM refuses the lock's PUT.
    let r = reqwest::Client::new()
        .post(format!("{}/_emulator/faults", world.emulator.base_url()))
        .json(&json!({"route": "PUT */providers/Microsoft.Authorization/locks/*", "kind": "error", "status": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let yaml = format!(
        "name: compensate\nsteps:\n  - id: suspend\n    uses: entra.disable_user\n    with: {{ user: alex.wilber@contoso.com }}\n  - id: lock\n    uses: arm.lock_resource\n    needs: [suspend]\n    on_error: compensate\n    with: {{ resource: /subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01 }}\n"
    );
    let playbook = playbook(&yaml);
    let (_, report) = world.run(&playbook, &lacework_alert()).await;
    assert_eq!(report.outcome, RunOutcome::Compensated, "{report:#?}");
    assert_eq!(step(&report, "lock").outcome, StepOutcome::Failed);
    assert!(
        step(&report, "lock")
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("400")),
        "{:?}",
        step(&report, "lock").reason
    );
    assert_eq!(step(&report, "suspend").outcome, StepOutcome::Compensated);
    assert_eq!(world.counter("user_disabled"), 1);
    assert_eq!(world.counter("user_enabled"), 1);
    assert_eq!(world.user(ALEX)["accountEnabled"], true);
    assert_eq!(world.counter("locks_created"), 0);
    world.stop().await;
}

#[tokio::test]
async fn enable_user_and_get_resource_paths() {
    let world = World::start().await;
    let (_, disabled) = world.run(&playbook(DISABLE_ALEX), &lacework_alert()).await;
    assert_eq!(disabled.outcome, RunOutcome::Succeeded);

    let yaml = format!(
        "name: release\nsteps:\n  - id: vm\n    uses: arm.get_resource\n    with: {{ resource: {} }}\n  - id: release\n    uses: entra.enable_user\n    with: {{ user: {ALEX} }}\n",
        vm()
    );
    let playbook = playbook(&yaml);
    let (plan, report) = world.run(&playbook, &lacework_alert()).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    let vm_step = plan.steps.iter().find(|s| s.id == "vm").unwrap();
    assert_eq!(
        vm_step.outputs["name"], "vm-web-01",
        "{:#?}",
        vm_step.outputs
    );
    assert!(matches!(
        step(&report, "release").verification[0],
        Verification::Verified(_)
    ));
    assert_eq!(world.user(ALEX)["accountEnabled"], true);
    assert_eq!(world.counter("user_enabled"), 1);

    // Undoing the release disables the user again.
    let undone = rollback(&report, &world.connectors).await;
    assert_eq!(undone.undone.len(), 1, "{undone:#?}");
    assert_eq!(world.user(ALEX)["accountEnabled"], false);
    assert_eq!(world.counter("user_disabled"), 2);
    world.stop().await;
}

#[tokio::test]
async fn require_mfa_per_user_and_confirm_compromised_paths() {
    let world = World::start().await;
    let yaml = format!(
        "name: mfa\nsteps:\n  - id: per_user\n    uses: entra.require_mfa\n    with: {{ user: {ALEX}, strategy: per_user }}\n  - id: confirm\n    uses: entra.require_mfa\n    needs: [per_user]\n    with: {{ user: {ALEX}, strategy: confirm_compromised }}\n  - id: already\n    uses: entra.require_mfa\n    with: {{ user: {GRADY}, strategy: conditional_access_group }}\n"
    );
    let playbook = playbook(&yaml);
    let (plan, report) = world.run(&playbook, &lacework_alert()).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(
        step(&report, "already").outcome,
        StepOutcome::AlreadySatisfied
    );
    assert!(matches!(
        step(&report, "per_user").verification[0],
        Verification::Verified(_)
    ));
    assert_eq!(world.user(ALEX)["perUserMfaState"], "enforced");
    assert_eq!(world.user(ALEX)["riskState"], "confirmedCompromised");
    let previous = plan.steps[0].pre_state["perUserMfaState"].clone();
    assert!(previous.is_string(), "{previous}");

    let undone = rollback(&report, &world.connectors).await;
    assert_eq!(undone.refused.len(), 1, "{undone:#?}");
    assert_eq!(undone.refused[0].0, "confirm");
    assert!(undone.refused[0].1.contains("cannot be undone"));
    assert_eq!(world.user(ALEX)["perUserMfaState"], previous);
    assert_eq!(world.user(ALEX)["riskState"], "confirmedCompromised");
    world.stop().await;
}

/// `riposte run --alert <webhook> --enforce`: the binary enriches the Lacework webhook alert
/// from the emulator's Details API, plans and contains the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_enriches_a_webhook_alert_and_contains_the_user() {
    let world = World::start().await;
    expect_webhook(&world, 1).await;
    let base = world.emulator.base_url();
    let store_dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", store_dir.path().join("riposte.db").display());
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    let webhook = format!("{}{WEBHOOK_PATH}", world.webhook.uri());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
            .current_dir(dir.path())
            .args(["run", "--alert"])
            .arg(root.join("tests/fixtures/alerts/lacework-webhook.json"))
            .args(["--enforce", "--format", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RIPOSTE_PLAYBOOKS", root.join("playbooks"))
            .env("RIPOSTE_POLICIES", root.join("policies"))
            .env("RIPOSTE_STORE__URL", &store_url)
            .env("RIPOSTE_AZURE__TENANT_ID", TENANT)
            .env("RIPOSTE_AZURE__CLIENT_ID", CLIENT)
            .env("RIPOSTE_AZURE__CLIENT_SECRET", "emulator-secret")
            .env("RIPOSTE_AZURE__AUTHORITY_HOST", &base)
            .env("RIPOSTE_AZURE__GRAPH_ENDPOINT", &base)
            .env("RIPOSTE_AZURE__ARM_ENDPOINT", &base)
            .env("RIPOSTE_AZURE__LOG_ANALYTICS_ENDPOINT", &base)
            .env("RIPOSTE_LACEWORK__ENDPOINT", &base)
            .env(
                "RIPOSTE_LACEWORK__KEY_ID",
                "CONTOSO_1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4",
            )
            .env("RIPOSTE_LACEWORK__SECRET", "_emulator-lacework-secret")
            .env("RIPOSTE_ACTIONS__MFA_GROUP_ID", MFA_GROUP)
            .env(
                "RIPOSTE_ACTIONS__LOG_ANALYTICS_WORKSPACE",
                "5c9e2a71-3f4b-4d8e-a6c1-000000000201",
            )
            .env("RIPOSTE_ACTIONS__NOTIFY_WEBHOOK_URL", webhook)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        !stdout.contains("secret-path") && !stderr.contains("secret-path"),
        "the webhook path leaked"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["report"]["outcome"], "succeeded", "{stdout}");
    assert_eq!(report["run"]["status"], "succeeded", "{stdout}");
    let logged = world.emulator.state().requests();
    assert!(
        logged
            .iter()
            .any(|r| r.api == "lacework" && r.path == "/api/v2/Alerts/51234"),
        "the alert was not enriched from Lacework"
    );
    assert_eq!(world.user(ALEX)["accountEnabled"], false);
    assert_eq!(world.counter("user_disabled"), 1);
    assert_eq!(world.counter("snapshots_created"), 2);
    world.webhook.verify().await;
    world.stop().await;
}
