//! One suite, every backend: SQLite (a fresh file in a temp dir) always, and PostgreSQL when
//! `RIPOSTE_TEST_POSTGRES_URL` is set (each test in its own schema, dropped afterwards).
//! `scripts/pg-test.sh cargo test --test it store::` starts a throwaway PostgreSQL for that.
//!
//! Tampering tests use raw SQL on a second connection, as an attacker with database access
//! would.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use futures::FutureExt;
use riposte::plan::Mode;
use riposte::store::{
    self, AlertStatus, Approval, ApprovalDecision, AuditEvent, AuditProblem, Batcher,
    FailedAttempt, Fence, InsertOutcome, NewAlert, NewEvidence, NewRun, RunSpec, RunStatus,
    RunTarget, StepState, Store, StoreError,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// A store under test plus a raw connection to the same database.
#[derive(Clone)]
struct Db {
    store: Arc<dyn Store>,
    raw: Raw,
}

#[derive(Clone)]
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Runs SQL behind the store's back (tampering).
    async fn exec(&self, sql: &str) -> u64 {
        let sql = AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Sqlite(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
            Raw::Postgres(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }
}

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("riposte.db");
    let url = format!("sqlite://{}", path.display());
    let store = store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&url)
                .unwrap()
                .busy_timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    test(Db {
        store,
        raw: Raw::Sqlite(raw),
    })
    .await;
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(base) = crate::common::postgres_base("store") else {
        return;
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .expect("RIPOSTE_TEST_POSTGRES_URL must name a reachable database");
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let outcome = AssertUnwindSafe(async {
        let store = store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        let raw = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(PgConnectOptions::from_str(&url).unwrap())
            .await
            .unwrap();
        test(Db {
            store,
            raw: Raw::Postgres(raw),
        })
        .await;
    })
    .catch_unwind()
    .await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Every test below runs once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_postgres(super::$name).await
                }
            )*
        }
    };
}

suite!(
    alert_insert_is_idempotent,
    concurrent_duplicate_inserts_store_one_row,
    run_creation_is_atomic,
    coalescing_window,
    run_status_transitions_and_listing,
    journal_keeps_write_order,
    lease_claim_heartbeat_and_expiry,
    concurrent_claims_never_overlap,
    approvals_are_kept_in_order,
    guardrail_counters,
    evidence_digests,
    audit_chain_survives_concurrent_appends,
    audit_verify_detects_an_edited_record,
    audit_verify_detects_a_deleted_record,
    audit_verify_detects_a_truncated_tail,
    batch_insert_in_one_transaction,
    batcher_acknowledges_after_commit,
    run_spec_report_and_status_counts,
    alerts_wait_for_their_next_attempt_fail_and_are_retried,
    runs_wait_for_their_next_attempt_and_fail,
    cancel_is_one_conditional_update,
);

fn alert(source_id: &str, principal: &str) -> NewAlert {
    NewAlert {
        source: "lacework".into(),
        source_id: source_id.into(),
        principal_key: Some(principal.into()),
        body: json!({"id": source_id, "title": "First access", "nested": {"b": 1, "a": [1, 2]}}),
        received_at: Utc::now(),
        ingested_by: Some("token:lacework".into()),
    }
}

fn run(id: &str, principal: &str, alert_id: Option<&str>) -> NewRun {
    NewRun {
        id: id.into(),
        playbook: "first-access-containment".into(),
        principal_key: Some(principal.into()),
        tenant: Some("tenant-1".into()),
        mode: Mode::Enforce,
        requested_by: Some("alert".into()),
        alert_id: alert_id.map(str::to_string),
        spec: spec(),
        follows: None,
    }
}

fn spec() -> RunSpec {
    RunSpec {
        target: RunTarget::Playbook {
            name: "first-access-containment".into(),
            sha256: "ab".repeat(32),
            text: "name: first-access-containment\n".into(),
            path: "/etc/riposte/playbooks/first-access-containment.yaml".into(),
        },
        inputs: [("lookback".to_string(), "P1D".to_string())].into(),
        only_resources: None,
    }
}

/// A run carries what it runs and, once executed, its report in a column of its own; counts
/// by status come from one grouped query.
async fn run_spec_report_and_status_counts(db: Db) {
    let s = &db.store;
    let a = s.insert_alert(&alert("LW-spec", "user-s")).await.unwrap();
    let InsertOutcome::Inserted { alert_id } = a else {
        panic!("{a:?}")
    };
    s.create_run(&run("run-spec", "user-s", Some(&alert_id)))
        .await
        .unwrap();
    s.create_run(&run("run-spec-2", "user-t", None))
        .await
        .unwrap();
    let got = s.get_run("run-spec").await.unwrap().unwrap();
    assert_eq!(got.spec, Some(spec()));
    assert_eq!(got.report, None);
    let report = json!({"outcome": "failed", "steps": []});
    s.save_report("run-spec", Fence(0), &report).await.unwrap();
    assert_eq!(
        s.get_run("run-spec").await.unwrap().unwrap().report,
        Some(report)
    );
    assert!(matches!(
        s.save_report("nope", Fence(0), &json!({})).await,
        Err(StoreError::NotFound { .. })
    ));
    s.set_run_status("run-spec", RunStatus::Failed)
        .await
        .unwrap();
    let counts = s.count_runs_by_status().await.unwrap();
    assert_eq!(counts.get(&RunStatus::Failed), Some(&1));
    assert_eq!(counts.get(&RunStatus::Pending), Some(&1));
    assert_eq!(counts.get(&RunStatus::Succeeded), None);
}

