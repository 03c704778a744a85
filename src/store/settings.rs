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

/// `[audit]`: with `key` (a secret) set, each audit record's chain link is an HMAC-SHA256
/// under it, so rewriting records and re-chaining them without the key is detected by
/// `riposte audit verify`. Set it on a new store: an existing plain chain does not verify
/// under a key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    #[serde(default)]
    pub key: Option<secrecy::SecretString>,
}

impl AuditSettings {
    pub fn key(&self) -> Option<super::AuditKey> {
        use secrecy::ExposeSecret;
        self.key
            .as_ref()
            .map(|k| super::AuditKey::new(k.expose_secret().as_bytes()))
    }
}
