//! Configuration: built-in defaults, then `riposte.toml`, then `RIPOSTE_*` environment
//! variables (`__` between levels). Key names are a contract (DESIGN.md §3).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::actions::ActionSettings;
use crate::alert::AlertSettings;
use crate::connectors::{AzureSettings, LaceworkSettings};
use crate::plan::Mode;

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
}

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
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            coalesce_window_secs: default_coalesce(),
            approval_ttl_secs: default_approval_ttl(),
            lease_secs: default_lease(),
            max_concurrent_runs: default_max_runs(),
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

fn default_playbooks() -> PathBuf {
    PathBuf::from("playbooks")
}

fn default_policies() -> PathBuf {
    PathBuf::from("policies")
}

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

/// The HTTP API of `riposte serve` (DESIGN.md §3). Read by `server/`; nothing else listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the API binds. Loopback by default so a fresh install exposes nothing.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// API bearer tokens; only their sha256 is kept, so the file itself grants nothing.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Largest request body accepted (bytes); larger ones get 413 before they are buffered,
    /// so an alert storm of huge payloads cannot exhaust memory. Default 1 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// When present, ingestion also requires an HMAC signature of the body, so a leaked
    /// webhook URL (with its `?token=`) alone cannot inject alerts.
    #[serde(default)]
    pub hmac: Option<HmacSettings>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            tokens: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            hmac: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

/// Signature verification on `POST /v1/alerts/{source}`: the sender puts the unix time in the
/// timestamp header and `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` in the
/// signature header. Signing the timestamp bounds how long a captured request can be replayed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    /// The shared secret; wrapped so it never reaches a formatter.
    pub secret: secrecy::SecretString,
    /// Header carrying `sha256=<hex>`.
    #[serde(default = "default_signature_header")]
    pub header: String,
    /// Header carrying the signing time in unix seconds.
    #[serde(default = "default_timestamp_header")]
    pub timestamp_header: String,
    /// How far (seconds, either direction) the timestamp may be from our clock; wider
    /// tolerates clock skew, narrower shortens the replay window. Default 300.
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
}

fn default_signature_header() -> String {
    "X-Riposte-Signature".into()
}

fn default_timestamp_header() -> String {
    "X-Riposte-Timestamp".into()
}

fn default_window_secs() -> u64 {
    300
}

/// One API token as configured: `riposte token new` prints it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token; it becomes the caller's name in runs, approvals and the audit
    /// trail (an approver cannot approve a run requested under the same name).
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Hex sha256 of the token.
    pub sha256: String,
}

/// API roles, each including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Responder,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Responder, Role::Approver, Role::Admin];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a role: viewer, responder, approver or admin"))
    }
}

/// Limits every deployment tunes; they reach the Rego policies as data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Object ids that no action may ever target.
    #[serde(default)]
    pub break_glass: Vec<String>,
    /// Principals contained per tenant per hour before approval is needed.
    #[serde(default = "default_max_principals")]
    pub max_principals_per_hour: u32,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            break_glass: Vec::new(),
            max_principals_per_hour: default_max_principals(),
        }
    }
}

fn default_max_principals() -> u32 {
    10
}

/// The configuration's top-level keys, the only `RIPOSTE_*` variables read as configuration.
const TOP_LEVEL_KEYS: [&str; 11] = [
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
];

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
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
                    TOP_LEVEL_KEYS.iter().any(|t| top.eq_ignore_ascii_case(t))
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
        self.server.check()?;
        Ok(())
    }
}

impl ServerSettings {
    /// Refuses a token table that would silently lock a sender out (a mistyped digest) or
    /// make two holders indistinguishable in the audit trail (a repeated name).
    fn check(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for t in &self.tokens {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid(format!(
                    "server.tokens `{}`: sha256 must be 64 hex digits (run `riposte token new`)",
                    t.name
                )));
            }
            if !names.insert(t.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "server.tokens: the name `{}` is used twice; each token needs its own name",
                    t.name
                )));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "server.max_body_bytes must be greater than 0".into(),
            ));
        }
        if let Some(hmac) = &self.hmac {
            use secrecy::ExposeSecret;
            if hmac.secret.expose_secret().is_empty() {
                return Err(ConfigError::Invalid(
                    "server.hmac.secret is empty; set it or remove [server.hmac]".into(),
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
