//! The incident report of a run executed against the emulator: the seed's chart as SVG with
//! one `<rect>` series per process, the Activity Log timeline, every digest; a hostile alert
//! title escaped in both formats; the Markdown report as a golden file; the HTTP route.

use crate::common;
use crate::evidence::settle;

use std::sync::Arc;

use riposte::config::{Role, ServerSettings, TokenEntry};
use riposte::engine::Service;
use riposte::engine::service::{Caller, ServiceApi};
use riposte::report::{self, Format};
use riposte::store::RunStatus;
use riposte_emulator::{EmulatorHandle, Tenant};

const HOSTILE: &str = "<script>alert(1)</script> [click](https://evil.example) ![x](https://evil.example/x.png) | `code` ";

/// A contained run of the bundled playbook for the Lacework alert, with `title_prefix` in
/// front of its name.
async fn executed(title_prefix: &str) -> (EmulatorHandle, Arc<Service>, tempfile::TempDir, String) {
    let (emulator, service, dir) =
        common::service_on_emulator(Tenant::default_fixture(), "enforce").await;
    let mut alert: serde_json::Value =
        serde_json::from_slice(&common::fixture("lacework-details.json")).unwrap();
    let name = alert["data"]["alertName"].as_str().unwrap().to_string();
    alert["data"]["alertName"] = format!("{title_prefix}{name}").into();
    service
        .ingest(
            "lacework",
            &serde_json::to_vec(&alert).unwrap(),
            &Caller {
                name: "lacework".into(),
            },
        )
        .await
        .unwrap();
    settle(&service).await;
    let run = service.runs(1, None).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Succeeded);
    (emulator, service, dir, run.id)
}

