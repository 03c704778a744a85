//! `riposte preflight` against the emulator: a permission the app lacks is named, with the
//! actions that need it, before any incident does.

use crate::common;

use std::process::Command;

use riposte_emulator::{Emulator, Tenant};

fn preflight(base: &str, dir: &std::path::Path) -> std::process::Output {
    let config = dir.join("riposte.toml");
    std::fs::write(
        &config,
        common::emulator_toml(base, "sqlite::memory:", "dry-run"),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "preflight",
            "--format",
            "json",
        ])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_named_and_fails_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let full = Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let base = full.base_url();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || preflight(&base, &dir)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["missing"], 0);
    assert!(
        report["directory_roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "User Administrator")
    );
    full.shutdown().await;

    // The same tenant, but the app was never granted User.RevokeSessions.All.
    let text = std::fs::read_to_string(common::root().join("tests/fixtures/tenant.yaml")).unwrap();
    let text = text.replacen("      - User.RevokeSessions.All\n", "", 1);
    let lacking = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        Tenant::from_yaml_str(&text).unwrap(),
    )
    .unwrap();
    let base = lacking.base_url();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || preflight(&base, &dir)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "missing")
        .collect();
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0]["permission"], "User.RevokeSessions.All");
    assert_eq!(missing[0]["needed_by"][0], "entra.revoke_sessions");
    lacking.shutdown().await;
}
