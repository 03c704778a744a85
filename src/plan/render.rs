//! The human view of a plan: one block per step, requests indented beneath it.

use std::fmt::Write;

use serde_json::Value;

use super::{Plan, StepStatus};

/// A plan as a readable table for a terminal.
pub fn render_table(plan: &Plan) -> String {
    let mut out = String::new();
    let principal = plan
        .alert
        .principal
        .as_ref()
        .and_then(|p| p.upn.clone().or_else(|| p.object_id.clone()))
        .unwrap_or_else(|| "(unknown principal)".into());
    let _ = writeln!(
        out,
        "Plan {} · playbook {} {} · mode {}",
        plan.run_id,
        plan.playbook.name,
        plan.playbook.version,
        plan.mode.as_str()
    );
    let _ = writeln!(
        out,
        "Alert {} {} · {} · {} · {}",
        plan.alert.source, plan.alert.id, plan.alert.severity, principal, plan.alert.title
    );
    let _ = writeln!(out, "Plan hash {}", plan.plan_hash);
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out);
    let id_w = plan
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let act_w = plan
        .steps
        .iter()
        .map(|s| s.action.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:id_w$}  {:act_w$}  {:17}  NEEDS",
        "STEP", "ACTION", "STATUS"
    );
    for s in &plan.steps {
        let status = serde_json::to_value(s.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:id_w$}  {:act_w$}  {:17}  {}",
            s.id,
            s.action,
            status,
            if s.needs.is_empty() {
                "-".to_string()
            } else {
                s.needs.join(", ")
            }
        );
        let indent = " ".repeat(id_w + 2);
        if let Some(reason) = &s.reason {
            let _ = writeln!(out, "{indent}why: {reason}");
        }
        if let Some(policy) = &s.policy
            && (s.status != StepStatus::Planned || policy.reasons.iter().any(|r| !r.is_empty()))
        {
            let _ = writeln!(
                out,
                "{indent}policy: {} ({})",
                serde_json::to_value(policy.decision)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                policy.reasons.join("; ")
            );
        }
        for r in &s.requests {
            let body = match &r.body {
                Some(Value::Null) | None => String::new(),
                Some(b) => format!(" {}", compact(b)),
            };
            let _ = writeln!(out, "{indent}{} {}{}", r.method, r.url, body);
        }
        for note in &s.notes {
            let _ = writeln!(out, "{indent}note: {note}");
        }
    }
    let count = |st: StepStatus| plan.steps.iter().filter(|s| s.status == st).count();
    let requests: usize = plan.steps.iter().map(|s| s.requests.len()).sum();
    let _ = writeln!(
        out,
        "\n{} steps: {} planned, {} already satisfied, {} skipped, {} need approval, {} denied · {} requests",
        plan.steps.len(),
        count(StepStatus::Planned),
        count(StepStatus::AlreadySatisfied),
        count(StepStatus::Skipped),
        count(StepStatus::NeedsApproval),
        count(StepStatus::Denied),
        requests
    );
    out
}

/// A body on one line, long strings shortened so the table stays readable.
fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let cut: String = s.chars().take(157).collect();
        format!("{cut}…")
    } else {
        s
    }
}