/// The `fill` colours of the chart's bars (plotters writes `<rect … fill="#RRGGBB"…/>`).
fn rect_fills(svg: &str) -> std::collections::BTreeSet<String> {
    svg.split("<rect")
        .skip(1)
        .filter_map(|r| r.split("fill=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .filter(|f| f.starts_with('#') && *f != "#FFFFFF")
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_the_chart_the_timeline_and_every_digest() {
    let (emulator, service, _dir, id) = executed("").await;
    let gathered = report::for_run(service.as_ref(), &id).await.unwrap();
    let bars = gathered
        .anomalies
        .clone()
        .expect("the seed's table was found");
    let processes: Vec<&str> = bars.series.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        processes,
        ["sqlcmd.exe", "net.exe", "powershell.exe", "whoami.exe"]
    );
    let html = report::render(&gathered, Format::Html);
    let start = html.find("<svg").expect("the chart is inline SVG");
    let svg = &html[start..start + html[start..].find("</svg>").unwrap()];
    assert_eq!(rect_fills(svg).len(), bars.series.len(), "{svg}");
    assert!(svg.contains("2026-11-19") && svg.contains("2026-11-20"));
    // The Activity Log as a timeline.
    assert!(!gathered.timeline.is_empty());
    assert!(html.contains("Run Command on Virtual Machine"), "{html}");
    // Every digest, in both formats.
    let markdown = report::render(&gathered, Format::Markdown);
    let view = service.run(&id).await.unwrap();
    assert!(!view.evidence.is_empty());
    for e in &view.evidence {
        assert!(html.contains(&e.sha256), "{}", e.sha256);
        assert!(
            markdown.contains(&e.sha256.replace(':', "\\:")),
            "{}",
            e.sha256
        );
    }
    // What can be undone, and what is kept.
    assert!(html.contains("kept as evidence"), "{html}");
    assert!(html.contains("undone by <code>riposte rollback</code>"));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_alert_title_is_escaped_in_html_and_markdown() {
    let (emulator, service, _dir, id) = executed(HOSTILE).await;
    let gathered = report::for_run(service.as_ref(), &id).await.unwrap();
    assert!(gathered.alert.as_ref().unwrap().title.contains("<script>"));
    let html = report::render(&gathered, Format::Html);
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let markdown = report::render(&gathered, Format::Markdown);
    // Only backslash-escaped: CommonMark shows `\<` as a literal `<`, never a tag.
    assert!(
        !markdown.replace("\\<script", "").contains("<script"),
        "{markdown}"
    );
    assert!(markdown.contains("\\<script\\>alert\\(1\\)\\<\\/script\\>"));
    assert!(
        !markdown.contains("[click](https://evil.example)"),
        "{markdown}"
    );
    assert!(markdown.contains("\\[click\\]\\(https\\:\\/\\/evil\\.example\\)"));
    assert!(markdown.contains("\\!\\[x\\]"));
    assert!(markdown.contains("\\| \\`code\\`"));
    emulator.shutdown().await;
}

/// The report with what changes from run to run replaced (ids, times, digests, the
/// emulator's port, the run key in names, the Activity Log window), so the golden file holds
/// the report's shape and its stable content.
fn redacted(mut r: report::Report, base_url: &str) -> report::Report {
    let key = r.run_id[r.run_id.len() - 8..].to_string();
    let fixed = chrono::DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    r.run_id = "‹run›".into();
    r.plan_hash = r.plan_hash.map(|_| "‹plan hash›".into());
    r.created_at = fixed;
    r.updated_at = fixed;
    for e in &mut r.evidence {
        e.id = "‹evidence›".into();
        e.run_id = "‹run›".into();
        e.sha256 = "‹sha256›".into();
        e.at = fixed;
    }
    for step in &mut r.steps {
        for q in &mut step.requests {
            q.request_id = q.request_id.as_ref().map(|_| "‹request-id›".into());
            q.url = q
                .url
                .replace(base_url, "‹emulator›")
                .replace(&key, "‹run key›");
            if let Some((head, _)) = q.url.split_once("&$filter=") {
                q.url = format!("{head}&$filter=‹window›");
            }
        }
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_markdown_report_matches_its_golden_file() {
    let (emulator, service, _dir, id) = executed("").await;
    let gathered = report::for_run(service.as_ref(), &id).await.unwrap();
    let markdown = report::render(&redacted(gathered, &emulator.base_url()), Format::Markdown);
    insta::assert_snapshot!("incident_report_markdown", markdown);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_route_serves_html_or_markdown_to_viewers() {
    let (emulator, service, _dir, id) = executed(HOSTILE).await;
    let viewer = "test-token-for-the-report-viewer";
    let settings = ServerSettings {
        tokens: vec![TokenEntry {
            name: "soc".into(),
            role: Role::Viewer,
            sha256: riposte::server::token_digest(viewer),
        }],
        ..ServerSettings::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api: Arc<dyn ServiceApi> = service.clone();
    let router = riposte::server::router(api, &settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(riposte::server::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let get = |path: String, accept: Option<&'static str>| {
        let mut request = client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(viewer);
        if let Some(a) = accept {
            request = request.header("accept", a);
        }
        request.send()
    };

    let html = get(format!("/v1/runs/{id}/report"), None).await.unwrap();
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        html.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let body = html.text().await.unwrap();
    assert!(body.contains("<svg") && !body.contains("<script"));

    for (path, accept) in [
        (format!("/v1/runs/{id}/report?format=md"), None),
        (format!("/v1/runs/{id}/report"), Some("text/markdown")),
    ] {
        let md = get(path.clone(), accept).await.unwrap();
        assert_eq!(md.status(), 200, "{path}");
        assert_eq!(
            md.headers()["content-type"],
            "text/markdown; charset=utf-8",
            "{path}"
        );
        assert!(md.text().await.unwrap().starts_with("# Incident report"));
    }
    let bad = get(format!("/v1/runs/{id}/report?format=pdf"), None)
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let missing = get("/v1/runs/no-such-run/report".into(), None)
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let anonymous = client
        .get(format!("http://{addr}/v1/runs/{id}/report"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    emulator.shutdown().await;
}
