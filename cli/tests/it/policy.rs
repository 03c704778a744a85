//! The shipped guardrails (`policies/`) through `RegoGuard`, with input documents built the
//! way the planner builds them, for the canonical identities of tests/fixtures/README.md; and
//! the `riposte policy` / `riposte validate` commands through the built binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use riposte::actions::Effect;
use riposte::config::Guardrails;
use riposte::policy::{
    ActionRef, Counters, Decision, Guard, PolicyInput, RegoGuard, Target, Verdict,
};
use serde_json::{Value, json};

const BREAK_GLASS_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000006";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The shipped policies, with a deployment's `[guardrails]` naming the fixture break-glass account.
fn guard() -> RegoGuard {
    let guardrails = Guardrails {
        break_glass: vec![BREAK_GLASS_ID.into()],
        max_principals_per_hour: 10,
    };
    RegoGuard::load(&root().join("policies"), &guardrails).expect("the shipped policies load")
}

/// `entra.get_user` outputs for a fixture user.
fn user(id_suffix: &str, upn: &str, roles: Value) -> Value {
    json!({
        "id": format!("a1e7d1c2-5b3f-4c8e-9d21-00000000000{id_suffix}"),
        "upn": upn, "display_name": upn, "account_enabled": true,
        "on_premises_sync_enabled": false, "user_type": "Member", "roles": roles,
    })
}

fn alex() -> Value {
    user("1", "alex.wilber@contoso.com", json!([]))
}

fn grady() -> Value {
    user(
        "5",
        "grady.archie@contoso.com",
        json!([{"id": "r1", "display_name": "Global Administrator", "role_template_id": GLOBAL_ADMIN}]),
    )
}

fn breakglass() -> Value {
    user("6", "breakglass01@contoso.onmicrosoft.com", json!([]))
}

fn alert(principal_type: &str) -> Value {
    json!({"id": "51234", "source": "lacework", "kind": "first_access", "severity": "high",
           "principal": {"upn": "alex.wilber@contoso.com", "type": principal_type,
                         "tenant_id": "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11"}})
}

struct Step<'a> {
    action: &'a str,
    effect: Effect,
    needed: Vec<Value>,
    params: Value,
    pre_state: Value,
    stage: &'a str,
    mode: &'a str,
    contained: u64,
    alert: Value,
}

