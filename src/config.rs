//! Configuration: built-in defaults, then `riposte.toml`, then `RIPOSTE_*` environment
//! variables (`__` between levels). Key names are a contract (DESIGN.md §3).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Deserialize;

use crate::actions::ActionSettings;
use crate::alert::AlertSettings;
use crate::connectors::{AzureSettings, LaceworkSettings};
pub use crate::engine::EngineSettings;
pub use crate::mode::Mode;
pub use crate::notify::NotifySettings;
pub use crate::policy::Guardrails;
pub use crate::server::{HmacSettings, Role, ServerSettings, TokenEntry};
pub use crate::store::{AuditSettings, StoreSettings};

/// The whole configuration. Every field has a default, so riposte runs with no file at all,
/// in dry-run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `dry-run` (default): plan and never mutate. `enforce`: execute what policy allows.
    #[serde(default)]
    pub mode: Mode,
    /// The directory of playbooks.
    #[serde(default = "default_playbooks")]
    pub playbooks: PathBuf,
    /// The directory of guardrail policies.
    #[serde(default = "default_policies")]
    pub policies: PathBuf,
    #[serde(default)]
    pub azure: AzureSettings,
    /// Present when Lacework alerts should be enriched from its API.
    #[serde(default)]
    pub lacework: Option<LaceworkSettings>,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub guardrails: Guardrails,
    #[serde(default)]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub actions: ActionSettings,
    #[serde(default)]
    pub engine: EngineSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub notify: NotifySettings,
    #[serde(default)]
    pub log: LogSettings,
}

/// `[log]`: how log lines are written (to stderr). The level comes from `RIPOSTE_LOG`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
}

/// `text` (default) for people; `json`: one object per line, with the run, step and request
/// spans a line was written in, for log shippers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_playbooks() -> PathBuf {
    PathBuf::from("playbooks")
}

fn default_policies() -> PathBuf {
    PathBuf::from("policies")
}

