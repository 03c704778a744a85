//! `on_error: continue` through the binary: a step that fails under it leaves the run
//! succeeded, the command exits 0, and says so in a warning line on stderr.

use crate::common;

use std::process::Output;

use riposte_emulator::{Emulator, FaultKind, FaultSpec, Tenant};
use serde_json::Value;

const ALEX_UPN: &str = "alex.wilber@contoso.com";

/// Disables Alex, and collects the Activity Log as evidence that may fail without stopping it.
const PLAYBOOK: &str = "name: contain-and-collect\nsteps:\n  - id: user\n    uses: entra.get_user\n    with: { user: \"${{ alert.principal.upn }}\" }\n  - id: suspend\n    uses: entra.disable_user\n    needs: [user]\n    with: { user: \"${{ steps.user.outputs.id }}\" }\n  - id: activity\n    uses: evidence.activity_log\n    on_error: continue\n    with: { caller: \"${{ alert.principal.upn }}\", subscription: b1c2d3e4-0000-4a5b-8c6d-000000000001, timespan: P1D }\n";

async fn riposte(dir: &std::path::Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
            .current_dir(&dir)
            .arg("--config")
            .arg(dir.join("riposte.toml"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "responder")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_under_on_error_continue_exits_0_with_a_warning() {
    riposte::connectors::install_crypto_provider();
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    emulator
        .state()
        .add_fault(FaultSpec {
            route: "GET /subscriptions/*/providers/Microsoft.Insights/eventtypes/management/values"
                .into(),
            kind: FaultKind::Error,
            latency_ms: None,
            retry_after: None,
            status: Some(403),
            count: None,
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
    std::fs::write(
        dir.path().join("riposte.toml"),
        common::emulator_toml(&emulator.base_url(), &store, "dry-run"),
    )
    .unwrap();
    let file = dir.path().join("contain.yaml");
    std::fs::write(&file, PLAYBOOK).unwrap();

    for format in ["table", "json"] {
        let out = riposte(
            dir.path(),
            &[
                "run",
                "--playbook",
                file.to_str().unwrap(),
                "--principal",
                ALEX_UPN,
                "--enforce",
                "--format",
                format,
            ],
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .collect();
        assert_eq!(warnings.len(), 1, "{format}: {stderr}");
        assert!(
            warnings[0].contains("step `activity` failed and the run went on"),
            "{warnings:?}"
        );
        if format == "json" {
            let v: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["run"]["status"], "succeeded", "{v:#}");
            let activity = v["report"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == "activity")
                .unwrap();
            assert_eq!(activity["outcome"], "failed", "{activity:#}");
            assert_eq!(v["report"]["warnings"][0], warnings[0]["warning: ".len()..]);
        }
    }
    // The account was disabled by the first run; the second found it already so.
    assert_eq!(emulator.state().counter("user_disabled"), 1);
    emulator.shutdown().await;
}
