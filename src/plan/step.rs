//! Deciding one step: its `if:`, its parameters rendered over what the steps it depends on
//! planned, its action's exact requests, the facts about its real target, and the guardrail
//! decision. A step reads only what its ancestors planned, so steps that do not depend on each
//! other are decided side by side and the outcome never depends on which finished first.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use minijinja::Value as JValue;
use serde_json::Value;

use super::{PlannedStep, Planner, StepStatus, context, facts};
use crate::actions::{self, ActionPlan, Effect, PlanContext, PlanStatus};
use crate::alert::Alert;
use crate::mode::Mode;
use crate::playbook::expr::{Unknown, from_data};
use crate::playbook::model::{Param, Playbook, Step};
use crate::policy::{Counters, Decision, PolicyInput, Verdict};

/// What every step of one planning is decided against.
pub(super) struct Frame<'a> {
    pub playbook: &'a Playbook,
    pub alert: &'a Alert,
    pub alert_value: JValue,
    pub alert_json: Value,
    pub playbook_json: Value,
    pub inputs: &'a BTreeMap<String, Value>,
    pub run: Value,
    pub mode: Mode,
    pub run_id: &'a str,
    pub now: DateTime<Utc>,
    pub counters: &'a Counters,
}

impl Planner<'_> {
    /// Decides `step` over `results` and `planned`: the statuses, outputs and plans of its
    /// ancestors (every step it depends on, directly or not), and nothing else.
    pub(super) async fn decide_step(
        &self,
        f: &Frame<'_>,
        step: &Step,
        results: BTreeMap<String, (StepStatus, JValue)>,
        planned: BTreeMap<String, PlannedStep>,
    ) -> PlannedStep {
        let action = actions::find(&step.uses).expect("validated at load");
        let info = action.info();
        let ctx_value = context(&f.alert_value, f.inputs, &f.run, &results, None);
        let mut ps = PlannedStep {
            id: step.id.clone(),
            action: step.uses.clone(),
            needs: step.needs.clone(),
            status: StepStatus::Planned,
            reason: None,
            effect: info.effect,
            policy: None,
            pre_state: Value::Null,
            desired_state: Value::Null,
            requests: Vec::new(),
            permissions: info.permissions.flat(),
            notes: Vec::new(),
            blocked: None,
            with: Value::Null,
            item_requests: Vec::new(),
            outputs: Value::Null,
            condition: None,
            unknowns: Vec::new(),
        };
        // `needs` orders steps; only a denied dependency stops its dependents, since
        // running them would act on a decision the guardrails refused.
        if let Some(dep) = step.needs.iter().find(|d| {
            results
                .get(*d)
                .is_some_and(|(s, _)| *s == StepStatus::Denied)
        }) {
            // What depends on a refused step is refused with it, and says why.
            let why = format!("needs `{dep}`, which the guardrails denied");
            ps.status = if info.effect == Effect::Mutate {
                StepStatus::Denied
            } else {
                StepStatus::Skipped
            };
            if ps.status == StepStatus::Denied {
                ps.policy = Some(Decision {
                    decision: Verdict::Deny,
                    reasons: vec![why.clone()],
                });
            }
            ps.reason = Some(why);
        } else if let Some(cond) = &step.condition {
            match cond.eval_condition(&ctx_value) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    ps.status = StepStatus::Skipped;
                    ps.reason = Some("its `if` condition is false".into());
                }
                // Planned in full, so the reviewer sees what it would send; the executor
                // decides right before the step, over its dependencies' results.
                Ok(None) => {
                    ps.condition = cond.expressions().next().map(|(e, _)| e.to_string());
                    ps.notes.push(
                        "its `if` condition reads run-time state; it is evaluated right before the step runs".into(),
                    );
                }
                Err(e) => {
                    ps.status = StepStatus::Skipped;
                    ps.reason = Some(format!("cannot plan: `if`: {e}"));
                }
            }
        }
        if ps.status == StepStatus::Planned {
            self.plan_step(f, step, &mut ps, &results).await;
        }
        // Already-satisfied steps are asked too: they send nothing either way, but a
        // reviewer should see that riposte would never act on, say, a break-glass account.
        // Notifications are asked as well: where riposte posts is a policy's business.
        if matches!(info.effect, Effect::Mutate | Effect::Notify)
            && matches!(
                ps.status,
                StepStatus::Planned | StepStatus::AlreadySatisfied
            )
        {
            let was_satisfied = ps.status == StepStatus::AlreadySatisfied;
            // Facts from every step this one depends on, directly or not (`revoke` needs
            // `suspend`, which needs `user`: the user's roles matter to `revoke` too).
            let mut ancestors: Vec<&str> = Vec::new();
            let mut stack: Vec<&str> = step.needs.iter().map(String::as_str).collect();
            while let Some(d) = stack.pop() {
                if !ancestors.contains(&d) {
                    ancestors.push(d);
                    if let Some(p) = planned.get(d) {
                        stack.extend(p.needs.iter().map(String::as_str));
                    }
                }
            }
            let needed: Vec<&Value> = ancestors
                .iter()
                .filter_map(|d| planned.get(*d))
                .map(|d| &d.outputs)
                .collect();
            let mut target = crate::policy::Target::from_step(
                needed.iter().copied(),
                &ps.with,
                &ps.pre_state,
                &f.alert_json,
            );
            // Whatever no earlier step read about the targets is read now, so the
            // guardrails decide on the real targets (a single action has no lookup step).
            let mut unreadable = None;
            if info.effect == Effect::Mutate {
                let known = facts::Known {
                    user: target.user.is_some(),
                    resource_reads: planned
                        .values()
                        .filter(|p| p.action == "arm.get_resource")
                        .map(|p| &p.outputs)
                        .collect(),
                    created: ancestors
                        .iter()
                        .filter_map(|d| planned.get(*d))
                        .filter(|p| p.effect == Effect::Mutate)
                        .map(|p| &p.outputs)
                        .collect(),
                };
                match self
                    .target_facts(&ps.with, &known, f.alert, f.run_id, &step.id, f.now)
                    .await
                {
                    facts::TargetFacts::Read(read) => {
                        if !read.outputs.is_empty() {
                            target = crate::policy::Target::from_step(
                                needed.iter().copied().chain(read.outputs.iter()),
                                &ps.with,
                                &ps.pre_state,
                                &f.alert_json,
                            );
                        }
                        if let Some((kind, sp)) = read.principal {
                            target.principal_type = Some(kind);
                            target.service_principal = sp;
                        }
                    }
                    facts::TargetFacts::Unreadable(why) => unreadable = Some(why),
                    facts::TargetFacts::Offline => {}
                }
            }
            let notify_params;
            let mut params = &ps.with;
            if info.effect == Effect::Notify {
                target.destination = ps.requests.first().map(|r| origin_of(&r.url));
                notify_params = without_url(&ps.with);
                params = &notify_params;
            }
            let decision = match unreadable {
                Some(why) => Decision::deny(why),
                None => self.guard.decide(&PolicyInput {
                    action: crate::policy::ActionRef {
                        name: &step.uses,
                        effect: info.effect,
                    },
                    params,
                    target,
                    alert: &f.alert_json,
                    playbook: &f.playbook_json,
                    mode: f.mode.as_str(),
                    counters: f.counters,
                }),
            };
            ps.status = match decision.decision {
                Verdict::Deny => StepStatus::Denied,
                _ if was_satisfied => StepStatus::AlreadySatisfied,
                Verdict::Allow => StepStatus::Planned,
                Verdict::RequireApproval => StepStatus::NeedsApproval,
            };
            if ps.status != StepStatus::Planned && ps.reason.is_none() {
                ps.reason = decision.reasons.first().cloned();
            }
            ps.policy = Some(decision);
        }
        ps
    }

    async fn plan_step(
        &self,
        f: &Frame<'_>,
        step: &Step,
        ps: &mut PlannedStep,
        results: &BTreeMap<String, (StepStatus, JValue)>,
    ) {
        let action = actions::find(&step.uses).expect("validated at load");
        let base_ctx = context(&f.alert_value, f.inputs, &f.run, results, None);
        // `None` means a single run with no `item`.
        let items: Vec<Option<JValue>> = match &step.for_each {
            None => vec![None],
            Some(t) => match t.eval(&base_ctx) {
                Ok(Value::Array(items)) => items.iter().map(|i| Some(from_data(i))).collect(),
                Ok(Value::String(s)) if actions::unknown::is_placeholder(&s) => {
                    let of = actions::unknown::describe(&s).unwrap_or_default();
                    vec![Some(Unknown::value(format!("each of {of}")))]
                }
                Ok(other) => {
                    ps.status = StepStatus::Skipped;
                    ps.reason = Some(format!(
                        "cannot plan: `for_each` must give a list, gave {other}"
                    ));
                    return;
                }
                Err(e) => {
                    ps.status = StepStatus::Skipped;
                    ps.reason = Some(format!("cannot plan: `for_each`: {e}"));
                    return;
                }
            },
        };
        if items.is_empty() {
            ps.status = StepStatus::Skipped;
            ps.reason = Some("`for_each` gave an empty list".into());
            return;
        }
        let mut plans: Vec<ActionPlan> = Vec::new();
        let mut withs = Vec::new();
        for item in &items {
            let ctx_value = context(&f.alert_value, f.inputs, &f.run, results, item.clone());
            let with = match render_params(&step.with, &ctx_value) {
                Ok(w) => w,
                Err(e) => {
                    ps.status = StepStatus::Skipped;
                    ps.reason = Some(format!("cannot plan: {e}"));
                    return;
                }
            };
            let ctx = PlanContext {
                endpoints: self.endpoints,
                lookup: self.lookup,
                alert: f.alert,
                run_id: f.run_id,
                step_id: &step.id,
                settings: self.settings,
                now: f.now,
                playbook_dir: f.playbook.dir(),
            };
            match action.plan_value(with.clone(), &ctx).await {
                Ok(p) => plans.push(p),
                Err(e) => {
                    ps.status = StepStatus::Skipped;
                    ps.reason = Some(format!("cannot plan: {e}"));
                    ps.with = with;
                    return;
                }
            }
            withs.push(with);
        }
        merge_item_plans(ps, plans, withs, step.for_each.is_some());
    }
}

