//! Two `riposte serve` replicas on one PostgreSQL, in enforce mode against one emulator, with
//! a 2 s lease: alerts for the same users posted to both at once open one run per user and act
//! once per target; a replica SIGKILLed mid-step is taken over and its in-doubt step verified;
//! a replica SIGSTOPped past its lease and resumed is fenced out — it neither writes nor sends
//! for the run it lost. Skipped with a note without `RIPOSTE_TEST_POSTGRES_URL`
//! (`scripts/pg-test.sh` sets it), failed when `RIPOSTE_TEST_POSTGRES_REQUIRED=1`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use riposte::store::{RunRecord, RunStatus, StepState, Store};
use riposte_emulator::{Emulator, EmulatorHandle, FaultKind, FaultSpec, LoggedRequest, Tenant};
use serde_json::json;
use sha2::Digest;

/// The lease each replica holds on a run; short, so takeovers happen within the test.
const LEASE_SECS: u64 = 2;

/// How long a disable (`PATCH /v1.0/users/…`) is held by the emulator in the takeover tests:
/// long enough to catch it on the wire, shorter than the lease, so the request has been
/// answered before the other replica verifies it.
const DISABLE_LATENCY_MS: u64 = 1000;

/// The API token both replicas accept (only its sha256 is in their configuration).
const TOKEN: &str = "replicas-test-token";

/// Where the generic source finds each field of the alerts below.
const GENERIC: &str = r#"
[alerts.generic]
id = "/alert/uid"
title = "/alert/rule"
severity = "/alert/risk"
observed_at = "/alert/detected"
principal_upn = "/alert/actor/login"
principal_object_id = "/alert/actor/aad_object_id"
tenant_id = "/alert/actor/tenant"
resources = "/alert/targets"
operation = "/alert/action"
source_ip = "/alert/actor/ip"
"#;

/// One scenario at a time: each starts two replicas, and on two shared cores several at once
/// would starve heartbeats and turn the takeovers under test into accidental ones.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn user_id(n: usize) -> String {
    format!("c0000000-0000-4000-8000-{n:012}")
}

/// The default tenant with five more plain users.
fn tenant() -> Tenant {
    let mut t = Tenant::default_fixture();
    let model = t.users[0].clone();
    for n in 0..5 {
        let mut u = model.clone();
        u.id = user_id(n);
        u.user_principal_name = format!("replica-user{n}@contoso.com");
        u.display_name = format!("Replica User {n}");
        u.mail = Some(u.user_principal_name.clone());
        t.users.push(u);
    }
    t
}

/// A generic first-access alert about user `n` touching vm-web-01 (two disks).
fn alert(uid: &str, n: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": "acme-siem/v3",
        "alert": {
            "uid": uid,
            "rule": "New Azure API Call Invoked by User Accessed Resource for the First Time",
            "risk": "high",
            "detected": "2026-04-21T04:03:00Z",
            "actor": {
                "login": format!("replica-user{n}@contoso.com"),
                "aad_object_id": user_id(n),
                "tenant": "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11",
                "ip": "203.0.113.45"
            },
            "targets": ["/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"],
            "action": "Microsoft.Compute/virtualMachines/runCommand/action"
        }
    }))
    .unwrap()
}

/// One `riposte serve` process. Dropping it kills it (also when stopped), so a failing test
/// leaves no replica behind.
struct Replica {
    /// Its `HOSTNAME`: worker ids, and so `runs.lease_owner`, start with it.
    name: &'static str,
    child: Child,
    /// `http://127.0.0.1:PORT`, as the process printed it.
    api: String,
    /// Its stderr (the service's log), copied line by line as it comes.
    log: PathBuf,
}

