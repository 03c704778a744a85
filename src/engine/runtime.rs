//! The durable service's body: what it holds, how it is built, and the worker loop that moves
//! runs forward. The jobs it does live beside it, one per module: `matching` (alerts to runs),
//! `lifecycle` (plan → approve → execute → record), `recovery` (what a crashed attempt
//! finished), `approvals`, `manual` (runs a person asks for) and `api` (the `ServiceApi`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::retry::RetryPolicy;
use super::service::ServiceError;
use super::{EngineSettings, Event};
use crate::actions::ActionSettings;
use crate::alert::AlertSettings;
use crate::connectors::{Connectors, Endpoints};
use crate::mode::Mode;
use crate::notify::NotifySettings;
use crate::playbook::Playbook;
use crate::policy::Guard;
use crate::store::{Claim, Fence, RunRecord, Store, StoreError};

/// Tunables of the service, with defaults suited to one team's tenant.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Alerts for the same principal and playbook within this window join the open run.
    pub coalesce_window: Duration,
    /// How long an approval lets its plan run.
    pub approval_ttl: Duration,
    /// How long a worker's claim on a run lasts without a heartbeat.
    pub lease: Duration,
    /// Runs executing at once (per tenant: one tenant per service).
    pub max_concurrent_runs: usize,
    /// Steps executing at once within a run.
    pub step_concurrency: usize,
    /// When to try a failed enrichment or planning again, and when to give up.
    pub retry: RetryPolicy,
    /// How often the notifier looks for new events in the audit trail.
    pub notify_every: Duration,
}

impl ServiceOptions {
    /// The options `[engine]` configures.
    pub fn from_settings(e: &EngineSettings) -> ServiceOptions {
        ServiceOptions {
            coalesce_window: Duration::from_secs(e.coalesce_window_secs),
            approval_ttl: Duration::from_secs(e.approval_ttl_secs),
            lease: Duration::from_secs(e.lease_secs.max(1)),
            max_concurrent_runs: e.max_concurrent_runs.max(1),
            step_concurrency: 8,
            retry: RetryPolicy {
                attempts: e.retry_attempts.max(1),
                base: Duration::from_secs(e.retry_base_secs),
                max: Duration::from_secs(e.retry_max_secs.max(e.retry_base_secs)),
            },
            notify_every: Duration::from_secs(2),
        }
    }
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions::from_settings(&EngineSettings::default())
    }
}

/// Everything a service is built from; `app::App` assembles it once from configuration.
pub struct ServiceParts {
    pub store: Arc<dyn Store>,
    pub connectors: Connectors,
    pub endpoints: Endpoints,
    /// The playbooks alerts are matched against.
    pub playbooks: Vec<Playbook>,
    pub guard: Arc<dyn Guard>,
    pub alerts: AlertSettings,
    pub actions: ActionSettings,
    /// The tenant the service acts in (blast-radius counters are per tenant).
    pub tenant: Option<String>,
    pub mode: Mode,
    pub options: ServiceOptions,
    /// Who is told about service events, and how.
    pub notify: NotifySettings,
    /// The base of links to the review page (`[server] public_url`).
    pub public_url: String,
}

/// The durable service: alerts in, runs out, every transition in the store.
pub struct Service {
    pub(super) store: Arc<dyn Store>,
    /// Group commit for ingestion: concurrent alerts share one durable transaction, and each
    /// caller is answered only after it committed.
    pub(super) batcher: crate::store::Batcher,
    pub(super) connectors: Connectors,
    pub(super) endpoints: Endpoints,
    pub(super) playbooks: Vec<Playbook>,
    pub(super) guard: Arc<dyn Guard>,
    pub(super) alerts: AlertSettings,
    pub(super) actions: ActionSettings,
    pub(super) tenant: Option<String>,
    pub(super) mode: Mode,
    pub(super) options: ServiceOptions,
    pub(super) notify: NotifySettings,
    pub(super) public_url: String,
    /// Plans made moments ago by this process, which may execute without planning again.
    /// Only an optimisation: without an entry the run is planned again and compared.
    pub(super) fresh: Mutex<HashSet<(String, String)>>,
    /// Playbooks parsed from stored run specs, by the sha256 of their text (content-keyed,
    /// so it can never disagree with the store).
    pub(super) parsed: Mutex<HashMap<String, Playbook>>,
    pub(super) worker_id: String,
    pub(super) wake: Notify,
    runs_sem: Semaphore,
    pub(super) received: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) rejected: AtomicU64,
}

