//! Undoing a finished run from its report: recorded compensations, newest step first.
//! Evidence is never undone: snapshots, the locks on them and query results are kept, and
//! the report says so with the reason (DESIGN.md §3: "evidence is never rolled back").

use serde::{Deserialize, Serialize};

use super::Transport;
use super::report::{RequestRecord, RunReport, StepOutcome};
use crate::actions::arm::lock_resource::{SNAPSHOT_LOCK_KEPT, locks_a_snapshot};
use crate::actions::{self, Compensation, Effect};

/// Why an evidence step's results stay after a rollback.
const QUERY_RESULTS_KEPT: &str =
    "evidence: its results stay in the store with their digests; a rollback never removes evidence";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    pub run_id: String,
    /// Steps undone, with the requests sent.
    pub undone: Vec<(String, Vec<RequestRecord>)>,
    /// Steps that cannot be undone, and why.
    pub refused: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    /// Steps whose results are evidence and are kept on purpose (snapshots, their locks,
    /// query results), and why.
    #[serde(default)]
    pub kept: Vec<(String, String)>,
}

/// Runs the recorded compensations of every succeeded step, newest first. Steps that cannot
/// be undone are listed with the reason; nothing is sent for them.
pub async fn rollback(report: &RunReport, transport: &dyn Transport) -> RollbackReport {
    let mut steps: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Succeeded)
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.finished_seq));
    let mut out = RollbackReport {
        run_id: report.run_id.clone(),
        undone: Vec::new(),
        refused: Vec::new(),
        failed: Vec::new(),
        kept: Vec::new(),
    };
    for step in steps {
        if actions::find(&step.action).is_some_and(|a| a.info().effect == Effect::Evidence) {
            out.kept.push((step.id.clone(), QUERY_RESULTS_KEPT.into()));
            continue;
        }
        let mut sent = Vec::new();
        let mut error = None;
        for comp in step.compensation.iter().rev() {
            match comp {
                Compensation::NotNeeded => {}
                Compensation::Irreversible(why) => out.refused.push((step.id.clone(), why.clone())),
                Compensation::Kept(why) => out.kept.push((step.id.clone(), why.clone())),
                // A report recorded before snapshot locks were kept still says "delete it".
                Compensation::Requests(requests) if deletes_a_snapshot_lock(requests) => {
                    out.kept.push((step.id.clone(), SNAPSHOT_LOCK_KEPT.into()))
                }
                Compensation::Requests(requests) => {
                    for req in requests {
                        let mut rec = RequestRecord::for_request(req);
                        match transport.send(req).await {
                            Ok(resp) => {
                                rec.status = Some(resp.status);
                                rec.request_id = resp.request_id;
                            }
                            Err(e) => {
                                rec.request_id = e.request_id().map(str::to_string);
                                rec.error = Some(e.to_string());
                                error.get_or_insert_with(|| e.to_string());
                            }
                        }
                        sent.push(rec);
                    }
                }
            }
        }
        match error {
            Some(e) => out.failed.push((step.id.clone(), e)),
            None if !sent.is_empty() => out.undone.push((step.id.clone(), sent)),
            None => {}
        }
    }
    out.refused.dedup();
    out.kept.dedup();
    out
}

/// Whether undoing would delete (or change) a lock that protects a snapshot.
fn deletes_a_snapshot_lock(requests: &[crate::connectors::ApiRequest]) -> bool {
    requests.iter().any(|r| locks_a_snapshot(&r.url))
}
