//! `cargo bench --bench review`: the review page's run page for a run with 50 steps, served by
//! the real router over loopback HTTP with a session (store read, render, transfer): p50 and
//! p99 of 500 requests, and the page's size. Prints figures; asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use riposte::config::{Role, TokenEntry};
use riposte::engine::ServiceOptions;
use riposte::engine::service::{Caller, ServiceApi};
use riposte::store::RunStatus;
use riposte_emulator::{Emulator, Tenant};

const TOKEN: &str = "bench-approver-token";
const STEPS: usize = 50;
const REQUESTS: usize = 500;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    riposte::connectors::install_crypto_provider();
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let toml = format!(
        "mode = \"dry-run\"\nplaybooks = \"{root}/playbooks\"\npolicies = \"{root}/policies\"\n\n[store]\nurl = \"sqlite://{}\"\n\n{}",
        dir.path().join("review.db").display(),
        riposte_emulator::client_config_toml(&emulator.base_url())
    );
    let path = dir.path().join("riposte.toml");
    std::fs::write(&path, toml).unwrap();
    let mut config = riposte::config::Config::load(Some(&path)).unwrap();
    config.server.tokens = vec![TokenEntry {
        name: "bench".into(),
        role: Role::Approver,
        sha256: riposte::server::token_digest(TOKEN),
    }];
    let service = riposte::app::App::new(config.clone())
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap();

    // A real plan, its steps repeated to 50 (ids kept unique) and stored under a claim.
    let alert = std::fs::read(format!(
        "{root}/tests/fixtures/alerts/lacework-details.json"
    ))
    .unwrap();
    let caller = Caller {
        name: "lacework".into(),
    };
    service.ingest("lacework", &alert, &caller).await.unwrap();
    service.process_alerts().await.unwrap();
    let run = service
        .runs(1, Some(RunStatus::Pending))
        .await
        .unwrap()
        .remove(0);
    let run = service.drive(&run.id, None).await.unwrap();
    let mut plan = service.run(&run.id).await.unwrap().run.plan.unwrap();
    let model = plan["steps"].as_array().unwrap().clone();
    let steps: Vec<serde_json::Value> = (0..STEPS)
        .map(|i| {
            let mut s = model[i % model.len()].clone();
            s["id"] = serde_json::json!(format!("{}_{i}", s["id"].as_str().unwrap()));
            s
        })
        .collect();
    plan["steps"] = serde_json::Value::Array(steps);
    let store = service.store();
    let fence = store
        .claim_run("bench", &run.id, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let hash = run.plan_hash.clone().unwrap();
    store.save_plan(&run.id, fence, &plan, &hash).await.unwrap();
    store.release("bench", &run.id).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api: Arc<dyn ServiceApi> = service.clone();
    let router = riposte::server::router(api, &config.server);
    tokio::spawn(riposte::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("http://{addr}/auth/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let url = format!("http://{addr}/runs/{}", run.id);
    let mut times = Vec::with_capacity(REQUESTS);
    let mut size = 0;
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let body = http
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        times.push(start.elapsed());
        size = body.len();
    }
    times.sort();
    println!(
        "review page, run with {STEPS} steps: p50 {:.2} ms, p99 {:.2} ms over {REQUESTS} requests ({} KiB a page)",
        times[REQUESTS / 2].as_secs_f64() * 1e3,
        times[REQUESTS * 99 / 100].as_secs_f64() * 1e3,
        size / 1024
    );
    emulator.shutdown().await;
}
