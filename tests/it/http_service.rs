//! The HTTP API in front of the real service: an alert posted to `/v1/alerts/lacework` is
//! durable before the 202, runs, and is visible through `/v1/runs/{id}`; posting it again
//! answers 200 with the same ids.

use crate::common;

use std::sync::Arc;

use riposte::config::{Role, TokenEntry};
use riposte::engine::ServiceOptions;
use riposte::engine::service::ServiceApi;
use riposte_emulator::{Emulator, Tenant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_posted_over_http_is_contained() {
    riposte::connectors::install_crypto_provider();
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("riposte.db").display());
    let mut config = common::config_from_toml(
        dir.path(),
        &common::emulator_toml(&emulator.base_url(), &url, "enforce"),
    );
    let token = "test-token-for-the-lacework-webhook";
    let viewer = "test-token-for-the-soc-viewer";
    config.server.tokens = vec![
        TokenEntry {
            name: "lacework-webhook".into(),
            role: Role::Ingest,
            sha256: riposte::server::token_digest(token),
        },
        TokenEntry {
            name: "soc".into(),
            role: Role::Viewer,
            sha256: riposte::server::token_digest(viewer),
        },
    ];
    let service = riposte::app::App::new(config.clone())
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap();
    let worker = service.spawn_worker();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api: Arc<dyn ServiceApi> = service.clone();
    let router = riposte::server::router(api, &config.server);
    let (shut_tx, shut_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(riposte::server::serve(listener, router, async move {
        let _ = shut_rx.await;
    }));

    let client = reqwest::Client::new();
    let body = common::fixture("lacework-webhook.json");
    // The webhook channel knows only a URL: the token rides in the query.
    let resp = client
        .post(format!("http://{addr}/v1/alerts/lacework?token={token}"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let first: serde_json::Value = resp.json().await.unwrap();

    // The worker matches, plans and runs it.
    let mut run = serde_json::Value::Null;
    for _ in 0..100 {
        let runs: serde_json::Value = client
            .get(format!("http://{addr}/v1/runs"))
            .bearer_auth(viewer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(r) = runs["runs"].as_array().and_then(|r| r.first())
            && r["status"] == "succeeded"
        {
            run = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["alerts"][0]["source"], "lacework");
    assert_eq!(run["alerts"][0]["id"], "51234");
    // The run records the identity that delivered its alert.
    assert_eq!(run["requested_by"], "token:lacework-webhook");
    let view: serde_json::Value = client
        .get(format!(
            "http://{addr}/v1/runs/{}",
            run["id"].as_str().unwrap()
        ))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(view["timeline"].as_array().unwrap().len() > 10);
    assert!(!view["evidence"].as_array().unwrap().is_empty());
    assert_eq!(emulator.state().counter("user_disabled"), 1);

    // The same alert again: the stored ids, no second run.
    let again = client
        .post(format!("http://{addr}/v1/alerts/lacework"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["alert_id"], first["alert_id"]);
    assert_eq!(again["duplicate"], true);

    let _ = shut_tx.send(());
    server.await.unwrap().unwrap();
    worker.stop().await;
    emulator.shutdown().await;
}
