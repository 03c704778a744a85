//! Recovery: what an earlier attempt at a run finished, read from the journal. Steps with a
//! final report are kept; steps that may have sent a request before a crash are verified by
//! reading state back, and only a confirmed effect counts as done.

use std::collections::HashMap;

use serde_json::json;

use super::StepState;
use super::report::{StepOutcome, StepReport};
use super::runtime::{Service, internal};
use super::service::ServiceError;
use crate::actions::{self, Effect, Executed, Verification};
use crate::connectors::Lookup;
use crate::plan::Plan;
use crate::store::Fence;

impl Service {
    /// Steps a previous attempt finished (their journaled reports), plus steps that may have
    /// sent requests before a crash and whose effect reading back confirms.
    pub(super) async fn recover_completed(
        &self,
        plan: &Plan,
        fence: Fence,
        lookup: &dyn Lookup,
    ) -> Result<HashMap<String, StepReport>, ServiceError> {
        let journal = self
            .store
            .journal_for(&plan.run_id)
            .await
            .map_err(internal)?;
        let mut completed = HashMap::new();
        let mut touched: Vec<String> = Vec::new();
        for entry in &journal {
            let final_state = matches!(
                entry.state,
                StepState::Succeeded | StepState::AlreadySatisfied
            );
            if final_state
                && let Ok(report) = serde_json::from_value::<StepReport>(entry.detail.clone())
            {
                completed.insert(entry.step_id.clone(), report);
                continue;
            }
            if matches!(
                entry.state,
                StepState::Started | StepState::RequestSent | StepState::InDoubt
            ) && !touched.contains(&entry.step_id)
            {
                touched.push(entry.step_id.clone());
            }
        }
        for step_id in touched {
            if completed.contains_key(&step_id) {
                continue;
            }
            let Some(step) = plan.steps.iter().find(|s| s.id == step_id) else {
                continue;
            };
            let Some(action) = actions::find(&step.action) else {
                continue;
            };
            if action.info().effect != Effect::Mutate {
                continue; // reads and evidence are simply repeated
            }
            // In doubt: verify each item by reading state back; only a confirmed effect
            // counts as done, anything else is sent again (the requests are idempotent).
            let items = super::executor::split_items(step);
            let mut verified = Vec::new();
            for item in &items {
                let done = Executed {
                    run_id: &plan.run_id,
                    params: &item.params,
                    pre_state: &item.pre_state,
                    desired_state: &item.desired_state,
                    requests: item.requests,
                    responses: &[],
                };
                match action.verify_done(&done, lookup).await {
                    Ok(v @ Verification::Verified(_)) => {
                        verified.push((v, action.compensation(&done, &self.endpoints)))
                    }
                    _ => break,
                }
            }
            self.store
                .journal(
                    &plan.run_id,
                    fence,
                    &step_id,
                    0,
                    StepState::InDoubt,
                    &json!({"verified_items": verified.len(), "items": items.len()}),
                )
                .await
                .map_err(internal)?;
            if verified.len() == items.len() {
                let (verification, compensation) = verified.into_iter().unzip();
                completed.insert(
                    step_id.clone(),
                    StepReport {
                        id: step_id.clone(),
                        action: step.action.clone(),
                        outcome: StepOutcome::Succeeded,
                        reason: Some("in doubt after a restart; reading back confirmed the effect, so nothing was re-sent".into()),
                        requests: Vec::new(),
                        verification,
                        compensation,
                        evidence: Vec::new(),
                        finished_seq: 0,
                    },
                );
            }
        }
        Ok(completed)
    }
}
