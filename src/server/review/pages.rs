//! The page templates (maud: checked at compile time; every `(value)` is HTML-escaped, so a
//! value from an alert, a plan or an API answer can never become markup). Nothing here reads
//! a store or decides a rule: each function turns what a handler fetched into HTML.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::super::settings::Role;
use super::session::SignedIn;
use super::style::CSS;
use crate::engine::service::RunView;
use crate::report::{Report, chart_svg};
use crate::store::{RunRecord, RunStatus};

/// A path segment, percent-encoded: a run id reaches a URL only through this.
pub(super) fn segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

fn run_href(id: &str) -> String {
    format!("/runs/{}", segment(id))
}

/// Every page: the head with the stylesheet, the top bar (who is signed in, sign-out), and
/// `body` as the page's `main` (which holds its one `h1`).
fn layout(title: &str, who: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · riposte" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top {
                    a href="/" { "riposte" }
                    @if let Some(who) = who {
                        span.who { "Signed in as " (who.caller.name) " (" (who.role) ")" }
                        form method="post" action="/auth/logout" {
                            input type="hidden" name="csrf" value=(who.csrf_token);
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn status_badge(status: RunStatus) -> Markup {
    html! { span class={ "status status-" (status.as_str()) } { (status.as_str()) } }
}

/// Runs that wait for a person come first; `held` joins them when that status exists.
fn waits_for_a_person(status: RunStatus) -> bool {
    matches!(status, RunStatus::AwaitingApproval)
}

/// `runs` ordered for the list: those waiting for a person first, then the rest, each group
/// newest first.
pub(super) fn order_for_list(runs: &mut [RunRecord]) {
    runs.sort_by(|a, b| {
        waits_for_a_person(b.status)
            .cmp(&waits_for_a_person(a.status))
            .then(b.created_at.cmp(&a.created_at))
            .then(b.id.cmp(&a.id))
    });
}

/// `GET /`: the runs, as [`order_for_list`] put them.
pub(super) fn list(who: &SignedIn, runs: &[RunRecord], limit: u32) -> Markup {
    let waiting = runs.iter().filter(|r| waits_for_a_person(r.status)).count();
    layout(
        "Runs",
        Some(who),
        html! {
            h1 { "Runs" }
            p.muted { "Shown: " (runs.len()) " (at most " (limit) "); awaiting approval: " (waiting) "." }
            table {
                caption.muted { "Runs awaiting approval first, then newest first" }
                thead { tr {
                    th scope="col" { "Run" }
                    th scope="col" { "Playbook / action" }
                    th scope="col" { "Principal" }
                    th scope="col" { "Status" }
                    th scope="col" { "Mode" }
                    th scope="col" { "Created (UTC)" }
                } }
                tbody {
                    @for run in runs {
                        tr {
                            td.mono { a href=(run_href(&run.id)) { (run.id) } }
                            td { (run.playbook) }
                            td { (run.principal_key.as_deref().unwrap_or("—")) }
                            td { (status_badge(run.status)) }
                            td { (run.mode.as_str()) }
                            td.mono { (run.created_at.format("%Y-%m-%d %H:%M:%S")) }
                        }
                    }
                }
            }
        },
    )
}

/// The buttons `who` may use on a run in its status, as the service's own rules allow them
/// (the service refuses anything else anyway; this only keeps useless buttons off the page).
struct Buttons {
    approve: bool,
    rollback: bool,
    cancel: bool,
}

fn buttons(who: &SignedIn, run: &RunRecord) -> Buttons {
    let approver = who.role >= Role::Approver;
    Buttons {
        approve: approver && run.status == RunStatus::AwaitingApproval && run.plan_hash.is_some(),
        rollback: approver && matches!(run.status, RunStatus::Succeeded | RunStatus::Failed),
        cancel: who.role >= Role::Responder
            && matches!(
                run.status,
                RunStatus::Pending | RunStatus::Planning | RunStatus::AwaitingApproval
            ),
    }
}

fn action_form(who: &SignedIn, run_id: &str, op: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action={ (run_href(run_id)) "/" (op) } {
            input type="hidden" name="csrf" value=(who.csrf_token);
            button type="submit" id=(op) class=(class) { (label) }
        }
    }
}

fn actions(who: &SignedIn, run: &RunRecord) -> Markup {
    let b = buttons(who, run);
    html! {
        h2 { "Actions" }
        @if !(b.approve || b.rollback || b.cancel) {
            p.muted { "Nothing you may do on a run that is " (run.status.as_str()) " with the " (who.role) " role." }
        } @else {
            div.actions {
                @if b.approve {
                    @if let Some(hash) = &run.plan_hash {
                        form method="post" action={ (run_href(&run.id)) "/approve" } {
                            input type="hidden" name="csrf" value=(who.csrf_token);
                            input type="hidden" name="plan_hash" value=(hash);
                            p { "Approves exactly the plan " code { (hash) } }
                            button type="submit" id="approve" class="primary" { "Approve" }
                        }
                    }
                    (action_form(who, &run.id, "reject", "Reject", "danger"))
                }
                // `confirm` (a held run's containment made permanent) goes here with the
                // `held` status.
                @if b.rollback { (action_form(who, &run.id, "rollback", "Roll back", "danger")) }
                @if b.cancel { (action_form(who, &run.id, "cancel", "Cancel", "")) }
            }
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Why the run waits: the reasons of every step that needs approval.
fn waiting_reasons(plan: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for step in plan
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if text(step, "status") != "needs_approval" {
            continue;
        }
        let reasons = step
            .pointer("/policy/reasons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for reason in reasons {
            out.push((text(step, "id").to_string(), reason.to_string()));
        }
    }
    out
}

fn step(step: &Value) -> Markup {
    let requests = step.get("requests").and_then(Value::as_array);
    html! {
        section.step {
            h3 {
                code { (text(step, "id")) } " — " (text(step, "action")) " "
                span class={ "status status-" (text(step, "status")) } { (text(step, "status")) }
            }
            @if let Some(reason) = step.get("reason").and_then(Value::as_str) {
                p { "Reason: " (reason) }
            }
            @if let Some(blocked) = step.get("blocked").and_then(Value::as_str) {
                p { "Blocked: " (blocked) }
            }
            @if let Some(policy) = step.get("policy").filter(|p| !p.is_null()) {
                p {
                    "Policy: "
                    span class={ "decision-" (text(policy, "decision")) } { (text(policy, "decision")) }
                }
                ul {
                    @for reason in policy.get("reasons").and_then(Value::as_array).into_iter().flatten() {
                        li { (reason.as_str().unwrap_or_default()) }
                    }
                }
            }
            @if let Some(requests) = requests.filter(|r| !r.is_empty()) {
                table {
                    thead { tr {
                        th scope="col" { "Method" }
                        th scope="col" { "URL" }
                        th scope="col" { "Body" }
                    } }
                    tbody {
                        @for request in requests {
                            tr {
                                td.mono { (text(request, "method")) }
                                td.mono { (text(request, "url")) }
                                td {
                                    @if let Some(body) = request.get("body").filter(|b| !b.is_null()) {
                                        pre { (pretty(body)) }
                                    } @else { span.muted { "none" } }
                                }
                            }
                        }
                    }
                }
            } @else {
                p.muted { "No request." }
            }
        }
    }
}

/// `GET /runs/{id}`: the run, why it waits, what it would send, what happened, its evidence.
pub(super) fn run(who: &SignedIn, view: &RunView, found: Option<&Report>) -> Markup {
    let run = &view.run;
    let plan = run.plan.as_ref();
    let alert = plan.and_then(|p| p.get("alert"));
    let waiting = plan.map(waiting_reasons).unwrap_or_default();
    layout(
        &format!("Run {}", run.id),
        Some(who),
        html! {
            h1 { "Run " code { (run.id) } }
            table {
                tbody {
                    tr { th scope="row" { "Status" } td id="run-status" { (status_badge(run.status)) } }
                    tr { th scope="row" { "Playbook / action" } td { (run.playbook) } }
                    tr { th scope="row" { "Principal" } td { (run.principal_key.as_deref().unwrap_or("—")) } }
                    tr { th scope="row" { "Mode" } td { (run.mode.as_str()) } }
                    tr { th scope="row" { "Requested by" } td { (run.requested_by.as_deref().unwrap_or("—")) } }
                    tr { th scope="row" { "Created (UTC)" } td.mono { (run.created_at.format("%Y-%m-%d %H:%M:%S")) } }
                    tr { th scope="row" { "Plan hash" } td.mono { (run.plan_hash.as_deref().unwrap_or("—")) } }
                    @if let Some(error) = &run.last_error {
                        tr { th scope="row" { "Last error" } td { (error) } }
                    }
                }
            }
            @if !waiting.is_empty() {
                h2 { "Why it waits" }
                ul id="why" {
                    @for (step, reason) in &waiting {
                        li { code { (step) } ": " (reason) }
                    }
                }
            }
            (actions(who, run))
            @if let Some(alert) = alert {
                h2 { "Alert" }
                table { tbody {
                    tr { th scope="row" { "Title" } td { (text(alert, "title")) } }
                    tr { th scope="row" { "Source" } td { (text(alert, "source")) " " code { (text(alert, "id")) } } }
                    tr { th scope="row" { "Kind" } td { (text(alert, "kind")) } }
                    tr { th scope="row" { "Severity" } td { (text(alert, "severity")) } }
                    tr { th scope="row" { "Observed (UTC)" } td.mono { (text(alert, "observed_at")) } }
                } }
            }
            h2 { "Plan" }
            @match plan.and_then(|p| p.get("steps")).and_then(Value::as_array) {
                Some(steps) => { @for s in steps { (step(s)) } }
                None => { p.muted { "Not planned yet." } }
            }
            h2 { "Timeline" }
            @if view.timeline.is_empty() {
                p.muted { "Nothing journaled yet." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "At (UTC)" }
                        th scope="col" { "Step" }
                        th scope="col" { "Item" }
                        th scope="col" { "State" }
                        th scope="col" { "Detail" }
                    } }
                    tbody {
                        @for e in &view.timeline {
                            tr {
                                td.mono { (e.at.format("%H:%M:%S%.3f")) }
                                td.mono { (e.step_id) }
                                td { (e.item) }
                                td { (e.state.as_str()) }
                                td.mono { @if !e.detail.is_null() { (e.detail.to_string()) } }
                            }
                        }
                    }
                }
            }
            @if let Some(found) = found {
                (findings(found))
            }
            h2 { "Evidence" }
            @if view.evidence.is_empty() {
                p.muted { "No evidence." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Step" }
                        th scope="col" { "Size (bytes)" }
                        th scope="col" { "sha256" }
                    } }
                    tbody {
                        @for e in &view.evidence {
                            tr {
                                td { (e.name) }
                                td { (e.content_type) }
                                td.mono { (e.step_id) }
                                td { (e.size) }
                                td.mono { (e.sha256) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /auth/login`, and the answer to a failed sign-in (`error`).
pub(super) fn login(error: Option<&str>, next: &str) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to riposte" }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action="/auth/login" {
                label for="token" { "API token" }
                input type="password" id="token" name="token" autocomplete="current-password" required;
                input type="hidden" name="next" value=(next);
                p { button type="submit" id="sign-in" class="primary" { "Sign in" } }
            }
            p.muted { "A token from " code { "riposte token new" } ", as configured in " code { "[server] tokens" } "." }
        },
    )
}

/// A refusal or failure, with the service's message.
pub(super) fn error(who: Option<&SignedIn>, status: StatusCode, message: &str) -> Markup {
    let reason = status.canonical_reason().unwrap_or("Error");
    layout(
        reason,
        who,
        html! {
            h1 { (status.as_u16()) " " (reason) }
            p.error role="alert" { (message) }
            p { a href="/" { "Back to the runs" } }
        },
    )
}

/// What the run's evidence shows, as the incident report draws it: the seed's query as its
/// stacked bar chart and the Activity Log as a timeline.
fn findings(found: &Report) -> Markup {
    html! {
        h2 { "What riposte found" }
        h3 { "Log Analytics: potential anomalies" }
        @match &found.anomalies {
            // The SVG is plotters' output from query results, whose text it escapes.
            Some(bars) => figure.chart { (PreEscaped(chart_svg(bars))) figcaption { "New processes per day, stacked by process (the seed's " code { "render barchart kind=stacked" } ")." } },
            None => p.muted { "The seed's query has not run for this run." },
        }
        h3 { "Activity Log" }
        @if found.timeline.is_empty() {
            p.muted { "No Activity Log events were collected." }
        } @else {
            table {
                caption { "The user's Azure operations, oldest first" }
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Operation" } th scope="col" { "Resource" } th scope="col" { "Status" } th scope="col" { "Caller" } } }
                tbody {
                    @for t in &found.timeline {
                        tr { td.mono { (t.at) } td { (t.operation) } td.mono { (t.resource) } td { (t.status) } td { (t.caller) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_is_encoded_in_links() {
        assert_eq!(segment("01900000-ab_c.d"), "01900000-ab_c.d");
        assert_eq!(segment("../x?y#z"), "..%2Fx%3Fy%23z");
    }

    #[test]
    fn hostile_text_is_escaped() {
        let page = error(None, StatusCode::FORBIDDEN, "<script>alert(1)</script>");
        let page = page.into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert_eq!(page.matches("<h1").count(), 1);
    }
}