/// Folds per-item plans into one step: requests in item order; list outputs concatenated so
/// a later step can iterate over, e.g., every snapshot id of every resource.
fn merge_item_plans(ps: &mut PlannedStep, plans: Vec<ActionPlan>, withs: Vec<Value>, looped: bool) {
    let all_satisfied = plans
        .iter()
        .all(|p| p.status == PlanStatus::AlreadySatisfied);
    ps.status = if all_satisfied {
        StepStatus::AlreadySatisfied
    } else {
        StepStatus::Planned
    };
    ps.reason = plans.iter().find_map(|p| p.reason.clone());
    ps.blocked = plans.iter().find_map(|p| p.blocked.clone());
    let mut notes = BTreeSet::new();
    for p in &plans {
        notes.extend(p.notes.iter().cloned());
    }
    ps.notes.extend(notes);
    ps.requests = plans
        .iter()
        .flat_map(|p| p.requests.iter().cloned())
        .collect();
    if !looped {
        let p = plans.into_iter().next().expect("one item");
        ps.pre_state = p.pre_state;
        ps.desired_state = p.desired_state;
        ps.outputs = p.outputs;
        ps.with = withs.into_iter().next().unwrap_or(Value::Null);
        return;
    }
    ps.item_requests = plans.iter().map(|p| p.requests.len()).collect();
    ps.pre_state = Value::Array(plans.iter().map(|p| p.pre_state.clone()).collect());
    ps.desired_state = Value::Array(plans.iter().map(|p| p.desired_state.clone()).collect());
    ps.with = Value::Array(withs);
    ps.outputs = if plans.iter().any(|p| p.outputs.is_null()) {
        Value::Null
    } else {
        let mut merged = serde_json::Map::new();
        for p in &plans {
            for (k, v) in p.outputs.as_object().into_iter().flatten() {
                let slot = merged
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = slot {
                    match v {
                        Value::Array(items) => list.extend(items.iter().cloned()),
                        other => list.push(other.clone()),
                    }
                }
            }
        }
        Value::Object(merged)
    };
}

/// `scheme://host[:port]` of a planned URL (a webhook's is already redacted to that).
fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => String::new(),
    }
}

/// A notification's parameters without its `url`, whose path is a secret: policies see the
/// destination's origin instead.
fn without_url(with: &Value) -> Value {
    match with {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "url")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_url).collect()),
        other => other.clone(),
    }
}

fn render_params(with: &[(String, Param)], ctx: &JValue) -> Result<Value, String> {
    fn one(p: &Param, ctx: &JValue) -> Result<Value, String> {
        Ok(match p {
            Param::Literal(v) => v.clone(),
            Param::Template(t) => t.eval(ctx)?,
            Param::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| one(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Param::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), one(v, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
    Ok(Value::Object(
        with.iter()
            .map(|(k, v)| {
                one(v, ctx)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("`{k}`: {e}"))
            })
            .collect::<Result<_, _>>()?,
    ))
}
