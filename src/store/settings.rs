//! `[store]`: where runs, alerts, the journal and the audit trail live.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://relative.db`, `sqlite:///absolute.db` or `postgres://user:pass@host:port/db`.
    #[serde(default = "default_store_url")]
    pub url: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: default_store_url(),
        }
    }
}

fn default_store_url() -> String {
    "sqlite://riposte.db".into()
}
