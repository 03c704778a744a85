//! `riposte alerts list` / `alerts retry`: stored alerts, against the configured store. A
//! `failed` alert could not be enriched or read after its retries (or at once, for a failure
//! that cannot pass); retrying makes it pending again for the service to match.

use std::process::ExitCode;

use super::Format;
use super::ops::{caller, err, service};
use riposte::config::Config;
use riposte::engine::service::ServiceApi;
use riposte::store::AlertStatus;

pub async fn list(
    config: &Config,
    status: Option<String>,
    limit: u32,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let status = match status {
        Some(s) => Some(AlertStatus::parse(&s).ok_or_else(|| {
            let known: Vec<&str> = AlertStatus::ALL.iter().map(|a| a.as_str()).collect();
            anyhow::anyhow!("unknown status `{s}`; use one of {}", known.join(", "))
        })?),
        None => None,
    };
    let alerts = service(config)
        .await?
        .alerts(limit, status)
        .await
        .map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&alerts)?),
        Format::Table => {
            println!(
                "{:36}  {:9}  {:8}  {:20}  {:24}  LAST ERROR",
                "ALERT", "STATUS", "ATTEMPTS", "RECEIVED", "SOURCE:ID"
            );
            for a in alerts {
                println!(
                    "{:36}  {:9}  {:8}  {:20}  {:24}  {}",
                    a.id,
                    a.status.as_str(),
                    a.attempts,
                    a.received_at.format("%Y-%m-%d %H:%M:%S"),
                    format!("{}:{}", a.source, a.source_id),
                    a.last_error.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exits 1 (with the service's reason) when the alert is not failed.
pub async fn retry(config: &Config, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let alert = service(config)
        .await?
        .retry_alert(id, &caller())
        .await
        .map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&alert)?),
        Format::Table => println!(
            "alert {} is {} again; the service matches it next",
            alert.id,
            alert.status.as_str()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
