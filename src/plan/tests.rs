//! Planning `if:` conditions: plan-time facts decide at plan time; a condition reading a
//! dependency's run-time `status` is planned in full and carried in the plan.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::actions::testing::{ALEX_ID, ALEX_UPN, FakeLookup, RUN_ID, TestEnv, user_json};
use crate::policy::Unguarded;

/// Disables Alex; `revoke` carries the given `if:`.
fn playbook(condition: &str) -> Playbook {
    let text = format!(
        "name: fallback\nsteps:\n  - id: suspend\n    uses: entra.disable_user\n    on_error: continue\n    with: {{ user: {ALEX_ID} }}\n  - id: revoke\n    uses: entra.revoke_sessions\n    needs: [suspend]\n    if: \"{condition}\"\n    with: {{ user: {ALEX_ID} }}\n"
    );
    crate::playbook::load_str(&text, Path::new("fallback.yaml")).expect("the playbook loads")
}

async fn plan_of(playbook: &Playbook) -> Plan {
    let env = TestEnv::new(
        FakeLookup::strict()
            .user(user_json(ALEX_ID, ALEX_UPN))
            .found(
                format!(
                    "{}/users/{ALEX_ID}/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId&$count=true",
                    crate::actions::testing::GRAPH
                ),
                json!({"value": []}),
            ),
    );
    let planner = Planner {
        endpoints: &env.endpoints,
        lookup: &env.lookup,
        settings: &env.settings,
        guard: &Unguarded,
    };
    planner
        .plan(
            playbook,
            &env.alert,
            &BTreeMap::new(),
            Mode::Enforce,
            RUN_ID,
            env.now,
        )
        .await
        .expect("a plan")
}

fn step<'a>(plan: &'a Plan, id: &str) -> &'a PlannedStep {
    plan.steps.iter().find(|s| s.id == id).expect("the step")
}

#[tokio::test]
async fn a_condition_on_a_dependencys_status_is_planned_in_full_and_carried() {
    let plan = plan_of(&playbook("steps.suspend.status == 'failed'")).await;
    let revoke = step(&plan, "revoke");
    assert_eq!(revoke.status, StepStatus::Planned, "{revoke:#?}");
    assert_eq!(
        revoke.condition.as_deref(),
        Some("steps.suspend.status == 'failed'")
    );
    // The exact request an approved run would send, shown now.
    assert_eq!(revoke.requests.len(), 1, "{revoke:#?}");
    assert!(revoke.requests[0].url.ends_with("/revokeSignInSessions"));
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["steps"][1]["condition"],
        "steps.suspend.status == 'failed'"
    );
    // A step decided at plan time carries no condition field at all.
    assert!(json["steps"][0].get("condition").is_none(), "{json:#}");
}

#[tokio::test]
async fn a_condition_over_plan_time_facts_is_still_decided_at_plan_time() {
    let plan = plan_of(&playbook("alert.severity == 'low'")).await;
    let revoke = step(&plan, "revoke");
    assert_eq!(revoke.status, StepStatus::Skipped);
    assert_eq!(
        revoke.reason.as_deref(),
        Some("its `if` condition is false")
    );
    assert!(revoke.requests.is_empty());
    assert_eq!(revoke.condition, None);

    let plan = plan_of(&playbook("alert.severity == 'high'")).await;
    let revoke = step(&plan, "revoke");
    assert_eq!(revoke.status, StepStatus::Planned);
    assert_eq!(revoke.condition, None);
}

#[tokio::test]
async fn the_carried_condition_is_part_of_the_plan_hash() {
    let on_failure = plan_of(&playbook("steps.suspend.status == 'failed'")).await;
    let on_success = plan_of(&playbook("steps.suspend.status != 'failed'")).await;
    // Same requests, same decisions: only when `revoke` runs differs, and that is approved too.
    assert_eq!(
        step(&on_failure, "revoke").requests,
        step(&on_success, "revoke").requests
    );
    assert_ne!(on_failure.plan_hash, on_success.plan_hash);
}
