//! The HTTP layer, credentials, long-running operations and paging against `wiremock` on
//! loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use riposte::connectors::azure::credential::AssertionClaims;
use riposte::connectors::{
    Api, ApiError, ApiRequest, AzureSettings, Connectors, HttpOptions, LaceworkSettings, Lookup,
    LookupOutcome, Method, paging,
};
use serde_json::{Value, json};
use sha2::Digest;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "contoso-tenant";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

fn opts() -> HttpOptions {
    HttpOptions {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        poll_interval: Duration::from_millis(1),
        max_polls: 20,
        rate_per_second: 0.0,
        ..HttpOptions::default()
    }
}

fn settings(server: &MockServer) -> AzureSettings {
    serde_json::from_value(json!({
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret": "s3cr3t-value",
        "authority_host": server.uri(),
        "graph_endpoint": server.uri(),
        "arm_endpoint": server.uri(),
        "log_analytics_endpoint": server.uri(),
    }))
    .unwrap()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

async fn mount_token(server: &MockServer, expires_in: u64, expect: impl Into<wiremock::Times>) {
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": expires_in, "access_token": "tok-1"
        })))
        .expect(expect)
        .mount(server)
        .await;
}

async fn setup() -> (MockServer, Connectors) {
    let server = MockServer::start().await;
    mount_token(&server, 3599, 0..=1000).await;
    let c = Connectors::with_env(&settings(&server), None, opts(), &no_env).unwrap();
    (server, c)
}

fn graph_get(c: &Connectors, path: &str) -> ApiRequest {
    ApiRequest::get(Api::Graph, format!("{}{path}", c.endpoints().graph_v1()))
}

fn arm_get(c: &Connectors, id: &str, api_version: &str) -> ApiRequest {
    ApiRequest::get(
        Api::Arm,
        format!("{}{id}?api-version={api_version}", c.endpoints().arm),
    )
}

fn user_url(server: &MockServer) -> String {
    format!("{}/v1.0/users/u1", server.uri())
}

#[tokio::test]
async fn retry_after_is_honoured_then_success() {
    let (server, c) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    let start = Instant::now();
    let resp = c
        .send(&ApiRequest::get(Api::Graph, user_url(&server)))
        .await
        .unwrap();
    // A lower bound only: the retry waited at least what the server asked for.
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(resp.attempts, 2);
    assert_eq!(resp.body["id"], "u1");
}

#[tokio::test]
async fn server_errors_are_retried_with_one_client_request_id() {
    let (server, c) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "ms-rid-9")
                .set_body_json(json!({"id": "u1"})),
        )
        .mount(&server)
        .await;
    let resp = c
        .send(&ApiRequest::get(Api::Graph, user_url(&server)))
        .await
        .unwrap();
    assert_eq!(resp.attempts, 4);
    assert_eq!(resp.request_id.as_deref(), Some("ms-rid-9"));
    let ids: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1.0/users/u1")
        .map(|r| {
            r.headers
                .get("client-request-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|i| *i == resp.client_request_id), "{ids:?}");
    assert!(uuid::Uuid::parse_str(&ids[0]).is_ok());
}

#[tokio::test]
async fn bad_request_is_not_retried_and_is_typed() {
    let (server, c) = setup().await;
    Mock::given(method("PATCH"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "Request_BadRequest",
            "message": "Unable to update the specified properties for on-premises mastered Directory Sync objects.",
            "innerError": {"request-id": "inner-rid", "date": "2026-01-01T00:00:00"}}})))
        .expect(1)
        .mount(&server)
        .await;
    let req = ApiRequest::new(Method::Patch, Api::Graph, user_url(&server))
        .with_body(json!({"accountEnabled": false}))
        .retry_safe();
    match c.send(&req).await.unwrap_err() {
        ApiError::Permanent {
            status,
            code,
            request_id,
            ..
        } => {
            assert_eq!(status, 400);
            assert_eq!(code, "Request_BadRequest");
            assert_eq!(request_id.as_deref(), Some("inner-rid"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn post_is_retried_only_when_retry_safe() {
    let (server, c) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/users/u1/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(503).insert_header("request-id", "rid-503"))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/v1.0/users/u1/revokeSignInSessions", server.uri());
    let err = c
        .send(&ApiRequest::new(Method::Post, Api::Graph, url.clone()))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.request_id(), Some("rid-503"));
    server.verify().await;
    server.reset().await;

    mount_token(&server, 3599, 0..=1).await;
    Mock::given(method("POST"))
        .and(path("/v1.0/users/u1/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/users/u1/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": true})))
        .mount(&server)
        .await;
    let resp = c
        .send(&ApiRequest::new(Method::Post, Api::Graph, url).retry_safe())
        .await
        .unwrap();
    assert_eq!(resp.attempts, 2);
}