impl<'a> Step<'a> {
    fn on_user(action: &'a str, user: Value) -> Step<'a> {
        Step {
            action,
            effect: Effect::Mutate,
            params: json!({"user": user["id"]}),
            needed: vec![user],
            pre_state: Value::Null,
            stage: "live",
            mode: "dry-run",
            contained: 0,
            alert: alert("user"),
        }
    }

    fn on_resource(action: &'a str, tags: Value) -> Step<'a> {
        Step {
            action,
            effect: Effect::Mutate,
            params: json!({"resource": VM}),
            needed: vec![alex()],
            pre_state: json!({"id": VM, "tags": tags}),
            stage: "live",
            mode: "dry-run",
            contained: 0,
            alert: alert("user"),
        }
    }

    fn decide(&self, guard: &dyn Guard) -> Decision {
        let counters = Counters {
            principals_contained_last_hour: self.contained,
            ..Counters::default()
        };
        let playbook =
            json!({"name": "first-access-containment", "version": "1.0.0", "stage": self.stage});
        guard.decide(&PolicyInput {
            action: ActionRef {
                name: self.action,
                effect: self.effect,
            },
            params: &self.params,
            target: Target::from_step(&self.needed, &self.params, &self.pre_state, &self.alert),
            alert: &self.alert,
            playbook: &playbook,
            mode: self.mode,
            counters: &counters,
        })
    }
}

#[test]
fn break_glass_is_denied_every_mutating_action() {
    let g = guard();
    for action in [
        "entra.disable_user",
        "entra.revoke_sessions",
        "entra.force_password_reset",
        "entra.require_mfa",
    ] {
        let d = Step::on_user(action, breakglass()).decide(&g);
        assert_eq!(d.decision, Verdict::Deny, "{action}: {d:?}");
        assert!(d.reasons[0].contains("break-glass"), "{d:?}");
    }
}

#[test]
fn break_glass_is_denied_even_when_planning_could_not_look_it_up() {
    let mut step = Step::on_user("entra.disable_user", breakglass());
    step.needed = vec![Value::Null];
    assert_eq!(step.decide(&guard()).decision, Verdict::Deny);
}

#[test]
fn a_global_administrator_needs_approval() {
    let d = Step::on_user("entra.disable_user", grady()).decide(&guard());
    assert_eq!(
        d,
        Decision {
            decision: Verdict::RequireApproval,
            reasons: vec![
                "grady.archie@contoso.com holds Global Administrator: approval required".into()
            ],
        }
    );
}

#[test]
fn an_ordinary_user_is_allowed() {
    let d = Step::on_user("entra.disable_user", alex()).decide(&guard());
    assert_eq!(d.decision, Verdict::Allow, "{d:?}");
}

#[test]
fn the_eleventh_disable_in_an_hour_needs_approval() {
    let g = guard();
    let mut step = Step::on_user("entra.disable_user", alex());
    step.contained = 9;
    assert_eq!(step.decide(&g).decision, Verdict::Allow);
    step.contained = 10;
    assert_eq!(step.decide(&g).decision, Verdict::RequireApproval);
}

#[test]
fn a_service_principal_is_never_the_target_of_a_user_action() {
    let mut step = Step::on_user("entra.disable_user", Value::Null);
    step.needed = vec![];
    step.params = json!({"user": "c0ffee00-1111-4222-8333-444455556666"});
    step.alert = alert("service_principal");
    let d = step.decide(&guard());
    assert_eq!(d.decision, Verdict::Deny, "{d:?}");
}

#[test]
fn a_protected_resource_is_never_modified_but_its_disks_are_snapshotted() {
    let g = guard();
    let protected = json!({"riposte:protected": "true"});
    for action in ["arm.lock_resource", "arm.remove_role_assignments"] {
        let d = Step::on_resource(action, protected.clone()).decide(&g);
        assert_eq!(d.decision, Verdict::Deny, "{action}: {d:?}");
        assert_eq!(
            d.reasons,
            vec![format!(
                "vm-web-01 is tagged riposte:protected: {action} would modify it"
            )]
        );
    }
    let d = Step::on_resource("arm.snapshot", protected).decide(&g);
    assert_eq!(d.decision, Verdict::Allow, "{d:?}");
    let d = Step::on_resource("arm.lock_resource", json!({"env": "prod"})).decide(&g);
    assert_eq!(d.decision, Verdict::Allow, "{d:?}");
}

#[test]
fn a_trial_playbook_only_plans() {
    let g = guard();
    let mut step = Step::on_user("entra.disable_user", alex());
    step.stage = "trial";
    assert_eq!(step.decide(&g).decision, Verdict::Allow);
    step.mode = "enforce";
    assert_eq!(
        step.decide(&g),
        Decision {
            decision: Verdict::Deny,
            reasons: vec!["trial stage: plan only".into()]
        }
    );
}

#[test]
fn evidence_is_always_allowed() {
    let mut step = Step::on_user("evidence.activity_log", breakglass());
    step.effect = Effect::Evidence;
    assert_eq!(step.decide(&guard()).decision, Verdict::Allow);
}

/// Golden decisions for the canonical identities: any change to the shipped policies that
/// changes what riposte does to them shows up here, for review.
#[test]
fn canonical_decisions_snapshot() {
    let g = guard();
    let decisions: Vec<Value> = [
        ("alex", alex()),
        ("grady (Global Administrator)", grady()),
        ("breakglass01", breakglass()),
    ]
    .into_iter()
    .map(|(who, u)| {
        json!({"who": who, "decision": Step::on_user("entra.disable_user", u).decide(&g)})
    })
    .collect();
    insta::assert_json_snapshot!(decisions);
}

fn riposte(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .current_dir(root())
        .env_remove("RIPOSTE_CONFIG")
        .output()
        .expect("the riposte binary runs")
}

#[test]
fn riposte_policy_test_passes_on_the_shipped_policies() {
    let out = riposte(&["policy", "test", "--dir", "policies"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test result: ok."), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

#[test]
fn riposte_policy_test_reports_a_failing_test_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    copy_policies(dir.path());
    std::fs::write(
        dir.path().join("extra_test.rego"),
        "package extra_test\nimport rego.v1\ntest_wrong if {\n\tdata.riposte.guardrails.decision.decision == \"deny\" with input as {}\n}\n",
    )
    .unwrap();
    let out = riposte(&["policy", "test", "--dir", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("test data.extra_test.test_wrong ... FAILED"),
        "{stdout}"
    );
}

#[test]
fn riposte_policy_eval_prints_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        json!({"action": {"name": "entra.disable_user", "effect": "mutate"},
               "params": {"user": grady()["id"]},
               "target": {"principal_type": "user", "user": grady()},
               "playbook": {"stage": "live"}, "mode": "dry-run"})
        .to_string(),
    )
    .unwrap();
    let out = riposte(&[
        "policy",
        "eval",
        "--input",
        input.to_str().unwrap(),
        "--dir",
        "policies",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let d: Decision = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d.decision, Verdict::RequireApproval);
}

#[test]
fn riposte_validate_accepts_the_shipped_policies() {
    let out = riposte(&["validate", "policies/"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn riposte_validate_locates_a_rego_syntax_error_and_a_missing_decision() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.rego");
    std::fs::write(
        &broken,
        "package riposte.guardrails\n\nimport rego.v1\n\ndecision := {\"decision\": \"allow\" if {\n",
    )
    .unwrap();
    let out = riposte(&["validate", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{}:", broken.display())))
        .unwrap_or_else(|| panic!("no located problem in {stdout}"));
    let rest = &line[broken.display().to_string().len() + 1..];
    let mut parts = rest.splitn(3, ':');
    let l: u32 = parts.next().unwrap().parse().expect("a line number");
    let c: u32 = parts.next().unwrap().parse().expect("a column number");
    assert!(l >= 5 && c >= 1, "{line}");

    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("p.rego"),
        "package riposte.guardrails\nallow := true\n",
    )
    .unwrap();
    let out = riposte(&["validate", other.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("p.rego:1:1:") && stdout.contains("data.riposte.guardrails.decision"),
        "{stdout}"
    );
}

fn copy_policies(to: &Path) {
    for e in std::fs::read_dir(root().join("policies"))
        .unwrap()
        .flatten()
    {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
