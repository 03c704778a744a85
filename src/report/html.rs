//! The report as one self-contained HTML page: no script, no external resource, the chart
//! inline as SVG. Every value passes through [`escape`].

use std::fmt::Write;

use super::{Report, Undo, chart_svg};

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a;max-width:70rem}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}";

pub fn render(r: &Report) -> String {
    let e = escape;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident report: run {}</title><style>{STYLE}</style></head><body>\n",
        e(&r.run_id)
    );
    let _ = writeln!(
        out,
        "<h1>Incident report: run <code>{}</code></h1>",
        e(&r.run_id)
    );
    let _ = writeln!(
        out,
        "<p>Playbook <code>{}</code> · status <strong>{}</strong> · mode {} · requested by {} · created {} · updated {}{}</p>",
        e(&r.playbook),
        e(&r.status),
        e(&r.mode),
        e(r.requested_by.as_deref().unwrap_or("-")),
        r.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.plan_hash
            .as_ref()
            .map(|h| format!(" · plan <code>{}</code>", e(h)))
            .unwrap_or_default()
    );

    out.push_str("<h2>What fired</h2>\n");
    match &r.alert {
        Some(a) => {
            let _ = writeln!(
                out,
                "<table><tr><th scope=\"row\">Alert</th><td>{}</td></tr><tr><th scope=\"row\">Source</th><td>{} <code>{}</code></td></tr><tr><th scope=\"row\">Severity</th><td>{}</td></tr><tr><th scope=\"row\">When</th><td>{}</td></tr><tr><th scope=\"row\">Who</th><td><code>{}</code></td></tr><tr><th scope=\"row\">Operation</th><td><code>{}</code></td></tr><tr><th scope=\"row\">Source IP</th><td><code>{}</code></td></tr><tr><th scope=\"row\">Resources</th><td>{}</td></tr></table>",
                e(&a.title),
                e(&a.source),
                e(&a.id),
                e(&a.severity),
                a.observed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                e(a.principal.as_deref().unwrap_or("-")),
                e(a.operation.as_deref().unwrap_or("-")),
                e(a.source_ip.as_deref().unwrap_or("-")),
                a.resources
                    .iter()
                    .map(|id| format!("<code>{}</code>", e(id)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
        None => out.push_str("<p>No alert: a manual run.</p>\n"),
    }

    out.push_str("<h2>What riposte found</h2>\n<h3>Activity Log</h3>\n");
    if r.timeline.is_empty() {
        out.push_str("<p>No Activity Log events were collected.</p>\n");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Operation</th><th scope=\"col\">Resource</th><th scope=\"col\">Status</th><th scope=\"col\">Caller</th></tr></thead><tbody>\n");
        for t in &r.timeline {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                e(&t.at),
                e(&t.operation),
                e(&t.resource),
                e(&t.status),
                e(&t.caller)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h3>Log Analytics: potential anomalies</h3>\n");
    match &r.anomalies {
        Some(bars) => {
            let _ = writeln!(
                out,
                "<figure>{}<figcaption>The seed's query (<code>render barchart kind=stacked</code>): new processes per day, stacked by process.</figcaption></figure>",
                chart_svg(bars)
            );
        }
        None => out.push_str("<p>The seed's anomaly query returned no table.</p>\n"),
    }

    out.push_str("<h2>What riposte did</h2>\n");
    if r.steps.is_empty() {
        out.push_str("<p>The run has not executed.</p>\n");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Step</th><th scope=\"col\">Action</th><th scope=\"col\">Outcome</th><th scope=\"col\">Requests</th></tr></thead><tbody>\n");
        for s in &r.steps {
            let requests: Vec<String> = s
                .requests
                .iter()
                .map(|q| {
                    format!(
                        "<code>{} {}</code> → {}{}",
                        e(&q.method),
                        e(&q.url),
                        q.status.map_or("no answer".into(), |s| s.to_string()),
                        q.request_id
                            .as_ref()
                            .map(|id| format!(" <small>request-id {}</small>", e(id)))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}{}</td><td>{}</td></tr>",
                e(&s.id),
                e(&s.action),
                e(&s.outcome),
                s.reason
                    .as_ref()
                    .map(|why| format!(": {}", e(why)))
                    .unwrap_or_default(),
                requests.join("<br>")
            );
        }
        out.push_str("</tbody></table>\n");
    }

    out.push_str("<h2>What can be undone</h2>\n");
    if r.undo.is_empty() {
        out.push_str("<p>Nothing to undo.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for u in &r.undo {
            let what = match &u.undo {
                Undo::Requests(n) => {
                    format!("undone by <code>riposte rollback</code> ({n} request(s))")
                }
                Undo::Irreversible(why) => format!("cannot be undone: {}", e(why)),
                Undo::Kept(why) => format!("kept as evidence: {}", e(why)),
            };
            let _ = writeln!(out, "<li><code>{}</code>: {what}</li>", e(&u.step));
        }
        out.push_str("</ul>\n");
    }

    out.push_str("<h2>Evidence</h2>\n");
    if r.evidence.is_empty() {
        out.push_str("<p>No evidence was stored.</p>\n");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Step</th><th scope=\"col\">Name</th><th scope=\"col\">Bytes</th><th scope=\"col\">SHA-256</th></tr></thead><tbody>\n");
        for ev in &r.evidence {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                e(&ev.step_id),
                e(&ev.name),
                ev.size,
                e(&ev.sha256)
            );
        }
        out.push_str("</tbody></table>\n<p>Fetch any item with <code>riposte evidence get RUN STEP [N]</code>; its sha256 is the one above and in the audit trail.</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}
