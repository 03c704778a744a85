//! The HTTP API against a fake `ServiceApi` that records what reached it: authentication and
//! roles, the ingestion token and signature, limits, the JSON error shape, status mapping,
//! probes, metrics and graceful shutdown. The server is bound to 127.0.0.1:0 and driven with
//! reqwest, as a sender or an operator would.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use riposte::config::{HmacSettings, Role, ServerSettings, TokenEntry};
use riposte::engine::RollbackReport;
use riposte::engine::service::{
    Caller, Ingested, Invocation, RunView, ServiceApi, ServiceError, ServiceStats,
};
use riposte::plan::Mode;
use riposte::server;
use riposte::store::{
    AlertRecord, AlertRef, AlertStatus, Evidence, EvidenceRecord, RunRecord, RunStatus,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------
// The fake service: answers by input so each test can reach every outcome, and records
// every call with the caller's name.

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    not_ready: AtomicBool,
    /// `run("slow")` signals `started` then waits for `release` (graceful shutdown test).
    started: Notify,
    release: Notify,
}

impl Fake {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn run_record(id: &str, status: RunStatus) -> RunRecord {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap();
    RunRecord {
        id: id.into(),
        status,
        playbook: "first-access-containment".into(),
        principal_key: None,
        tenant: None,
        mode: Mode::DryRun,
        requested_by: Some("alert".into()),
        alerts: vec![AlertRef {
            alert_id: "01900000-0000-7000-8000-000000000001".into(),
            source: "lacework".into(),
            source_id: "LW-1".into(),
        }],
        plan: None,
        plan_hash: Some("sha256:abc".into()),
        created_at: at,
        updated_at: at,
        lease_owner: None,
        lease_until: None,
        spec: None,
        report: None,
        incident_id: None,
        follows_run_id: None,
        fence: riposte::store::Fence(0),
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
    }
}

fn alert_record(id: &str, status: AlertStatus) -> AlertRecord {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap();
    AlertRecord {
        id: id.into(),
        source: "lacework".into(),
        source_id: "LW-1".into(),
        principal_key: None,
        body: json!({"id": "LW-1"}),
        received_at: at,
        processed_at: Some(at),
        ingested_by: Some("token:lacework".into()),
        status,
        attempts: 8,
        next_attempt_at: None,
        last_error: Some("Lacework Details for alert LW-1: transient failure: 503".into()),
    }
}

/// Two items of step `activity`: JSON, and bytes stored with a content type that is no
/// header value (it must come out as `application/octet-stream`, bytes untouched).
fn fake_evidence() -> Vec<Evidence> {
    let item = |n: usize, content_type: &str, bytes: &[u8]| Evidence {
        record: EvidenceRecord {
            id: format!("ev-{n}"),
            run_id: "run-1".into(),
            step_id: "activity".into(),
            name: format!("activity[0].{n}"),
            content_type: content_type.into(),
            sha256: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            size: bytes.len() as u64,
            at: Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap(),
        },
        bytes: bytes.to_vec(),
    };
    vec![
        item(
            0,
            "application/json",
            br#"{"value":[{"caller":"<b>x</b>"}]}"#,
        ),
        item(
            1,
            "text/html\r\nSet-Cookie: x=1",
            b"\x00\xff raw \r\n bytes",
        ),
    ]
}

/// Ids and names that make the fake refuse, one per `ServiceError` variant.
fn refusal(key: &str) -> Option<ServiceError> {
    match key {
        "missing" => Some(ServiceError::NotFound("no run `missing`".into())),
        "own-run" => Some(ServiceError::Forbidden(
            "an approver cannot approve a run they requested".into(),
        )),
        "stale" => Some(ServiceError::Conflict(
            "the plan changed; read the new plan hash".into(),
        )),
        "down" => Some(ServiceError::Unavailable(
            "the store is unreachable; retry".into(),
        )),
        "broken" => Some(ServiceError::Internal("it broke".into())),
        _ => None,
    }
}

#[async_trait]
impl ServiceApi for Fake {
    async fn ingest(
        &self,
        source: &str,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Ingested, ServiceError> {
        self.record(format!(
            "ingest {source} {} by {}",
            String::from_utf8_lossy(body),
            caller.name
        ));
        if let Some(e) = refusal(source) {
            return Err(e);
        }
        if source == "garbage" {
            return Err(ServiceError::BadRequest(
                "not a garbage alert: missing field `id`".into(),
            ));
        }
        Ok(Ingested {
            alert_id: "alert-1".into(),
            source_id: "LW-1".into(),
            duplicate: String::from_utf8_lossy(body).contains("again"),
            run_ids: vec!["run-1".into()],
        })
    }

    async fn runs(
        &self,
        limit: u32,
        status: Option<RunStatus>,
    ) -> Result<Vec<RunRecord>, ServiceError> {
        self.record(format!("runs {limit} {status:?}"));
        Ok(vec![run_record(
            "run-1",
            status.unwrap_or(RunStatus::Running),
        )])
    }

    async fn run(&self, id: &str) -> Result<RunView, ServiceError> {
        self.record(format!("run {id}"));
        if id == "slow" {
            self.started.notify_one();
            self.release.notified().await;
        }
        if let Some(e) = refusal(id) {
            return Err(e);
        }
        Ok(RunView {
            run: run_record(id, RunStatus::AwaitingApproval),
            timeline: Vec::new(),
            evidence: Vec::new(),
            report: None,
        })
    }

    async fn approve(
        &self,
        id: &str,
        plan_hash: &str,
        caller: &Caller,
    ) -> Result<RunRecord, ServiceError> {
        self.record(format!("approve {id} {plan_hash} by {}", caller.name));
        if let Some(e) = refusal(id) {
            return Err(e);
        }
        Ok(run_record(id, RunStatus::Running))
    }

    async fn reject(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError> {
        self.record(format!("reject {id} by {}", caller.name));
        Ok(run_record(id, RunStatus::Denied))
    }

    async fn rollback(&self, id: &str, caller: &Caller) -> Result<RollbackReport, ServiceError> {
        self.record(format!("rollback {id} by {}", caller.name));
        Ok(RollbackReport {
            run_id: id.into(),
            undone: Vec::new(),
            refused: Vec::new(),
            failed: Vec::new(),
            kept: Vec::new(),
        })
    }

    async fn invoke_playbook(
        &self,
        name: &str,
        invocation: Invocation,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        self.record(format!(
            "invoke {name} {:?} {:?} by {}",
            invocation.principal, invocation.inputs, caller.name
        ));
        refusal(name).map_or(Ok("run-2".into()), Err)
    }

    async fn invoke_action(
        &self,
        name: &str,
        params: BTreeMap<String, Value>,
        caller: &Caller,
    ) -> Result<String, ServiceError> {
        self.record(format!(
            "act {name} {} by {}",
            serde_json::to_string(&params).unwrap(),
            caller.name
        ));
        Ok("run-3".into())
    }

    async fn alerts(
        &self,
        limit: u32,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, ServiceError> {
        self.record(format!("alerts {limit} {status:?}"));
        Ok(vec![alert_record(
            "alert-1",
            status.unwrap_or(AlertStatus::Failed),
        )])
    }

    async fn retry_alert(&self, id: &str, caller: &Caller) -> Result<AlertRecord, ServiceError> {
        self.record(format!("retry {id} by {}", caller.name));
        if id == "matched" {
            return Err(ServiceError::Conflict(
                "alert matched is matched; only a failed alert can be retried".into(),
            ));
        }
        refusal(id).map_or(Ok(alert_record(id, AlertStatus::Pending)), Err)
    }

    async fn cancel(&self, id: &str, caller: &Caller) -> Result<RunRecord, ServiceError> {
        self.record(format!("cancel {id} by {}", caller.name));
        if id == "running" {
            return Err(ServiceError::Conflict(
                "run running is running; only a pending, planning or awaiting_approval run can be cancelled".into(),
            ));
        }
        refusal(id).map_or(Ok(run_record(id, RunStatus::Cancelled)), Err)
    }

    async fn evidence(&self, id: &str) -> Result<Vec<EvidenceRecord>, ServiceError> {
        self.record(format!("evidence {id}"));
        refusal(id).map_or(
            Ok(fake_evidence().into_iter().map(|e| e.record).collect()),
            Err,
        )
    }

    async fn evidence_item(
        &self,
        id: &str,
        step: &str,
        n: usize,
    ) -> Result<Evidence, ServiceError> {
        self.record(format!("evidence {id} {step} {n}"));
        if let Some(e) = refusal(id) {
            return Err(e);
        }
        fake_evidence()
            .into_iter()
            .filter(|e| e.record.step_id == step)
            .nth(n)
            .ok_or_else(|| ServiceError::NotFound(format!("no evidence {step}/{n}")))
    }

    async fn ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }

    async fn stats(&self) -> ServiceStats {
        ServiceStats {
            alerts_received: 7,
            alerts_duplicate: 2,
            alerts_rejected: 1,
            runs_by_status: BTreeMap::from([("running".into(), 3), ("succeeded".into(), 4)]),
            alerts_by_status: BTreeMap::from([("failed".into(), 5), ("matched".into(), 6)]),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Harness.

/// Each role's token, named after the role.
fn token(role: Role) -> String {
    format!("test-token-for-{role}-0123456789abcdef")
}

fn settings() -> ServerSettings {
    ServerSettings {
        tokens: Role::ALL
            .into_iter()
            .map(|role| TokenEntry {
                name: role.as_str().into(),
                role,
                sha256: hex::encode(Sha256::digest(token(role).as_bytes())),
            })
            .collect(),
        max_body_bytes: 4096,
        ..ServerSettings::default()
    }
}

const HMAC_SECRET: &str = "shared-webhook-secret";

fn hmac_settings() -> ServerSettings {
    let hmac: HmacSettings = serde_json::from_value(json!({ "secret": HMAC_SECRET })).unwrap();
    ServerSettings {
        hmac: Some(hmac),
        ..settings()
    }
}

struct Running {
    base: String,
    fake: Arc<Fake>,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(settings: ServerSettings) -> Running {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    capture_logs();
    let fake = Arc::new(Fake::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let router = server::router(fake.clone(), &settings);
    let task = tokio::spawn(server::serve_with(
        listener,
        router,
        async {
            let _ = stopped.await;
        },
        &settings,
    ));
    Running {
        base,
        fake,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Sends a request with an optional bearer token and JSON body; returns status, headers
    /// and the body (JSON when it parses, else a string).
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    async fn as_role(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> u16 {
        self.call(method, path, Some(&token(role)), body)
            .await
            .0
            .as_u16()
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// Asserts the JSON error shape and returns its code.
fn error_code(body: &Value) -> &str {
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "not the JSON error shape: {body}"
    );
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code: {body}"))
}

// ---------------------------------------------------------------------------------------
// Authentication and roles.

#[tokio::test]
async fn each_role_reaches_exactly_its_routes() {
    let api = start(settings()).await;
    let routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::POST, "/v1/alerts/lacework", Some(json!({"id": 1}))),
        (Method::GET, "/v1/runs", None),
        (Method::GET, "/v1/runs/run-1", None),
        (
            Method::POST,
            "/v1/runs/run-1/approve",
            Some(json!({"plan_hash": "sha256:abc"})),
        ),
        (Method::POST, "/v1/runs/run-1/reject", None),
        (Method::POST, "/v1/runs/run-1/rollback", None),
        (
            Method::POST,
            "/v1/playbooks/first-access-containment/invoke",
            Some(json!({"principal": "alice@contoso.com"})),
        ),
        (
            Method::POST,
            "/v1/actions/entra.revoke_sessions",
            Some(json!({"params": {"user": "alice@contoso.com"}})),
        ),
        (Method::GET, "/metrics", None),
        (Method::GET, "/v1/alerts", None),
        (Method::POST, "/v1/alerts/alert-1/retry", None),
        (Method::POST, "/v1/runs/run-1/cancel", None),
    ];
    // Expected status per role, in the order of `routes`.
    let expected: [(Role, [u16; 12]); 5] = [
        // An ingest token posts alerts and nothing else.
        (
            Role::Ingest,
            [202, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            Role::Viewer,
            [403, 200, 200, 403, 403, 403, 403, 403, 200, 200, 403, 403],
        ),
        (
            Role::Responder,
            [202, 200, 200, 403, 403, 403, 202, 202, 200, 200, 200, 200],
        ),
        (
            Role::Approver,
            [202, 200, 200, 200, 200, 200, 202, 202, 200, 200, 200, 200],
        ),
        (
            Role::Admin,
            [202, 200, 200, 200, 200, 200, 202, 202, 200, 200, 200, 200],
        ),
    ];
    for (role, statuses) in expected {
        for ((method, path, body), want) in routes.iter().zip(statuses) {
            let got = api.as_role(role, method.clone(), path, body.clone()).await;
            assert_eq!(got, want, "{role}: {method} {path}");
        }
    }
    // The token's name is the caller the service sees.
    let calls = api.fake.calls();
    assert!(
        calls.contains(&"approve run-1 sha256:abc by token:approver".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"rollback run-1 by token:admin".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(
            &"act entra.revoke_sessions {\"user\":\"alice@contoso.com\"} by token:responder"
                .to_string()
        ),
        "{calls:?}"
    );
    // A refused request never reached the service.
    assert!(!calls.iter().any(|c| c.ends_with("by viewer")), "{calls:?}");
}

#[tokio::test]
async fn missing_or_unknown_tokens_get_401_and_low_roles_403() {
    let api = start(settings()).await;
    for bearer in [None, Some("not-a-configured-token")] {
        let (status, headers, body) = api.call(Method::GET, "/v1/runs", bearer, None).await;
        assert_eq!(status, 401, "{bearer:?}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(error_code(&body), "unauthorized");
    }
    // Another scheme is not a bearer token.
    let response = api
        .client
        .get(format!("{}/v1/runs", api.base))
        .basic_auth("viewer", Some(token(Role::Viewer)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let response = api
        .client
        .get(format!("{}/v1/runs", api.base))
        .header("authorization", format!("bearer {}", token(Role::Viewer)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, headers, body) = api
        .call(
            Method::POST,
            "/v1/runs/run-1/approve",
            Some(&token(Role::Responder)),
            Some(json!({"plan_hash": "sha256:abc"})),
        )
        .await;
    assert_eq!(status, 403);
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(error_code(&body), "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("approver")
    );
    assert!(!api.fake.calls().iter().any(|c| c.starts_with("approve")));
}

#[tokio::test]
async fn the_query_token_is_accepted_on_ingestion_only() {
    let api = start(settings()).await;
    let ingest = token(Role::Ingest);
    let (status, _, body) = api
        .call(
            Method::POST,
            &format!("/v1/alerts/lacework?token={ingest}"),
            None,
            Some(json!({"id": 1})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        api.fake.calls(),
        vec![r#"ingest lacework {"id":1} by token:ingest"#.to_string()]
    );
    // A URL leaks more easily than a header: in the query only an ingest token is taken,
    // never a responder's (who could invoke actions with it).
    let responder = token(Role::Responder);
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("/v1/alerts/lacework?token={responder}"),
            None,
            Some(json!({"id": 2})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(api.fake.calls().len(), 1);
    // A viewer's token in the query is known but too weak.
    let viewer = token(Role::Viewer);
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("/v1/alerts/lacework?token={viewer}"),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
    // Everywhere else the query form is ignored.
    let admin = token(Role::Admin);
    for (method, path) in [
        (Method::GET, format!("/v1/runs?token={admin}")),
        (Method::GET, format!("/v1/runs/run-1?token={admin}")),
        (
            Method::POST,
            format!("/v1/runs/run-1/approve?token={admin}"),
        ),
        (Method::GET, format!("/metrics?token={admin}")),
    ] {
        let (status, _, body) = api.call(method, &path, None, None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(error_code(&body), "unauthorized");
    }
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

static LOGS: OnceLock<Captured> = OnceLock::new();

/// Every event at every level from every test in this binary, installed as the global
/// subscriber before the first server starts. (A thread-scoped subscriber would race with
/// the other tests over tracing's per-callsite interest cache.)
fn capture_logs() -> &'static Captured {
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a subscriber");
        captured
    })
}

/// What the server logs while a sender uses a query token and an operator a header token:
/// neither token appears (nor any other test's, as the capture holds them all), while the
/// access-log line does, so the capture is known to work.
#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let api = start(settings()).await;
    let responder = token(Role::Ingest);
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("/v1/alerts/lacework?token={responder}&x=1"),
            None,
            Some(json!({"id": 1})),
        )
        .await;
    assert_eq!(status, 202);
    let admin = token(Role::Admin);
    let (status, _, _) = api
        .call(Method::GET, "/v1/runs/run-1", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    // A wrong token in the query is not logged either.
    let (status, _, _) = api
        .call(
            Method::POST,
            "/v1/alerts/lacework?token=wrong-secret-value",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    let log = String::from_utf8(capture_logs().0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("Request served."), "nothing captured: {log}");
    assert!(log.contains("/v1/alerts/lacework"), "{log}");
    assert!(log.contains("route=/v1/runs/{id}"), "{log}");
    for secret in [responder.as_str(), admin.as_str(), "wrong-secret-value"] {
        assert!(!log.contains(secret), "a token reached the log:\n{log}");
    }
    assert!(
        !log.contains("token="),
        "a query string reached the log:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------
// Ingestion.

#[tokio::test]
async fn a_new_alert_is_202_a_stored_one_200_and_a_bad_one_400() {
    let api = start(settings()).await;
    let responder = token(Role::Responder);
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/alerts/lacework",
            Some(&responder),
            Some(json!({"id": "LW-1"})),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["alert_id"], "alert-1");
    assert_eq!(body["source_id"], "LW-1");
    assert_eq!(body["run_ids"], json!(["run-1"]));
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/alerts/lacework",
            Some(&responder),
            Some(json!({"id": "LW-1", "again": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicate"], true);
    assert_eq!(body["run_ids"], json!(["run-1"]));
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/alerts/garbage",
            Some(&responder),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `id`")
    );
    // The body reaches the service byte for byte, whatever its content type.
    let response = api
        .client
        .post(format!("{}/v1/alerts/generic", api.base))
        .bearer_auth(&responder)
        .header("content-type", "text/plain")
        .body("{ \"raw\" : 1 }")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert!(
        api.fake
            .calls()
            .contains(&"ingest generic { \"raw\" : 1 } by token:responder".to_string())
    );
}

fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(server::signature::hmac_sha256(
            secret.as_bytes(),
            &[timestamp.as_bytes(), b".", body]
        ))
    )
}

#[tokio::test]
async fn hmac_signatures_are_required_when_configured() {
    let api = start(hmac_settings()).await;
    let responder = token(Role::Responder);
    let body = br#"{"id":"LW-9"}"#;
    let now = Utc::now().timestamp();
    let post = |timestamp: Option<String>, signature: Option<String>| {
        let mut request = api
            .client
            .post(format!("{}/v1/alerts/lacework", api.base))
            .bearer_auth(&responder)
            .body(body.to_vec());
        if let Some(t) = timestamp {
            request = request.header("X-Riposte-Timestamp", t);
        }
        if let Some(s) = signature {
            request = request.header("X-Riposte-Signature", s);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    let fresh = now.to_string();
    let (status, _, body_json) =
        post(Some(fresh.clone()), Some(sign(HMAC_SECRET, &fresh, body))).await;
    assert_eq!(status, 202, "{body_json}");
    // Upper-case hex is the same signature.
    let upper = sign(HMAC_SECRET, &fresh, body)
        .to_uppercase()
        .replacen("SHA256=", "sha256=", 1);
    assert_eq!(post(Some(fresh.clone()), Some(upper)).await.0, 202);
    let stale = (now - 301).to_string();
    let future = (now + 301).to_string();
    let refused = [
        (
            "wrong secret",
            Some(fresh.clone()),
            Some(sign("other", &fresh, body)),
        ),
        (
            "other body",
            Some(fresh.clone()),
            Some(sign(HMAC_SECRET, &fresh, b"{}")),
        ),
        (
            "stale",
            Some(stale.clone()),
            Some(sign(HMAC_SECRET, &stale, body)),
        ),
        (
            "future",
            Some(future.clone()),
            Some(sign(HMAC_SECRET, &future, body)),
        ),
        // The timestamp is part of what is signed: it cannot be refreshed by a replayer.
        (
            "moved timestamp",
            Some(fresh.clone()),
            Some(sign(HMAC_SECRET, &stale, body)),
        ),
        ("no signature", Some(fresh.clone()), None),
        ("no timestamp", None, Some(sign(HMAC_SECRET, &fresh, body))),
        (
            "not a number",
            Some("yesterday".into()),
            Some(sign(HMAC_SECRET, "yesterday", body)),
        ),
        (
            "no prefix",
            Some(fresh.clone()),
            Some(sign(HMAC_SECRET, &fresh, body)[7..].to_string()),
        ),
    ];
    for (why, timestamp, signature) in refused {
        let (status, headers, body_json) = post(timestamp, signature).await;
        assert_eq!(status, 401, "{why}");
        assert!(headers.contains_key("www-authenticate"), "{why}");
        assert_eq!(error_code(&body_json), "bad_signature", "{why}");
    }
    assert_eq!(
        api.fake.calls().len(),
        2,
        "only signed alerts reach the service"
    );
    // Other routes are not signed.
    assert_eq!(
        api.as_role(Role::Viewer, Method::GET, "/v1/runs", None)
            .await,
        200
    );
}

// ---------------------------------------------------------------------------------------
// Limits, routing and the error shape.

#[tokio::test]
async fn oversized_bodies_get_a_json_413() {
    let api = start(settings()).await;
    let big = vec![b'x'; 4097];
    for path in ["/v1/alerts/lacework", "/v1/runs/run-1/approve"] {
        let response = api
            .client
            .post(format!("{}{path}", api.base))
            .bearer_auth(token(Role::Admin))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(response).await;
        assert_eq!(status, 413, "{path}");
        assert_eq!(error_code(&body), "payload_too_large");
    }
    // Unauthenticated, the body is not even read: 401 first.
    let response = api
        .client
        .post(format!("{}/v1/alerts/lacework", api.base))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // At the limit is fine.
    let response = api
        .client
        .post(format!("{}/v1/alerts/lacework", api.base))
        .bearer_auth(token(Role::Responder))
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(api.fake.calls().len(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let api = start(settings()).await;
    let admin = token(Role::Admin);
    let (status, _, body) = api
        .call(Method::GET, "/v2/nothing", Some(&admin), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
    let (status, _, body) = api.call(Method::GET, "/v1/", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
    for (method, path) in [
        (Method::GET, "/v1/alerts/lacework"),
        (Method::DELETE, "/v1/runs/run-1"),
        (Method::POST, "/healthz"),
        (Method::GET, "/v1/runs/run-1/approve"),
    ] {
        let (status, headers, body) = api.call(method.clone(), path, Some(&admin), None).await;
        assert_eq!(status, 405, "{method} {path}");
        assert_eq!(error_code(&body), "method_not_allowed");
        assert!(
            headers.contains_key("allow"),
            "RFC 9110 §15.5.6: 405 names the methods"
        );
    }
    // Malformed bodies and queries are JSON 400s naming the problem.
    let cases = [
        (Method::POST, "/v1/runs/run-1/approve", Some(json!({}))),
        (
            Method::POST,
            "/v1/runs/run-1/approve",
            Some(json!({"plan_hash": "sha256:abc", "extra": 1})),
        ),
        (
            Method::POST,
            "/v1/playbooks/p/invoke",
            Some(json!({"inputs": 3})),
        ),
        (
            Method::POST,
            "/v1/actions/entra.disable_user",
            Some(json!({"parms": {}})),
        ),
        (Method::GET, "/v1/runs?status=bogus", None),
        (Method::GET, "/v1/runs?limit=0", None),
        (Method::GET, "/v1/runs?limit=many", None),
    ];
    for (method, path, body) in cases {
        let (status, _, answer) = api.call(method, path, Some(&admin), body.clone()).await;
        assert_eq!(status, 400, "{path} {body:?}: {answer}");
        assert_eq!(error_code(&answer), "bad_request");
    }
    let response = api
        .client
        .post(format!("{}/v1/runs/run-1/approve", api.base))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "bad_request");
    assert!(
        api.fake.calls().is_empty(),
        "nothing malformed reached the service: {:?}",
        api.fake.calls()
    );
}

#[tokio::test]
async fn service_refusals_keep_their_status_and_code() {
    let api = start(settings()).await;
    let admin = token(Role::Admin);
    let cases = [
        (Method::GET, "/v1/runs/missing", None, 404, "not_found"),
        (
            Method::POST,
            "/v1/runs/own-run/approve",
            Some(json!({"plan_hash": "sha256:abc"})),
            403,
            "forbidden",
        ),
        (
            Method::POST,
            "/v1/runs/stale/approve",
            Some(json!({"plan_hash": "sha256:old"})),
            409,
            "conflict",
        ),
        (
            Method::POST,
            "/v1/alerts/down",
            Some(json!({})),
            503,
            "unavailable",
        ),
        (Method::GET, "/v1/runs/broken", None, 500, "internal"),
        (
            Method::POST,
            "/v1/playbooks/missing/invoke",
            None,
            404,
            "not_found",
        ),
    ];
    for (method, path, body, want, code) in cases {
        let (status, _, answer) = api.call(method, path, Some(&admin), body).await;
        assert_eq!(status.as_u16(), want, "{path}");
        assert_eq!(error_code(&answer), code, "{path}");
    }
    // The message is the service's.
    let (_, _, answer) = api
        .call(Method::GET, "/v1/runs/missing", Some(&admin), None)
        .await;
    assert_eq!(answer["error"]["message"], "no run `missing`");
}

#[tokio::test]
async fn runs_pass_their_filters_and_shapes_through() {
    let api = start(settings()).await;
    let viewer = token(Role::Viewer);
    let (status, _, body) = api
        .call(
            Method::GET,
            "/v1/runs?limit=5&status=awaiting_approval",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let run = &body["runs"][0];
    for field in [
        "id",
        "status",
        "playbook",
        "alerts",
        "created_at",
        "updated_at",
    ] {
        assert!(!run[field].is_null(), "runs carry {field}: {run}");
    }
    assert_eq!(run["status"], "awaiting_approval");
    assert_eq!(
        run["alerts"][0],
        json!({"alert_id": "01900000-0000-7000-8000-000000000001", "source": "lacework", "id": "LW-1"})
    );
    let (_, _, body) = api
        .call(Method::GET, "/v1/runs/run-7", Some(&viewer), None)
        .await;
    assert_eq!(body["id"], "run-7");
    assert!(body["timeline"].is_array() && body["evidence"].is_array());
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/playbooks/first-access-containment/invoke",
            Some(&token(Role::Responder)),
            Some(json!({"inputs": {"reason": "ticket 42"}, "principal": "alice@contoso.com"})),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body, json!({"run_id": "run-2"}));
    // An empty body is an invocation with no inputs.
    let response = api
        .client
        .post(format!("{}/v1/playbooks/other/invoke", api.base))
        .bearer_auth(token(Role::Responder))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        api.fake.calls(),
        vec![
            "runs 5 Some(AwaitingApproval)".to_string(),
            "run run-7".to_string(),
            r#"invoke first-access-containment Some("alice@contoso.com") {"reason": "ticket 42"} by token:responder"#
                .to_string(),
            "invoke other None {} by token:responder".to_string(),
        ]
    );
    api.call(Method::GET, "/v1/runs", Some(&viewer), None).await;
    assert_eq!(api.fake.calls().last().unwrap(), "runs 50 None");
}

#[tokio::test]
async fn alerts_list_retry_and_cancel_pass_through_and_refuse_in_the_error_shape() {
    let api = start(settings()).await;
    let viewer = token(Role::Viewer);
    let responder = token(Role::Responder);
    let (status, _, body) = api
        .call(
            Method::GET,
            "/v1/alerts?status=failed&limit=7",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let alert = &body["alerts"][0];
    assert_eq!(alert["status"], "failed");
    assert_eq!(alert["attempts"], 8);
    assert!(
        alert["last_error"].as_str().unwrap().contains("503"),
        "{alert}"
    );
    let (status, _, body) = api
        .call(
            Method::GET,
            "/v1/alerts?status=spinning",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pending, matched, unmatched, failed"),
        "{body}"
    );
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/alerts/alert-9/retry",
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "pending");
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/alerts/matched/retry",
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(error_code(&body), "conflict");
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/alerts/missing/retry",
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/runs/run-4/cancel",
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "cancelled");
    let (status, _, body) = api
        .call(
            Method::POST,
            "/v1/runs/running/cancel",
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(error_code(&body), "conflict");
    assert_eq!(
        api.fake.calls(),
        [
            "alerts 7 Some(Failed)",
            "retry alert-9 by token:responder",
            "retry matched by token:responder",
            "retry missing by token:responder",
            "cancel run-4 by token:responder",
            "cancel running by token:responder",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Probes, metrics, shutdown.

#[tokio::test]
async fn probes_need_no_token_and_readyz_follows_the_service() {
    let api = start(settings()).await;
    let (status, _, body) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let (status, _, _) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 200);
    api.fake.not_ready.store(true, Ordering::SeqCst);
    let (status, _, body) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "not_ready");
    // Liveness does not depend on readiness.
    assert_eq!(api.call(Method::GET, "/healthz", None, None).await.0, 200);
}

#[tokio::test]
async fn metrics_expose_alerts_runs_and_requests() {
    let api = start(settings()).await;
    let responder = token(Role::Responder);
    api.call(
        Method::POST,
        "/v1/alerts/lacework",
        Some(&responder),
        Some(json!({})),
    )
    .await;
    api.call(Method::GET, "/v1/runs/run-1", None, None).await;
    metrics::counter!("riposte_graph_requests_total", "status" => "429").increment(1);
    let (status, _, _) = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 401, "metrics need a viewer token");
    let response = api
        .client
        .get(format!("{}/metrics", api.base))
        .bearer_auth(token(Role::Viewer))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let has = |needle: &str| {
        assert!(
            text.lines().any(|l| l.starts_with(needle)),
            "/metrics lacks `{needle}`:\n{text}"
        )
    };
    has("riposte_alerts_received_total 7");
    has("riposte_alerts_duplicate_total 2");
    has("riposte_alerts_rejected_total 1");
    has("riposte_runs{status=\"running\"} 3");
    has("riposte_runs{status=\"succeeded\"} 4");
    has("riposte_runs{status=\"awaiting_approval\"} 0");
    has("riposte_runs{status=\"cancelled\"} 0");
    has("riposte_alerts{status=\"failed\"} 5");
    has("riposte_alerts{status=\"matched\"} 6");
    has("riposte_alerts{status=\"pending\"} 0");
    has(
        "riposte_http_requests_total{method=\"POST\",route=\"/v1/alerts/{source}\",status=\"202\"}",
    );
    has("riposte_http_requests_total{method=\"GET\",route=\"/v1/runs/{id}\",status=\"401\"}");
    has(
        "riposte_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/alerts/{source}\",le=\"0.005\"}",
    );
    // Counters recorded elsewhere in the process (the connectors) appear on the same page.
    has("riposte_graph_requests_total{status=\"429\"}");
}

#[tokio::test]
async fn shutdown_stops_accepting_but_finishes_requests_in_flight() {
    let mut api = start(settings()).await;
    let viewer = token(Role::Viewer);
    let in_flight = tokio::spawn(
        api.client
            .get(format!("{}/v1/runs/slow", api.base))
            .bearer_auth(&viewer)
            .send(),
    );
    api.fake.started.notified().await;
    api.stop.take().unwrap().send(()).unwrap();
    // The service finishes only now, after shutdown began.
    api.fake.release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "slow");
    let served = tokio::time::timeout(Duration::from_secs(30), &mut api.task)
        .await
        .expect("serve returns once in-flight requests are done");
    served.unwrap().unwrap();
    let after = reqwest::Client::new()
        .get(format!("{}/healthz", api.base))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed after shutdown");
}

/// A sender that trickles its headers, or never finishes its body, is cut off after
/// `read_timeout_secs` instead of holding a connection for ever (slowloris).
#[tokio::test]
async fn slow_senders_are_cut_off_after_the_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = start(ServerSettings {
        read_timeout_secs: 1,
        ..settings()
    })
    .await;
    let addr = api.base.trim_start_matches("http://").to_string();
    let bounded = std::time::Duration::from_secs(10);

    // Headers that never end: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /v1/alerts/lacework HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(bounded, slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection was still open after {bounded:?}"
    );

    // A body that stops half-way: 408, and the service never saw the alert.
    let ingest = token(Role::Ingest);
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/alerts/lacework HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\""
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(bounded, slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within {bounded:?}");
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("read_timeout_secs"), "{answer}");
    assert!(api.fake.calls().is_empty(), "{:?}", api.fake.calls());
}

// ---------------------------------------------------------------------------------------
// Evidence out.

#[tokio::test]
async fn evidence_comes_out_byte_for_byte_with_its_digest_in_the_headers() {
    let api = start(settings()).await;
    let viewer = token(Role::Viewer);
    let (status, _, listed) = api
        .call(Method::GET, "/v1/runs/run-1/evidence", Some(&viewer), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["evidence"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["evidence"][0]["step_id"], "activity");

    for (path, n) in [
        ("/v1/runs/run-1/evidence/activity", 0),
        ("/v1/runs/run-1/evidence/activity/0", 0),
        ("/v1/runs/run-1/evidence/activity/1", 1),
    ] {
        let resp = api
            .client
            .get(format!("{}{path}", api.base))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let want = &fake_evidence()[n];
        assert_eq!(bytes.as_ref(), want.bytes.as_slice(), "{path}");
        let hex = hex::encode(Sha256::digest(&bytes));
        assert_eq!(format!("sha256:{hex}"), want.record.sha256);
        assert_eq!(headers["x-content-sha256"], hex.as_str());
        assert_eq!(headers["etag"], format!("\"{hex}\"").as_str());
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\""),
            "{disposition}"
        );
        let content_type = if n == 0 {
            "application/json"
        } else {
            "application/octet-stream"
        };
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert!(!headers.contains_key("set-cookie"));
    }

    // Unknown run, step or item, and a malformed index: the JSON error shape.
    for (path, code, status) in [
        ("/v1/runs/missing/evidence", "not_found", 404),
        ("/v1/runs/missing/evidence/activity", "not_found", 404),
        ("/v1/runs/run-1/evidence/nope", "not_found", 404),
        ("/v1/runs/run-1/evidence/activity/2", "not_found", 404),
        ("/v1/runs/run-1/evidence/activity/-1", "bad_request", 400),
    ] {
        let (got, _, body) = api.call(Method::GET, path, Some(&viewer), None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(error_code(&body), code, "{path}");
    }
    // Evidence is tenant data: no token, no bytes.
    let (status, _, _) = api
        .call(Method::GET, "/v1/runs/run-1/evidence/activity", None, None)
        .await;
    assert_eq!(status, 401);
}
