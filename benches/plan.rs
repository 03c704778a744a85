//! `cargo bench --bench plan`: planning the bundled playbook for a sample alert (no network),
//! and validating 200 playbooks. Prints the measured figures and their ratio to the targets
//! (20 ms per plan, 200 ms per 200 playbooks); it asserts nothing.

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
    let p99 = samples[n * 99 / 100];
    println!(
        "plan (bundled playbook, {} alert, no network): p50 {:?}, p99 {:?}; target 20 ms → p99 is {:.4}× the target",
        alert.source,
        p50,
        p99,
        p99.as_secs_f64() / 0.020
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

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("riposte-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
