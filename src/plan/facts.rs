//! Facts about a mutating step's target that no earlier step read. A single action (`act`,
//! `POST /v1/actions/{name}`) or a playbook without a lookup step is guarded on the real
//! target too: the planner reads the user itself, through the same read-only `Lookup` and the
//! same `entra.get_user` plan a playbook would use. A target whose facts cannot be read is not
//! acted on.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Planner;
use crate::actions::{self, PlanContext, unknown};
use crate::alert::Alert;

/// What reading a step's users gave.
pub(super) enum UserFacts {
    /// Each named user's `entra.get_user` outputs.
    Read(Vec<Value>),
    /// No credentials to read with (planning offline): the facts are unknown, and the plan
    /// can only be shown, never executed.
    Offline,
    /// A user the step names could not be read (no such user, the lookup was refused).
    Unreadable(String),
}

impl Planner<'_> {
    /// Reads the facts of every user the step's parameters name (`user`), for a step whose
    /// dependencies read none.
    pub(super) async fn user_facts(
        &self,
        with: &Value,
        alert: &Alert,
        run_id: &str,
        step_id: &str,
        now: DateTime<Utc>,
    ) -> UserFacts {
        let Some(get_user) = actions::find("entra.get_user") else {
            return UserFacts::Unreadable("entra.get_user is not registered".into());
        };
        let users: Vec<&str> = match with {
            Value::Array(items) => items.iter().filter_map(user_of).collect(),
            one => user_of(one).into_iter().collect(),
        };
        let ctx = PlanContext {
            endpoints: self.endpoints,
            lookup: self.lookup,
            alert,
            run_id,
            step_id,
            settings: self.settings,
            now,
            playbook_dir: Default::default(),
        };
        let mut read = Vec::new();
        for user in users {
            match get_user.plan_value(json!({ "user": user }), &ctx).await {
                Ok(plan) if plan.outputs.is_null() => return UserFacts::Offline,
                Ok(plan) => read.push(plan.outputs),
                Err(e) => {
                    return UserFacts::Unreadable(format!(
                        "cannot read the facts of `{user}` ({e}); riposte does not act on a target it cannot see"
                    ));
                }
            }
        }
        UserFacts::Read(read)
    }
}

/// The user a parameter object names, when it is a value (not one known only at run time).
fn user_of(params: &Value) -> Option<&str> {
    params
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !unknown::is_placeholder(u))
}
