//! `[engine]`: how the service schedules runs.

use serde::Deserialize;

/// How the service schedules runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Alerts for the same principal and playbook within this many seconds join the open run.
    #[serde(default = "default_coalesce")]
    pub coalesce_window_secs: u64,
    /// How long an approval lets its plan run, in seconds.
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl_secs: u64,
    /// A worker's claim on a run, renewed while it works; after a crash another worker (or
    /// the restarted one) takes the run over once this many seconds pass.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// Runs executing at once (bounded concurrency per tenant).
    #[serde(default = "default_max_runs")]
    pub max_concurrent_runs: usize,
    /// Attempts in all at enriching an alert or planning a run when the failure may pass
    /// (upstream unavailable, 5xx, 429, timeouts); after the last one it is `failed` with the
    /// reason. A failure that cannot pass (4xx, an unreadable alert) fails at the first.
    #[serde(default = "default_retry_attempts")]
    pub retry_attempts: u32,
    /// Seconds to wait after the first failed attempt; the wait doubles after each further
    /// one and is drawn between half and all of it, so alerts that failed together spread out.
    #[serde(default = "default_retry_base")]
    pub retry_base_secs: u64,
    /// The longest wait between two attempts, in seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            coalesce_window_secs: default_coalesce(),
            approval_ttl_secs: default_approval_ttl(),
            lease_secs: default_lease(),
            max_concurrent_runs: default_max_runs(),
            retry_attempts: default_retry_attempts(),
            retry_base_secs: default_retry_base(),
            retry_max_secs: default_retry_max(),
        }
    }
}

fn default_coalesce() -> u64 {
    900
}
fn default_approval_ttl() -> u64 {
    3600
}
fn default_lease() -> u64 {
    60
}
fn default_max_runs() -> usize {
    8
}
fn default_retry_attempts() -> u32 {
    8
}
fn default_retry_base() -> u64 {
    10
}
fn default_retry_max() -> u64 {
    600
}
