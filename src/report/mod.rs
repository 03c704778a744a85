//! The incident report of a run (DESIGN.md §3 `riposte report`, `GET /v1/runs/{id}/report`):
//! what fired and when, who, what riposte found (the Activity Log as a timeline, the seed's
//! query results as its stacked bar chart), what it did, what can be undone, and every
//! evidence digest. [`gather`] (a [`RunView`] and the stored evidence bytes → [`Report`])
//! and [`render`] (→ HTML or Markdown) are pure; [`for_run`] only reads both through the
//! `ServiceApi`, so the HTTP route and the CLI build the same report.
//!
//! Architecture Invariant: `report` reads engine and store records and touches no file,
//! socket or database itself; `server` and `cli` call it, never the other way round. Every value in a report came from an
//! alert, an API caller or an API response, so each renderer escapes all of it.

mod chart;
pub mod html;
mod markdown;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use chart::{StackedBars, chart_svg};

use crate::actions::Compensation;
use crate::engine::RunReport;
use crate::engine::service::RunView;
use crate::plan::Plan;
use crate::store::{Evidence, EvidenceRecord};

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
}

impl Format {
    /// `html`, or `md` / `markdown`.
    pub fn parse(text: &str) -> Option<Format> {
        match text.to_ascii_lowercase().as_str() {
            "html" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
        }
    }
}