/// The background worker of a [`Service`].
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Stops taking new work and waits until the worker loop returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Service {
    pub fn new(parts: ServiceParts) -> Arc<Service> {
        Arc::new(Service {
            batcher: crate::store::Batcher::spawn(Arc::clone(&parts.store)),
            store: parts.store,
            connectors: parts.connectors,
            endpoints: parts.endpoints,
            playbooks: parts.playbooks,
            guard: parts.guard,
            alerts: parts.alerts,
            actions: parts.actions,
            tenant: parts.tenant,
            mode: parts.mode,
            runs_sem: Semaphore::new(parts.options.max_concurrent_runs.max(1)),
            options: parts.options,
            notify: parts.notify,
            public_url: parts.public_url,
            fresh: Mutex::new(HashSet::new()),
            parsed: Mutex::new(HashMap::new()),
            worker_id: format!("{}-{}", hostname(), uuid::Uuid::now_v7()),
            wake: Notify::new(),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs the background worker until `shutdown` resolves: match alerts, claim runs, drive
    /// them. In-flight runs finish their current step; their leases lapse and another worker
    /// (or this one after a restart) resumes them from the journal.
    pub async fn work(self: &Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.process_alerts().await {
                tracing::error!(message = "Matching alerts failed.", %error);
            }
            match self
                .store
                .claim_runs(&self.worker_id, self.options.lease, 16)
                .await
            {
                Ok(claims) => {
                    for claim in claims {
                        let me = Arc::clone(self);
                        tokio::spawn(async move { me.work_claimed(claim).await });
                    }
                }
                Err(error) => tracing::error!(message = "Claiming runs failed.", %error),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Drives a run this worker claimed, renewing the lease while it works so a long run is
    /// not taken over, and releasing it afterwards.
    async fn work_claimed(self: Arc<Self>, claim: Claim) {
        let _permit = self.runs_sem.acquire().await;
        let id = claim.run_id;
        let lease = self.lease_clock();
        let span = tracing::info_span!("run", run_id = %id, worker = %self.worker_id);
        let driven = tracing::Instrument::instrument(
            self.under_lease(&id, &lease, self.drive_held(&id, claim.fence, &lease, None)),
            span,
        )
        .await;
        match driven {
            Ok(_) => {}
            Err(ServiceError::Conflict(reason)) => {
                tracing::warn!(message = "Run taken over by another worker; stopped working on it.", run_id = %id, %reason)
            }
            Err(error) => {
                tracing::error!(message = "Run failed to progress.", run_id = %id, %error);
                // Recorded before the lease is given back, so no worker claims it again before
                // its next attempt is due.
                self.run_attempt_failed(&id, &error).await;
            }
        }
        let _ = self.store.release(&self.worker_id, &id).await;
        self.wake.notify_one();
    }

    /// Moves one run forward as far as it can go now (plan, wait for approval, or execute),
    /// under a claim of its own: the command line and the API drive runs like the worker does,
    /// so nobody else works on the run meanwhile, and whoever takes it over later fences this
    /// caller out. `on_event` receives progress (the CLI prints it).
    pub async fn drive(
        &self,
        run_id: &str,
        on_event: Option<&(dyn Fn(&Event<'_>) + Send + Sync)>,
    ) -> Result<RunRecord, ServiceError> {
        let fence = self.claim(run_id).await?;
        let lease = self.lease_clock();
        let span = tracing::info_span!("run", run_id = %run_id, worker = %self.worker_id);
        let driven = tracing::Instrument::instrument(
            self.under_lease(
                run_id,
                &lease,
                self.drive_held(run_id, fence, &lease, on_event),
            ),
            span,
        )
        .await;
        let _ = self.store.release(&self.worker_id, run_id).await;
        driven
    }

    /// The clock of a lease claimed just now, which [`Service::under_lease`] renews.
    pub(super) fn lease_clock(&self) -> super::LeaseClock {
        let clock = super::LeaseClock::default();
        clock.renewed(self.options.lease);
        clock
    }

    /// Claims one run for this worker, or says who holds it.
    pub(super) async fn claim(&self, run_id: &str) -> Result<Fence, ServiceError> {
        match self
            .store
            .claim_run(&self.worker_id, run_id, self.options.lease)
            .await
        {
            Ok(Some(fence)) => Ok(fence),
            Ok(None) => Err(ServiceError::Conflict(format!(
                "run {run_id} is being worked on by another riposte worker; try again when it finishes"
            ))),
            Err(StoreError::NotFound { .. }) => {
                Err(ServiceError::NotFound(format!("no run `{run_id}`")))
            }
            Err(e) => Err(internal(e)),
        }
    }

    /// Runs `work` while renewing this worker's lease on `run_id`, moving `clock` on with
    /// each renewal. Once the lease is lost the renewals stop: the work's writes then fail on
    /// their fence, and its sends on the clock.
    pub(super) async fn under_lease<T>(
        &self,
        run_id: &str,
        clock: &super::LeaseClock,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let renew = async {
            loop {
                tokio::time::sleep(self.options.lease / 3).await;
                // A renewal counts from when it was asked for: the store may answer late.
                let until = super::LeaseClock::deadline(self.options.lease);
                if self
                    .store
                    .heartbeat(&self.worker_id, run_id, self.options.lease)
                    .await
                    .is_err()
                {
                    break;
                }
                clock.set(until);
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            out = work => out,
            () = renew => unreachable!("renewing a lease never finishes"),
        }
    }

    /// Starts [`Service::work`] in the background; [`Worker::stop`] ends it.
    pub fn spawn_worker(self: &Arc<Self>) -> Worker {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let service = Arc::clone(self);
        let task = tokio::spawn(async move {
            let notices = service.follow_notices(stopped.clone());
            let work = service.work(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            tokio::join!(work, notices);
        });
        Worker { stop, task }
    }

    pub(super) async fn get_run(&self, id: &str) -> Result<RunRecord, ServiceError> {
        self.store
            .get_run(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ServiceError::NotFound(format!("no run `{id}`")))
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "riposte".into())
}

pub(super) fn internal(e: StoreError) -> ServiceError {
    match e {
        // Another worker took the run over: stopping is the right answer, not a failure.
        StoreError::Fenced { .. } | StoreError::LeaseLost { .. } => {
            ServiceError::Conflict(e.to_string())
        }
        e => ServiceError::Internal(e.to_string()),
    }
}

pub(super) fn unavailable(e: StoreError) -> ServiceError {
    ServiceError::Unavailable(format!("the alert was not stored: {e}"))
}
