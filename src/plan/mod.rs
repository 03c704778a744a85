//! Turning a playbook, an alert and real read-only lookups into a [`Plan`]: the exact requests
//! each step will send, the state before and after, and the guardrail decision.
//!
//! The planner holds a [`Lookup`] (GET only) and nothing that could send another method: it
//! cannot mutate, by construction.

mod budget;
mod done;
mod facts;
mod render;
mod seal;

pub use seal::exact;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use minijinja::Value as JValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::actions::{self, ActionPlan, ActionSettings, Effect, PlanContext, PlanStatus};
use crate::alert::Alert;
use crate::connectors::{ApiRequest, Endpoints, Lookup};
use crate::playbook::expr::{Unknown, from_data};
use crate::playbook::model::{Param, Playbook, Stage, Step};
use crate::policy::{Decision, Guard, PolicyInput, Verdict};

pub use budget::DEFAULT_MAX_PLANNING_READS;
pub use done::{DoneStep, leave_out_done, leave_out_revocation};
pub use render::render_table;

pub use crate::mode::Mode;
pub use crate::text::canonical_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Planned,
    Skipped,
    AlreadySatisfied,
    Denied,
    NeedsApproval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// One step of a plan (field names are a contract: DESIGN.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: String,
    pub action: String,
    pub needs: Vec<String>,
    pub status: StepStatus,
    pub reason: Option<String>,
    pub effect: Effect,
    /// The guardrail decision; present for steps that change something.
    pub policy: Option<Decision>,
    pub pre_state: Value,
    pub desired_state: Value,
    pub requests: Vec<ApiRequest>,
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set when the step will fail with this instruction instead of sending a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// The rendered parameters (one entry per `for_each` item).
    pub with: Value,
    /// For a `for_each` step, how many of `requests` belong to each item, in order; `with`,
    /// `pre_state` and `desired_state` are then lists with one entry per item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_requests: Vec<usize>,
    /// What later steps read as `steps.<id>.outputs`; null when known only at run time.
    pub outputs: Value,
    /// The step's `if:` when it reads run-time state (a dependency's `status`, or outputs
    /// known only at run time): the step is planned in full and the executor evaluates this
    /// right before the step, skipping it when false. Absent when decided at plan time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The values this step's requests or parameters need that are known only at run time
    /// (`⟨steps.user.outputs.id⟩`): the plan is not exact, and the executor sends none of the
    /// step's requests. Recorded when the plan is sealed, never guessed from text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<String>,
}

/// A reviewable dry run: what an approved run will send, request for request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub run_id: String,
    pub mode: Mode,
    /// `sha256:` of the canonical JSON of every step's requests and decisions; an approval
    /// names it, so what is approved is exactly what runs.
    pub plan_hash: String,
    pub playbook: PlaybookRef,
    pub alert: Alert,
    pub inputs: Value,
    pub created_at: DateTime<Utc>,
    pub steps: Vec<PlannedStep>,
    pub outputs: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why no plan could be made at all (a step that cannot be planned is shown, not an error).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("input `{0}` is required and has no default; pass --input {0}=…")]
    MissingInput(String),
    #[error("input `{name}`: {problem}")]
    BadInput { name: String, problem: String },
    #[error("the playbook declares no input `{0}`")]
    UnknownInput(String),
    #[error(
        "planning needs more than {limit} upstream reads ([actions] max_planning_reads); no partial plan is made — raise the budget or narrow the alert's targets"
    )]
    ReadBudgetExceeded { limit: u32 },
}

/// Everything planning needs from outside, passed in so planning stays testable.
pub struct Planner<'a> {
    pub endpoints: &'a Endpoints,
    pub lookup: &'a dyn Lookup,
    pub settings: &'a ActionSettings,
    pub guard: &'a dyn Guard,
}

/// The playbooks whose triggers fit the alert.
pub fn select<'p>(playbooks: &'p [Playbook], alert: &Alert) -> Vec<&'p Playbook> {
    let ctx = JValue::from_pairs([("alert", from_data(alert))]);
    playbooks
        .iter()
        .filter(|p| {
            p.triggers_for(alert).any(|t| match &t.condition {
                None => true,
                Some(c) => matches!(c.eval_condition(&ctx), Ok(Some(true))),
            })
        })
        .collect()
}