/// The configuration's top-level keys, the only `RIPOSTE_*` variables read as configuration.
const TOP_LEVEL_KEYS: [&str; 14] = [
    "mode",
    "playbooks",
    "policies",
    "azure",
    "lacework",
    "store",
    "server",
    "guardrails",
    "alerts",
    "actions",
    "engine",
    "audit",
    "notify",
    "log",
];

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads `file` (or `./riposte.toml`, which may be absent) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(file, Env::prefixed("RIPOSTE_"))
    }

    fn load_with_env(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let path = match file {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_path_buf())),
            Some(p) => p.to_path_buf(),
            None => PathBuf::from("riposte.toml"),
        };
        let figment = Figment::from(Serialized::defaults(serde_json::json!({})))
            .merge(Toml::file(&path))
            .merge(
                // Only variables naming a configuration section are configuration; others with
                // the prefix (RIPOSTE_CONFIG, RIPOSTE_LOG, a test's RIPOSTE_TEST_…) are not.
                // Within a section a misspelt key is still an error.
                env.filter(|k| {
                    let top = k.as_str().split("__").next().unwrap_or_default();
                    // `RIPOSTE_LOG` itself is the log filter (`riposte=info`), not the `[log]`
                    // table; `RIPOSTE_LOG__FORMAT` is configuration.
                    let log_filter = k.as_str().eq_ignore_ascii_case("log");
                    !log_filter && TOP_LEVEL_KEYS.iter().any(|t| top.eq_ignore_ascii_case(t))
                })
                .split("__")
                .map(|k| k.as_str().to_lowercase().into()),
            );
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.azure
            .endpoints()
            .map_err(|e| ConfigError::Invalid(format!("[azure] {e}")))?;
        if let Some(lacework) = &self.lacework {
            lacework
                .base_url()
                .map_err(|e| ConfigError::Invalid(format!("[lacework] {e}")))?;
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "store.url `{}` must start with sqlite:// (or be sqlite::memory:) or postgres://",
                self.store.url
            )));
        }
        self.server.check().map_err(ConfigError::Invalid)?;
        self.notify.check().map_err(ConfigError::Invalid)?;
        if let Some(key) = &self.audit.key {
            use secrecy::ExposeSecret;
            if key.expose_secret().len() < 16 {
                return Err(ConfigError::Invalid(
                    "audit.key must be a secret of at least 16 characters".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe() {
        let none = || Env::prefixed("RIPOSTE_UNIT_TEST_NOTHING_");
        let c = Config::load_with_env(Some(Path::new("/nonexistent.toml")), none()).unwrap_err();
        assert!(matches!(c, ConfigError::Missing(_)));
        let c = Config::load_with_env(None, none()).unwrap();
        assert_eq!(c.mode, Mode::DryRun);
        assert_eq!(c.store.url, "sqlite://riposte.db");
        assert_eq!(c.guardrails.max_principals_per_hour, 10);
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn unknown_keys_and_plain_http_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let none = || Env::prefixed("RIPOSTE_UNIT_TEST_NOTHING_");
        let typo = dir.path().join("typo.toml");
        std::fs::write(&typo, "mdoe = \"enforce\"\n").unwrap();
        let e = Config::load_with_env(Some(&typo), none())
            .unwrap_err()
            .to_string();
        assert!(e.contains("mdoe"), "{e}");
        let http = dir.path().join("http.toml");
        std::fs::write(
            &http,
            "[azure]\ngraph_endpoint = \"http://graph.example.com\"\n",
        )
        .unwrap();
        let e = Config::load_with_env(Some(&http), none())
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http"), "{e}");
        let ok = dir.path().join("ok.toml");
        std::fs::write(
            &ok,
            "mode = \"enforce\"\n[azure]\ngraph_endpoint = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&ok), none()).unwrap();
        assert_eq!(c.mode, Mode::Enforce);
    }
}

#[cfg(test)]
mod server_tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riposte.toml");
        std::fs::write(&file, text).unwrap();
        Config::load_with_env(Some(&file), Env::prefixed("RIPOSTE_UNIT_TEST_NOTHING_"))
    }

    const DIGEST: &str = "0d75239e2fa5a777c366850e03ddffcab8c634455d7472812a9e66a2f7aa7faf";

    #[test]
    fn server_defaults_and_hmac_defaults() {
        let c = load("").unwrap();
        assert_eq!(c.server.max_body_bytes, 1024 * 1024);
        assert!(c.server.hmac.is_none());
        let c = load("[server.hmac]\nsecret = \"s3cret\"\n").unwrap();
        let hmac = c.server.hmac.unwrap();
        assert_eq!(hmac.secret.expose_secret(), "s3cret");
        assert_eq!(hmac.header, "X-Riposte-Signature");
        assert_eq!(hmac.timestamp_header, "X-Riposte-Timestamp");
        assert_eq!(hmac.window_secs, 300);
        assert!(!format!("{hmac:?}").contains("s3cret"));
    }

    #[test]
    fn token_tables_that_would_lock_senders_out_are_refused() {
        let entry = |name: &str, sha: &str| {
            format!("[[server.tokens]]\nname = \"{name}\"\nrole = \"viewer\"\nsha256 = \"{sha}\"\n")
        };
        assert!(load(&entry("a", DIGEST)).is_ok());
        assert!(load(&entry("a", &DIGEST.to_uppercase())).is_ok());
        let e = load(&entry("a", "…")).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        let e = load(&format!("{}{}", entry("a", DIGEST), entry("a", DIGEST)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice"), "{e}");
        let e = load("[server.hmac]\nsecret = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hmac.secret"), "{e}");
        assert!(load("[server]\nmax_body_bytes = 0\n").is_err());
    }

    #[test]
    fn roles_are_ordered_and_spelled_as_configured() {
        assert!(Role::Viewer < Role::Responder);
        assert!(Role::Responder < Role::Approver);
        assert!(Role::Approver < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
