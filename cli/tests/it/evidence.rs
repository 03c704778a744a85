//! `riposte evidence list|get`: the bytes the binary writes (to a file or stdout) are the
//! stored ones, and they hash to the digest in the run view and in the audit trail.

use crate::common;

use std::collections::BTreeMap;
use std::process::Output;

use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::Value;
use sha2::{Digest, Sha256};

struct World {
    emulator: EmulatorHandle,
    dir: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        riposte::connectors::install_crypto_provider();
        let emulator =
            Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
        let toml = common::emulator_toml(&emulator.base_url(), &store, "dry-run");
        std::fs::write(dir.path().join("riposte.toml"), toml).unwrap();
        World { emulator, dir }
    }

    async fn riposte(&self, args: &[&str]) -> Output {
        let dir = self.dir.path().to_path_buf();
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
}

fn ok(out: &Output) -> &[u8] {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    &out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_get_writes_the_stored_bytes_whose_digest_the_run_and_audit_trail_show() {
    let world = World::start();
    let alert = common::root().join("tests/fixtures/alerts/lacework-details.json");
    let out = world
        .riposte(&[
            "run",
            "--alert",
            alert.to_str().unwrap(),
            "--playbook",
            "first-access-containment",
            "--enforce",
            "--format",
            "json",
        ])
        .await;
    let ran: Value = serde_json::from_slice(ok(&out)).unwrap();
    let id = ran["run"]["id"].as_str().unwrap().to_string();

    let listed: Value = serde_json::from_slice(ok(&world
        .riposte(&["evidence", "list", &id, "--format", "json"])
        .await))
    .unwrap();
    let listed = listed.as_array().unwrap().clone();
    assert!(
        listed.iter().any(|e| e["step_id"] == "activity"),
        "{listed:#?}"
    );
    let table = world.riposte(&["evidence", "list", &id]).await;
    assert!(String::from_utf8_lossy(ok(&table)).contains("activity"));

    let shown: Value = serde_json::from_slice(ok(&world
        .riposte(&["runs", "show", &id, "--format", "json"])
        .await))
    .unwrap();
    let in_view: BTreeMap<String, String> = shown["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().into(),
                e["sha256"].as_str().unwrap().into(),
            )
        })
        .collect();

    // The audit trail, read from the same store.
    let config =
        riposte::config::Config::load(Some(&world.dir.path().join("riposte.toml"))).unwrap();
    let service = riposte::app::App::new(config)
        .unwrap()
        .service()
        .await
        .unwrap();
    let audited: BTreeMap<String, String> = service
        .store()
        .audit_records(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "evidence.stored" && r.run_id.as_deref() == Some(id.as_str()))
        .map(|r| {
            (
                r.body["evidence_id"].as_str().unwrap().into(),
                r.body["sha256"].as_str().unwrap().into(),
            )
        })
        .collect();

    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    for e in &listed {
        let step = e["step_id"].as_str().unwrap().to_string();
        let evidence_id = e["id"].as_str().unwrap();
        let n = position.entry(step.clone()).or_default();
        let file = world.dir.path().join(format!("{step}-{n}.out"));
        let n_text = n.to_string();
        ok(&world
            .riposte(&[
                "evidence",
                "get",
                &id,
                &step,
                &n_text,
                "--out",
                file.to_str().unwrap(),
            ])
            .await);
        *n += 1;
        let bytes = std::fs::read(&file).unwrap();
        let digest = sha256(&bytes);
        assert_eq!(digest, e["sha256"].as_str().unwrap(), "list, {step}");
        assert_eq!(in_view[evidence_id], digest, "run view, {step}");
        assert_eq!(audited[evidence_id], digest, "audit trail, {step}");
    }

    // Stdout carries only the bytes (the digest goes to stderr), so a pipe gets them intact.
    let first = &listed[0];
    let step = first["step_id"].as_str().unwrap();
    let piped = world.riposte(&["evidence", "get", &id, step]).await;
    assert_eq!(sha256(ok(&piped)), first["sha256"].as_str().unwrap());
    assert!(String::from_utf8_lossy(&piped.stderr).contains(first["sha256"].as_str().unwrap()));

    // The incident report carries the same digests, in both formats.
    let html = world.riposte(&["report", &id]).await;
    let html = String::from_utf8_lossy(ok(&html)).to_string();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{html}"
    );
    let md = world.riposte(&["report", &id, "--format", "md"]).await;
    let md = String::from_utf8_lossy(ok(&md)).to_string();
    assert!(md.starts_with("# Incident report"), "{md}");
    for digest in in_view.values() {
        assert!(html.contains(digest.as_str()), "{digest}");
        assert!(md.contains(&digest.replace(':', "\\:")), "{digest}");
    }

    // An unknown step is exit 1 with the reason; nothing on stdout.
    let missing = world
        .riposte(&["evidence", "get", &id, "no-such-step"])
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no evidence from step"));
    world.emulator.shutdown().await;
}
