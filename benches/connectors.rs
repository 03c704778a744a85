//! `cargo bench --bench connectors`: the token cache's hit path, and 1,000 Graph GETs against
//! the emulator at 50 in flight over keep-alive connections. Prints figures and ratios to the
//! targets (hit < 1 µs); asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use riposte::connectors::azure::{CachedToken, TokenCache};
use riposte::connectors::{Api, ApiRequest, AzureSettings, Connectors, HttpOptions};
use riposte_emulator::{Emulator, FaultKind, FaultSpec, Tenant};

fn main() {
    riposte::connectors::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Token cache hit path.
        let cache = TokenCache::new();
        let scope = "https://graph.microsoft.com/.default";
        cache
            .get_or_fetch("tenant", scope, || async {
                Ok(CachedToken::new("t".to_string().into(), Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        let n = 1_000_000u32;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(cache.peek("tenant", scope));
        }
        let per = start.elapsed() / n;
        println!("token cache hit: {per:?} per hit; target 1 µs → {:.3}× the target", per.as_secs_f64() / 1e-6);

        for latency_ms in [0u64, 20] {
            let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
            if latency_ms > 0 {
                emulator
                    .state()
                    .add_fault(FaultSpec {
                        route: "GET /v1.0/users/*".into(),
                        kind: FaultKind::Latency,
                        latency_ms: Some(latency_ms),
                        retry_after: None,
                        status: None,
                        count: None,
                    })
                    .unwrap();
            }
            let base = emulator.base_url();
            let settings: AzureSettings = toml_settings(&base);
            let opts = HttpOptions { rate_per_second: 0.0, ..HttpOptions::default() };
            let connectors = Arc::new(Connectors::new(&settings, None, opts).unwrap());
            let url = format!("{base}/v1.0/users/a1e7d1c2-5b3f-4c8e-9d21-000000000001?$select=id,accountEnabled");
            // Warm: token, connections.
            connectors.send(&ApiRequest::get(Api::Graph, url.clone())).await.unwrap();
            let total = 1000usize;
            let in_flight = 50usize;
            let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
            let start = Instant::now();
            let mut handles = Vec::with_capacity(total);
            for _ in 0..total {
                let c = Arc::clone(&connectors);
                let url = url.clone();
                let permit = Arc::clone(&sem).acquire_owned().await.unwrap();
                handles.push(tokio::spawn(async move {
                    let t = Instant::now();
                    c.send(&ApiRequest::get(Api::Graph, url)).await.unwrap();
                    drop(permit);
                    t.elapsed()
                }));
            }
            let mut lat = Vec::with_capacity(total);
            for h in handles {
                lat.push(h.await.unwrap());
            }
            let wall = start.elapsed();
            lat.sort();
            let p50 = lat[total / 2];
            let p99 = lat[total * 99 / 100];
            let overhead = p99.saturating_sub(Duration::from_millis(latency_ms));
            println!(
                "1,000 Graph GETs, 50 in flight, emulator latency {latency_ms} ms: {:.0} requests/s; p50 {p50:?}, p99 {p99:?}; p99 overhead above the emulator's latency {overhead:?}",
                total as f64 / wall.as_secs_f64()
            );
            emulator.shutdown().await;
        }
    });
}

fn toml_settings(base: &str) -> AzureSettings {
    let text = riposte_emulator::client_config_toml(base);
    let azure = text
        .split("[lacework]")
        .next()
        .unwrap()
        .replace("[azure]", "");
    let value: toml_value::Table = toml_value::parse(&azure);
    serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
}

/// A tiny reader for the `key = "value"` lines of the emulator's client configuration.
mod toml_value {
    pub type Table = std::collections::BTreeMap<String, String>;
    pub fn parse(text: &str) -> Table {
        text.lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect()
    }
}
