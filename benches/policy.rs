//! `cargo bench --bench policy`: one guardrail decision by the shipped policies, for the
//! input a planner builds for a mutating step on a Global Administrator (the rule set that
//! does the most work: roles, break-glass, caps). Prints the time per evaluation and its
//! ratio to the 200 µs target; it asserts nothing.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use riposte::actions::Effect;
use riposte::config::Guardrails;
use riposte::policy::{ActionRef, Counters, Guard, PolicyInput, RegoGuard, Target};
use serde_json::json;

const TARGET: Duration = Duration::from_micros(200);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guardrails = Guardrails {
        break_glass: vec!["a1e7d1c2-5b3f-4c8e-9d21-000000000006".into()],
        max_principals_per_hour: 10,
    };
    let load_start = Instant::now();
    let guard = RegoGuard::load(&root.join("policies"), &guardrails).expect("policies load");
    let load = load_start.elapsed();

    let user = json!({
        "id": "a1e7d1c2-5b3f-4c8e-9d21-000000000005", "upn": "grady.archie@contoso.com",
        "user_type": "Member", "on_premises_sync_enabled": false, "account_enabled": true,
        "roles": [{"display_name": "Global Administrator",
                   "role_template_id": "62e90394-69f5-4237-9190-012177145e10"}],
    });
    let params = json!({"user": "a1e7d1c2-5b3f-4c8e-9d21-000000000005"});
    let alert = json!({"id": "51234", "source": "lacework", "kind": "first_access",
        "title": "New Azure API Call Invoked by User Accessed Resource for the First Time",
        "severity": "high", "principal": {"upn": "grady.archie@contoso.com", "type": "user"},
        "resources": [{"id": "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"}]});
    let playbook = json!({"name": "first-access-containment", "version": "1.0.0", "stage": "live"});
    let counters = Counters {
        principals_contained_last_hour: 4,
        ..Counters::default()
    };
    let input = || PolicyInput {
        action: ActionRef {
            name: "entra.disable_user",
            effect: Effect::Mutate,
        },
        params: &params,
        target: Target::from_step([&user], &params, &serde_json::Value::Null, &alert),
        alert: &alert,
        playbook: &playbook,
        mode: "enforce",
        counters: &counters,
    };
    let once = guard.decide(&input());
    assert_eq!(
        once.decision,
        riposte::policy::Verdict::RequireApproval,
        "{once:?}"
    );

    for _ in 0..200 {
        black_box(guard.decide(black_box(&input())));
    }
    let n = 5_000u32;
    let start = Instant::now();
    for _ in 0..n {
        black_box(guard.decide(black_box(&input())));
    }
    let per = start.elapsed() / n;
    println!("policy load (parse + analyse, once): {load:?}");
    println!(
        "policy evaluation per step (input built + decided): {per:?}  ({:.2}× the {TARGET:?} target; {:.2}× the previous 98 µs)",
        per.as_secs_f64() / TARGET.as_secs_f64(),
        per.as_secs_f64() / 98e-6
    );
    // The new facts: removing a service principal's role assignments, with the facts the
    // planner reads from the directory (object id, app id, roles) and the resource's tags.
    let vm = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";
    let sp_params = json!({"resource": vm, "principal": "7a1b2c3d-0000-4e5f-8a9b-000000000a01"});
    let read_vm = json!({"id": vm, "type": "Microsoft.Compute/virtualMachines", "location": "westeurope", "tags": {"env": "prod"}});
    let sp_input = || {
        let mut target =
            Target::from_step([&read_vm], &sp_params, &serde_json::Value::Null, &alert);
        target.principal_type = Some(riposte::policy::PrincipalType::ServicePrincipal);
        target.service_principal = Some(riposte::policy::ServicePrincipalFacts {
            id: "7a1b2c3d-0000-4e5f-8a9b-000000000a01".into(),
            app_id: Some("7a1b2c3d-0000-4e5f-8a9b-000000000a02".into()),
            display_name: Some("deploy-pipeline".into()),
            service_principal_type: Some("Application".into()),
            roles: vec![riposte::policy::RoleFacts {
                display_name: Some("Global Administrator".into()),
                role_template_id: Some("62e90394-69f5-4237-9190-012177145e10".into()),
            }],
        });
        PolicyInput {
            action: ActionRef {
                name: "arm.remove_role_assignments",
                effect: Effect::Mutate,
            },
            params: &sp_params,
            target,
            alert: &alert,
            playbook: &playbook,
            mode: "enforce",
            counters: &counters,
        }
    };
    assert_eq!(
        guard.decide(&sp_input()).decision,
        riposte::policy::Verdict::RequireApproval
    );
    for _ in 0..200 {
        black_box(guard.decide(black_box(&sp_input())));
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(guard.decide(black_box(&sp_input())));
    }
    let per_sp = start.elapsed() / n;
    println!(
        "policy evaluation per step, service principal with roles on a read resource: {per_sp:?}  ({:.2}× the {TARGET:?} target; {:.2}× the user step above)",
        per_sp.as_secs_f64() / TARGET.as_secs_f64(),
        per_sp.as_secs_f64() / per.as_secs_f64()
    );
}
