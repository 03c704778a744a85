//! Upstream error bodies are summarised, never reflected: what riposte repeats of a Graph,
//! ARM or Log Analytics error (in plans, reports, the run view, API errors, logs and the audit
//! trail) is the status, a validated error code, the request id and a short one-line message —
//! whatever the body holds.

use std::time::Duration;

use riposte::connectors::{Api, ApiRequest, AzureSettings, Connectors, HttpOptions, Method};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "contoso-tenant";

/// A message a hostile upstream (or a parameter the API reflects) would like viewers to read.
fn hostile_message() -> String {
    format!(
        "Denied.\r\n\u{1b}[2J<img src=x onerror=alert(1)>\u{202E}APPROVED by admin\n{}",
        "secret=".repeat(400)
    )
}

async fn setup() -> (MockServer, Connectors) {
    riposte::connectors::install_crypto_provider();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"
        })))
        .mount(&server)
        .await;
    let settings: AzureSettings = serde_json::from_value(json!({
        "tenant_id": TENANT,
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s3cr3t-value",
        "authority_host": server.uri(),
        "graph_endpoint": server.uri(),
        "arm_endpoint": server.uri(),
        "log_analytics_endpoint": server.uri(),
    }))
    .unwrap();
    let opts = HttpOptions {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        rate_per_second: 0.0,
        ..HttpOptions::default()
    };
    let c = Connectors::with_env(&settings, None, opts, &|_| None).unwrap();
    (server, c)
}

/// What a viewer would be shown: the error's text, which must be one bounded line with no
/// markup, no control or bidi characters, and no part of the body beyond the summary.
fn assert_summarised(shown: &str) {
    assert!(
        shown.chars().count() < 400,
        "{} chars: {shown}",
        shown.len()
    );
    assert!(
        !shown.chars().any(|c| c.is_control() || c == '\u{202E}'),
        "{shown:?}"
    );
    assert!(!shown.contains('<') && !shown.contains('>'), "{shown}");
    assert!(!shown.contains("secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret=secret="), "{shown}");
}

#[tokio::test]
async fn graph_arm_and_log_analytics_errors_are_summarised() {
    let (server, c) = setup().await;
    let body = json!({"error": {"code": "Bad<Code>\nInjected", "message": hostile_message(),
        "innerError": {"request-id": "rid\r\nSet-Cookie: a=b"}}});
    for p in ["/v1.0/users/u1", "/subscriptions/s1/resourceGroups/rg"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(400).set_body_json(body.clone()))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/workspaces/w1/query"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "BadArgumentError", "message": hostile_message(),
            "details": [{"code": "SyntaxError\u{1b}", "message": hostile_message()}]}})))
        .mount(&server)
        .await;
    let e = c.endpoints().clone();
    let requests = [
        ApiRequest::get(Api::Graph, format!("{}/users/u1", e.graph_v1())),
        ApiRequest::get(
            Api::Arm,
            format!(
                "{}/subscriptions/s1/resourceGroups/rg?api-version=2021-04-01",
                e.arm
            ),
        ),
        ApiRequest::new(
            Method::Post,
            Api::LogAnalytics,
            format!("{}/v1/workspaces/w1/query", e.log_analytics),
        )
        .with_body(json!({"query": "x"}))
        .retry_safe(),
    ];
    for req in &requests {
        let err = c.send(req).await.unwrap_err();
        let shown = err.to_string();
        assert_summarised(&shown);
        assert!(shown.starts_with("400 "), "{shown}");
        assert!(
            shown.contains("Denied."),
            "the message is kept, summarised: {shown}"
        );
        if req.api != Api::LogAnalytics {
            assert!(shown.contains("400 invalid-code:"), "{shown}");
            assert_eq!(err.request_id(), None, "a hostile request id is dropped");
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_json_error_is_not_shown() {
    let (server, c) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("request-id", "0d6a9c3e-1b2f-4e5a-8c7d-9e0f1a2b3c4d")
                .set_body_string(format!("<html><body>{}</body></html>", hostile_message())),
        )
        .mount(&server)
        .await;
    let req = ApiRequest::get(Api::Graph, format!("{}/users/u1", c.endpoints().graph_v1()));
    let err = c.send(&req).await.unwrap_err();
    let shown = err.to_string();
    assert_summarised(&shown);
    assert!(!shown.contains("Denied"), "{shown}");
    assert!(shown.contains("409"), "{shown}");
    assert_eq!(
        err.request_id(),
        Some("0d6a9c3e-1b2f-4e5a-8c7d-9e0f1a2b3c4d"),
        "a real request id is kept"
    );
}
