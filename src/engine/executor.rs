//! The DAG executor: independent steps run in parallel (bounded), each sends exactly its
//! planned requests, is verified by reading back, and is journaled before and after.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tracing::Instrument as _;

use futures::StreamExt;
use futures::future::{BoxFuture, join_all};
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::conditions;
use super::report::{Evidence, RequestRecord, RunOutcome, RunReport, StepOutcome, StepReport};
use super::{Journal, StepState, Transport};
use crate::actions::{self, ActionSettings, Compensation, Effect, Executed};
use crate::connectors::{ApiRequest, Endpoints, Lookup};
use crate::plan::{Plan, PlannedStep, StepStatus, canonical_json};
use crate::playbook::Playbook;
use crate::playbook::expr::Template;
use crate::playbook::model::{OnError, Retry};

/// Progress, as it happens, for a terminal or a log.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    StepStarted {
        id: &'a str,
        action: &'a str,
    },
    Request {
        step: &'a str,
        record: &'a RequestRecord,
    },
    StepFinished {
        report: &'a StepReport,
    },
}

/// Everything execution needs, passed in.
pub struct Executor<'a> {
    pub transport: &'a dyn Transport,
    pub lookup: &'a dyn Lookup,
    pub journal: &'a dyn Journal,
    pub settings: &'a ActionSettings,
    pub endpoints: &'a Endpoints,
    /// How many steps may run at once.
    pub concurrency: usize,
    /// Whether steps that need approval were approved (for this plan hash).
    pub approved: bool,
    /// Steps the journal shows finished before (a resumed run), with their reports: they send
    /// nothing again, and their recorded compensations stay available to rollback.
    pub completed: &'a HashMap<String, StepReport>,
    pub on_event: &'a (dyn Fn(&Event<'_>) + Send + Sync),
}

/// A step's settings from the playbook that the plan does not carry.
#[derive(Clone, Copy)]
struct StepPolicy {
    retry: Retry,
    timeout: Option<Duration>,
    on_error: OnError,
}

