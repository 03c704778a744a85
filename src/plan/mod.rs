//! Turning a playbook, an alert and real read-only lookups into a [`Plan`]: the exact requests
//! each step will send, the state before and after, and the guardrail decision.
//!
//! The planner holds a [`Lookup`] (GET only) and nothing that could send another method: it
//! cannot mutate, by construction.

mod budget;
mod cache;
mod done;
mod facts;
mod render;
mod seal;
mod step;

pub use seal::exact;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use minijinja::Value as JValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::actions::{ActionSettings, Effect};
use crate::alert::Alert;
use crate::connectors::{ApiRequest, Endpoints, Lookup};
use crate::playbook::expr::{Unknown, from_data};
use crate::playbook::model::{Playbook, Stage, Step};
use crate::policy::{Decision, Guard};

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

/// A change made to a decided step, given the steps it depends on.
pub type AdjustStep = dyn Fn(&mut PlannedStep, &[&PlannedStep]) + Send + Sync;

/// What a caller adds to one planning, step by step, as each step is decided.
#[derive(Default)]
pub struct StepHooks<'a> {
    /// Changes a decided step before anything else sees it, given the steps it depends on
    /// (what an earlier run of the incident already did is left out here).
    pub adjust: Option<&'a AdjustStep>,
    /// Receives each step, sealed exactly as the finished plan will hold it, as soon as it
    /// is decided: streaming execution starts a step before the whole plan is made.
    pub decided: Option<tokio::sync::mpsc::UnboundedSender<PlannedStep>>,
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
        self.plan_with_hooks(
            playbook,
            alert,
            given_inputs,
            mode,
            run_id,
            now,
            counters,
            StepHooks::default(),
        )
        .await
    }

    /// As [`Planner::plan_with_counters`], with `hooks` called as each step is decided.
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_with_hooks(
        &self,
        playbook: &Playbook,
        alert: &Alert,
        given_inputs: &BTreeMap<String, String>,
        mode: Mode,
        run_id: &str,
        now: DateTime<Utc>,
        counters: &crate::policy::Counters,
        hooks: StepHooks<'_>,
    ) -> Result<Plan, PlanError> {
        let limit = self
            .settings
            .max_planning_reads
            .unwrap_or(DEFAULT_MAX_PLANNING_READS);
        let budget = budget::ReadBudget::new(self.lookup, limit);
        // The cache sits in front of the budget: a read answered from it costs nothing.
        let cache = cache::ReadCache::new(&budget);
        let planner = Planner {
            lookup: &cache,
            ..*self
        };
        let plan = planner
            .plan_within_budget(
                playbook,
                alert,
                given_inputs,
                mode,
                run_id,
                now,
                counters,
                hooks,
            )
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
        hooks: StepHooks<'_>,
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
        let frame = step::Frame {
            playbook,
            alert,
            alert_value: from_data(alert),
            alert_json: serde_json::to_value(alert).unwrap_or(Value::Null),
            playbook_json: json!({"name": playbook.name, "version": playbook.version, "stage": playbook.stage}),
            inputs: &inputs,
            run: json!({"id": run_id, "mode": mode.as_str(), "playbook": playbook.name, "now": now.to_rfc3339()}),
            mode,
            run_id,
            now,
            counters,
        };
        let mut results: BTreeMap<String, (StepStatus, JValue)> = BTreeMap::new();
        let mut planned: BTreeMap<String, PlannedStep> = BTreeMap::new();
        // Every step whose dependencies are decided is decided at once, side by side: its
        // reads go out together with its siblings'. A step left waiting when nothing runs
        // is in a cycle, which the loader has already reported.
        let mut waiting: Vec<&Step> = playbook.steps.iter().collect();
        let mut deciding = FuturesUnordered::new();
        loop {
            waiting.retain(|step| {
                if !step.needs.iter().all(|d| planned.contains_key(d)) {
                    return true;
                }
                let ancestors = ancestors_of(step, &planned);
                let seen_results = results
                    .iter()
                    .filter(|(id, _)| ancestors.contains_key(*id))
                    .map(|(id, r)| (id.clone(), r.clone()))
                    .collect();
                deciding.push(self.decide_step(&frame, step, seen_results, ancestors));
                false
            });
            let Some(mut ps) = deciding.next().await else {
                break;
            };
            if let Some(adjust) = hooks.adjust {
                let ancestors = ancestors_of_planned(&ps, &planned);
                adjust(&mut ps, &ancestors);
            }
            if let Some(decided) = &hooks.decided {
                let mut shown = ps.clone();
                seal::seal_step(&mut shown);
                // A closed receiver stopped listening (its run ended); planning goes on.
                let _ = decided.send(shown);
            }
            let outputs_ctx = if ps.outputs.is_null() && ps.status != StepStatus::Skipped {
                Unknown::value(format!("steps.{}.outputs", ps.id))
            } else {
                from_data(&ps.outputs)
            };
            results.insert(ps.id.clone(), (ps.status, outputs_ctx));
            planned.insert(ps.id.clone(), ps);
        }

        let final_ctx = context(&frame.alert_value, &inputs, &frame.run, &results, None);
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
            inputs: Value::Object(inputs.clone().into_iter().collect()),
            created_at: now,
            steps,
            outputs: Value::Object(outputs),
            notes,
        };
        seal::seal(&mut plan);
        plan.plan_hash = plan_hash(&plan.steps);
        Ok(plan)
    }
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

/// Every step `step` depends on, directly or not, as planned.
fn ancestors_of(
    step: &Step,
    planned: &BTreeMap<String, PlannedStep>,
) -> BTreeMap<String, PlannedStep> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<&str> = step.needs.iter().map(String::as_str).collect();
    while let Some(d) = stack.pop() {
        if out.contains_key(d) {
            continue;
        }
        if let Some(p) = planned.get(d) {
            stack.extend(p.needs.iter().map(String::as_str));
            out.insert(d.to_string(), p.clone());
        }
    }
    out
}

/// As [`ancestors_of`], for a step already decided.
fn ancestors_of_planned<'p>(
    step: &PlannedStep,
    planned: &'p BTreeMap<String, PlannedStep>,
) -> Vec<&'p PlannedStep> {
    let mut out: Vec<&PlannedStep> = Vec::new();
    let mut stack: Vec<&str> = step.needs.iter().map(String::as_str).collect();
    while let Some(d) = stack.pop() {
        if out.iter().any(|p| p.id == d) {
            continue;
        }
        if let Some(p) = planned.get(d) {
            stack.extend(p.needs.iter().map(String::as_str));
            out.push(p);
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
