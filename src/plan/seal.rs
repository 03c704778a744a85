//! Sealing a finished plan. While planning, a value known only at run time is carried as an
//! unknown ([`actions::unknown`]): text behind a mark no input can carry. Sealing records each
//! step's unknowns in its typed `unknowns` list — which the executor reads — and removes the
//! marks, so the plan a reviewer sees, the plan hash and the stored plan hold plain text and
//! `⟨…⟩` is only ever shown, never recognised.

use super::{Plan, PlannedStep};
use crate::actions::unknown;

pub(super) fn seal(plan: &mut Plan) {
    for step in &mut plan.steps {
        seal_step(step);
    }
    unknown::shown_value(&mut plan.outputs);
    for note in &mut plan.notes {
        *note = unknown::shown(note);
    }
}

pub(super) fn seal_step(step: &mut PlannedStep) {
    let Ok(mut value) = serde_json::to_value(&*step) else {
        return;
    };
    let mut unknowns = Vec::new();
    unknown::collect(&value["requests"], &mut unknowns);
    unknown::collect(&value["with"], &mut unknowns);
    if unknown::contains_unknown(&value) {
        unknown::shown_value(&mut value);
        if let Ok(shown) = serde_json::from_value::<PlannedStep>(value) {
            *step = shown;
        }
    }
    step.unknowns = unknowns;
}

/// Whether a sealed step can be sent as planned: nothing in its requests or parameters waits
/// for a value known only at run time.
pub fn exact(step: &PlannedStep) -> bool {
    step.unknowns.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Effect;
    use crate::connectors::{Api, ApiRequest};
    use crate::plan::StepStatus;
    use serde_json::{Value, json};

    fn step(url: String, with: Value) -> PlannedStep {
        PlannedStep {
            id: "s".into(),
            action: "entra.disable_user".into(),
            needs: vec![],
            status: StepStatus::Planned,
            reason: Some(format!("because {}", unknown::placeholder("why"))),
            effect: Effect::Mutate,
            policy: None,
            pre_state: Value::Null,
            desired_state: Value::Null,
            requests: vec![ApiRequest::get(Api::Graph, url)],
            permissions: vec![],
            notes: vec![],
            blocked: None,
            with,
            item_requests: vec![],
            outputs: Value::Null,
            condition: None,
            unknowns: vec![],
        }
    }

    #[test]
    fn unknowns_are_listed_and_shown_as_brackets() {
        let id = unknown::placeholder("steps.user.outputs.id");
        let mut s = step(format!("https://g/users/{id}"), json!({ "user": id }));
        seal_step(&mut s);
        assert_eq!(s.unknowns, vec!["⟨steps.user.outputs.id⟩"]);
        assert_eq!(s.requests[0].url, "https://g/users/⟨steps.user.outputs.id⟩");
        assert_eq!(s.with, json!({ "user": "⟨steps.user.outputs.id⟩" }));
        assert_eq!(s.reason.as_deref(), Some("because ⟨why⟩"));
        assert!(!exact(&s));
    }

    /// A value that only looks like an unknown (an alert's, a caller's) leaves the step exact:
    /// it is text, sent as encoded text.
    #[test]
    fn look_alikes_leave_a_step_exact() {
        let mut s = step(
            "https://g/users/%E2%9F%A8steps.user.outputs.id%E2%9F%A9".into(),
            json!({ "user": "⟨steps.user.outputs.id⟩" }),
        );
        let before = s.clone();
        seal_step(&mut s);
        assert!(exact(&s));
        assert_eq!(s.requests, before.requests);
        assert_eq!(s.with, before.with);
    }
}