async fn alert_insert_is_idempotent(db: Db) {
    let s = &db.store;
    let a = alert("LW-1", "user-1");
    let InsertOutcome::Inserted { alert_id } = s.insert_alert(&a).await.unwrap() else {
        panic!("first insert must insert");
    };
    assert_eq!(
        s.insert_alert(&a).await.unwrap(),
        InsertOutcome::Duplicate {
            alert_id: alert_id.clone(),
            run_ids: vec![]
        }
    );
    s.create_run(&run("run-1", "user-1", Some(&alert_id)))
        .await
        .unwrap();
    // A repeat after a run started names that run, so the caller starts no other.
    let mut again = a.clone();
    again.body = json!({"different": "payload"});
    assert_eq!(
        s.insert_alert(&again).await.unwrap(),
        InsertOutcome::Duplicate {
            alert_id: alert_id.clone(),
            run_ids: vec!["run-1".into()]
        }
    );
    // Another source with the same id is another alert.
    let mut other = a.clone();
    other.source = "sentinel".into();
    assert!(matches!(
        s.insert_alert(&other).await.unwrap(),
        InsertOutcome::Inserted { .. }
    ));

    let stored = s.get_alert(&alert_id).await.unwrap().unwrap();
    assert_eq!(stored.body, a.body, "the first body is kept");
    assert_eq!(stored.source_id, "LW-1");
    assert_eq!(stored.principal_key.as_deref(), Some("user-1"));
    assert!(s.get_alert("no-such-alert").await.unwrap().is_none());

    let pending: Vec<_> = s
        .pending_alerts(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(pending.len(), 2);
    assert!(pending.contains(&alert_id));
    s.mark_alert_processed(&alert_id).await.unwrap();
    s.mark_alert_processed(&alert_id).await.unwrap();
    let pending = s.pending_alerts(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_ne!(pending[0].id, alert_id);
    assert!(
        s.get_alert(&alert_id)
            .await
            .unwrap()
            .unwrap()
            .processed_at
            .is_some()
    );
    assert!(matches!(
        s.mark_alert_processed("no-such-alert").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn concurrent_duplicate_inserts_store_one_row(db: Db) {
    let a = alert("LW-race", "user-1");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = db.store.clone();
            let a = a.clone();
            tokio::spawn(async move { s.insert_alert(&a).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let inserted = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
        .count();
    assert_eq!(inserted, 1, "{outcomes:?}");
    let ids: HashSet<&str> = outcomes.iter().map(|o| o.alert_id()).collect();
    assert_eq!(ids.len(), 1, "every caller gets the same alert id");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM alerts WHERE source_id = 'LW-race'")
            .await,
        1
    );
}

async fn run_creation_is_atomic(db: Db) {
    let s = &db.store;
    // The alert link fails, so the run must not exist either.
    let err = s
        .create_run(&run("run-1", "user-1", Some("missing-alert")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(s.get_run("run-1").await.unwrap().is_none());
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);

    s.create_run(&run("run-1", "user-1", None)).await.unwrap();
    let err = s
        .create_run(&run("run-1", "user-2", None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    let r = s.get_run("run-1").await.unwrap().unwrap();
    assert_eq!(r.principal_key.as_deref(), Some("user-1"));

    // A journal entry, evidence or approval for a run that does not exist is refused.
    assert!(matches!(
        s.journal("nope", Fence(0), "step", 0, StepState::Started, &json!({}))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.attach_alert("nope", "nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn coalescing_window(db: Db) {
    let s = &db.store;
    let window_start = Utc::now() - Span::minutes(10);
    s.create_run(&run("run-1", "user-1", None)).await.unwrap();
    let pb = "first-access-containment";
    assert_eq!(
        s.find_open_run(pb, "user-1", window_start).await.unwrap(),
        Some("run-1".into())
    );
    // Created before the window began: not coalesced into.
    assert_eq!(
        s.find_open_run(pb, "user-1", Utc::now() + Span::seconds(5))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.find_open_run(pb, "user-2", window_start).await.unwrap(),
        None
    );
    assert_eq!(
        s.find_open_run("other-playbook", "user-1", window_start)
            .await
            .unwrap(),
        None
    );
    // Waiting for approval is still open.
    s.set_run_status("run-1", RunStatus::AwaitingApproval)
        .await
        .unwrap();
    assert_eq!(
        s.find_open_run(pb, "user-1", window_start).await.unwrap(),
        Some("run-1".into())
    );
    for terminal in [
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Denied,
        RunStatus::RolledBack,
    ] {
        assert!(terminal.is_terminal());
        s.set_run_status("run-1", terminal).await.unwrap();
        assert_eq!(
            s.find_open_run(pb, "user-1", window_start).await.unwrap(),
            None,
            "{terminal:?} is finished"
        );
    }
    s.create_run(&run("run-2", "user-1", None)).await.unwrap();
    assert_eq!(
        s.find_open_run(pb, "user-1", window_start).await.unwrap(),
        Some("run-2".into())
    );

    // Coalescing attaches the duplicate alert to the open run.
    let InsertOutcome::Inserted { alert_id: a1 } =
        s.insert_alert(&alert("LW-1", "user-1")).await.unwrap()
    else {
        panic!()
    };
    let InsertOutcome::Inserted { alert_id: a2 } =
        s.insert_alert(&alert("LW-2", "user-1")).await.unwrap()
    else {
        panic!()
    };
    s.attach_alert("run-2", &a1).await.unwrap();
    s.attach_alert("run-2", &a2).await.unwrap();
    s.attach_alert("run-2", &a1).await.unwrap();
    let r = s.get_run("run-2").await.unwrap().unwrap();
    let ids: Vec<&str> = r.alerts.iter().map(|a| a.source_id.as_str()).collect();
    assert_eq!(ids, ["LW-1", "LW-2"]);
    assert!(r.alerts.iter().all(|a| a.source == "lacework"));
    assert_eq!(
        s.insert_alert(&alert("LW-2", "user-1")).await.unwrap(),
        InsertOutcome::Duplicate {
            alert_id: a2,
            run_ids: vec!["run-2".into()]
        }
    );
}

async fn run_status_transitions_and_listing(db: Db) {
    let s = &db.store;
    let InsertOutcome::Inserted { alert_id } =
        s.insert_alert(&alert("LW-1", "user-1")).await.unwrap()
    else {
        panic!()
    };
    s.create_run(&run("run-1", "user-1", Some(&alert_id)))
        .await
        .unwrap();
    let mut manual = run("run-2", "user-2", None);
    manual.mode = Mode::DryRun;
    manual.requested_by = Some("cli".into());
    s.create_run(&manual).await.unwrap();
    s.create_run(&run("run-3", "user-3", None)).await.unwrap();

    let r1 = s.get_run("run-1").await.unwrap().unwrap();
    assert_eq!(r1.status, RunStatus::Pending);
    assert_eq!(r1.mode, Mode::Enforce);
    assert_eq!(r1.tenant.as_deref(), Some("tenant-1"));
    assert_eq!(r1.requested_by.as_deref(), Some("alert"));
    assert_eq!(r1.alerts.len(), 1);
    assert_eq!(r1.alerts[0].source_id, "LW-1");
    assert_eq!(r1.plan, None);
    let r2 = s.get_run("run-2").await.unwrap().unwrap();
    assert_eq!(r2.mode, Mode::DryRun);
    assert_eq!(r2.requested_by.as_deref(), Some("cli"));
    assert!(r2.alerts.is_empty());

    for status in [
        RunStatus::Planning,
        RunStatus::AwaitingApproval,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::RolledBack,
    ] {
        s.set_run_status("run-1", status).await.unwrap();
        assert_eq!(s.get_run("run-1").await.unwrap().unwrap().status, status);
    }
    let plan = json!({"run_id": "run-2", "steps": [{"id": "suspend", "requests": []}]});
    s.save_plan("run-2", Fence(0), &plan, "sha256:abc")
        .await
        .unwrap();
    s.set_run_status("run-2", RunStatus::AwaitingApproval)
        .await
        .unwrap();
    let r2 = s.get_run("run-2").await.unwrap().unwrap();
    assert_eq!(r2.plan, Some(plan));
    assert_eq!(r2.plan_hash.as_deref(), Some("sha256:abc"));
    assert!(r2.updated_at >= r2.created_at);

    assert!(matches!(
        s.set_run_status("nope", RunStatus::Running).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.save_plan("nope", Fence(0), &json!({}), "h").await,
        Err(StoreError::NotFound { .. })
    ));

    let ids = |runs: Vec<riposte::store::RunRecord>| -> Vec<String> {
        runs.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(
        ids(s.list_runs(10, None).await.unwrap()),
        ["run-3", "run-2", "run-1"]
    );
    assert_eq!(ids(s.list_runs(2, None).await.unwrap()), ["run-3", "run-2"]);
    assert_eq!(
        ids(s.list_runs(10, Some(RunStatus::Pending)).await.unwrap()),
        ["run-3"]
    );
    let listed = s.list_runs(10, Some(RunStatus::RolledBack)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].alerts[0].source_id, "LW-1",
        "listing carries alerts"
    );
    assert!(
        s.list_runs(10, Some(RunStatus::Failed))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn journal_keeps_write_order(db: Db) {
    let s = &db.store;
    s.create_run(&run("run-1", "user-1", None)).await.unwrap();
    s.create_run(&run("run-2", "user-1", None)).await.unwrap();
    let writes = [
        ("suspend", 0, StepState::Pending),
        ("snapshot", 0, StepState::Pending),
        ("snapshot", 1, StepState::Pending),
        ("suspend", 0, StepState::Started),
        ("snapshot", 1, StepState::Started),
        ("suspend", 0, StepState::RequestSent),
        ("snapshot", 1, StepState::RequestSent),
        ("suspend", 0, StepState::Succeeded),
        ("snapshot", 1, StepState::InDoubt),
    ];
    for (i, (step, item, state)) in writes.iter().enumerate() {
        let e = s
            .journal("run-1", Fence(0), step, *item, *state, &json!({"n": i}))
            .await
            .unwrap();
        assert_eq!(e.state, *state);
        // Another run's entries interleave and must not leak into run-1's journal.
        s.journal(
            "run-2",
            Fence(0),
            "other",
            0,
            StepState::Started,
            &json!({}),
        )
        .await
        .unwrap();
    }
    let journal = s.journal_for("run-1").await.unwrap();
    let got: Vec<_> = journal
        .iter()
        .map(|e| (e.step_id.as_str(), e.item, e.state))
        .collect();
    assert_eq!(got, writes);
    assert!(journal.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(journal.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(journal[3].detail, json!({"n": 3}));

    let latest: Vec<_> = s
        .latest_step_states("run-1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.step_id, e.item, e.state))
        .collect();
    assert_eq!(
        latest,
        [
            ("snapshot".to_string(), 0, StepState::Pending),
            ("snapshot".to_string(), 1, StepState::InDoubt),
            ("suspend".to_string(), 0, StepState::Succeeded),
        ]
    );
    assert!(s.journal_for("nope").await.unwrap().is_empty());
}

async fn lease_claim_heartbeat_and_expiry(db: Db) {
    let s = &db.store;
    for i in 0..10 {
        s.create_run(&run(&format!("run-{i:02}"), "u", None))
            .await
            .unwrap();
    }
    s.create_run(&run("done", "u", None)).await.unwrap();
    s.set_run_status("done", RunStatus::Succeeded)
        .await
        .unwrap();
    s.create_run(&run("waiting", "u", None)).await.unwrap();
    s.set_run_status("waiting", RunStatus::AwaitingApproval)
        .await
        .unwrap();
    s.set_run_status("run-00", RunStatus::Running)
        .await
        .unwrap();
    s.set_run_status("run-01", RunStatus::Planning)
        .await
        .unwrap();

    let hour = Duration::from_secs(3600);
    let w1 = ids(s.claim_runs("w1", hour, 4).await.unwrap());
    assert_eq!(w1, ["run-00", "run-01", "run-02", "run-03"], "oldest first");
    let w2 = ids(s.claim_runs("w2", hour, 100).await.unwrap());
    assert_eq!(w2.len(), 6);
    assert!(w2.iter().all(|id| !w1.contains(id)));
    assert!(!w2.iter().any(|id| id == "done" || id == "waiting"));
    assert!(s.claim_runs("w3", hour, 100).await.unwrap().is_empty());

    let r = s.get_run("run-00").await.unwrap().unwrap();
    assert_eq!(r.lease_owner.as_deref(), Some("w1"));
    assert!(r.lease_until.unwrap() > Utc::now());

    s.heartbeat("w1", "run-00", hour).await.unwrap();
    assert!(matches!(
        s.heartbeat("w2", "run-00", hour).await,
        Err(StoreError::LeaseLost { .. })
    ));

    // w1 stops heartbeating run-01 (a lease that has already lapsed): w3 takes it over.
    s.heartbeat("w1", "run-01", Duration::ZERO).await.unwrap();
    assert_eq!(
        ids(s.claim_runs("w3", hour, 100).await.unwrap()),
        ["run-01"],
        "only the lapsed lease is taken over"
    );
    assert!(matches!(
        s.heartbeat("w1", "run-01", hour).await,
        Err(StoreError::LeaseLost { .. })
    ));

    // Releasing someone else's lease does nothing; releasing one's own frees the run.
    s.release("w1", "run-01").await.unwrap();
    assert!(s.claim_runs("w4", hour, 100).await.unwrap().is_empty());
    s.release("w3", "run-01").await.unwrap();
    assert_eq!(
        ids(s.claim_runs("w4", hour, 100).await.unwrap()),
        ["run-01"]
    );

    // A finished run is never claimed, even with a lapsed lease.
    s.heartbeat("w4", "run-01", Duration::ZERO).await.unwrap();
    s.set_run_status("run-01", RunStatus::Failed).await.unwrap();
    assert!(s.claim_runs("w5", hour, 100).await.unwrap().is_empty());
}

/// The run ids of `claims`.
fn ids(claims: Vec<riposte::store::Claim>) -> Vec<String> {
    claims.into_iter().map(|c| c.run_id).collect()
}

async fn concurrent_claims_never_overlap(db: Db) {
    let s = &db.store;
    for i in 0..40 {
        s.create_run(&run(&format!("run-{i:02}"), "u", None))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let s = db.store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s
                        .claim_runs(&format!("w{w}"), Duration::from_secs(3600), 3)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(ids(got));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a run was claimed twice: {all:?}"
    );
    assert_eq!(all.len(), 40);
}

async fn approvals_are_kept_in_order(db: Db) {
    let s = &db.store;
    s.create_run(&run("run-1", "u", None)).await.unwrap();
    let now = Utc::now();
    let reject = Approval {
        run_id: "run-1".into(),
        plan_hash: "sha256:old".into(),
        approver: "alice".into(),
        decision: ApprovalDecision::Reject,
        expires_at: None,
        at: now,
    };
    let approve = Approval {
        plan_hash: "sha256:new".into(),
        approver: "bob".into(),
        decision: ApprovalDecision::Approve,
        expires_at: Some(now + Span::hours(1)),
        at: now + Span::seconds(1),
        ..reject.clone()
    };
    s.record_approval(&reject).await.unwrap();
    s.record_approval(&approve).await.unwrap();
    let got = s.approvals_for("run-1").await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].decision, ApprovalDecision::Reject);
    assert_eq!(got[0].approver, "alice");
    assert_eq!(got[0].expires_at, None);
    assert_eq!(got[1].plan_hash, "sha256:new");
    assert_eq!(got[1].decision, ApprovalDecision::Approve);
    // Stored to the microsecond, on both backends.
    assert_eq!(
        got[1].expires_at.unwrap().timestamp_micros(),
        (now + Span::hours(1)).timestamp_micros()
    );
    assert!(s.approvals_for("nope").await.unwrap().is_empty());
    assert!(matches!(
        s.record_approval(&Approval {
            run_id: "nope".into(),
            ..approve
        })
        .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn guardrail_counters(db: Db) {
    let s = &db.store;
    let now = Utc::now();
    let effects = [
        ("t1", "entra.disable_user", "p1", now - Span::hours(2)),
        ("t1", "entra.disable_user", "p1", now - Span::minutes(10)),
        ("t1", "entra.disable_user", "p2", now - Span::minutes(5)),
        ("t1", "entra.revoke_sessions", "p3", now),
        ("t2", "entra.disable_user", "p9", now),
    ];
    for (tenant, action, principal, at) in effects {
        s.record_effect(tenant, action, principal, at)
            .await
            .unwrap();
    }
    let hour_ago = now - Span::hours(1);
    assert_eq!(
        s.count_effects("t1", "entra.disable_user", hour_ago)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_effects("t1", "entra.disable_user", now - Span::hours(3))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_effects("t1", "entra.revoke_sessions", now)
            .await
            .unwrap(),
        1,
        "the window includes its start"
    );
    assert_eq!(s.count_principals("t1", hour_ago).await.unwrap(), 3);
    assert_eq!(s.count_principals("t2", hour_ago).await.unwrap(), 1);
    assert_eq!(s.count_principals("t3", hour_ago).await.unwrap(), 0);
}

async fn evidence_digests(db: Db) {
    let s = &db.store;
    s.create_run(&run("run-1", "u", None)).await.unwrap();
    let bytes = b"TimeGenerated,Caller\n2025-01-01,alice\n".to_vec();
    let rec = s
        .store_evidence(&NewEvidence {
            run_id: "run-1".into(),
            step_id: "activity".into(),
            name: "activity.csv".into(),
            content_type: "text/csv".into(),
            bytes: bytes.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        rec.sha256,
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    );
    assert_eq!(rec.size, bytes.len() as u64);
    let empty = s
        .store_evidence(&NewEvidence {
            run_id: "run-1".into(),
            step_id: "activity".into(),
            name: "empty.json".into(),
            content_type: "application/json".into(),
            bytes: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        empty.sha256,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );

    let listed = s.evidence_for("run-1").await.unwrap();
    assert_eq!(listed, [rec.clone(), empty]);
    let got = s.get_evidence(&rec.id).await.unwrap().unwrap();
    assert_eq!(got.bytes, bytes);
    assert_eq!(got.record, rec);
    assert!(s.get_evidence("nope").await.unwrap().is_none());
    assert!(matches!(
        s.store_evidence(&NewEvidence {
            run_id: "nope".into(),
            step_id: "x".into(),
            name: "x".into(),
            content_type: "text/plain".into(),
            bytes: vec![1],
        })
        .await,
        Err(StoreError::NotFound { .. })
    ));
}

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        kind: "step.succeeded".into(),
        run_id: Some(format!("run-{}", i % 7)),
        actor: if i.is_multiple_of(2) {
            Some("engine".into())
        } else {
            None
        },
        body: json!({"i": i, "z": [1, {"b": true, "a": null}], "float": 0.5}),
    }
}

async fn append_events(db: &Db, n: usize) {
    for i in 0..n {
        db.store.append_audit(&event(i)).await.unwrap();
    }
}

async fn audit_chain_survives_concurrent_appends(db: Db) {
    assert_eq!(db.store.verify_audit().await.unwrap(), 0, "empty is valid");
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = db.store.clone();
            tokio::spawn(async move { s.append_audit(&event(i)).await.unwrap() })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for t in tasks {
        seqs.insert(t.await.unwrap().seq);
    }
    assert_eq!(seqs, (1..=100).collect());
    assert_eq!(db.store.verify_audit().await.unwrap(), 100);

    let records = db.store.audit_records(1, 1000).await.unwrap();
    assert_eq!(records.len(), 100);
    assert_eq!(records[0].prev_hash, store::AUDIT_GENESIS);
    for w in records.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    let page = db.store.audit_records(98, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [98, 99, 100]
    );
    assert_eq!(page[0], records[97], "records read back as appended");
}

fn broken(result: Result<u64, StoreError>) -> (i64, AuditProblem) {
    match result {
        Err(StoreError::AuditChainBroken(b)) => (b.seq, b.problem),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

async fn audit_verify_detects_an_edited_record(db: Db) {
    append_events(&db, 5).await;
    assert_eq!(db.store.verify_audit().await.unwrap(), 5);
    let n = db
        .exec(r#"UPDATE audit_log SET body = '{"i":2,"approved":true}' WHERE seq = 3"#)
        .await;
    assert_eq!(n, 1);
    assert_eq!(
        broken(db.store.verify_audit().await),
        (3, AuditProblem::Edited)
    );
    let message = db.store.verify_audit().await.unwrap_err().to_string();
    assert!(message.contains("record 3"), "{message}");
}

async fn audit_verify_detects_a_deleted_record(db: Db) {
    append_events(&db, 5).await;
    assert_eq!(db.exec("DELETE FROM audit_log WHERE seq = 3").await, 1);
    assert_eq!(
        broken(db.store.verify_audit().await),
        (3, AuditProblem::Missing)
    );
}

async fn audit_verify_detects_a_truncated_tail(db: Db) {
    append_events(&db, 5).await;
    assert_eq!(db.exec("DELETE FROM audit_log WHERE seq >= 4").await, 2);
    assert_eq!(
        broken(db.store.verify_audit().await),
        (
            4,
            AuditProblem::Truncated {
                expected: 5,
                found: 3
            }
        )
    );
    // Appending after the cut does not paper over it.
    db.store.append_audit(&event(9)).await.unwrap();
    assert!(db.store.verify_audit().await.is_err());
}

async fn batch_insert_in_one_transaction(db: Db) {
    let s = &db.store;
    let InsertOutcome::Inserted { alert_id: earlier } =
        s.insert_alert(&alert("LW-0005", "u")).await.unwrap()
    else {
        panic!()
    };
    let mut batch: Vec<NewAlert> = (0..300)
        .map(|i| alert(&format!("LW-{i:04}"), &format!("u{}", i % 10)))
        .collect();
    // Repeated inside the batch, and in reverse order so input order != key order.
    batch.push(alert("LW-0001", "u1"));
    batch.reverse();
    let outcomes = s.insert_alerts_batch(&batch).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    assert!(s.insert_alerts_batch(&[]).await.unwrap().is_empty());

    for (a, o) in batch.iter().zip(&outcomes) {
        let stored = s.get_alert(o.alert_id()).await.unwrap().unwrap();
        assert_eq!(stored.source_id, a.source_id, "outcomes are in input order");
    }
    let lw5 = batch.iter().position(|a| a.source_id == "LW-0005").unwrap();
    assert_eq!(
        outcomes[lw5],
        InsertOutcome::Duplicate {
            alert_id: earlier,
            run_ids: vec![]
        }
    );
    let ones: Vec<&InsertOutcome> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(a, _)| a.source_id == "LW-0001")
        .map(|(_, o)| o)
        .collect();
    assert_eq!(ones.len(), 2);
    assert_eq!(ones[0].alert_id(), ones[1].alert_id());
    let inserted = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
        .count();
    assert_eq!(inserted, 299);
    assert_eq!(db.count("SELECT COUNT(*) FROM alerts").await, 300);
}

async fn batcher_acknowledges_after_commit(db: Db) {
    let batcher = Batcher::spawn(db.store.clone());
    let tasks: Vec<_> = (0..600)
        .map(|i| {
            let b = batcher.clone();
            // Every alert is sent twice: 300 distinct alerts.
            let a = alert(&format!("LW-{:04}", i % 300), "u");
            tokio::spawn(async move { (a.source_id.clone(), b.insert(a).await.unwrap()) })
        })
        .collect();
    let mut ids = std::collections::HashMap::new();
    let mut inserted = 0;
    for t in tasks {
        let (source_id, outcome) = t.await.unwrap();
        if matches!(outcome, InsertOutcome::Inserted { .. }) {
            inserted += 1;
        }
        // Acknowledged means stored: readable at once through the store.
        assert!(
            db.store
                .get_alert(outcome.alert_id())
                .await
                .unwrap()
                .is_some()
        );
        let id = outcome.alert_id().to_string();
        assert_eq!(ids.entry(source_id).or_insert_with(|| id.clone()), &id);
    }
    assert_eq!(inserted, 300);
    assert_eq!(db.count("SELECT COUNT(*) FROM alerts").await, 300);
}

/// SQLite only: a store file is created if missing, and reopening it keeps the data and does
/// not re-run migrations.
#[tokio::test]
async fn sqlite_file_is_created_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub-dir-free.db");
    let url = format!("sqlite://{}", path.display());
    {
        let s = store::open(&url).await.unwrap();
        s.create_run(&run("run-1", "u", None)).await.unwrap();
        s.append_audit(&event(1)).await.unwrap();
    }
    assert!(path.exists());
    let s = store::open(&url).await.unwrap();
    assert!(s.get_run("run-1").await.unwrap().is_some());
    assert_eq!(s.verify_audit().await.unwrap(), 1);

    for memory in ["sqlite::memory:", "sqlite://:memory:"] {
        let mem = store::open(memory).await.unwrap();
        mem.create_run(&run("run-1", "u", None)).await.unwrap();
        assert!(mem.get_run("run-1").await.unwrap().is_some());
    }
}

/// Ingestion throughput with group commit on SQLite (durable commits). Informational: prints
/// the rate instead of asserting on wall-clock time. `cargo test --release --test it store:: --
/// --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sqlite_batcher_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let s = store::open(&url).await.unwrap();
    let batcher = Batcher::spawn(s.clone());
    let n = 20_000;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let b = batcher.clone();
            tokio::spawn(async move { b.insert(alert(&format!("A-{i}"), "u")).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} alerts in {secs:.2}s: {:.0} alerts/s durable",
        n as f64 / secs
    );
}

/// `[audit] key`: the chain is an HMAC chain. Someone with write access to the database but
/// not the key can edit a record and re-chain everything after it with plain hashes (which
/// `verify` catches on a plain chain only as long as nobody re-chains); under a key that
/// rewrite, or one re-chained with a guessed key, is detected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_audit_chain_detects_a_rewrite_rechained_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("riposte.db").display());
    let key = store::AuditKey::new(b"an-audit-secret-of-some-length");
    let keyed = store::open_with(&url, Some(key)).await.unwrap();
    for i in 0..3 {
        keyed.append_audit(&event(i)).await.unwrap();
    }
    assert_eq!(keyed.verify_audit().await.unwrap(), 3);
    let records = keyed.audit_records(1, 10).await.unwrap();
    assert!(records.iter().all(|r| r.hash.starts_with("hmac-sha256:")));
    // Without the key, a keyed trail cannot be checked (and says so).
    let plain = store::open(&url).await.unwrap();
    assert_eq!(
        broken(plain.verify_audit().await),
        (1, AuditProblem::NeedsKey)
    );

    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&url)
                .unwrap()
                .busy_timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    // The attacker rewrites record 2 and re-chains 2, 3 and the head; `guess` is the key
    // they use (none, or a wrong one).
    let rewrite = |guess: Option<store::AuditKey>| {
        let raw = raw.clone();
        let records = records.clone();
        async move {
            let mut prev = records[0].hash.clone();
            for r in &records[1..] {
                let body = if r.seq == 2 {
                    json!({"i": 1, "approved": true})
                } else {
                    r.body.clone()
                };
                let material = store::audit_material(
                    r.seq,
                    r.at,
                    &r.kind,
                    r.run_id.as_deref(),
                    r.actor.as_deref(),
                    &body,
                );
                let hash = store::audit_hash(&prev, &material, guess.as_ref());
                sqlx::query(
                    "UPDATE audit_log SET body = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
                )
                .bind(body.to_string())
                .bind(&prev)
                .bind(&hash)
                .bind(r.seq)
                .execute(&raw)
                .await
                .unwrap();
                prev = hash;
            }
            sqlx::query("UPDATE audit_head SET head_hash = $1 WHERE id = 1")
                .bind(&prev)
                .execute(&raw)
                .await
                .unwrap();
        }
    };
    rewrite(None).await;
    assert_eq!(
        broken(keyed.verify_audit().await),
        (2, AuditProblem::Unkeyed)
    );
    rewrite(Some(store::AuditKey::new(b"a-guessed-secret-0000000000"))).await;
    assert_eq!(
        broken(keyed.verify_audit().await),
        (2, AuditProblem::Edited)
    );
}

fn inserted(outcome: InsertOutcome) -> String {
    match outcome {
        InsertOutcome::Inserted { alert_id } => alert_id,
        other => panic!("{other:?}"),
    }
}

fn retry_in(secs: i64, reason: &str) -> FailedAttempt {
    FailedAttempt {
        reason: reason.into(),
        retry_at: Some(Utc::now() + Span::seconds(secs)),
    }
}

fn give_up(reason: &str) -> FailedAttempt {
    FailedAttempt {
        reason: reason.into(),
        retry_at: None,
    }
}

async fn pending_ids(s: &Arc<dyn Store>) -> Vec<String> {
    s.pending_alerts(100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

/// A deferred alert is not handed out before its time, a failed one never; `retry_alert`
/// makes only a failed alert due again; finishing matching says matched or unmatched.
async fn alerts_wait_for_their_next_attempt_fail_and_are_retried(db: Db) {
    let s = &db.store;
    let poison = inserted(s.insert_alert(&alert("LW-poison", "u1")).await.unwrap());
    let genuine = inserted(s.insert_alert(&alert("LW-genuine", "u2")).await.unwrap());
    let fresh = s.get_alert(&poison).await.unwrap().unwrap();
    assert_eq!(
        (
            fresh.status,
            fresh.attempts,
            fresh.next_attempt_at,
            fresh.last_error
        ),
        (AlertStatus::Pending, 0, None, None)
    );

    s.record_alert_failure(&poison, &retry_in(3600, "503 from Lacework"))
        .await
        .unwrap();
    assert_eq!(
        pending_ids(s).await,
        [genuine.as_str()],
        "the deferred alert waits"
    );
    let deferred = s.get_alert(&poison).await.unwrap().unwrap();
    assert_eq!(deferred.status, AlertStatus::Pending);
    assert_eq!(deferred.attempts, 1);
    assert!(deferred.next_attempt_at.unwrap() > Utc::now());
    assert_eq!(deferred.last_error.as_deref(), Some("503 from Lacework"));

    // Its time has come: due again, behind nothing newer.
    s.record_alert_failure(&poison, &retry_in(-1, "429"))
        .await
        .unwrap();
    assert_eq!(pending_ids(s).await, [poison.clone(), genuine.clone()]);

    s.record_alert_failure(&poison, &give_up("gave up after 3 attempts"))
        .await
        .unwrap();
    let failed = s.get_alert(&poison).await.unwrap().unwrap();
    assert_eq!(failed.status, AlertStatus::Failed);
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("gave up after 3 attempts")
    );
    assert_eq!(pending_ids(s).await, [genuine.as_str()]);
    // A failure recorded for an alert no longer pending changes nothing.
    s.record_alert_failure(&poison, &retry_in(1, "late"))
        .await
        .unwrap();
    assert_eq!(s.get_alert(&poison).await.unwrap().unwrap(), failed);
    assert!(matches!(
        s.record_alert_failure("nope", &give_up("x")).await,
        Err(StoreError::NotFound { .. })
    ));

    let listed: Vec<_> = s
        .list_alerts(10, Some(AlertStatus::Failed))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, [poison.as_str()]);
    let all: Vec<_> = s
        .list_alerts(10, None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(all, [genuine.clone(), poison.clone()], "newest first");
    let counts = s.count_alerts_by_status().await.unwrap();
    assert_eq!(counts.get(&AlertStatus::Failed), Some(&1));
    assert_eq!(counts.get(&AlertStatus::Pending), Some(&1));

    // Only a failed alert is retried; it comes back due, its attempts reset.
    assert!(!s.retry_alert(&genuine).await.unwrap());
    assert!(s.retry_alert(&poison).await.unwrap());
    let retried = s.get_alert(&poison).await.unwrap().unwrap();
    assert_eq!(
        (retried.status, retried.attempts, retried.next_attempt_at),
        (AlertStatus::Pending, 0, None)
    );
    assert!(
        !s.retry_alert(&poison).await.unwrap(),
        "retrying twice is a no-op"
    );
    assert!(matches!(
        s.retry_alert("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(pending_ids(s).await, [poison.clone(), genuine.clone()]);

    // Finishing matching: linked to a run is matched, else unmatched.
    s.create_run(&run("run-m", "u1", Some(&poison)))
        .await
        .unwrap();
    s.mark_alert_processed(&poison).await.unwrap();
    s.mark_alert_processed(&genuine).await.unwrap();
    assert_eq!(
        s.get_alert(&poison).await.unwrap().unwrap().status,
        AlertStatus::Matched
    );
    assert_eq!(
        s.get_alert(&genuine).await.unwrap().unwrap().status,
        AlertStatus::Unmatched
    );
    assert!(
        !s.retry_alert(&poison).await.unwrap(),
        "a matched alert is not retried"
    );
    assert!(pending_ids(s).await.is_empty());
}

/// A run waiting for its next attempt is not claimed; giving up makes it failed.
async fn runs_wait_for_their_next_attempt_and_fail(db: Db) {
    let s = &db.store;
    let hour = Duration::from_secs(3600);
    s.create_run(&run("run-a", "u", None)).await.unwrap();
    s.create_run(&run("run-b", "u", None)).await.unwrap();
    s.set_run_status("run-a", RunStatus::Planning)
        .await
        .unwrap();
    s.record_run_failure("run-a", &retry_in(3600, "Lacework unavailable"))
        .await
        .unwrap();
    let a = s.get_run("run-a").await.unwrap().unwrap();
    assert_eq!(a.status, RunStatus::Planning, "a retry keeps the status");
    assert_eq!(a.attempts, 1);
    assert!(a.next_attempt_at.unwrap() > Utc::now());
    assert_eq!(a.last_error.as_deref(), Some("Lacework unavailable"));
    assert_eq!(ids(s.claim_runs("w1", hour, 10).await.unwrap()), ["run-b"]);

    s.record_run_failure("run-a", &retry_in(-1, "again"))
        .await
        .unwrap();
    assert_eq!(
        ids(s.claim_runs("w2", hour, 10).await.unwrap()),
        ["run-a"],
        "due again"
    );

    s.record_run_failure("run-a", &give_up("gave up after 3 attempts"))
        .await
        .unwrap();
    let a = s.get_run("run-a").await.unwrap().unwrap();
    assert_eq!(a.status, RunStatus::Failed);
    assert_eq!(a.attempts, 3);
    assert_eq!(a.next_attempt_at, None);
    assert_eq!(a.last_error.as_deref(), Some("gave up after 3 attempts"));
    // A finished run's record is not touched by a late failure.
    s.record_run_failure("run-a", &retry_in(1, "late"))
        .await
        .unwrap();
    assert_eq!(s.get_run("run-a").await.unwrap().unwrap(), a);
    assert!(matches!(
        s.record_run_failure("nope", &give_up("x")).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Cancel succeeds only before execution; a cancelled run stays cancelled whatever a worker
/// writes, is never claimed and is not joined by new alerts.
async fn cancel_is_one_conditional_update(db: Db) {
    let s = &db.store;
    let hour = Duration::from_secs(3600);
    for (id, status) in [
        ("pending", RunStatus::Pending),
        ("planning", RunStatus::Planning),
        ("waiting", RunStatus::AwaitingApproval),
        ("running", RunStatus::Running),
        ("done", RunStatus::Succeeded),
    ] {
        s.create_run(&run(id, "u-cancel", None)).await.unwrap();
        s.set_run_status(id, status).await.unwrap();
    }
    for id in ["pending", "planning", "waiting"] {
        assert!(s.cancel_run(id).await.unwrap(), "{id}");
        assert_eq!(
            s.get_run(id).await.unwrap().unwrap().status,
            RunStatus::Cancelled
        );
    }
    assert!(!s.cancel_run("running").await.unwrap());
    assert!(!s.cancel_run("done").await.unwrap());
    assert!(!s.cancel_run("pending").await.unwrap(), "cancelling twice");
    assert_eq!(
        s.get_run("running").await.unwrap().unwrap().status,
        RunStatus::Running
    );
    assert!(matches!(
        s.cancel_run("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    // A worker that was planning it cannot carry it on.
    s.set_run_status("planning", RunStatus::Running)
        .await
        .unwrap();
    s.record_run_failure("planning", &give_up("x"))
        .await
        .unwrap();
    let planning = s.get_run("planning").await.unwrap().unwrap();
    assert_eq!(planning.status, RunStatus::Cancelled);
    assert_eq!(planning.attempts, 0);
    assert_eq!(ids(s.claim_runs("w", hour, 10).await.unwrap()), ["running"]);
    let counts = s.count_runs_by_status().await.unwrap();
    assert_eq!(counts.get(&RunStatus::Cancelled), Some(&3));
    // Only the running run is still open for coalescing.
    assert_eq!(
        s.find_open_run(
            "first-access-containment",
            "u-cancel",
            Utc::now() - Span::hours(1)
        )
        .await
        .unwrap()
        .as_deref(),
        Some("running")
    );
    s.set_run_status("running", RunStatus::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        s.find_open_run(
            "first-access-containment",
            "u-cancel",
            Utc::now() - Span::hours(1)
        )
        .await
        .unwrap(),
        None,
        "a cancelled run is finished: new alerts start a new run"
    );
}

/// The schema as it was before `0003_attempts`, applied by a migrator that stops at 0002.
fn migrator_before_attempts(backend: &str) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let (init, spec) = match backend {
        "sqlite" => (
            include_str!("../../src/store/migrations/sqlite/0001_init.sql"),
            include_str!("../../src/store/migrations/sqlite/0002_run_spec.sql"),
        ),
        _ => (
            include_str!("../../src/store/migrations/postgres/0001_init.sql"),
            include_str!("../../src/store/migrations/postgres/0002_run_spec.sql"),
        ),
    };
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            init.into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "run spec".into(),
            MigrationType::Simple,
            spec.into_sql_str(),
            false,
        ),
    ])
}

/// What an older riposte stored: a processed alert with a run, a processed one without, a
/// pending one, and a run that journaled a step.
const OLD_ROWS: &[&str] = &[
    "INSERT INTO alerts (id, source, source_id, body, received_at, processed_at) VALUES \
     ('a-run', 'lacework', '1', '{}', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:01.000000Z'), \
     ('a-none', 'lacework', '2', '{}', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:01.000000Z'), \
     ('a-new', 'lacework', '3', '{}', '2026-01-01T00:00:00.000000Z', NULL)",
    "INSERT INTO runs (id, status, playbook, mode, created_at, updated_at) VALUES \
     ('r-1', 'awaiting_approval', 'p', 'enforce', '2026-01-01T00:00:00.000000Z', \
      '2026-01-01T00:00:00.000000Z')",
    "INSERT INTO run_alerts (run_id, alert_id, attached_at) VALUES \
     ('r-1', 'a-run', '2026-01-01T00:00:00.000000Z')",
    "INSERT INTO journal (run_id, step_id, item, state, detail, at) VALUES \
     ('r-1', 'user', 0, 'succeeded', '{}', '2026-01-01T00:00:00.000000Z')",
];

async fn assert_migrated(s: &Arc<dyn Store>) {
    let status = |id: &'static str| async move { s.get_alert(id).await.unwrap().unwrap().status };
    assert_eq!(status("a-run").await, AlertStatus::Matched);
    assert_eq!(status("a-none").await, AlertStatus::Unmatched);
    assert_eq!(status("a-new").await, AlertStatus::Pending);
    assert_eq!(pending_ids(s).await, ["a-new"]);
    let r = s.get_run("r-1").await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.attempts, r.next_attempt_at),
        (RunStatus::AwaitingApproval, 0, None)
    );
    assert_eq!(r.alerts.len(), 1, "links survive the rebuild");
    assert_eq!(s.journal_for("r-1").await.unwrap().len(), 1);
    // The widened status check and the foreign keys both hold after the rebuild.
    assert!(s.cancel_run("r-1").await.unwrap());
    assert!(matches!(
        s.attach_alert("no-such-run", "a-new").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn sqlite_rows_from_before_attempts_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&url)
                .unwrap()
                .create_if_missing(true)
                .foreign_keys(true),
        )
        .await
        .unwrap();
    migrator_before_attempts("sqlite").run(&pool).await.unwrap();
    for sql in OLD_ROWS {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    assert_migrated(&store::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_rows_from_before_attempts_migrate() {
    let Some(url) = crate::common::postgres_url("migrate").await else {
        return;
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(PgConnectOptions::from_str(&url).unwrap())
        .await
        .unwrap();
    migrator_before_attempts("postgres")
        .run(&pool)
        .await
        .unwrap();
    for sql in OLD_ROWS {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    assert_migrated(&store::open(&url).await.unwrap()).await;
}
