//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use riposte::actions::ActionSettings;
use riposte::alert::{AlertSettings, FieldMap};

/// The workspace root (the library's package), also from the CLI package's tests.
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("playbooks").is_dir())
        .map(PathBuf::from)
        .unwrap_or(here)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/alerts").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixed run id and clock, so plans are reproducible.
pub const RUN_ID: &str = "01900000-0000-7000-8000-00000000abcd";

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap()
}

/// The deployment settings of the fixture tenant (tests/fixtures/README.md).
pub fn action_settings(webhook: &str) -> ActionSettings {
    ActionSettings {
        mfa_group_id: Some("9f0c7e3a-1d2b-4c5e-8f6a-000000000101".into()),
        notify_webhook_url: Some(webhook.into()),
        log_analytics_workspace: Some("5c9e2a71-3f4b-4d8e-a6c1-000000000201".into()),
        max_planning_reads: None,
    }
}

/// The `[alerts.generic]` pointers `generic.json` needs.
pub fn alert_settings() -> AlertSettings {
    let p = |s: &str| Some(s.to_string());
    AlertSettings {
        generic: FieldMap {
            id: p("/alert/uid"),
            title: p("/alert/rule"),
            kind: None,
            severity: p("/alert/risk"),
            observed_at: p("/alert/detected"),
            principal_upn: p("/alert/actor/login"),
            principal_object_id: p("/alert/actor/aad_object_id"),
            tenant_id: p("/alert/actor/tenant"),
            resources: p("/alert/targets"),
            operation: p("/alert/action"),
            source_ip: p("/alert/actor/ip"),
        },
        ..AlertSettings::default()
    }
}

/// A riposte.toml pointing every API at an emulator, with the fixture tenant's settings.
pub fn emulator_toml(base: &str, store_url: &str, mode: &str) -> String {
    let root = root();
    format!(
        "mode = \"{mode}\"\nplaybooks = \"{}\"\npolicies = \"{}\"\n\n[store]\nurl = \"{store_url}\"\n\n{}",
        root.join("playbooks").display(),
        root.join("policies").display(),
        riposte_emulator::client_config_toml(base),
    )
}

/// Loads a configuration from TOML text (through a file, as users do).
pub fn config_from_toml(dir: &std::path::Path, toml: &str) -> riposte::config::Config {
    let path = dir.join("riposte.toml");
    std::fs::write(&path, toml).unwrap();
    riposte::config::Config::load(Some(&path)).unwrap()
}

/// Whether PostgreSQL must be there (`scripts/pg-test.sh` and CI say so): then a suite that
/// cannot reach it fails instead of passing without having run.
pub fn postgres_required() -> bool {
    std::env::var("RIPOSTE_TEST_POSTGRES_REQUIRED").is_ok_and(|v| v == "1")
}

/// The test PostgreSQL's URL, or `None` (said on stderr) when none is configured and none is
/// required.
pub fn postgres_base(suite: &str) -> Option<String> {
    match std::env::var("RIPOSTE_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if postgres_required() => panic!(
            "{suite}: PostgreSQL was required (RIPOSTE_TEST_POSTGRES_REQUIRED=1) but RIPOSTE_TEST_POSTGRES_URL is not set"
        ),
        Err(_) => {
            eprintln!(
                "{suite}: RIPOSTE_TEST_POSTGRES_URL is not set: the PostgreSQL half did NOT run (scripts/pg-test.sh runs it)"
            );
            None
        }
    }
}

/// A fresh schema in the test PostgreSQL (`RIPOSTE_TEST_POSTGRES_URL`), as a store URL; `None`
/// when no PostgreSQL is configured (and none is required).
pub async fn postgres_url(prefix: &str) -> Option<String> {
    let base = postgres_base(prefix)?;
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{prefix}: RIPOSTE_TEST_POSTGRES_URL is set but PostgreSQL is not reachable: {e}"
            )
        });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options[search_path]={schema}"))
}

/// A service on a fresh SQLite store whose APIs are an emulator seeded with `tenant`, in
/// `mode` (`dry-run` or `enforce`), with the shipped playbooks and policies. The directory
/// holds the store; keep it alive as long as the service.
pub async fn service_on_emulator(
    tenant: riposte_emulator::Tenant,
    mode: &str,
) -> (
    riposte_emulator::EmulatorHandle,
    std::sync::Arc<riposte::engine::Service>,
    tempfile::TempDir,
) {
    service_on_emulator_with(tenant, mode, |toml| toml).await
}

/// As [`service_on_emulator`], with the riposte.toml text passed through `edit` first (extra
/// `[guardrails]`, another playbooks directory).
pub async fn service_on_emulator_with(
    tenant: riposte_emulator::Tenant,
    mode: &str,
    edit: impl FnOnce(String) -> String,
) -> (
    riposte_emulator::EmulatorHandle,
    std::sync::Arc<riposte::engine::Service>,
    tempfile::TempDir,
) {
    riposte::connectors::install_crypto_provider();
    let emulator = riposte_emulator::Emulator::start("127.0.0.1:0".parse().unwrap(), tenant)
        .expect("the emulator starts");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("riposte.db").display());
    let config = config_from_toml(
        dir.path(),
        &edit(emulator_toml(&emulator.base_url(), &url, mode)),
    );
    let service = riposte::app::App::new(config)
        .unwrap()
        .service_with(riposte::engine::ServiceOptions::default())
        .await
        .unwrap();
    (emulator, service, dir)
}