impl Planner<'_> {
    pub async fn plan(
        &self,
        playbook: &Playbook,
        alert: &Alert,
        given_inputs: &BTreeMap<String, String>,
        mode: Mode,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Plan, PlanError> {
        // Without a store there is no recent activity to count.
        self.plan_with_counters(
            playbook,
            alert,
            given_inputs,
            mode,
            run_id,
            now,
            &crate::policy::Counters::default(),
        )
        .await
    }

    /// As [`Planner::plan`], with the recent-activity counters the guardrails read (blast
    /// radius): the service takes them from its store.
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_with_counters(
        &self,
        playbook: &Playbook,
        alert: &Alert,
        given_inputs: &BTreeMap<String, String>,
        mode: Mode,
        run_id: &str,
        now: DateTime<Utc>,
        counters: &crate::policy::Counters,
    ) -> Result<Plan, PlanError> {
        let limit = self
            .settings
            .max_planning_reads
            .unwrap_or(DEFAULT_MAX_PLANNING_READS);
        let budget = budget::ReadBudget::new(self.lookup, limit);
        let planner = Planner {
            lookup: &budget,
            ..*self
        };
        let plan = planner
            .plan_within_budget(playbook, alert, given_inputs, mode, run_id, now, counters)
            .await?;
        if budget.exceeded() {
            return Err(PlanError::ReadBudgetExceeded { limit });
        }
        Ok(plan)
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_within_budget(
        &self,
        playbook: &Playbook,
        alert: &Alert,
        given_inputs: &BTreeMap<String, String>,
        mode: Mode,
        run_id: &str,
        now: DateTime<Utc>,
        counters: &crate::policy::Counters,
    ) -> Result<Plan, PlanError> {
        let inputs = resolve_inputs(playbook, given_inputs)?;
        let mut notes = Vec::new();
        if alert.needs_enrichment {
            notes.push(format!(
                "the {} alert names no user or resource: it needs enrichment from the source's API before steps can target anything",
                alert.source
            ));
        }
        let mode = if playbook.stage == Stage::Trial && mode == Mode::Enforce {
            notes.push("the playbook is in `stage: trial`: it only plans".to_string());
            Mode::DryRun
        } else {
            mode
        };
        let alert_value = from_data(alert);
        let alert_json = serde_json::to_value(alert).unwrap_or(Value::Null);
        let playbook_json =
            json!({"name": playbook.name, "version": playbook.version, "stage": playbook.stage});
        let run = json!({"id": run_id, "mode": mode.as_str(), "playbook": playbook.name, "now": now.to_rfc3339()});
        let mut results: BTreeMap<String, (StepStatus, JValue)> = BTreeMap::new();
        let mut planned: BTreeMap<String, PlannedStep> = BTreeMap::new();

        for step in topological(&playbook.steps) {
            let action = actions::find(&step.uses).expect("validated at load");
            let info = action.info();
            let ctx_value = context(&alert_value, &inputs, &run, &results, None);
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
                self.plan_step(
                    step,
                    &mut ps,
                    &alert_value,
                    &inputs,
                    &run,
                    &results,
                    alert,
                    run_id,
                    now,
                    playbook,
                )
                .await;
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
                    &alert_json,
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
                        .target_facts(&ps.with, &known, alert, run_id, &step.id, now)
                        .await
                    {
                        facts::TargetFacts::Read(read) => {
                            if !read.outputs.is_empty() {
                                target = crate::policy::Target::from_step(
                                    needed.iter().copied().chain(read.outputs.iter()),
                                    &ps.with,
                                    &ps.pre_state,
                                    &alert_json,
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
                        alert: &alert_json,
                        playbook: &playbook_json,
                        mode: mode.as_str(),
                        counters,
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
            let outputs_ctx = if ps.outputs.is_null() && ps.status != StepStatus::Skipped {
                Unknown::value(format!("steps.{}.outputs", step.id))
            } else {
                from_data(&ps.outputs)
            };
            results.insert(step.id.clone(), (ps.status, outputs_ctx));
            planned.insert(step.id.clone(), ps);
        }

        let final_ctx = context(&alert_value, &inputs, &run, &results, None);
        let outputs: serde_json::Map<String, Value> = playbook
            .outputs
            .iter()
            .map(|(name, t)| (name.clone(), t.eval(&final_ctx).unwrap_or(Value::Null)))
            .collect();
        // Steps in the playbook's order, which is how authors read them.
        let steps: Vec<PlannedStep> = playbook
            .steps
            .iter()
            .filter_map(|s| planned.remove(&s.id))
            .collect();
        let mut plan = Plan {
            plan_hash: String::new(),
            run_id: run_id.to_string(),
            mode,
            playbook: PlaybookRef {
                name: playbook.name.clone(),
                version: playbook.version.clone(),
                sha256: playbook.sha256.clone(),
            },
            alert: alert.clone(),
            inputs: Value::Object(inputs.into_iter().collect()),
            created_at: now,
            steps,
            outputs: Value::Object(outputs),
            notes,
        };
        seal::seal(&mut plan);
        plan.plan_hash = plan_hash(&plan.steps);
        Ok(plan)
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_step(
        &self,
        step: &Step,
        ps: &mut PlannedStep,
        alert_value: &JValue,
        inputs: &BTreeMap<String, Value>,
        run: &Value,
        results: &BTreeMap<String, (StepStatus, JValue)>,
        alert: &Alert,
        run_id: &str,
        now: DateTime<Utc>,
        playbook: &Playbook,
    ) {
        let action = actions::find(&step.uses).expect("validated at load");
        let base_ctx = context(alert_value, inputs, run, results, None);
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
            let ctx_value = context(alert_value, inputs, run, results, item.clone());
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
                alert,
                run_id,
                step_id: &step.id,
                settings: self.settings,
                now,
                playbook_dir: playbook.dir(),
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

/// The template context: `alert`, `inputs`, `run`, `steps.<id>.{outputs,status}` and `item`.
/// A step's `status` is its execution outcome, which only the run knows: while planning it is
/// unknown, so a condition reading it is decided by the executor.
fn context(
    alert: &JValue,
    inputs: &BTreeMap<String, Value>,
    run: &Value,
    results: &BTreeMap<String, (StepStatus, JValue)>,
    item: Option<JValue>,
) -> JValue {
    let steps: BTreeMap<String, JValue> = results
        .iter()
        .map(|(id, (_, outputs))| {
            let status = Unknown::value(format!("steps.{id}.status"));
            (
                id.clone(),
                JValue::from_pairs([("outputs", outputs.clone()), ("status", status)]),
            )
        })
        .collect();
    let mut entries = vec![
        ("alert", alert.clone()),
        ("inputs", from_data(inputs)),
        ("run", from_data(run)),
        ("steps", JValue::from_pairs(steps)),
    ];
    if let Some(item) = item {
        entries.push(("item", item));
    }
    JValue::from_pairs(entries)
}

fn resolve_inputs(
    playbook: &Playbook,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, PlanError> {
    if let Some(unknown) = given.keys().find(|k| !playbook.inputs.contains_key(*k)) {
        return Err(PlanError::UnknownInput(unknown.clone()));
    }
    let mut out = BTreeMap::new();
    for (name, spec) in &playbook.inputs {
        let value = match given.get(name) {
            Some(text) => spec
                .kind
                .coerce(text)
                .map_err(|problem| PlanError::BadInput {
                    name: name.clone(),
                    problem,
                })?,
            None => match &spec.default {
                Some(d) => d.clone(),
                None if spec.required => return Err(PlanError::MissingInput(name.clone())),
                None => Value::Null,
            },
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Steps in an order where every step comes after the steps it needs; among steps that are
/// ready together, file order.
fn topological(steps: &[Step]) -> Vec<&Step> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(steps.len());
    while out.len() < steps.len() {
        let before = out.len();
        for s in steps {
            if !done.contains(s.id.as_str()) && s.needs.iter().all(|d| done.contains(d.as_str())) {
                done.insert(&s.id);
                out.push(s);
            }
        }
        if out.len() == before {
            break; // a cycle; the loader has already reported it
        }
    }
    out
}

/// `sha256:` over the canonical JSON (sorted keys) of what each step will do.
pub fn plan_hash(steps: &[PlannedStep]) -> String {
    let material: Vec<Value> = steps
        .iter()
        .map(|s| {
            let mut entry = json!({
                "id": s.id,
                "action": s.action,
                "status": s.status,
                "requests": s.requests,
                "policy": s.policy,
                "blocked": s.blocked,
            });
            // Whether the step runs is part of what is approved; added only when present so
            // plans without run-time conditions keep their hashes.
            if let (Some(c), Some(m)) = (&s.condition, entry.as_object_mut()) {
                m.insert("condition".into(), json!(c));
            }
            entry
        })
        .collect();
    let mut text = String::new();
    canonical_json(&Value::Array(material), &mut text);
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests;