#[tokio::test]
async fn a_throttled_post_is_sent_again_after_retry_after() {
    let (server, c) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/groups/g1/members/$ref"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/groups/g1/members/$ref"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/v1.0/groups/g1/members/$ref", server.uri());
    let resp = c
        .send(&ApiRequest::new(Method::Post, Api::Graph, url).with_body(json!({"@odata.id": "x"})))
        .await
        .unwrap();
    assert_eq!((resp.status, resp.attempts), (204, 2));
    server.verify().await;
}

#[tokio::test]
async fn arm_and_graph_errors_carry_request_ids() {
    let (server, c) = setup().await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/s1/resourceGroups/rg"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ms-request-id", "arm-rid")
                .set_body_json(json!({"error": {"code": "AuthorizationFailed",
                    "message": "The client does not have authorization to perform action"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/ghost"))
        .respond_with(ResponseTemplate::new(404).insert_header("request-id", "g-rid").set_body_json(json!({
            "error": {"code": "Request_ResourceNotFound", "message": "Resource 'ghost' does not exist"}})))
        .mount(&server)
        .await;
    let err = c
        .send(&arm_get(
            &c,
            "/subscriptions/s1/resourceGroups/rg",
            "2021-04-01",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::Forbidden { code, .. } if code == "AuthorizationFailed"),
        "{err:?}"
    );
    assert_eq!(err.request_id(), Some("arm-rid"));
    assert!(err.to_string().contains("arm-rid"));
    let err = c.send(&graph_get(&c, "/users/ghost")).await.unwrap_err();
    assert!(matches!(&err, ApiError::NotFound { code, .. } if code == "Request_ResourceNotFound"));
    assert_eq!(err.request_id(), Some("g-rid"));
}

#[tokio::test]
async fn entra_errors_become_auth_errors_with_hints() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: trace-7\r\nCorrelation ID: corr\r\nTimestamp: 2026-01-01 00:00:00Z",
            "error_codes": [7000215], "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "trace-7", "correlation_id": "corr"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = Connectors::with_env(&settings(&server), None, opts(), &no_env).unwrap();
    let err = c
        .send(&graph_get(&c, "/users/u1?$select=id"))
        .await
        .unwrap_err();
    match &err {
        ApiError::Auth {
            code,
            message,
            hint,
            request_id,
        } => {
            assert_eq!(code, "AADSTS7000215");
            assert!(
                message.starts_with("AADSTS7000215: Invalid client secret"),
                "{message}"
            );
            assert!(!message.contains("Trace ID"));
            assert!(hint.contains("secret"), "{hint}");
            assert_eq!(request_id.as_deref(), Some("trace-7"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{err:?} {err}").contains("s3cr3t-value"));
    // The secret went in the form body, not the URL.
    let reqs = server.received_requests().await.unwrap();
    let form = String::from_utf8_lossy(&reqs[0].body);
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(
        form.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
        "{form}"
    );
    assert!(!reqs[0].url.as_str().contains("s3cr3t"));
}

#[tokio::test]
async fn hundred_concurrent_callers_fetch_one_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(100))
                .set_body_json(
                    json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .expect(100)
        .mount(&server)
        .await;
    let c = Connectors::with_env(&settings(&server), None, opts(), &no_env).unwrap();
    let url = user_url(&server);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move { c.send(&ApiRequest::get(Api::Graph, url)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    server.verify().await;
}

#[tokio::test]
async fn short_lived_token_is_refreshed_before_expiry() {
    let server = MockServer::start().await;
    // Two seconds of life: refreshed after one (half the lifetime for short tokens).
    mount_token(&server, 2, 2).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    let c = Connectors::with_env(&settings(&server), None, opts(), &no_env).unwrap();
    let req = ApiRequest::get(Api::Graph, user_url(&server));
    c.send(&req).await.unwrap();
    c.send(&req).await.unwrap(); // cached
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.send(&req).await.unwrap(); // inside the margin, still valid: refreshed anyway
    server.verify().await;
}

fn rsa_cert() -> (String, Vec<u8>, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["riposte.test".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    (pem, cert.der().to_vec(), key.public_key_pem())
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn assertion_for(alg: &str) -> (String, Vec<u8>, String, String) {
    let (pem, der, public) = rsa_cert();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("sp.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let server = MockServer::start().await;
    mount_token(&server, 3599, 1).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    let s: AzureSettings = serde_json::from_value(json!({
        "tenant_id": TENANT, "client_id": CLIENT,
        "certificate_path": pem_path.to_str().unwrap(), "certificate_alg": alg,
        "authority_host": server.uri(), "graph_endpoint": server.uri(),
    }))
    .unwrap();
    let c = Connectors::with_env(&s, None, opts(), &no_env).unwrap();
    c.send(&graph_get(&c, "/users/u1")).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let token_req = reqs.iter().find(|r| r.url.path() == token_path()).unwrap();
    assert_eq!(
        form_field(&token_req.body, "client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert!(form_field(&token_req.body, "client_secret").is_none());
    assert_eq!(
        form_field(&token_req.body, "client_id").as_deref(),
        Some(CLIENT)
    );
    let jwt = form_field(&token_req.body, "client_assertion").unwrap();
    (
        jwt,
        der,
        public,
        format!("{}{}", server.uri(), token_path()),
    )
}

fn check_claims(jwt: &str, public: &str, alg: jsonwebtoken::Algorithm, token_url: &str) {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&[token_url]);
    v.set_issuer(&[CLIENT]);
    let data = jsonwebtoken::decode::<AssertionClaims>(
        jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
        &v,
    )
    .expect("the assertion verifies with the certificate's public key");
    let c = data.claims;
    assert_eq!(c.aud, token_url);
    assert_eq!((c.iss.as_str(), c.sub.as_str()), (CLIENT, CLIENT));
    assert!(uuid::Uuid::parse_str(&c.jti).is_ok());
    assert_eq!(c.nbf, c.iat);
    assert_eq!(c.exp - c.iat, 600);
    assert!((c.iat - chrono::Utc::now().timestamp()).abs() < 60);
}

#[tokio::test]
async fn certificate_assertion_ps256_with_x5t_s256() {
    let (jwt, der, public, token_url) = assertion_for("ps256").await;
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.x5t_s256.as_deref(),
        Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)).as_str())
    );
    // And by name in the raw header, as Entra reads it.
    let raw: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(raw.get("x5t#S256").is_some(), "{raw}");
    check_claims(&jwt, &public, jsonwebtoken::Algorithm::PS256, &token_url);
}

#[tokio::test]
async fn certificate_assertion_rs256_with_x5t() {
    let (jwt, der, public, token_url) = assertion_for("rs256").await;
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        header.x5t.as_deref(),
        Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)).as_str())
    );
    check_claims(&jwt, &public, jsonwebtoken::Algorithm::RS256, &token_url);
}

#[tokio::test]
async fn managed_identity_uses_imds_with_metadata_header() {
    let server = MockServer::start().await;
    let expires_on = (chrono::Utc::now().timestamp() + 3599).to_string();
    Mock::given(method("GET"))
        .and(path("/metadata/identity/oauth2/token"))
        .and(header("Metadata", "true"))
        .and(query_param("api-version", "2018-02-01"))
        .and(query_param("resource", "https://graph.microsoft.com"))
        .and(query_param("client_id", "uai-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "mi-tok", "refresh_token": "", "expires_in": "3599",
            "expires_on": expires_on, "not_before": "0",
            "resource": "https://graph.microsoft.com", "token_type": "Bearer"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .and(header("authorization", "Bearer mi-tok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .expect(2)
        .mount(&server)
        .await;
    let s: AzureSettings = serde_json::from_value(json!({
        "managed_identity": true, "managed_identity_client_id": "uai-1",
        "graph_endpoint": server.uri()}))
    .unwrap();
    let uri = server.uri();
    let env = move |k: &str| (k == "AZURE_POD_IDENTITY_AUTHORITY_HOST").then(|| uri.clone());
    let c = Connectors::with_env(&s, None, opts(), &env).unwrap();
    c.send(&graph_get(&c, "/users/u1")).await.unwrap();
    c.send(&graph_get(&c, "/users/u1")).await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn lacework_token_is_cached_and_details_fetched() {
    let server = MockServer::start().await;
    let expires_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    Mock::given(method("POST"))
        .and(path("/api/v2/access/tokens"))
        .and(header("X-LW-UAKS", "lw-secret"))
        .and(body_string_contains("\"keyId\":\"KEY1\""))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"token": "lw-tok", "expiresAt": expires_at})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/Alerts/4242"))
        .and(query_param("scope", "Details"))
        .and(header("authorization", "Bearer lw-tok"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"alertId": 4242, "entityMap": {}}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let lw: LaceworkSettings = serde_json::from_value(json!({
        "endpoint": server.uri(), "key_id": "KEY1", "secret": "lw-secret"}))
    .unwrap();
    let c = Connectors::with_env(&AzureSettings::default(), Some(&lw), opts(), &no_env).unwrap();
    let lacework = c.lacework().unwrap();
    let d = lacework.alert_details("4242").await.unwrap();
    assert_eq!(d["data"]["alertId"], 4242);
    lacework.alert_details("4242").await.unwrap();
    server.verify().await;
}

const SNAP: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/snapshots/snap1";

#[tokio::test]
async fn lro_via_azure_async_operation_to_succeeded() {
    let (server, c) = setup().await;
    Mock::given(method("PUT"))
        .and(path(SNAP))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Azure-AsyncOperation", format!("{}/subscriptions/s1/providers/Microsoft.Compute/locations/westeurope/operations/op1?api-version=2025-01-02", server.uri()))
                .insert_header("Retry-After", "0")
                .set_body_json(json!({"properties": {"provisioningState": "Creating"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/subscriptions/s1/providers/Microsoft.Compute/locations/westeurope/operations/op1",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "InProgress"})))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/subscriptions/s1/providers/Microsoft.Compute/locations/westeurope/operations/op1",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Succeeded"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SNAP))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"name": "snap1", "properties": {"provisioningState": "Succeeded"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let req = ApiRequest::new(
        Method::Put,
        Api::Arm,
        format!("{}{SNAP}?api-version=2025-01-02", server.uri()),
    )
    .with_body(json!({"location": "westeurope"}));
    let resp = c.send(&req).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["properties"]["provisioningState"], "Succeeded");
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/operations/op1"))
        .count();
    assert_eq!(polls, 3);
    server.verify().await;
}

#[tokio::test]
async fn lro_via_location() {
    let (server, c) = setup().await;
    Mock::given(method("DELETE"))
        .and(path(SNAP))
        .respond_with(ResponseTemplate::new(202).insert_header(
            "Location",
            format!("{}/subscriptions/s1/operationresults/r1", server.uri()),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/s1/operationresults/r1"))
        .respond_with(ResponseTemplate::new(202).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/s1/operationresults/r1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let req = ApiRequest::new(
        Method::Delete,
        Api::Arm,
        arm_get(&c, SNAP, "2025-01-02").url,
    );
    let resp = c.send(&req).await.unwrap();
    assert_eq!((resp.status, resp.body), (204, Value::Null));
}

#[tokio::test]
async fn lro_failure_is_typed_with_the_operation_error() {
    let (server, c) = setup().await;
    Mock::given(method("PUT"))
        .and(path(SNAP))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("Azure-AsyncOperation", format!("{}/ops/op2", server.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/ops/op2"))
        .respond_with(ResponseTemplate::new(200).insert_header("x-ms-request-id", "op-rid").set_body_json(json!({
            "status": "Failed", "error": {"code": "OperationNotAllowed", "message": "Quota exceeded for snapshots."}})))
        .mount(&server)
        .await;
    let req = ApiRequest::new(Method::Put, Api::Arm, arm_get(&c, SNAP, "2025-01-02").url)
        .with_body(json!({}));
    let err = c.send(&req).await.unwrap_err();
    match err {
        ApiError::OperationFailed {
            status,
            code,
            message,
            request_id,
        } => {
            assert_eq!(status, "Failed");
            assert_eq!(code, "OperationNotAllowed");
            assert_eq!(message, "Quota exceeded for snapshots.");
            assert_eq!(request_id.as_deref(), Some("op-rid"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn polling_urls_on_another_host_are_refused() {
    let (server, c) = setup().await;
    Mock::given(method("PUT"))
        .and(path(SNAP))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("Azure-AsyncOperation", "https://evil.example/ops/1"),
        )
        .mount(&server)
        .await;
    let req = ApiRequest::new(Method::Put, Api::Arm, arm_get(&c, SNAP, "2025-01-02").url)
        .with_body(json!({}));
    let err = c.send(&req).await.unwrap_err();
    assert!(matches!(err, ApiError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn pages_are_followed_on_the_same_host_only() {
    let (server, c) = setup().await;
    let base = "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments";
    Mock::given(method("GET"))
        .and(path(base))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [{"id": "c"}],
            "nextLink": "https://evil.example/steal?page=3"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(base))
        .and(query_param("api-version", "2022-04-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "a"}, {"id": "b"}],
            "nextLink": format!("{}{base}?api-version=2022-04-01&page=2", server.uri())})))
        .mount(&server)
        .await;
    let first = arm_get(&c, base, "2022-04-01");
    let mut body = c.send(&first).await.unwrap().body;
    let err = paging::follow(&first, &mut body, |req| {
        let c = c.clone();
        async move { c.send(&req).await }
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::ForeignNextLink { .. }), "{err:?}");
    let ids: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    // Nothing reached the hostile host; the two pages on the API's own host were read.
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn log_analytics_queries_use_their_own_token_scope() {
    let (server, c) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/workspaces/ws-guid/query"))
        .and(body_string_contains("\"timespan\":\"PT12H\""))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"tables": [{"name": "PrimaryResult",
            "columns": [{"name": "Account", "type": "string"}],
            "rows": [["alice"]]}]}),
        ))
        .mount(&server)
        .await;
    let req = ApiRequest::new(
        Method::Post,
        Api::LogAnalytics,
        format!(
            "{}/v1/workspaces/ws-guid/query",
            c.endpoints().log_analytics
        ),
    )
    .with_body(json!({"query": "SecurityEvent | count", "timespan": "PT12H"}))
    .retry_safe();
    let r = c.send(&req).await.unwrap();
    assert_eq!(r.body["tables"][0]["rows"][0][0], "alice");
    let scope_sent = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| form_field(&r.body, "scope"))
        .next();
    assert_eq!(
        scope_sent.as_deref(),
        Some("https://api.loganalytics.io/.default")
    );
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let s: AzureSettings = serde_json::from_value(json!({
        "tenant_id": "t", "client_id": "c", "client_secret": "x",
        "graph_endpoint": "http://graph.example.com"}))
    .unwrap();
    let err = Connectors::with_env(&s, None, opts(), &no_env).unwrap_err();
    assert!(
        matches!(&err, ApiError::Config(m) if m.contains("graph_endpoint")),
        "{err:?}"
    );
    let lw: LaceworkSettings = serde_json::from_value(json!({
        "endpoint": "http://lacework.example.com", "key_id": "k", "secret": "s"}))
    .unwrap();
    assert!(Connectors::with_env(&AzureSettings::default(), Some(&lw), opts(), &no_env).is_err());
}

#[tokio::test]
async fn tokens_are_not_sent_to_other_hosts() {
    let (_server, c) = setup().await;
    let err = c
        .send(&ApiRequest::get(
            Api::Graph,
            "https://evil.example/v1.0/users/u1",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn read_only_lookups() {
    let (server, c) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/ghost"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"code": "Request_ResourceNotFound", "message": "no"}}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    let ro: Arc<dyn Lookup> = Arc::new(c.read_only());
    assert_eq!(
        ro.get(Api::Graph, &user_url(&server)).await.unwrap(),
        LookupOutcome::Found(json!({"id": "u1"}))
    );
    assert_eq!(
        ro.get(Api::Graph, &format!("{}/v1.0/users/ghost", server.uri()))
            .await
            .unwrap(),
        LookupOutcome::NotFound
    );
    assert_eq!(
        ro.get(Api::Lacework, "https://x.lacework.net/api/v2/Alerts/1")
            .await
            .unwrap(),
        LookupOutcome::Unavailable
    );

    let none = Connectors::with_env(&AzureSettings::default(), None, opts(), &no_env).unwrap();
    assert_eq!(
        none.read_only()
            .get(Api::Graph, &user_url(&server))
            .await
            .unwrap(),
        LookupOutcome::Unavailable
    );
}

/// STYLE.md habit 5: only `src/connectors/` builds an HTTP client.
#[test]
fn only_connectors_build_http_clients() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    assert!(!files.is_empty());
    let connectors = root.join("src").join("connectors");
    let mut offenders = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&connectors)) {
        let text = std::fs::read_to_string(f).unwrap();
        for needle in ["reqwest::Client", "Client::builder", "ClientBuilder"] {
            if text.contains(needle) {
                offenders.push(format!(
                    "{}: {needle}",
                    f.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "HTTP clients built outside src/connectors/: {offenders:?}"
    );
}

#[tokio::test]
async fn app_service_identity_sends_the_identity_header() {
    let server = MockServer::start().await;
    let expires_on = (chrono::Utc::now().timestamp() + 3600).to_string();
    Mock::given(method("GET"))
        .and(path("/msi/token"))
        .and(header("X-IDENTITY-HEADER", "idh-1"))
        .and(query_param("api-version", "2019-08-01"))
        .and(query_param("resource", "https://management.azure.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "as-tok", "expires_on": expires_on,
            "resource": "https://management.azure.com", "token_type": "Bearer"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/s1"))
        .and(header("authorization", "Bearer as-tok"))
        .and(header_exists("x-ms-client-request-id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"subscriptionId": "s1"})))
        .expect(1)
        .mount(&server)
        .await;
    let s: AzureSettings = serde_json::from_value(json!({
        "managed_identity": true, "arm_endpoint": server.uri()}))
    .unwrap();
    let endpoint = format!("{}/msi/token", server.uri());
    let env = move |k: &str| match k {
        "IDENTITY_ENDPOINT" => Some(endpoint.clone()),
        "IDENTITY_HEADER" => Some("idh-1".to_string()),
        _ => None,
    };
    let c = Connectors::with_env(&s, None, opts(), &env).unwrap();
    let sub = c
        .send(&arm_get(&c, "/subscriptions/s1", "2022-12-01"))
        .await
        .unwrap()
        .body;
    assert_eq!(sub["subscriptionId"], "s1");
    server.verify().await;
}

#[tokio::test]
async fn workload_identity_sends_the_federated_token_as_assertion() {
    let server = MockServer::start().await;
    mount_token(&server, 3599, 1).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "federated.jwt.value\n").unwrap();
    let s: AzureSettings = serde_json::from_value(json!({
        "authority_host": server.uri(), "graph_endpoint": server.uri()}))
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    let env = move |k: &str| match k {
        "AZURE_FEDERATED_TOKEN_FILE" => Some(file.clone()),
        "AZURE_CLIENT_ID" => Some(CLIENT.to_string()),
        "AZURE_TENANT_ID" => Some(TENANT.to_string()),
        _ => None,
    };
    let c = Connectors::with_env(&s, None, opts(), &env).unwrap();
    c.send(&graph_get(&c, "/users/u1")).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let token_req = reqs.iter().find(|r| r.url.path() == token_path()).unwrap();
    assert_eq!(
        form_field(&token_req.body, "client_assertion").as_deref(),
        Some("federated.jwt.value")
    );
    assert_eq!(
        form_field(&token_req.body, "client_id").as_deref(),
        Some(CLIENT)
    );
    server.verify().await;
}

/// An incoming webhook's path is its credential and its answer is not an API we know: a
/// failure is summarised by status, never reflected (the endpoint may echo the URL back).
#[tokio::test]
async fn a_webhook_failure_is_summarised_not_reflected() {
    let (server, c) = setup().await;
    Mock::given(method("POST"))
        .and(path("/hooks/T000/B000/secret-path"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "bad", "message": "no such hook /hooks/T000/B000/secret-path"}}),
        ))
        .mount(&server)
        .await;
    let req = ApiRequest::new(
        Method::Post,
        Api::Webhook,
        format!("{}/hooks/T000/B000/secret-path", server.uri()),
    )
    .with_body(json!({"text": "hi"}));
    let err = c.send(&req).await.unwrap_err().to_string();
    assert!(!err.contains("secret-path"), "{err}");
    assert!(err.contains("400"), "{err}");
}

/// The send gate is asked right before every attempt, after every wait: a caller whose right
/// to send ends while its request waits to be retried (a worker's lease lapsing) sends no
/// further attempt, and the error says nothing was sent.
#[tokio::test]
async fn a_closed_send_gate_stops_the_next_attempt() {
    let (server, c) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = Arc::clone(&asked);
    // Open for the first attempt, closed from then on (the lease ran out during the backoff).
    let gate: riposte::connectors::gate::SendGate = Arc::new(move || {
        if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Ok(())
        } else {
            Err("the lease ran out".into())
        }
    });
    let err = riposte::connectors::gate::guarded(
        gate,
        c.send(&ApiRequest::get(Api::Graph, user_url(&server))),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::Withheld(_)), "{err}");
    assert!(
        err.to_string().contains("not sent: the lease ran out"),
        "{err}"
    );
    let sent = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1.0/users/u1")
        .count();
    assert_eq!(
        sent, 1,
        "only the attempt made while the gate was open left"
    );
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
}
