//! One response per incident: a follow-up run's plan leaves out what an earlier run of the
//! same incident already did, so a repeat alert never sends a change twice.

use serde_json::Value;

use super::{Plan, StepStatus, plan_hash};
use crate::actions::Effect;

/// A step an earlier run of the incident finished: its action and the parameters it ran with.
#[derive(Debug, Clone, PartialEq)]
pub struct DoneStep {
    pub run_id: String,
    pub action: String,
    pub with: Value,
}

/// Marks every step of `plan` that would send what a [`DoneStep`] already did — same action,
/// same parameters — as already satisfied, with the run that did it as the reason, and hashes
/// the plan again. Reads are left alone (their outputs feed later steps); so are steps the
/// guardrails denied or that send nothing.
pub fn leave_out_done(plan: &mut Plan, done: &[DoneStep]) {
    let mut changed = false;
    for step in &mut plan.steps {
        if !matches!(step.effect, Effect::Mutate | Effect::Evidence)
            || !matches!(step.status, StepStatus::Planned | StepStatus::NeedsApproval)
        {
            continue;
        }
        if let Some(d) = done
            .iter()
            .find(|d| d.action == step.action && d.with == step.with)
        {
            step.status = StepStatus::AlreadySatisfied;
            step.reason = Some(format!(
                "already done in this incident by run {}; nothing is sent again",
                d.run_id
            ));
            step.requests.clear();
            step.item_requests.clear();
            changed = true;
        }
    }
    if changed {
        plan.plan_hash = plan_hash(&plan.steps);
    }
}

/// Marks a session revocation as satisfied when the same plan finds the account already
/// disabled and riposte has recorded (`revoked_at`) a revocation since it disabled it: no
/// session can have started since then, so revoking again would only send a request.
pub fn leave_out_revocation(plan: &mut Plan, revoked_at: chrono::DateTime<chrono::Utc>) {
    let disabled: Vec<Value> = plan
        .steps
        .iter()
        .filter(|s| s.action == DISABLE && s.status == StepStatus::AlreadySatisfied)
        .filter_map(|s| s.with.get("user").cloned())
        .collect();
    let mut changed = false;
    for step in &mut plan.steps {
        if step.action == REVOKE
            && matches!(step.status, StepStatus::Planned | StepStatus::NeedsApproval)
            && step.with.get("user").is_some_and(|u| disabled.contains(u))
        {
            step.status = StepStatus::AlreadySatisfied;
            step.reason = Some(format!(
                "the account has stayed disabled since riposte revoked its sessions at {}; nothing is sent again",
                revoked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
            step.requests.clear();
            step.item_requests.clear();
            changed = true;
        }
    }
    if changed {
        plan.plan_hash = plan_hash(&plan.steps);
    }
}

const DISABLE: &str = "entra.disable_user";
const REVOKE: &str = "entra.revoke_sessions";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlannedStep;
    use serde_json::json;

    fn step(id: &str, action: &str, effect: Effect, with: Value) -> PlannedStep {
        PlannedStep {
            id: id.into(),
            action: action.into(),
            needs: vec![],
            status: StepStatus::Planned,
            reason: None,
            effect,
            policy: None,
            pre_state: Value::Null,
            desired_state: Value::Null,
            requests: vec![],
            permissions: vec![],
            notes: vec![],
            blocked: None,
            with,
            item_requests: vec![],
            outputs: Value::Null,
            condition: None,
            unknowns: Vec::new(),
        }
    }

    #[test]
    fn a_revocation_is_left_out_only_beside_an_already_disabled_account() {
        let mut plan = plan_of(vec![
            step("suspend", DISABLE, Effect::Mutate, json!({"user": "u"})),
            step("revoke", REVOKE, Effect::Mutate, json!({"user": "u"})),
        ]);
        let at = chrono::Utc::now();
        leave_out_revocation(&mut plan, at);
        assert_eq!(
            plan.steps[1].status,
            StepStatus::Planned,
            "the disable is still to do"
        );
        plan.steps[0].status = StepStatus::AlreadySatisfied;
        let before = plan.plan_hash.clone();
        leave_out_revocation(&mut plan, at);
        assert_eq!(plan.steps[1].status, StepStatus::AlreadySatisfied);
        assert!(plan.steps[1].requests.is_empty());
        assert_ne!(plan.plan_hash, before);
        // Another user's revocation is not touched.
        let mut other = plan_of(vec![
            step("suspend", DISABLE, Effect::Mutate, json!({"user": "u"})),
            step("revoke", REVOKE, Effect::Mutate, json!({"user": "v"})),
        ]);
        other.steps[0].status = StepStatus::AlreadySatisfied;
        leave_out_revocation(&mut other, at);
        assert_eq!(other.steps[1].status, StepStatus::Planned);
    }

    fn plan_of(steps: Vec<PlannedStep>) -> Plan {
        let alert: crate::alert::Alert = serde_json::from_value(json!({
            "id": "a", "source": "generic", "kind": "first_access", "title": "t",
            "severity": "high", "observed_at": "2026-01-01T00:00:00Z", "resources": [], "raw": {}
        }))
        .unwrap();
        let mut plan = Plan {
            run_id: "r".into(),
            mode: crate::mode::Mode::Enforce,
            plan_hash: String::new(),
            playbook: crate::plan::PlaybookRef {
                name: "p".into(),
                version: "1".into(),
                sha256: "s".into(),
            },
            alert,
            inputs: json!({}),
            created_at: chrono::Utc::now(),
            steps,
            outputs: json!({}),
            notes: vec![],
        };
        plan.plan_hash = plan_hash(&plan.steps);
        plan
    }

    #[test]
    fn only_the_same_change_with_the_same_parameters_is_left_out() {
        let mut plan = plan_of(vec![
            step("user", "entra.get_user", Effect::Read, json!({"user": "u"})),
            step(
                "suspend",
                "entra.disable_user",
                Effect::Mutate,
                json!({"user": "u"}),
            ),
            step(
                "snap",
                "arm.snapshot",
                Effect::Mutate,
                json!([{"resource": "/new"}]),
            ),
        ]);
        let before = plan.plan_hash.clone();
        let done = [
            DoneStep {
                run_id: "r1".into(),
                action: "entra.disable_user".into(),
                with: json!({"user": "u"}),
            },
            DoneStep {
                run_id: "r1".into(),
                action: "arm.snapshot".into(),
                with: json!([{"resource": "/old"}]),
            },
            DoneStep {
                run_id: "r1".into(),
                action: "entra.get_user".into(),
                with: json!({"user": "u"}),
            },
        ];
        leave_out_done(&mut plan, &done);
        let status: Vec<StepStatus> = plan.steps.iter().map(|s| s.status).collect();
        assert_eq!(
            status,
            [
                StepStatus::Planned,
                StepStatus::AlreadySatisfied,
                StepStatus::Planned
            ]
        );
        assert!(plan.steps[1].reason.as_deref().unwrap().contains("run r1"));
        assert_ne!(plan.plan_hash, before, "the hash covers what is sent");
    }
}
