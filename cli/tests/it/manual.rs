//! Manual response: `riposte act` and `riposte run --playbook FILE` in enforce mode, from a
//! directory other than the checkout, and runs whose playbook file is gone by the time they
//! are approved and executed (the run spec is stored with the run).

use crate::common;

use std::path::Path;
use std::process::Output;

use riposte::engine::service::{Caller, ServiceApi};
use riposte::engine::{ServiceOptions, playbook_spec};
use riposte::store::RunStatus;
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ALEX: (&str, &str) = (
    "alex.wilber@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
);

/// A playbook of one's own, kept outside the playbooks directory.
const MY_PLAYBOOK: &str = "name: my-containment\nsteps:\n  - id: user\n    uses: entra.get_user\n    with:\n      user: ${{ alert.principal.upn }}\n  - id: suspend\n    uses: entra.disable_user\n    needs: [user]\n    with:\n      user: ${{ steps.user.outputs.id }}\n";

struct World {
    emulator: EmulatorHandle,
    /// Holds riposte.toml and the store; the commands run here, not in the checkout.
    dir: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        World::start_with(Tenant::default_fixture())
    }

    fn start_with(tenant: Tenant) -> World {
        riposte::connectors::install_crypto_provider();
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), tenant).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
        let toml = common::emulator_toml(&emulator.base_url(), &store, "dry-run");
        std::fs::write(dir.path().join("riposte.toml"), toml).unwrap();
        World { emulator, dir }
    }

    fn config(&self) -> riposte::config::Config {
        riposte::config::Config::load(Some(&self.dir.path().join("riposte.toml"))).unwrap()
    }

    async fn riposte(&self, args: &[&str]) -> Output {
        self.riposte_with(args, &[]).await
    }

    async fn riposte_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let dir = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
                .current_dir(&dir)
                .arg("--config")
                .arg(dir.join("riposte.toml"))
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("USER", "responder")
                .envs(env)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    fn enabled(&self, id: &str) -> bool {
        let state = self.emulator.state().view();
        state["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .map(|u| u["accountEnabled"] == true)
            .unwrap()
    }
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_enforce_disables_the_principal_it_is_given() {
    let world = World::start();
    let out = world
        .riposte(&[
            "act",
            "entra.disable_user",
            "--principal",
            ALEX.0,
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let v = json_of(&out);
    assert_eq!(v["run"]["status"], "succeeded", "{v:#}");
    assert_eq!(v["run"]["playbook"], "action:entra.disable_user");
    assert_eq!(v["run"]["spec"]["target"]["kind"], "action");
    assert_eq!(v["run"]["spec"]["target"]["params"]["user"], ALEX.0);
    assert_eq!(v["run"]["requested_by"], "cli:responder");
    assert!(!world.enabled(ALEX.1), "the account is still enabled");

    // Another process reads the same run back from the store.
    let id = v["run"]["id"].as_str().unwrap();
    let shown = json_of(
        &world
            .riposte(&["runs", "show", id, "--format", "json"])
            .await,
    );
    assert_eq!(shown["status"], "succeeded", "{shown:#}");
    assert_eq!(shown["report"]["outcome"], "succeeded", "{shown:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_refuses_a_principal_for_an_action_without_one() {
    let world = World::start();
    let out = world
        .riposte(&[
            "act",
            "evidence.activity_log",
            "--principal",
            ALEX.0,
            "--enforce",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("takes no principal"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_playbook_file_enforce_runs_a_file_outside_the_playbooks_directory() {
    let world = World::start();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("my.yaml");
    std::fs::write(&file, MY_PLAYBOOK).unwrap();
    let out = world
        .riposte(&[
            "run",
            "--playbook",
            file.to_str().unwrap(),
            "--principal",
            ALEX.0,
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let v = json_of(&out);
    assert_eq!(v["run"]["status"], "succeeded", "{v:#}");
    let target = &v["run"]["spec"]["target"];
    assert_eq!(target["kind"], "playbook");
    assert_eq!(target["name"], "my-containment");
    assert_eq!(target["text"], MY_PLAYBOOK);
    assert_eq!(
        target["sha256"],
        hex::encode(Sha256::digest(MY_PLAYBOOK.as_bytes()))
    );
    assert!(!world.enabled(ALEX.1));
}

/// A run that waits for approval executes what was planned even after its playbook file is
/// gone, in a service that never loaded that file: approval and execution read the stored spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_run_executes_from_its_stored_spec_after_the_file_is_gone() {
    let world = World::start();
    // Dry-run: every run waits for a person to approve its plan hash.
    let config = world.config();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("my.yaml");
    std::fs::write(&file, MY_PLAYBOOK).unwrap();
    let playbook = riposte::playbook::load_file(&file).unwrap();

    let first = riposte::app::App::new(config.clone())
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap();
    let alert = riposte::alert::Alert::manual(
        "manual-1",
        "manual run",
        Some(ALEX.0.to_string()),
        &[],
        chrono::Utc::now(),
    );
    let requester = Caller {
        name: "cli:responder".into(),
    };
    let run = first
        .run_now(
            playbook_spec(&playbook, Default::default()),
            &alert,
            &requester,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::AwaitingApproval, "{run:#?}");
    assert!(world.enabled(ALEX.1));
    drop(first);
    std::fs::remove_file(&file).unwrap();
    assert!(!Path::new(&file).exists());

    // A new service (as after a restart), whose playbooks directory lacks the file.
    let second = riposte::app::App::new(config)
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap();
    let approver = Caller {
        name: "token:approver".into(),
    };
    let hash = run.plan_hash.clone().unwrap();
    second.approve(&run.id, &hash, &approver).await.unwrap();
    let done = second.drive(&run.id, None).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{done:#?}");
    assert!(!world.enabled(ALEX.1), "the approved plan did not run");
    assert_eq!(done.plan_hash.as_deref(), Some(hash.as_str()));
}

/// One evidence digest everywhere: the report's `sha256:` is the digest of the bytes the store
/// keeps, and the store shows it in the same form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_has_one_digest_in_the_report_and_the_store() {
    let world = World::start();
    let out = world
        .riposte(&[
            "act",
            "evidence.activity_log",
            "--param",
            &format!("caller={}", ALEX.0),
            "--param",
            "timespan=P30D",
            "--param",
            "subscription=b1c2d3e4-0000-4a5b-8c6d-000000000001",
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let v = json_of(&out);
    let id = v["run"]["id"].as_str().unwrap();
    let shown = json_of(
        &world
            .riposte(&["runs", "show", id, "--format", "json"])
            .await,
    );
    let in_report: Vec<&str> = shown["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["evidence"].as_array().cloned().unwrap_or_default())
        .map(|e| e["sha256"].as_str().unwrap().to_string())
        .map(|s| &*s.leak())
        .collect();
    let stored: Vec<&str> = shown["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sha256"].as_str().unwrap())
        .collect();
    assert!(!stored.is_empty(), "{shown:#}");
    assert_eq!(in_report, stored, "{shown:#}");
    assert!(stored.iter().all(|d| d.starts_with("sha256:")));
}

/// Without its guardrails riposte does not act: a missing policies directory stops an
/// enforced run (nothing is sent); `policies = "none"` runs explicitly unguarded and the plan
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_without_policies_is_an_error_unless_explicitly_unguarded() {
    let world = World::start();
    let disable = [
        "act",
        "entra.disable_user",
        "--principal",
        ALEX.0,
        "--enforce",
        "--format",
        "json",
    ];
    let out = world
        .riposte_with(&disable, &[("RIPOSTE_POLICIES", "/nonexistent/policies")])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not act without its guardrails"),
        "{stderr}"
    );
    assert!(
        world.enabled(ALEX.1),
        "riposte acted without its guardrails"
    );

    // Planning (dry-run) still works, and says it is unguarded.
    let plan = world
        .riposte_with(
            &[
                "act",
                "entra.disable_user",
                "--principal",
                ALEX.0,
                "--format",
                "json",
            ],
            &[("RIPOSTE_POLICIES", "/nonexistent/policies")],
        )
        .await;
    let plan = json_of(&plan);
    assert!(
        plan.to_string().contains("no guardrail policy is loaded"),
        "{plan:#}"
    );

    let out = world
        .riposte_with(&disable, &[("RIPOSTE_POLICIES", "none")])
        .await;
    let v = json_of(&out);
    assert_eq!(v["run"]["status"], "succeeded", "{v:#}");
    assert!(
        v["run"]["plan"]
            .to_string()
            .contains("no guardrail policy is loaded")
    );
    assert!(!world.enabled(ALEX.1));
}

/// A single action has no lookup step, yet it is guarded on the real target: riposte reads
/// the user itself. The break-glass account is never touched, a Global Administrator needs a
/// person's approval — nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_action_is_guarded_on_the_facts_of_its_real_target() {
    let world = World::start();
    let act = |who: &'static str| {
        [
            "act",
            "entra.disable_user",
            "--principal",
            who,
            "--enforce",
            "--format",
            "json",
        ]
    };
    let mutations = |w: &World| {
        w.emulator
            .state()
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.api != "entra")
            .count()
    };

    let out = world
        .riposte(&act("breakglass01@contoso.onmicrosoft.com"))
        .await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["run"]["status"], "denied", "{v:#}");
    assert_eq!(out.status.code(), Some(1));

    let out = world.riposte(&act("grady.archie@contoso.com")).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["run"]["status"], "awaiting_approval", "{v:#}");
    assert!(
        v["run"]["plan"]
            .to_string()
            .contains("Global Administrator"),
        "{v:#}"
    );

    // A user that does not exist: nothing to act on, so nothing is planned or sent.
    let out = world.riposte(&act("nobody@contoso.com")).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["run"]["plan"]["steps"][0]["status"], "skipped", "{v:#}");
    assert_eq!(mutations(&world), 0, "something was sent");
}

/// `act` on a resource reads the resource's tags before the guardrails decide: a VM tagged
/// `riposte:protected` is not locked, even with `--enforce`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_on_a_protected_resource_is_denied() {
    let text = std::fs::read_to_string(common::root().join("tests/fixtures/tenant.yaml")).unwrap();
    let marker = "      name: vm-web-01\n";
    assert!(text.contains(marker), "fixture layout changed");
    let text = text.replacen(
        marker,
        &format!("{marker}      tags: {{ \"riposte:protected\": \"true\" }}\n"),
        1,
    );
    let world = World::start_with(Tenant::from_yaml_str(&text).unwrap());
    let vm = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";
    let out = world
        .riposte(&[
            "act",
            "arm.lock_resource",
            "--resource",
            vm,
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        v["run"]["status"],
        "denied",
        "{v:#} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        v["run"]["plan"]["steps"][0]["policy"]
            .to_string()
            .contains("riposte:protected"),
        "{v:#}"
    );
    assert_eq!(world.emulator.state().counter("locks_created"), 0);
}

/// Nobody rolls back a run their own identity requested: the responder who acted cannot
/// quietly undo it; another identity can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_roll_back_their_own_run() {
    let world = World::start();
    let v = json_of(
        &world
            .riposte(&[
                "act",
                "entra.disable_user",
                "--principal",
                ALEX.0,
                "--enforce",
                "--format",
                "json",
            ])
            .await,
    );
    let id = v["run"]["id"].as_str().unwrap().to_string();
    let own = world.riposte(&["rollback", &id]).await;
    assert_eq!(own.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&own.stderr);
    assert!(
        stderr.contains("another identity must roll it back"),
        "{stderr}"
    );
    assert!(!world.enabled(ALEX.1));
    let other = world
        .riposte_with(&["rollback", &id], &[("USER", "second-responder")])
        .await;
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert!(
        world.enabled(ALEX.1),
        "the rollback did not re-enable the account"
    );
}

/// A parameter shaped like the plan's own placeholders (`⟨…⟩`, here a fake redacted secret)
/// is text like any other: it is encoded into its slot, so it cannot climb out of
/// `/users/{user}` to PATCH another object with riposte's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_shaped_parameter_cannot_redirect_a_request() {
    let world = World::start();
    let hostile = format!("user=⟨secret: webhook path⟩/../{}?x=⟩", ALEX.1);
    let out = world
        .riposte(&[
            "act",
            "entra.disable_user",
            "--param",
            &hostile,
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let sent: Vec<String> = world
        .emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.api != "entra")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        sent.is_empty(),
        "{sent:?}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        world.enabled(ALEX.1),
        "the crafted parameter disabled another user"
    );
}

const GRADY: (&str, &str) = (
    "grady.archie@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000005",
);

/// A responder contains a Global Administrator from the command line: the guardrails make
/// the run wait, `--wait` says so on stderr and waits, an approver approves from another
/// shell (`--format json`), and the waiting command reports the executed run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_wait_holds_for_an_approval_given_from_another_shell() {
    let world = World::start();
    let dir = world.dir.path().to_path_buf();
    let waiting = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
        .current_dir(&dir)
        .arg("--config")
        .arg(dir.join("riposte.toml"))
        .args([
            "act",
            "entra.revoke_sessions",
            "--principal",
            GRADY.0,
            "--enforce",
            "--wait",
            "--format",
            "json",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "responder")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let service = riposte::app::App::new(world.config())
        .unwrap()
        .service()
        .await
        .unwrap();
    let mut waiting_run = None;
    for _ in 0..100 {
        let runs = service
            .runs(5, Some(RunStatus::AwaitingApproval))
            .await
            .unwrap();
        if let Some(r) = runs.into_iter().next() {
            waiting_run = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let run = waiting_run.expect("the run waits for approval");
    let hash = run.plan_hash.clone().unwrap();
    let approved = world
        .riposte_with(
            &["approve", &run.id, "--plan-hash", &hash, "--format", "json"],
            &[("USER", "approver")],
        )
        .await;
    let approved = json_of(&approved);
    assert_eq!(approved["run"]["id"], run.id.as_str());
    assert_eq!(approved["run"]["status"], "succeeded", "{approved:#}");
    let out = tokio::task::spawn_blocking(move || waiting.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waits for approval"), "{stderr}");
    let v = json_of(&out);
    assert_eq!(v["run"]["id"], run.id.as_str());
    assert_eq!(v["run"]["status"], "succeeded", "{v:#}\n{stderr}");
    assert_eq!(world.emulator.state().counter("sessions_revoked"), 1);
    world.emulator.shutdown().await;
}

/// Every command that prints data takes `--format json`; completions come for three shells.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_speak_json_and_shells_complete_them() {
    let world = World::start();
    let verified = json_of(
        &world
            .riposte(&["audit", "verify", "--format", "json"])
            .await,
    );
    assert_eq!(verified["intact"], true, "{verified}");
    assert!(verified["records"].is_u64());
    // A dry-run act waits for approval; rejecting it answers the run as JSON.
    let planned = world
        .riposte(&[
            "act",
            "entra.disable_user",
            "--principal",
            ALEX.0,
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let planned = json_of(&planned);
    let id = planned["run"]["id"].as_str().unwrap().to_string();
    if planned["run"]["status"] == "awaiting_approval" {
        let rejected = json_of(
            &world
                .riposte_with(
                    &["reject", &id, "--format", "json"],
                    &[("USER", "approver")],
                )
                .await,
        );
        assert_eq!(rejected["id"], id.as_str());
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = world.riposte(&["completions", shell]).await;
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["riposte", "approve", "rollback", "plan-hash", "completions"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    world.emulator.shutdown().await;
}

/// `[log] format = "json"`: every log line is one JSON object, and the lines written while a
/// run executes carry its span (`run_id`), the step's and the outbound request's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_run_step_and_request_spans() {
    let world = World::start();
    let path = world.dir.path().join("riposte.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{toml}\n[log]\nformat = \"json\"\n")).unwrap();
    let out = world
        .riposte_with(
            &[
                "act",
                "entra.disable_user",
                "--principal",
                ALEX.0,
                "--enforce",
                "--format",
                "json",
            ],
            &[("RIPOSTE_LOG", "riposte=info")],
        )
        .await;
    let v = json_of(&out);
    let run_id = v["run"]["id"].as_str().unwrap().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    let in_span = |name: &str| {
        lines.iter().any(|l| {
            l["spans"].as_array().is_some_and(|spans| {
                spans.iter().any(|s| s["name"] == name)
                    && spans
                        .iter()
                        .any(|s| s["name"] == "run" && s["run_id"] == run_id.as_str())
            })
        })
    };
    assert!(in_span("run"), "{stderr}");
    assert!(in_span("step"), "{stderr}");
    assert!(in_span("request"), "{stderr}");
    world.emulator.shutdown().await;
}
