//! `cargo bench --bench plan`: planning the bundled playbook for a sample alert (no network,
//! and against the emulator at 0 ms latency with the shipped guardrails, so every target's
//! facts are read for real), and validating 200 playbooks. Prints the measured figures and
//! their ratio to the targets (20 ms per plan, 200 ms per 200 playbooks) and to the previous
//! offline figure (0.39 ms p50); it asserts nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use riposte::actions::ActionSettings;
use riposte::connectors::{Endpoints, NoLookup};
use riposte::plan::{Mode, Planner};
use riposte::policy::Unguarded;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let playbook =
        riposte::playbook::load_file(&root.join("playbooks/first-access-containment.yaml"))
            .expect("bundled playbook loads");
    let alert_bytes =
        std::fs::read(root.join("tests/fixtures/alerts/lacework-details.json")).expect("fixture");
    let alert = riposte::alert::parse_alert(&alert_bytes, None, &Default::default())
        .expect("fixture parses");
    let endpoints = Endpoints::default();
    let settings = ActionSettings {
        mfa_group_id: Some("9f0c7e3a-1d2b-4c5e-8f6a-000000000101".into()),
        notify_webhook_url: Some("https://example.webhook.office.com/x".into()),
        log_analytics_workspace: Some("5c9e2a71-3f4b-4d8e-a6c1-000000000201".into()),
        max_planning_reads: None,
    };
    let planner = Planner {
        endpoints: &endpoints,
        lookup: &NoLookup,
        settings: &settings,
        guard: &Unguarded,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inputs = BTreeMap::new();

    let plan_once = || {
        rt.block_on(planner.plan(
            &playbook,
            &alert,
            &inputs,
            Mode::DryRun,
            "bench",
            chrono::Utc::now(),
        ))
        .expect("plans")
    };
    for _ in 0..20 {
        plan_once();
    }
    let n = 500;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(plan_once());
        samples.push(t.elapsed());
    }
    samples.sort();
    let p50 = samples[n / 2];
    let p95 = samples[n * 95 / 100];
    let p99 = samples[n * 99 / 100];
    println!(
        "plan (bundled playbook, {} alert, no network): p50 {:?}, p95 {:?}, p99 {:?}; target 20 ms → p99 is {:.4}× the target; p50 is {:.2}× the previous 0.39 ms",
        alert.source,
        p50,
        p95,
        p99,
        p99.as_secs_f64() / 0.020,
        p50.as_secs_f64() / PREVIOUS_P50.as_secs_f64()
    );
    let online = rt.block_on(online_plans(&playbook, &alert, &settings));
    println!(
        "plan (bundled playbook, emulator at 0 ms, shipped guardrails, every target's facts read): p50 {:?}, p95 {:?}; {} upstream reads per plan; p50 is {:.2}× the offline p50 and {:.2}× the previous 0.39 ms",
        online.p50,
        online.p95,
        online.reads,
        online.p50.as_secs_f64() / p50.as_secs_f64(),
        online.p50.as_secs_f64() / PREVIOUS_P50.as_secs_f64()
    );

    // 200 distinct playbook files, validated the way `riposte validate` does.
    let dir = tempfile_dir();
    let text =
        std::fs::read_to_string(root.join("playbooks/first-access-containment.yaml")).unwrap();
    std::fs::copy(
        root.join("playbooks/first-access-rare-processes.kql"),
        dir.join("first-access-rare-processes.kql"),
    )
    .unwrap();
    for i in 0..200 {
        let t = text.replace(
            "name: first-access-containment",
            &format!("name: first-access-containment-{i}"),
        );
        std::fs::write(dir.join(format!("p{i:03}.yaml")), t).unwrap();
    }
    let mut runs: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (ok, problems) = riposte::playbook::load_all(std::slice::from_ref(&dir));
        runs.push(t.elapsed());
        assert_eq!((ok.len(), problems.len()), (200, 0));
    }
    runs.sort();
    let median = runs[runs.len() / 2];
    println!(
        "validate 200 playbooks: median {:?} of 5 runs; target 200 ms → {:.4}× the target",
        median,
        median.as_secs_f64() / 0.200
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The offline p50 before every target's facts were read.
const PREVIOUS_P50: Duration = Duration::from_micros(390);

struct Online {
    p50: Duration,
    p95: Duration,
    reads: usize,
}

/// Plans the bundled playbook against the emulator (no injected latency) with the shipped
/// policies, 200 times after a warm-up (the token and API-version caches are then warm, as in
/// a running service).
async fn online_plans(
    playbook: &riposte::playbook::model::Playbook,
    alert: &riposte::alert::Alert,
    settings: &ActionSettings,
) -> Online {
    riposte::connectors::install_crypto_provider();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let emulator = riposte_emulator::Emulator::start(
        "127.0.0.1:0".parse().expect("addr"),
        riposte_emulator::Tenant::default_fixture(),
    )
    .expect("emulator");
    let base = emulator.base_url();
    let azure: riposte::connectors::AzureSettings = serde_json::from_value(serde_json::json!({
        "tenant_id": "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11",
        "client_id": "c0ffee00-1111-4222-8333-444455556666",
        "client_secret": "emulator-secret",
        "authority_host": base, "graph_endpoint": base,
        "arm_endpoint": base, "log_analytics_endpoint": base,
    }))
    .expect("settings");
    let opts = riposte::connectors::HttpOptions {
        rate_per_second: 0.0,
        ..Default::default()
    };
    let connectors = riposte::connectors::Connectors::with_env(&azure, None, opts, &|_: &str| None)
        .expect("connectors");
    let endpoints = azure.endpoints().expect("endpoints");
    let guardrails = riposte::config::Guardrails {
        break_glass: vec!["a1e7d1c2-5b3f-4c8e-9d21-000000000006".into()],
        max_principals_per_hour: 10,
    };
    let guard =
        riposte::policy::RegoGuard::load(&root.join("policies"), &guardrails).expect("policies");
    let lookup = connectors.read_only();
    let planner = Planner {
        endpoints: &endpoints,
        lookup: &lookup,
        settings,
        guard: &guard,
    };
    let inputs = BTreeMap::new();
    let plan_once = || {
        planner.plan(
            playbook,
            alert,
            &inputs,
            Mode::DryRun,
            "bench",
            chrono::Utc::now(),
        )
    };
    for _ in 0..10 {
        plan_once().await.expect("plans");
    }
    emulator.state().clear_requests();
    let n = 200;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(plan_once().await.expect("plans"));
        samples.push(t.elapsed());
    }
    let reads = emulator
        .state()
        .requests()
        .iter()
        .filter(|r| r.api != "entra")
        .count()
        / n;
    emulator.shutdown().await;
    samples.sort();
    Online {
        p50: samples[n / 2],
        p95: samples[n * 95 / 100],
        reads,
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("riposte-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