impl Replica {
    fn start(name: &'static str, config: &Path) -> Replica {
        let log = config.with_file_name(format!("{name}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_riposte"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("HOSTNAME", name)
            .env("RIPOSTE_LOG", "riposte=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let mut file = std::fs::File::create(&log).unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                let _ = file.flush();
                if let Some(rest) = line.split("riposte API listening on ").nth(1) {
                    let _ = addr_tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let mut replica = Replica {
            name,
            child,
            api: String::new(),
            log,
        };
        match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(api) => replica.api = api,
            Err(_) => panic!(
                "replica {name} did not start listening:\n{}",
                replica.log_text()
            ),
        }
        replica
    }

    /// Whether a worker id (`runs.lease_owner`) is one of this replica's.
    fn owns(&self, worker_id: &str) -> bool {
        worker_id.starts_with(&format!("{}-", self.name))
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {}", self.child.id());
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An emulator, a fresh PostgreSQL schema, and two replicas on it.
struct Cluster {
    emulator: EmulatorHandle,
    /// The shared store, opened by the test to watch runs, leases and journals.
    store: Arc<dyn Store>,
    replicas: [Replica; 2],
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `None` (said on stderr) when no PostgreSQL is configured and none is required.
    async fn start(suite: &str, faults: &[FaultSpec]) -> Option<Cluster> {
        riposte::connectors::install_crypto_provider();
        let url = common::postgres_url(suite).await?;
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), tenant()).unwrap();
        for fault in faults {
            emulator.state().add_fault(fault.clone()).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("riposte.toml");
        let sha256 = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
        std::fs::write(
            &config,
            format!(
                "{}\n{GENERIC}\n[engine]\nlease_secs = {LEASE_SECS}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
                 [[server.tokens]]\nname = \"siem\"\nrole = \"responder\"\nsha256 = \"{sha256}\"\n",
                common::emulator_toml(&emulator.base_url(), &url, "enforce"),
            ),
        )
        .unwrap();
        // Migrated once, before either replica starts.
        let store = riposte::store::open(&url).await.unwrap();
        let replicas = [
            Replica::start("replica-a", &config),
            Replica::start("replica-b", &config),
        ];
        Some(Cluster {
            emulator,
            store,
            replicas,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    /// Posts an alert to one replica's ingestion route; it must be accepted.
    async fn post(&self, replica: usize, body: Vec<u8>) {
        post_alert(self.http.clone(), self.replicas[replica].api.clone(), body).await;
    }

    /// Posts all `(replica, body)` pairs at once and waits for every answer.
    async fn post_concurrently(&self, alerts: Vec<(usize, Vec<u8>)>) {
        let mut posts = tokio::task::JoinSet::new();
        for (replica, body) in alerts {
            posts.spawn(post_alert(
                self.http.clone(),
                self.replicas[replica].api.clone(),
                body,
            ));
        }
        while let Some(done) = posts.join_next().await {
            done.unwrap();
        }
    }

    async fn runs(&self) -> Vec<RunRecord> {
        self.store.list_runs(1000, None).await.unwrap()
    }

    /// Waits (bounded) until every alert is matched and `expected` runs have all finished.
    async fn wait_finished(&self, expected: usize) -> Vec<RunRecord> {
        for _ in 0..600 {
            // Pending whether due or claimed by a matcher right now.
            let pending = self
                .store
                .list_alerts(1, Some(riposte::store::AlertStatus::Pending))
                .await
                .unwrap();
            let runs = self.runs().await;
            if pending.is_empty()
                && runs.len() == expected
                && runs.iter().all(|r| r.status.is_terminal())
            {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let runs: Vec<_> = self
            .runs()
            .await
            .iter()
            .map(|r| (r.id.clone(), r.status, r.lease_owner.clone()))
            .collect();
        panic!("runs did not finish: {runs:?}\n{}", self.logs_tail());
    }

    /// Waits (bounded) for a request `wanted` to a user (`/v1.0/users/{id}`) on the wire, sent
    /// for a run a live replica holds; returns the request, that replica's index and the run.
    async fn wait_in_flight(
        &self,
        wanted: fn(&LoggedRequest) -> bool,
    ) -> (LoggedRequest, usize, RunRecord) {
        for _ in 0..1500 {
            let in_flight = self.emulator.state().in_flight();
            for request in in_flight.iter().filter(|r| wanted(r)) {
                let runs = self.runs().await;
                let run = runs
                    .iter()
                    .find(|r| r.principal_key.as_deref() == disabled_user(request));
                let holder = run.and_then(|r| {
                    let owner = r.lease_owner.as_deref()?;
                    self.replicas.iter().position(|p| p.owns(owner))
                });
                if let (Some(run), Some(holder)) = (run, holder) {
                    return (request.clone(), holder, run.clone());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no such request went out\n{}", self.logs_tail());
    }

    fn logs_tail(&self) -> String {
        self.replicas
            .iter()
            .map(|r| {
                let text = r.log_text();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!("{} log, newest first:\n{}", r.name, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn counter(&self, name: &str) -> u64 {
        self.emulator.state().counter(name)
    }

    /// Answered requests to Graph and ARM that change something (not reads, not tokens).
    fn mutating_requests(&self) -> Vec<LoggedRequest> {
        self.emulator
            .state()
            .requests()
            .into_iter()
            .filter(|r| {
                r.method != "GET"
                    && (r.path.starts_with("/v1.0/")
                        || r.path.starts_with("/beta/")
                        || r.path.starts_with("/subscriptions/"))
            })
            .collect()
    }

    /// Each user disabled exactly once, sessions revoked exactly once, and each snapshot (two
    /// disks per run) and its lock created exactly once — counted by the requests answered, which is
    /// stricter than the emulator's counters (those count changes of state, so an idempotent
    /// re-send would not show there).
    fn assert_acted_once_per_target(&self, users: usize) {
        let requests = self.mutating_requests();
        let mut disables: BTreeMap<String, usize> = BTreeMap::new();
        let mut revokes: BTreeMap<String, usize> = BTreeMap::new();
        let mut snapshots: BTreeMap<String, usize> = BTreeMap::new();
        let mut locks: BTreeMap<String, usize> = BTreeMap::new();
        for r in &requests {
            if is_disable(r) {
                *disables
                    .entry(disabled_user(r).unwrap_or("").into())
                    .or_default() += 1;
            } else if r.method == "POST" && r.path.ends_with("/revokeSignInSessions") {
                *revokes.entry(r.path.clone()).or_default() += 1;
            } else if r.method == "PUT"
                && r.path.contains("/providers/Microsoft.Authorization/locks/")
            {
                *locks.entry(r.path.to_lowercase()).or_default() += 1;
            } else if r.method == "PUT"
                && r.path.contains("/providers/Microsoft.Compute/snapshots/")
            {
                *snapshots.entry(r.path.to_lowercase()).or_default() += 1;
            }
        }
        let expected: BTreeSet<String> = (0..users).map(user_id).collect();
        assert_eq!(
            disables.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{disables:?}"
        );
        assert!(
            disables.values().all(|n| *n == 1),
            "each user disabled once: {disables:?}"
        );
        assert_eq!(revokes.len(), users, "{revokes:?}");
        assert!(
            revokes.values().all(|n| *n == 1),
            "sessions revoked once: {revokes:?}"
        );
        assert_eq!(snapshots.len(), 2 * users, "{snapshots:?}");
        assert!(
            snapshots.values().all(|n| *n == 1),
            "each snapshot once: {snapshots:?}"
        );
        assert_eq!(locks.len(), 2 * users, "{locks:?}");
        assert!(locks.values().all(|n| *n == 1), "each lock once: {locks:?}");
        assert_eq!(self.counter("user_disabled"), users as u64);
        assert_eq!(self.counter("sessions_revoked"), users as u64);
        assert_eq!(self.counter("snapshots_created"), 2 * users as u64);
        assert_eq!(self.counter("locks_created"), 2 * users as u64);
    }
}

async fn post_alert(http: reqwest::Client, api: String, body: Vec<u8>) {
    let response = http
        .post(format!("{api}/v1/alerts/generic"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        response.text().await.unwrap_or_default()
    );
}

/// `PATCH /v1.0/users/{id}` with `accountEnabled: false`.
fn is_disable(r: &LoggedRequest) -> bool {
    r.method == "PATCH"
        && r.path.starts_with("/v1.0/users/")
        && r.body.as_ref().and_then(|b| b.get("accountEnabled")) == Some(&json!(false))
}

/// `PATCH /v1.0/users/{id}`: a disable or a forced password reset.
fn is_user_patch(r: &LoggedRequest) -> bool {
    r.method == "PATCH" && r.path.starts_with("/v1.0/users/")
}

/// The user a disable names (the object id in its path).
fn disabled_user(r: &LoggedRequest) -> Option<&str> {
    r.path.strip_prefix("/v1.0/users/")
}

fn disable_latency() -> FaultSpec {
    FaultSpec {
        route: "PATCH /v1.0/users/*".into(),
        kind: FaultKind::Latency,
        latency_ms: Some(DISABLE_LATENCY_MS),
        retry_after: None,
        status: None,
        count: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_given_a_storm_for_the_same_users_act_once_per_target() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some(c) = Cluster::start("replicas_storm", &[]).await else {
        return;
    };
    // 100 alerts about five users, half to each replica, all at once.
    c.post_concurrently(
        (0..100)
            .map(|i| (i % 2, alert(&format!("STORM-{i}"), i % 5)))
            .collect(),
    )
    .await;
    let runs = c.wait_finished(5).await;
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{:?}",
        runs.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let principals: BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r.principal_key.as_deref())
        .collect();
    assert_eq!(
        principals,
        (0..5)
            .map(user_id)
            .collect::<BTreeSet<_>>()
            .iter()
            .map(String::as_str)
            .collect()
    );
    let attached: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.alerts.iter().map(|a| a.source_id.as_str()))
        .collect();
    assert_eq!(
        attached.len(),
        100,
        "every alert is attached to its user's run"
    );
    assert_eq!(
        runs.iter().map(|r| r.alerts.len()).sum::<usize>(),
        100,
        "and to one run only"
    );
    c.assert_acted_once_per_target(5);
}

/// Three users' alerts split across the replicas, with disables held on the wire.
async fn three_runs_under_way(suite: &str) -> Option<(Cluster, LoggedRequest, usize, RunRecord)> {
    let c = Cluster::start(suite, &[disable_latency()]).await?;
    for n in 0..3 {
        c.post(n % 2, alert(&format!("{suite}-{n}"), n)).await;
    }
    let (request, holder, run) = c.wait_in_flight(is_disable).await;
    Some((c, request, holder, run))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_step_is_taken_over_and_its_step_verified_not_resent() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some((mut c, request, holder, run)) = three_runs_under_way("replicas_kill").await else {
        return;
    };
    // The replica holding the run is killed while the disable is on the wire.
    c.replicas[holder].kill();
    let survivor = 1 - holder;
    let runs = c.wait_finished(3).await;
    assert!(c.replicas[survivor].is_running());
    for r in &runs {
        assert_eq!(
            r.status,
            RunStatus::Succeeded,
            "run {} ended {:?}\n{}",
            r.id,
            r.status,
            c.logs_tail()
        );
    }
    let taken_over = runs.iter().find(|r| r.id == run.id).unwrap();
    assert_eq!(taken_over.status, RunStatus::Succeeded);
    // The killed request reached the tenant, which carried it out after its sender died: the
    // step was in doubt, and the survivor read the user back instead of sending it again.
    let answered = c
        .emulator
        .state()
        .requests()
        .iter()
        .any(|r| r.seq == request.seq && r.status == Some(204));
    assert!(answered, "the killed replica's disable was carried out");
    c.assert_acted_once_per_target(3);
}

/// Requests the runs' journals say are on their way out (`request_sent`) that have not reached
/// the emulator (neither answered nor in flight), as `METHOD /path`. The journal entry is
/// written just before the request leaves, so a process stopped between the two has one.
async fn journaled_but_not_arrived(c: &Cluster, runs: &[RunRecord]) -> Vec<String> {
    let mut journaled: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs {
        for entry in c.store.journal_for(&run.id).await.unwrap() {
            if entry.state != StepState::RequestSent {
                continue;
            }
            let method = entry.detail["method"].as_str().unwrap_or_default();
            let url = entry.detail["url"].as_str().unwrap_or_default();
            let path = url::Url::parse(url)
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            *journaled.entry(format!("{method} {path}")).or_default() += 1;
        }
    }
    let state = c.emulator.state();
    let mut arrived: BTreeMap<String, usize> = BTreeMap::new();
    for r in state.requests().iter().chain(state.in_flight().iter()) {
        *arrived
            .entry(format!("{} {}", r.method, r.path))
            .or_default() += 1;
    }
    journaled
        .into_iter()
        .filter(|(request, n)| arrived.get(request).copied().unwrap_or(0) < *n)
        .map(|(request, _)| request)
        .collect()
}

/// What the store holds about a run: to compare before and after a fenced-out replica resumes.
async fn run_as_stored(store: &dyn Store, id: &str) -> (RunRecord, Vec<(i64, String, StepState)>) {
    let run = store.get_run(id).await.unwrap().unwrap();
    let journal = store
        .journal_for(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.step_id, e.state))
        .collect();
    (run, journal)
}

/// Stops the replica holding a run while one of the run's user PATCHes is on the wire, at a
/// moment when every request it journaled as `request_sent` has (`inside_send_window: false`)
/// or has not (`true`) reached the emulator: a stop that lands between a journal write and
/// its request leaving is the window the journal's fence check cannot cover. A stop at the
/// other kind of moment is undone (SIGCONT) and tried again. Returns the request on the wire,
/// the stopped replica, and the runs it holds.
async fn stop_a_holder(
    c: &Cluster,
    inside_send_window: bool,
) -> (LoggedRequest, usize, Vec<RunRecord>) {
    for attempt in 1..=100 {
        let (request, holder, run) = c.wait_in_flight(is_user_patch).await;
        c.replicas[holder].signal("STOP");
        // Frozen now: the runs it holds.
        let held: Vec<RunRecord> = c
            .runs()
            .await
            .into_iter()
            .filter(|r| {
                r.lease_owner
                    .as_deref()
                    .is_some_and(|o| c.replicas[holder].owns(o))
            })
            .collect();
        if !held.iter().any(|r| r.id == run.id) {
            c.replicas[holder].signal("CONT");
            continue;
        }
        // What it had written into its sockets arrives: requests at the emulator, and journal
        // writes at PostgreSQL (one sent just before the stop is still accepted under the old
        // fence, so it counts only once it is visible). Settled when the answer stays the same
        // for a few looks in a row; bounded, and well inside the lease.
        let mut unsent = Vec::new();
        let mut same = 0;
        for _ in 0..20 {
            let now = journaled_but_not_arrived(c, &held).await;
            same = if now == unsent { same + 1 } else { 0 };
            unsent = now;
            if same >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if unsent.is_empty() != inside_send_window {
            eprintln!(
                "attempt {attempt}: stopped with {request:?} on the wire; journaled, not sent: {unsent:?}",
                request = request.path
            );
            return (request, holder, held);
        }
        c.replicas[holder].signal("CONT");
    }
    panic!("never stopped at the moment wanted\n{}", c.logs_tail());
}

/// One replica is stopped past its lease; the other takes its runs over and finishes them;
/// then it is resumed: it must neither write nor send for them again.
async fn paused_past_its_lease(suite: &str, inside_send_window: bool) {
    let Some(c) = Cluster::start(suite, &[disable_latency()]).await else {
        return;
    };
    for n in 0..3 {
        c.post(n % 2, alert(&format!("{suite}-{n}"), n)).await;
    }
    let (request, paused, held) = stop_a_holder(&c, inside_send_window).await;

    // The other replica takes the runs over once the lease lapses and finishes them.
    let runs = c.wait_finished(3).await;
    for r in &runs {
        assert_eq!(
            r.status,
            RunStatus::Succeeded,
            "run {}\n{}",
            r.id,
            c.logs_tail()
        );
    }
    // Nothing is on the wire any more (the paused replica's disable was answered into its
    // socket); this is the state the resumed replica must leave alone.
    for _ in 0..500 {
        if c.emulator.state().in_flight().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last_seq_before_resume = c
        .emulator
        .state()
        .requests()
        .iter()
        .map(|r| r.seq)
        .max()
        .unwrap();
    let mut before = Vec::new();
    for r in &held {
        before.push(run_as_stored(c.store.as_ref(), &r.id).await);
    }

    c.replicas[paused].signal("CONT");
    // Bounded wait until the resumed replica has met its fence on every run it held.
    let mut gave_up = false;
    for _ in 0..300 {
        let log = c.replicas[paused].log_text();
        gave_up = held.iter().all(|r| {
            log.lines()
                .any(|l| l.contains(&r.id) && l.contains("taken over by another worker"))
        });
        if gave_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gave_up,
        "the resumed replica did not stop\n{}",
        c.logs_tail()
    );

    // It sent nothing that changes anything after it resumed …
    let after_resume: Vec<String> = c
        .mutating_requests()
        .iter()
        .filter(|r| r.seq > last_seq_before_resume)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        after_resume.is_empty(),
        "sent after resuming: {after_resume:#?}\n{}",
        c.logs_tail()
    );
    // … wrote nothing: no journal entry, and the status, report and time the taking-over
    // replica set are the run's still.
    for (old, journal) in &before {
        let (now, journal_now) = run_as_stored(c.store.as_ref(), &old.id).await;
        assert_eq!(
            &journal_now, journal,
            "journal of {} after resuming",
            old.id
        );
        assert_eq!(now.status, RunStatus::Succeeded);
        assert_eq!(now.updated_at, old.updated_at);
        assert_eq!(now.report, old.report);
    }
    // Its request on the wire was carried out while it was paused, and verified, not sent again.
    assert!(
        c.emulator
            .state()
            .requests()
            .iter()
            .any(|r| r.seq == request.seq && r.status == Some(204))
    );
    c.assert_acted_once_per_target(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_past_its_lease_sends_and_writes_nothing_after_it_resumes() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    paused_past_its_lease("replicas_pause", false).await;
}

/// The same, with the replica stopped after journaling a request and before sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "narrowed, not closed: the executor now refuses to send once the worker's own lease \
            clock has run out (Journal::may_send), but a stop between that check and the bytes \
            leaving, or inside the transport's retries, still sends; Graph and ARM take no fence"]
async fn a_replica_paused_between_journaling_and_sending_sends_nothing_after_it_resumes() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    paused_past_its_lease("replicas_window", true).await;
}
