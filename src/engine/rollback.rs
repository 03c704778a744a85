//! Undoing a finished run from its report: recorded compensations, newest step first.

use serde::{Deserialize, Serialize};

use super::Transport;
use super::report::{RequestRecord, RunReport, StepOutcome};
use crate::actions::Compensation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    pub run_id: String,
    /// Steps undone, with the requests sent.
    pub undone: Vec<(String, Vec<RequestRecord>)>,
    /// Steps that cannot be undone, and why.
    pub refused: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
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
    };
    for step in steps {
        let mut sent = Vec::new();
        let mut error = None;
        for comp in step.compensation.iter().rev() {
            match comp {
                Compensation::NotNeeded => {}
                Compensation::Irreversible(why) => out.refused.push((step.id.clone(), why.clone())),
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
    out
}