/// Everything a report shows, gathered once so both formats say the same.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub run_id: String,
    pub playbook: String,
    pub status: String,
    pub mode: String,
    pub requested_by: Option<String>,
    pub plan_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub alert: Option<AlertSummary>,
    /// Activity Log events, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The seed's anomaly results, when a step collected them.
    pub anomalies: Option<StackedBars>,
    pub steps: Vec<StepSummary>,
    pub undo: Vec<UndoEntry>,
    pub evidence: Vec<EvidenceRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertSummary {
    pub source: String,
    pub id: String,
    pub title: String,
    pub severity: String,
    pub observed_at: DateTime<Utc>,
    /// Who: the UPN, else the object id.
    pub principal: Option<String>,
    pub operation: Option<String>,
    pub source_ip: Option<String>,
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: String,
    pub operation: String,
    pub resource: String,
    pub status: String,
    pub caller: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepSummary {
    pub id: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub requests: Vec<RequestLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine {
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    pub request_id: Option<String>,
}

/// How a step that changed something is undone.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoEntry {
    pub step: String,
    pub undo: Undo,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// `riposte rollback` sends this many requests.
    Requests(usize),
    /// It cannot be undone, and why.
    Irreversible(String),
    /// It is evidence and is kept, and why.
    Kept(String),
}

/// Gathers the report from a run view and its evidence (records with their bytes).
pub fn gather(view: &RunView, evidence: &[Evidence]) -> Report {
    let run = &view.run;
    let plan: Option<Plan> = run
        .plan
        .clone()
        .and_then(|p| serde_json::from_value(p).ok());
    let executed: Option<RunReport> = view
        .report
        .clone()
        .and_then(|r| serde_json::from_value(r).ok());
    let action_of = |step: &str| -> Option<String> {
        plan.as_ref()
            .and_then(|p| p.steps.iter().find(|s| s.id == step))
            .map(|s| s.action.clone())
    };
    let mut timeline = Vec::new();
    let mut anomalies = None;
    for item in evidence {
        let Ok(body) = serde_json::from_slice::<Value>(&item.bytes) else {
            continue;
        };
        match action_of(&item.record.step_id).as_deref() {
            Some("evidence.activity_log") => timeline.extend(activity_events(&body)),
            Some("evidence.log_analytics_query") if anomalies.is_none() => {
                anomalies = body["tables"]
                    .as_array()
                    .and_then(|t| t.iter().find_map(StackedBars::from_seed_table));
            }
            _ => {}
        }
    }
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    let steps = executed
        .as_ref()
        .map(|r| {
            r.steps
                .iter()
                .map(|s| StepSummary {
                    id: s.id.clone(),
                    action: s.action.clone(),
                    outcome: serde_json::to_value(s.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    reason: s.reason.clone(),
                    requests: s
                        .requests
                        .iter()
                        .map(|r| RequestLine {
                            method: r.method.to_string(),
                            url: r.url.clone(),
                            status: r.status,
                            request_id: r.request_id.clone(),
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        run_id: run.id.clone(),
        playbook: run.playbook.clone(),
        status: run.status.as_str().to_string(),
        mode: serde_json::to_value(run.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        requested_by: run.requested_by.clone(),
        plan_hash: run.plan_hash.clone(),
        created_at: run.created_at,
        updated_at: run.updated_at,
        alert: plan.as_ref().map(|p| alert_summary(&p.alert)),
        timeline,
        anomalies,
        steps,
        undo: executed.as_ref().map(undo_entries).unwrap_or_default(),
        evidence: view.evidence.clone(),
    }
}

fn alert_summary(a: &crate::alert::Alert) -> AlertSummary {
    AlertSummary {
        source: a.source.to_string(),
        id: a.id.clone(),
        title: a.title.clone(),
        severity: serde_json::to_value(a.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        observed_at: a.observed_at,
        principal: a
            .principal
            .as_ref()
            .and_then(|p| p.upn.clone().or_else(|| p.object_id.clone())),
        operation: a.operation.clone(),
        source_ip: a.source_ip.clone(),
        resources: a.resources.iter().map(|r| r.id.clone()).collect(),
    }
}

/// Activity Log events (`value[]` of one page) as timeline entries.
fn activity_events(page: &Value) -> Vec<TimelineEntry> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    page["value"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| TimelineEntry {
                    at: text(&e["eventTimestamp"]),
                    operation: e["operationName"]["localizedValue"]
                        .as_str()
                        .or(e["operationName"]["value"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    resource: text(&e["resourceId"]),
                    status: text(&e["status"]["value"]),
                    caller: text(&e["caller"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What `rollback` would do for each succeeded step that changed or kept something.
fn undo_entries(report: &RunReport) -> Vec<UndoEntry> {
    let mut out = Vec::new();
    for step in &report.steps {
        if step.outcome != crate::engine::StepOutcome::Succeeded {
            continue;
        }
        let mut requests = 0;
        for comp in &step.compensation {
            match comp {
                Compensation::Requests(r) => requests += r.len(),
                Compensation::Irreversible(why) => out.push(UndoEntry {
                    step: step.id.clone(),
                    undo: Undo::Irreversible(why.clone()),
                }),
                Compensation::Kept(why) => out.push(UndoEntry {
                    step: step.id.clone(),
                    undo: Undo::Kept(why.clone()),
                }),
                Compensation::NotNeeded => {}
            }
        }
        if requests > 0 {
            out.push(UndoEntry {
                step: step.id.clone(),
                undo: Undo::Requests(requests),
            });
        }
    }
    out.dedup();
    out
}

/// The report of run `id` as `service` has it: the run view and every evidence item's
/// bytes, read through the same calls `GET /v1/runs/{id}/evidence/{step}/{n}` makes.
pub async fn for_run(
    service: &dyn crate::engine::service::ServiceApi,
    id: &str,
) -> Result<Report, crate::engine::service::ServiceError> {
    let view = service.run(id).await?;
    let mut items = Vec::with_capacity(view.evidence.len());
    let mut position: std::collections::BTreeMap<&str, usize> = Default::default();
    for record in &view.evidence {
        let n = position.entry(record.step_id.as_str()).or_default();
        items.push(service.evidence_item(id, &record.step_id, *n).await?);
        *n += 1;
    }
    Ok(gather(&view, &items))
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Html => html::render(report),
        Format::Markdown => markdown::render(report),
    }
}
