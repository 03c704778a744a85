//! The report as Markdown (CommonMark / GitHub). Every value passes through [`text`], which
//! backslash-escapes all ASCII punctuation and flattens line breaks, so no value can open a
//! link, an image, raw HTML, a code span or a table cell.

use std::fmt::Write;

use super::{Report, Undo};

/// A value as literal Markdown text: every ASCII punctuation character escaped (CommonMark
/// allows a backslash before any of them), line breaks as spaces.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let t = text;
    let mut out = String::new();
    let _ = writeln!(out, "# Incident report: run {}\n", t(&r.run_id));
    let _ = writeln!(
        out,
        "Playbook {} · status **{}** · mode {} · requested by {} · created {} · updated {}",
        t(&r.playbook),
        t(&r.status),
        t(&r.mode),
        t(r.requested_by.as_deref().unwrap_or("-")),
        r.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    if let Some(h) = &r.plan_hash {
        let _ = writeln!(out, "\nPlan {}", t(h));
    }

    out.push_str("\n## What fired\n\n");
    match &r.alert {
        Some(a) => {
            let _ = writeln!(out, "| | |\n|---|---|");
            for (k, v) in [
                ("Alert", a.title.clone()),
                ("Source", format!("{} {}", a.source, a.id)),
                ("Severity", a.severity.clone()),
                (
                    "When",
                    a.observed_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                ),
                ("Who", a.principal.clone().unwrap_or_else(|| "-".into())),
                (
                    "Operation",
                    a.operation.clone().unwrap_or_else(|| "-".into()),
                ),
                (
                    "Source IP",
                    a.source_ip.clone().unwrap_or_else(|| "-".into()),
                ),
                ("Resources", a.resources.join(", ")),
            ] {
                let _ = writeln!(out, "| {k} | {} |", t(&v));
            }
        }
        None => out.push_str("No alert: a manual run.\n"),
    }

    out.push_str("\n## What riposte found\n\n### Activity Log\n\n");
    if r.timeline.is_empty() {
        out.push_str("No Activity Log events were collected.\n");
    } else {
        out.push_str("| When | Operation | Resource | Status | Caller |\n|---|---|---|---|---|\n");
        for e in &r.timeline {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                t(&e.at),
                t(&e.operation),
                t(&e.resource),
                t(&e.status),
                t(&e.caller)
            );
        }
    }
    out.push_str("\n### Log Analytics: potential anomalies\n\n");
    match &r.anomalies {
        Some(bars) if !bars.series.is_empty() => {
            out.push_str("The seed's stacked bar chart (in the HTML report) as a table: new processes per day.\n\n");
            let _ = write!(out, "| Process |");
            for day in &bars.x_labels {
                let _ = write!(out, " {} |", t(day));
            }
            let _ = write!(out, "\n|---|");
            for _ in &bars.x_labels {
                out.push_str("---|");
            }
            out.push('\n');
            for (name, values) in &bars.series {
                let _ = write!(out, "| {} |", t(name));
                for v in values {
                    let _ = write!(out, " {v} |");
                }
                out.push('\n');
            }
        }
        Some(_) => out.push_str("No potential anomalies in the window.\n"),
        None => out.push_str("The seed's anomaly query returned no table.\n"),
    }

    out.push_str("\n## What riposte did\n\n");
    if r.steps.is_empty() {
        out.push_str("The run has not executed.\n");
    } else {
        out.push_str("| Step | Action | Outcome | Requests |\n|---|---|---|---|\n");
        for s in &r.steps {
            let outcome = match &s.reason {
                Some(why) => format!("{}: {why}", s.outcome),
                None => s.outcome.clone(),
            };
            let requests: Vec<String> = s
                .requests
                .iter()
                .map(|q| {
                    let mut line = format!(
                        "{} {} → {}",
                        q.method,
                        q.url,
                        q.status.map_or("no answer".into(), |s| s.to_string())
                    );
                    if let Some(id) = &q.request_id {
                        let _ = write!(line, " (request-id {id})");
                    }
                    t(&line)
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t(&s.id),
                t(&s.action),
                t(&outcome),
                requests.join("<br>")
            );
        }
    }

    out.push_str("\n## What can be undone\n\n");
    if r.undo.is_empty() {
        out.push_str("Nothing to undo.\n");
    }
    for u in &r.undo {
        let what = match &u.undo {
            Undo::Requests(n) => format!("undone by riposte rollback ({n} request(s))"),
            Undo::Irreversible(why) => format!("cannot be undone: {why}"),
            Undo::Kept(why) => format!("kept as evidence: {why}"),
        };
        let _ = writeln!(out, "- {}: {}", t(&u.step), t(&what));
    }

    out.push_str("\n## Evidence\n\n");
    if r.evidence.is_empty() {
        out.push_str("No evidence was stored.\n");
    } else {
        out.push_str("| Step | Name | Bytes | SHA-256 |\n|---|---|---|---|\n");
        for e in &r.evidence {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t(&e.step_id),
                t(&e.name),
                e.size,
                t(&e.sha256)
            );
        }
        out.push_str("\nFetch any item with riposte evidence get RUN STEP \\[N\\]; its sha256 is the one above and in the audit trail.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_syntax_in_values_is_escaped() {
        assert_eq!(
            text("[click](http://evil) <b>|x|</b>\n# h"),
            "\\[click\\]\\(http\\:\\/\\/evil\\) \\<b\\>\\|x\\|\\<\\/b\\> \\# h"
        );
        assert_eq!(text("`code` ![img](x)"), "\\`code\\` \\!\\[img\\]\\(x\\)");
    }
}
