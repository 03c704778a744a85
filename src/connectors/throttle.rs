//! Throttle state every replica honours (DESIGN.md §4): when Microsoft tells one replica to
//! back off (a 429 with `Retry-After`), the others hold off too, instead of each finding out
//! with 429s of its own. The store keeps it; the connectors only see this trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Api;

/// Where the shared throttle state lives (the store, wired in by `app`).
#[async_trait]
pub trait SharedThrottle: Send + Sync + 'static {
    /// Until when requests to `api` for the budget `key` (a tenant, a Lacework account) must
    /// wait, as any replica last learnt; `None`: they need not.
    async fn held_until(&self, key: &str, api: &str) -> Option<DateTime<Utc>>;
    /// Records that requests to `api` for `key` must wait until `until` (a later hold wins).
    async fn hold(&self, key: &str, api: &str, until: DateTime<Utc>);
}

/// The name a throttle hold is kept under.
pub fn api_name(api: Api) -> &'static str {
    match api {
        Api::Graph => "graph",
        Api::Arm => "arm",
        Api::LogAnalytics => "log_analytics",
        Api::Lacework => "lacework",
        Api::Webhook => "webhook",
    }
}
