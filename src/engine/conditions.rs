//! Run-time `if:`. A condition that reads run-time state (a dependency's `status`, or outputs
//! the plan could not read) is carried in the plan and decided here, right before its step
//! runs, over the outcomes and outputs of the steps it needs, with `alert`, `inputs` and `run`
//! as the planner saw them. Only the playbook's compiled condition is evaluated: the plan's
//! `condition` text is for people, and outputs from APIs enter as data.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::Value as JValue;
use serde_json::{Value, json};

use super::report::StepReport;
use crate::plan::{Plan, StepStatus};
use crate::playbook::expr::{Template, Unknown, from_data, referenced_paths};

/// What a run-time condition says about its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Run,
    /// False: the step is skipped with this reason.
    Skip(String),
    /// It cannot be decided; the step does not run and fails with this reason, since acting
    /// on a condition nobody could evaluate would be a guess.
    Fail(String),
}

/// Decides `condition` over the plan and the outcomes so far.
pub(super) fn decide(
    condition: &Template,
    plan: &Plan,
    outcomes: &BTreeMap<String, StepReport>,
) -> Verdict {
    let source = source_of(condition);
    match condition.eval_condition(&context(plan, outcomes)) {
        Ok(Some(true)) => Verdict::Run,
        Ok(Some(false)) => Verdict::Skip(format!("condition false: {source}")),
        Ok(None) => Verdict::Fail(format!(
            "its `if` condition `{source}` reads values the plan could not read; plan again with credentials"
        )),
        Err(e) => Verdict::Fail(format!("its `if` condition `{source}` failed: {e}")),
    }
}

/// The steps whose `status` the condition reads: a step whose condition reads a failed
/// step's status asks for that failure, so it is not skipped because of it.
pub(super) fn statuses_read(condition: &Template) -> BTreeSet<String> {
    condition
        .expressions()
        .flat_map(|(source, _)| referenced_paths(source))
        .filter_map(|path| {
            let mut segs = path.split('.');
            match (segs.next(), segs.next(), segs.next()) {
                (Some("steps"), Some(id), Some("status")) => Some(id.to_string()),
                _ => None,
            }
        })
        .collect()
}

fn source_of(condition: &Template) -> String {
    condition
        .expressions()
        .map(|(s, _)| s)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `alert`, `inputs`, `run` as at planning; `steps.<id>.status` the outcome names the report
/// uses; `steps.<id>.outputs` the planned outputs (unknown where the plan could not read them).
fn context(plan: &Plan, outcomes: &BTreeMap<String, StepReport>) -> JValue {
    let steps: BTreeMap<String, JValue> = plan
        .steps
        .iter()
        .filter_map(|s| outcomes.get(&s.id).map(|report| (s, report)))
        .map(|(s, report)| {
            let outputs = if s.outputs.is_null() && s.status != StepStatus::Skipped {
                Unknown::value(format!("steps.{}.outputs", s.id))
            } else {
                from_data(&s.outputs)
            };
            let status = serde_json::to_value(report.outcome).unwrap_or(Value::Null);
            (
                s.id.clone(),
                JValue::from_pairs([("outputs", outputs), ("status", from_data(&status))]),
            )
        })
        .collect();
    let run = json!({
        "id": plan.run_id,
        "mode": plan.mode.as_str(),
        "playbook": plan.playbook.name,
        "now": plan.created_at.to_rfc3339(),
    });
    JValue::from_pairs([
        ("alert", from_data(&plan.alert)),
        ("inputs", from_data(&plan.inputs)),
        ("run", from_data(&run)),
        ("steps", JValue::from_pairs(steps)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::report::StepOutcome;

    fn report(id: &str, outcome: StepOutcome) -> StepReport {
        StepReport {
            id: id.into(),
            action: "entra.disable_user".into(),
            outcome,
            reason: None,
            requests: Vec::new(),
            verification: Vec::new(),
            compensation: Vec::new(),
            evidence: Vec::new(),
            finished_seq: 1,
        }
    }

    fn plan() -> Plan {
        let step = json!({
            "id": "suspend", "action": "entra.disable_user", "needs": [], "status": "planned",
            "reason": null, "effect": "mutate", "policy": null, "pre_state": null,
            "desired_state": null, "requests": [], "permissions": [], "with": {},
            "outputs": {"note": "{{ 7*7 }}"}
        });
        serde_json::from_value(json!({
            "run_id": "r1", "mode": "enforce", "plan_hash": "sha256:0",
            "playbook": {"name": "p", "version": "1", "sha256": "0"},
            "alert": serde_json::to_value(crate::actions::testing::first_access_alert()).unwrap(),
            "inputs": {"lookback": "P30D"}, "created_at": "2026-04-21T04:05:00Z",
            "steps": [step], "outputs": {}
        }))
        .unwrap()
    }

    fn outcomes(outcome: StepOutcome) -> BTreeMap<String, StepReport> {
        BTreeMap::from([("suspend".to_string(), report("suspend", outcome))])
    }

    fn cond(text: &str) -> Template {
        Template::parse_condition(text).unwrap()
    }

    #[test]
    fn a_status_condition_is_decided_on_the_outcome() {
        let c = cond("steps.suspend.status == 'failed'");
        assert_eq!(
            decide(&c, &plan(), &outcomes(StepOutcome::Failed)),
            Verdict::Run
        );
        assert_eq!(
            decide(&c, &plan(), &outcomes(StepOutcome::Succeeded)),
            Verdict::Skip("condition false: steps.suspend.status == 'failed'".into())
        );
        let c = cond("steps.suspend.status in ['succeeded', 'already_satisfied']");
        assert_eq!(
            decide(&c, &plan(), &outcomes(StepOutcome::AlreadySatisfied)),
            Verdict::Run
        );
    }

    #[test]
    fn alert_inputs_run_and_outputs_are_readable_and_outputs_stay_data() {
        let c = cond(
            "alert.severity == 'high' and inputs.lookback == 'P30D' and run.mode == 'enforce' and steps.suspend.outputs.note == '{{ 7*7 }}'",
        );
        assert_eq!(
            decide(&c, &plan(), &outcomes(StepOutcome::Succeeded)),
            Verdict::Run
        );
    }

    #[test]
    fn an_undecidable_condition_does_not_run_its_step() {
        let mut p = plan();
        p.steps[0].outputs = Value::Null;
        let c = cond("steps.suspend.outputs.id == 'x'");
        assert!(matches!(
            decide(&c, &p, &outcomes(StepOutcome::Succeeded)),
            Verdict::Fail(_)
        ));
        let c = cond("steps.suspend.status.nope.deeper");
        assert!(matches!(
            decide(&c, &plan(), &outcomes(StepOutcome::Succeeded)),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn statuses_read_names_the_steps_whose_status_is_asked_for() {
        let c = cond("steps.suspend.status == 'failed' or steps.user.outputs.id == 'x'");
        assert_eq!(statuses_read(&c), BTreeSet::from(["suspend".to_string()]));
    }
}
