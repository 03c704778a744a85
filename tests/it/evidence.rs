//! Evidence out, against the real service on the emulator: the bytes `GET
//! /v1/runs/{id}/evidence/{step}[/{n}]` hands out hash to the digest in the run view and in
//! the audit trail; a rollback keeps evidence (the snapshot locks stay in the tenant).

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use riposte::config::{Role, ServerSettings, TokenEntry};
use riposte::engine::Service;
use riposte::engine::service::{Caller, ServiceApi};
use riposte::store::RunStatus;
use riposte_emulator::Tenant;
use sha2::{Digest, Sha256};

fn caller(name: &str) -> Caller {
    Caller { name: name.into() }
}

/// Matches the stored alerts and drives every open run to its end.
pub(crate) async fn settle(service: &Arc<Service>) {
    service.process_alerts().await.unwrap();
    for _ in 0..20 {
        let runs = service.runs(1000, None).await.unwrap();
        let open: Vec<_> = runs
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    RunStatus::Pending | RunStatus::Planning | RunStatus::Running
                )
            })
            .collect();
        if open.is_empty() {
            return;
        }
        for r in open {
            service.drive(&r.id, None).await.unwrap();
        }
    }
    panic!("runs did not settle");
}

/// The evidence digests the audit trail recorded for `run_id`, by evidence id.
async fn audited_digests(service: &Service, run_id: &str) -> BTreeMap<String, String> {
    service
        .store()
        .audit_records(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "evidence.stored" && r.run_id.as_deref() == Some(run_id))
        .map(|r| {
            (
                r.body["evidence_id"].as_str().unwrap().to_string(),
                r.body["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_bytes_hash_to_the_digest_in_the_run_and_the_audit_trail() {
    let (emulator, service, _dir) =
        common::service_on_emulator(Tenant::default_fixture(), "enforce").await;
    service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller("lacework"),
        )
        .await
        .unwrap();
    settle(&service).await;
    let run = service.runs(1, None).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Succeeded);
    let view = service.run(&run.id).await.unwrap();
    assert!(
        view.evidence.iter().any(|e| e.step_id == "activity"),
        "{:#?}",
        view.evidence
    );
    let audited = audited_digests(&service, &run.id).await;
    assert_eq!(audited.len(), view.evidence.len(), "{audited:#?}");

    let viewer = "test-token-for-the-evidence-viewer";
    let settings = ServerSettings {
        tokens: vec![TokenEntry {
            name: "soc".into(),
            role: Role::Viewer,
            sha256: riposte::server::token_digest(viewer),
        }],
        ..ServerSettings::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api: Arc<dyn ServiceApi> = service.clone();
    let router = riposte::server::router(api, &settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(riposte::server::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let listed: serde_json::Value = client
        .get(format!("http://{addr}/v1/runs/{}/evidence", run.id))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["evidence"].as_array().unwrap().len(),
        view.evidence.len()
    );
    // Each item by its step and position: the bytes hash to all three digests.
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &view.evidence {
        let n = position.entry(record.step_id.as_str()).or_default();
        let resp = client
            .get(format!(
                "http://{addr}/v1/runs/{}/evidence/{}/{n}",
                run.id, record.step_id
            ))
            .bearer_auth(viewer)
            .send()
            .await
            .unwrap();
        *n += 1;
        assert_eq!(resp.status(), 200);
        let header = resp.headers()["x-content-sha256"]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = resp.bytes().await.unwrap();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        assert_eq!(digest, record.sha256, "run view, {}", record.name);
        assert_eq!(audited[&record.id], digest, "audit trail, {}", record.name);
        assert_eq!(format!("sha256:{header}"), digest);
        assert_eq!(bytes.len() as u64, record.size);
        // The report's digest is the same too: one digest for evidence everywhere.
        let report = view.report.as_ref().unwrap();
        let in_report = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["evidence"].as_array().cloned().unwrap_or_default())
            .any(|e| e["name"] == record.name.as_str() && e["sha256"] == digest.as_str());
        assert!(in_report, "{} not in the report", record.name);
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    emulator.shutdown().await;
}

/// The query results a step stored, parsed.
async fn stored_table(service: &Service, run_id: &str, step: &str) -> serde_json::Value {
    let item = service.evidence_item(run_id, step, 0).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&item.bytes).unwrap();
    body["tables"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_playbook_runs_the_seed_query_and_its_follow_up() {
    let (emulator, service, _dir) =
        common::service_on_emulator(Tenant::default_fixture(), "enforce").await;
    service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller("lacework"),
        )
        .await
        .unwrap();
    settle(&service).await;
    let run = service.runs(1, None).await.unwrap().remove(0);
    // The seed's query went out verbatim.
    let seed = std::fs::read_to_string(common::root().join("playbooks/first-access-anomalies.kql"))
        .unwrap();
    let sent: Vec<String> = emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.api == "log_analytics")
        .filter_map(|r| r.body)
        .filter_map(|b| b["query"].as_str().map(str::to_string))
        .collect();
    assert!(sent.contains(&seed), "{sent:#?}");

    // Its answer is the seed's table: the day's new processes with their 1-day/7-day counts.
    let anomalies = stored_table(&service, &run.id, "anomalies").await;
    let columns: Vec<&str> = anomalies["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "WeekDate",
            "Date",
            "Process",
            "Account",
            "Computer",
            "PotentialAnomalyCount",
            "Distribution1day",
            "Distribution7days",
            "Ratio"
        ]
    );
    let processes: Vec<&str> = anomalies["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[2].as_str().unwrap())
        .collect();
    assert_eq!(
        processes,
        ["sqlcmd.exe", "net.exe", "powershell.exe", "whoami.exe"]
    );

    // The follow-up: only the alert's account on the alert's computer, bound as literals.
    let follow_up = sent
        .iter()
        .find(|q| q.contains("Computer =~ computer"))
        .expect("the follow-up was sent");
    assert!(
        follow_up.starts_with("let account = \"alex.wilber\";\nlet computer = \"vm-web-01\";\n"),
        "{follow_up}"
    );
    let activity = stored_table(&service, &run.id, "account_activity").await;
    let rows = activity["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(row[1], "vm-web-01", "{row}");
        assert!(row[2].as_str().unwrap().ends_with("alex.wilber"), "{row}");
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_keeps_the_snapshots_and_their_locks() {
    let (emulator, service, _dir) =
        common::service_on_emulator(Tenant::default_fixture(), "enforce").await;
    service
        .ingest(
            "lacework",
            &common::fixture("lacework-details.json"),
            &caller("lacework"),
        )
        .await
        .unwrap();
    settle(&service).await;
    let run = service.runs(1, None).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Succeeded);
    let locks_before = emulator.state().view()["locks"].clone();
    assert!(
        !locks_before.as_array().unwrap().is_empty(),
        "the run locked its snapshots"
    );
    let evidence_before = service.evidence(&run.id).await.unwrap();

    let report = service.rollback(&run.id, &caller("oncall")).await.unwrap();
    assert!(report.failed.is_empty(), "{report:#?}");
    let kept: BTreeMap<&str, &str> = report
        .kept
        .iter()
        .map(|(s, why)| (s.as_str(), why.as_str()))
        .collect();
    for step in ["snapshot", "lock_snapshots", "activity"] {
        assert!(kept.contains_key(step), "{step} not kept: {report:#?}");
    }
    assert!(kept["lock_snapshots"].contains("evidence"), "{kept:?}");
    assert!(
        !report.undone.iter().any(|(s, _)| s == "lock_snapshots"),
        "{report:#?}"
    );
    assert!(report.undone.iter().any(|(s, _)| s == "suspend"));
    assert_eq!(
        emulator.state().view()["locks"],
        locks_before,
        "rollback removed a lock"
    );
    assert_eq!(service.evidence(&run.id).await.unwrap(), evidence_before);
    emulator.shutdown().await;
}
