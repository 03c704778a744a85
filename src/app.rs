//! The one wiring path: an [`App`] is built once from [`Config`] — playbooks, guardrails,
//! connectors, endpoints — and every command, `serve` and `demo` take what they need from it.
//! Opening the store and starting the service also happen here, and nowhere else.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::alert::Alert;
use crate::config::Config;
use crate::connectors::{Connectors, Endpoints, HttpOptions};
use crate::engine::{Service, ServiceOptions, ServiceParts};
use crate::playbook::{self, Diagnostic, Playbook};
use crate::policy::{self, Guard};

pub struct App {
    pub config: Config,
    pub connectors: Connectors,
    pub endpoints: Endpoints,
    pub guard: Arc<dyn Guard>,
    playbooks: Vec<Playbook>,
    /// Problems found loading the playbooks directory; commands that need the loaded set
    /// refuse to start while there are any.
    problems: Vec<Diagnostic>,
}

impl App {
    /// Loads what configuration names. The guardrail policies must load: planning must never
    /// quietly drop them (no policies directory at all means unguarded, and every decision
    /// says so).
    pub fn new(config: Config) -> anyhow::Result<App> {
        let connectors = Connectors::new(
            &config.azure,
            config.lacework.as_ref(),
            HttpOptions::default(),
        )
        .context("cannot set up the Azure and Lacework clients")?;
        let endpoints = config.azure.endpoints()?;
        let may_act = config.mode == crate::mode::Mode::Enforce;
        let guard: Arc<dyn Guard> =
            policy::guard_for(&config.policies, &config.guardrails, may_act)
                .with_context(|| {
                    format!(
                        "cannot load the guardrail policies in {}",
                        config.policies.display()
                    )
                })?
                .into();
        let (playbooks, problems) = playbook::load_all(std::slice::from_ref(&config.playbooks));
        Ok(App {
            config,
            connectors,
            endpoints,
            guard,
            playbooks,
            problems,
        })
    }

    /// The playbooks directory, when it loads without problems.
    pub fn playbooks(&self) -> anyhow::Result<&[Playbook]> {
        if !self.problems.is_empty() {
            anyhow::bail!(
                "playbooks have problems (run `riposte validate`):\n{}",
                playbook::Diagnostics(self.problems.clone())
            );
        }
        Ok(&self.playbooks)
    }

    /// `--playbook` as a file or a name, or every playbook whose triggers match the alert.
    pub fn select_playbooks(
        &self,
        wanted: Option<&str>,
        alert: &Alert,
    ) -> anyhow::Result<Vec<Playbook>> {
        let dir = self.config.playbooks.display();
        if let Some(w) = wanted {
            let path = Path::new(w);
            if path.is_file() {
                return Ok(vec![playbook::load_file(path)?]);
            }
            if let Some(p) = self.playbooks.iter().find(|p| p.name == w) {
                return Ok(vec![p.clone()]);
            }
            if !self.problems.is_empty() {
                anyhow::bail!(
                    "no playbook named `{w}` loaded; problems found:\n{}",
                    playbook::Diagnostics(self.problems.clone())
                );
            }
            anyhow::bail!("no playbook named `{w}` in {dir}");
        }
        let matched: Vec<Playbook> = crate::plan::select(self.playbooks()?, alert)
            .into_iter()
            .cloned()
            .collect();
        if matched.is_empty() {
            anyhow::bail!(
                "no playbook in {dir} matches this alert (source {}, kind {}, severity {}); pass --playbook NAME",
                alert.source,
                alert.kind,
                alert.severity
            );
        }
        Ok(matched)
    }

    /// Opens (and migrates) the store and builds the durable service on it, with the
    /// `[engine]` options.
    pub async fn service(&self) -> anyhow::Result<Arc<Service>> {
        self.service_with(ServiceOptions::from_settings(&self.config.engine))
            .await
    }

    /// [`App::service`] with options of the caller's (tests tune leases and windows).
    pub async fn service_with(&self, options: ServiceOptions) -> anyhow::Result<Arc<Service>> {
        let playbooks = self.playbooks()?.to_vec();
        let store = crate::store::open_with(&self.config.store.url, self.config.audit.key())
            .await
            .with_context(|| format!("cannot open the store at {}", self.config.store.url))?;
        // Throttle holds go through the store, so every replica honours a 429 any of them got.
        self.connectors
            .share_throttle(Arc::new(StoreThrottle(Arc::clone(&store))));
        Ok(Service::new(ServiceParts {
            store,
            connectors: self.connectors.clone(),
            endpoints: self.endpoints.clone(),
            playbooks,
            guard: Arc::clone(&self.guard),
            alerts: self.config.alerts.clone(),
            actions: self.config.actions.clone(),
            tenant: self.config.azure.tenant_id.clone(),
            mode: self.config.mode,
            options,
            notify: self.config.notify.clone(),
            public_url: self.config.server.public_url(),
        }))
    }
}

/// The store as the connectors' shared throttle state. A store that cannot answer never blocks
/// a request: riposte then backs off on its own 429s alone, as a single replica does.
struct StoreThrottle(Arc<dyn crate::store::Store>);

#[async_trait::async_trait]
impl crate::connectors::SharedThrottle for StoreThrottle {
    async fn held_until(&self, key: &str, api: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.0.throttle_held_until(key, api).await {
            Ok(until) => until,
            Err(error) => {
                tracing::warn!(message = "Cannot read the shared throttle state.", %error);
                None
            }
        }
    }

    async fn hold(&self, key: &str, api: &str, until: chrono::DateTime<chrono::Utc>) {
        if let Err(error) = self.0.hold_throttle(key, api, until).await {
            tracing::warn!(message = "Cannot share a throttle hold.", %error);
        }
    }
}