impl Executor<'_> {
    /// Executes the plan. Steps the plan did not plan (skipped, denied, already satisfied)
    /// send nothing.
    pub async fn execute(&self, plan: &Plan, playbook: &Playbook) -> RunReport {
        let policies: HashMap<&str, StepPolicy> = playbook
            .steps
            .iter()
            .map(|s| {
                (
                    s.id.as_str(),
                    StepPolicy {
                        retry: s.retry,
                        timeout: s.timeout,
                        on_error: s.on_error,
                    },
                )
            })
            .collect();
        let default_policy = StepPolicy {
            retry: Retry::default(),
            timeout: None,
            on_error: OnError::Fail,
        };
        // Finishing order, for undoing newest first. Each step's future takes its number and
        // journals its own report, so the scheduling loop never awaits a store write while
        // other steps' futures (which may hold the store's writer) sit unpolled.
        let seq = std::sync::atomic::AtomicU32::new(0);
        let seq = &seq;
        let mut outcomes: BTreeMap<String, StepReport> = BTreeMap::new();
        let mut started: std::collections::HashSet<String> = Default::default();
        let mut running: FuturesUnordered<BoxFuture<'_, StepReport>> = FuturesUnordered::new();
        let mut halted: Option<String> = None;
        let mut compensate = false;
        // Run-time conditions, from the playbook's own compiled text (never the plan's copy).
        let compiled_conditions: HashMap<&str, &Template> = playbook
            .steps
            .iter()
            .filter_map(|s| s.condition.as_ref().map(|c| (s.id.as_str(), c)))
            .collect();
        // For each step that failed, or was skipped because a step it needs failed: the step
        // that failed. Its dependents are skipped too, unless their `if:` asks for that failure.
        let mut failed_because: HashMap<String, String> = HashMap::new();

        loop {
            for step in &plan.steps {
                if started.contains(&step.id) || running.len() >= self.concurrency.max(1) {
                    continue;
                }
                let needs: Vec<&StepReport> =
                    step.needs.iter().filter_map(|n| outcomes.get(n)).collect();
                if needs.len() < step.needs.len() {
                    continue;
                }
                let condition = step
                    .condition
                    .as_ref()
                    .and_then(|_| compiled_conditions.get(step.id.as_str()).copied());
                let asked = condition.map(conditions::statuses_read).unwrap_or_default();
                // A stopped run starts only the steps that ask for the failure that stopped it
                // (a fallback); a compensating run starts nothing, since it is being undone.
                if let Some(h) = &halted
                    && (compensate || !asked.contains(h))
                {
                    continue;
                }
                started.insert(step.id.clone());
                let gate = needs.iter().find(|n| {
                    matches!(
                        n.outcome,
                        StepOutcome::Denied | StepOutcome::AwaitingApproval
                    )
                });
                let failure = step.needs.iter().find_map(|n| {
                    failed_because
                        .get(n)
                        .filter(|failed| !asked.contains(*failed))
                        .map(|failed| (n, failed))
                });
                let blocked = match (gate, failure) {
                    (Some(b), _) if b.outcome == StepOutcome::AwaitingApproval => Some((
                        StepOutcome::AwaitingApproval,
                        format!("waits for `{}`, which needs approval", b.id),
                    )),
                    (Some(b), _) => Some((
                        StepOutcome::Skipped,
                        format!("needs `{}`, which the guardrails denied", b.id),
                    )),
                    (None, Some((n, failed))) => {
                        let why = if n == failed {
                            format!("needs `{n}`, which failed")
                        } else {
                            format!("needs `{n}`, which was skipped because `{failed}` failed")
                        };
                        failed_because.insert(step.id.clone(), failed.clone());
                        Some((StepOutcome::Skipped, why))
                    }
                    (None, None) => None,
                };
                // Decided now, over what the steps it needs did; a resumed step that already
                // finished keeps its report.
                let verdict = match condition {
                    Some(c) if blocked.is_none() && !self.completed.contains_key(&step.id) => {
                        conditions::decide(c, plan, &outcomes)
                    }
                    _ => conditions::Verdict::Run,
                };
                let immediate_outcome = match (blocked, verdict) {
                    (Some(b), _) => Some(b),
                    (None, conditions::Verdict::Skip(why)) => Some((StepOutcome::Skipped, why)),
                    (None, conditions::Verdict::Fail(why)) => Some((StepOutcome::Failed, why)),
                    (None, conditions::Verdict::Run) => None,
                };
                if let Some((outcome, why)) = immediate_outcome {
                    running.push(Box::pin(async move {
                        let mut r = immediate(step, outcome, Some(why), 0);
                        r.finished_seq = seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        self.finish(&plan.run_id, &r).await;
                        r
                    }));
                    continue;
                }
                let policy = *policies.get(step.id.as_str()).unwrap_or(&default_policy);
                running.push(Box::pin(async move {
                    let mut r = self
                        .run_step(plan, step, policy)
                        .instrument(
                            tracing::info_span!("step", step = %step.id, action = %step.action),
                        )
                        .await;
                    r.finished_seq = seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    self.finish(&plan.run_id, &r).await;
                    r
                }));
            }
            // Nothing running and nothing ready: the remaining steps wait on a stopped run or
            // on a cycle the loader rejects; they are finished below.
            let Some(report) = running.next().await else {
                break;
            };
            if report.outcome == StepOutcome::Failed {
                failed_because.insert(report.id.clone(), report.id.clone());
                let policy = policies
                    .get(report.id.as_str())
                    .copied()
                    .unwrap_or(default_policy);
                match policy.on_error {
                    OnError::Continue => {}
                    // The first failure names the stop; a fallback failing later does not
                    // change which failure the run stopped on.
                    OnError::Fail => {
                        halted.get_or_insert_with(|| report.id.clone());
                    }
                    OnError::Compensate => {
                        halted.get_or_insert_with(|| report.id.clone());
                        compensate = true;
                    }
                }
            }
            outcomes.insert(report.id.clone(), report);
        }

        for step in &plan.steps {
            if !outcomes.contains_key(&step.id) {
                let why = halted
                    .as_ref()
                    .map(|h| format!("the run stopped after `{h}` failed"))
                    .unwrap_or_else(|| "its dependencies never finished".into());
                let n = seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let r = immediate(step, StepOutcome::Skipped, Some(why), n);
                self.finish(&plan.run_id, &r).await;
                outcomes.insert(step.id.clone(), r);
            }
        }
        if compensate {
            self.compensate_all(&plan.run_id, &mut outcomes).await;
        }
        let steps: Vec<StepReport> = plan
            .steps
            .iter()
            .filter_map(|s| outcomes.remove(&s.id))
            .collect();
        // A failure under `on_error: continue` does not fail the run: it is reported, and
        // warned about, so containment that went through is not shown as a failed run.
        let warnings: Vec<String> = steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Failed)
            .filter(|s| {
                policies
                    .get(s.id.as_str())
                    .is_some_and(|p| p.on_error == OnError::Continue)
            })
            .map(|s| {
                format!(
                    "step `{}` failed and the run went on (on_error: continue): {}",
                    s.id,
                    s.reason.as_deref().unwrap_or("no reason recorded")
                )
            })
            .collect();
        let outcome = if compensate {
            RunOutcome::Compensated
        } else if halted.is_some() {
            RunOutcome::Failed
        } else if steps
            .iter()
            .any(|s| s.outcome == StepOutcome::AwaitingApproval)
        {
            RunOutcome::AwaitingApproval
        } else {
            RunOutcome::Succeeded
        };
        RunReport {
            run_id: plan.run_id.clone(),
            plan_hash: plan.plan_hash.clone(),
            outcome,
            steps,
            warnings,
        }
    }

    async fn finish(&self, run_id: &str, report: &StepReport) {
        let state = match report.outcome {
            StepOutcome::Succeeded => StepState::Succeeded,
            StepOutcome::AlreadySatisfied => StepState::AlreadySatisfied,
            StepOutcome::Failed => StepState::Failed,
            StepOutcome::Compensated => StepState::Compensated,
            _ => StepState::Skipped,
        };
        self.journal
            .record(
                run_id,
                &report.id,
                0,
                state,
                serde_json::to_value(report).unwrap_or(Value::Null),
            )
            .await
            .ok(); // logged by the journal; the outcome still reaches the caller
        (self.on_event)(&Event::StepFinished { report });
    }

    async fn run_step(&self, plan: &Plan, step: &PlannedStep, policy: StepPolicy) -> StepReport {
        if let Some(done) = self.completed.get(&step.id) {
            return done.clone();
        }
        let mut report = immediate(step, StepOutcome::Succeeded, None, 0);
        match step.status {
            StepStatus::Skipped => {
                return immediate(step, StepOutcome::Skipped, step.reason.clone(), 0);
            }
            StepStatus::AlreadySatisfied => {
                return immediate(step, StepOutcome::AlreadySatisfied, step.reason.clone(), 0);
            }
            StepStatus::Denied => {
                return immediate(step, StepOutcome::Denied, step.reason.clone(), 0);
            }
            StepStatus::NeedsApproval if !self.approved => {
                return immediate(step, StepOutcome::AwaitingApproval, step.reason.clone(), 0);
            }
            StepStatus::NeedsApproval | StepStatus::Planned => {}
        }
        if let Some(instruction) = &step.blocked {
            report.outcome = StepOutcome::Failed;
            report.reason = Some(instruction.clone());
            return report;
        }
        let Some(action) = actions::find(&step.action) else {
            report.outcome = StepOutcome::Failed;
            report.reason = Some(format!("unknown action `{}`", step.action));
            return report;
        };
        if !crate::plan::exact(step) {
            report.outcome = StepOutcome::Failed;
            report.reason = Some(
                "the plan holds values known only at run time; plan again with credentials so every request is exact".into(),
            );
            return report;
        }
        if action.info().effect == Effect::Read {
            // Reads ran while planning; their results are the plan's outputs.
            report.reason = Some("read while planning".into());
            return report;
        }
        (self.on_event)(&Event::StepStarted {
            id: &step.id,
            action: &step.action,
        });
        if let Err(e) = self
            .journal
            .record(
                &plan.run_id,
                &step.id,
                0,
                StepState::Started,
                json!({"plan_hash": plan.plan_hash}),
            )
            .await
        {
            report.outcome = StepOutcome::Failed;
            report.reason = Some(format!("{e}; nothing was sent"));
            return report;
        }

        let items = split_items(step);
        let sending = self.send_all(plan, step, action, &items, policy);
        let results = match policy.timeout {
            Some(limit) => match tokio::time::timeout(limit, sending).await {
                Ok(r) => r,
                Err(_) => {
                    self.journal
                        .record(
                            &plan.run_id,
                            &step.id,
                            0,
                            StepState::InDoubt,
                            json!({"timeout_s": limit.as_secs_f64()}),
                        )
                        .await
                        .ok();
                    report.outcome = StepOutcome::Failed;
                    report.reason = Some(format!(
                        "timed out after {:?}; requests in flight may have been applied and are verified before any retry",
                        limit
                    ));
                    return report;
                }
            },
            None => sending.await,
        };
        report.requests = results.iter().map(|(rec, _)| rec.clone()).collect();
        if let Some(failed) = results.iter().find(|(rec, _)| rec.error.is_some()) {
            report.outcome = StepOutcome::Failed;
            report.reason = failed.0.error.clone();
            return report;
        }
        let bodies: Vec<Value> = results.into_iter().map(|(_, body)| body).collect();
        let mut offset = 0;
        let mut dones = Vec::with_capacity(items.len());
        for item in &items {
            let responses = &bodies[offset..offset + item.requests.len()];
            offset += item.requests.len();
            dones.push(Executed {
                run_id: &plan.run_id,
                params: &item.params,
                pre_state: &item.pre_state,
                desired_state: &item.desired_state,
                requests: item.requests,
                responses,
            });
        }
        // Items are independent, so their read-backs run together: a step's verification
        // costs one round trip, not one per item.
        let verifications = join_all(
            dones
                .iter()
                .map(|done| action.verify_done(done, self.lookup)),
        )
        .await;
        for (i, (done, verified)) in dones.iter().zip(verifications).enumerate() {
            let responses = done.responses;
            match verified {
                Ok(v) => report.verification.push(v),
                Err(e) => report
                    .verification
                    .push(crate::actions::Verification::Mismatch(format!(
                        "could not read back: {e}"
                    ))),
            }
            report
                .compensation
                .push(action.compensation(done, self.endpoints));
            if action.info().effect == Effect::Evidence {
                for (j, body) in responses.iter().enumerate() {
                    report.evidence.push(Evidence {
                        name: format!("{}[{i}].{j}", step.id),
                        sha256: digest(body),
                        body: body.clone(),
                    });
                }
            }
        }
        if let Some(crate::actions::Verification::Mismatch(why)) = report
            .verification
            .iter()
            .find(|v| matches!(v, crate::actions::Verification::Mismatch(_)))
        {
            report.outcome = StepOutcome::Failed;
            report.reason = Some(format!("sent, but reading back found: {why}"));
        }
        report
    }

    /// Sends every request of the step (independent by construction, so concurrently),
    /// retrying failed ones per the step's `retry`. Returns one record and body per request.
    async fn send_all(
        &self,
        plan: &Plan,
        step: &PlannedStep,
        action: &dyn actions::RegisteredAction,
        items: &[Item<'_>],
        policy: StepPolicy,
    ) -> Vec<(RequestRecord, Value)> {
        let flat: Vec<(usize, &ApiRequest, &Item<'_>)> = items
            .iter()
            .flat_map(|item| item.requests.iter().map(move |r| (0usize, r, item)))
            .enumerate()
            .map(|(i, (_, r, item))| (i, r, item))
            .collect();
        let mut results: Vec<Option<(RequestRecord, Value)>> = vec![None; flat.len()];
        for attempt in 1..=policy.retry.attempts.max(1) {
            let pending: Vec<&(usize, &ApiRequest, &Item<'_>)> = flat
                .iter()
                .filter(|(i, _, _)| {
                    results[*i]
                        .as_ref()
                        .is_none_or(|(rec, _)| rec.error.is_some())
                })
                .collect();
            if pending.is_empty() {
                break;
            }
            if attempt > 1 {
                let backoff = policy.retry.backoff * 2u32.saturating_pow(attempt - 2);
                tokio::time::sleep(backoff).await;
            }
            let sends = pending.iter().map(|(i, req, item)| async move {
                (*i, self.send_one(plan, step, action, req, item).await)
            });
            for (i, result) in join_all(sends).await {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every request attempted"))
            .collect()
    }

    async fn send_one(
        &self,
        plan: &Plan,
        step: &PlannedStep,
        action: &dyn actions::RegisteredAction,
        planned: &ApiRequest,
        item: &Item<'_>,
    ) -> (RequestRecord, Value) {
        let mut record = RequestRecord::for_request(planned);
        let done = Executed {
            run_id: &plan.run_id,
            params: &item.params,
            pre_state: &item.pre_state,
            desired_state: &item.desired_state,
            requests: item.requests,
            responses: &[],
        };
        let request = match action.prepare_request(planned, &done, self.settings) {
            Ok(r) => r,
            Err(e) => {
                record.error = Some(e.to_string());
                return (record, Value::Null);
            }
        };
        // "May have been sent" is on record before the request leaves, or it does not leave.
        if let Err(e) = self
            .journal
            .record(
                &plan.run_id,
                &step.id,
                item.index,
                StepState::RequestSent,
                json!({"method": planned.method, "url": planned.url, "body_sha256": planned.body.as_ref().map(digest)}),
            )
            .await
        {
            record.error = Some(format!("{e}; the request was not sent"));
            return (record, Value::Null);
        }
        if let Err(e) = self.journal.may_send(&plan.run_id) {
            record.error = Some(format!("{e}; the request was not sent"));
            return (record, Value::Null);
        }
        let send = self.transport.send(&request);
        let result = match self.journal.send_gate(&plan.run_id) {
            Some(gate) => crate::connectors::gate::guarded(gate, send).await,
            None => send.await,
        };
        let body = match result {
            Ok(resp) => {
                record.status = Some(resp.status);
                record.request_id = resp.request_id.clone();
                record.client_request_id = Some(resp.client_request_id.clone());
                record.attempts = resp.attempts;
                let mut body = resp.body;
                if let Err(e) = self.follow_pages(&request, &mut body).await {
                    record.error = Some(e.to_string());
                    record.request_id = e.request_id().map(str::to_string).or(record.request_id);
                }
                record.body_sha256 = Some(digest(&body));
                body
            }
            Err(e) => {
                record.request_id = e.request_id().map(str::to_string);
                record.error = Some(e.to_string());
                Value::Null
            }
        };
        (self.on_event)(&Event::Request {
            step: &step.id,
            record: &record,
        });
        (record, body)
    }

    /// Evidence reads are paged (`nextLink`); the evidence is every page.
    async fn follow_pages(
        &self,
        first: &ApiRequest,
        body: &mut Value,
    ) -> Result<(), crate::connectors::ApiError> {
        let transport = self.transport;
        crate::connectors::paging::follow(
            first,
            body,
            |page| async move { transport.send(&page).await },
        )
        .await
    }

    /// Undoes completed mutating steps, newest first.
    async fn compensate_all(&self, run_id: &str, outcomes: &mut BTreeMap<String, StepReport>) {
        let mut done: Vec<&mut StepReport> = outcomes
            .values_mut()
            .filter(|r| r.outcome == StepOutcome::Succeeded)
            .collect();
        done.sort_by_key(|r| std::cmp::Reverse(r.finished_seq));
        for report in done {
            let mut all_ok = true;
            let mut undone_any = false;
            for comp in report.compensation.clone().iter().rev() {
                if let Compensation::Requests(requests) = comp {
                    for req in requests {
                        undone_any = true;
                        let mut rec = RequestRecord::for_request(req);
                        match self.transport.send(req).await {
                            Ok(resp) => {
                                rec.status = Some(resp.status);
                                rec.request_id = resp.request_id;
                            }
                            Err(e) => {
                                all_ok = false;
                                rec.request_id = e.request_id().map(str::to_string);
                                rec.error = Some(e.to_string());
                            }
                        }
                        report.requests.push(rec);
                    }
                }
            }
            if undone_any {
                let state = if all_ok {
                    StepState::Compensated
                } else {
                    StepState::CompensationFailed
                };
                self.journal
                    .record(run_id, &report.id, 0, state, Value::Null)
                    .await
                    .ok();
                if all_ok {
                    report.outcome = StepOutcome::Compensated;
                    report.reason = Some("undone after a later step failed".into());
                }
            }
        }
    }
}

/// One `for_each` item (or the whole step) of a planned step.
pub(crate) struct Item<'a> {
    pub(crate) index: u32,
    pub(crate) params: Value,
    pub(crate) pre_state: Value,
    pub(crate) desired_state: Value,
    pub(crate) requests: &'a [ApiRequest],
}

pub(crate) fn split_items(step: &PlannedStep) -> Vec<Item<'_>> {
    if step.item_requests.is_empty() {
        return vec![Item {
            index: 0,
            params: step.with.clone(),
            pre_state: step.pre_state.clone(),
            desired_state: step.desired_state.clone(),
            requests: &step.requests,
        }];
    }
    let nth = |v: &Value, i: usize| v.get(i).cloned().unwrap_or(Value::Null);
    let mut offset = 0;
    step.item_requests
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let item = Item {
                index: i as u32,
                params: nth(&step.with, i),
                pre_state: nth(&step.pre_state, i),
                desired_state: nth(&step.desired_state, i),
                requests: &step.requests[offset..offset + n],
            };
            offset += n;
            item
        })
        .collect()
}

fn immediate(
    step: &PlannedStep,
    outcome: StepOutcome,
    reason: Option<String>,
    seq: u32,
) -> StepReport {
    StepReport {
        id: step.id.clone(),
        action: step.action.clone(),
        outcome,
        reason,
        requests: Vec::new(),
        verification: Vec::new(),
        compensation: Vec::new(),
        evidence: Vec::new(),
        finished_seq: seq,
    }
}

/// `sha256:` of a JSON value's canonical form.
pub(crate) fn digest(v: &Value) -> String {
    let mut text = String::new();
    canonical_json(v, &mut text);
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests;
