//! `riposte evidence list ID` / `evidence get ID STEP [N] [--out FILE]`: a run's evidence,
//! against the configured store, byte for byte as stored. Its sha256 is the digest in the
//! run view and in the audit trail (`evidence.stored`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::Format;
use super::ops::{err, service};
use riposte::config::Config;
use riposte::engine::service::ServiceApi;

pub async fn list(config: &Config, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let evidence = service(config).await?.evidence(id).await.map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&evidence)?),
        Format::Table => {
            println!(
                "{:20}  {:3}  {:24}  {:9}  {:18}  SHA256",
                "STEP", "N", "NAME", "BYTES", "TYPE"
            );
            let mut seen = std::collections::BTreeMap::<&str, usize>::new();
            for e in &evidence {
                let n = seen.entry(e.step_id.as_str()).or_default();
                println!(
                    "{:20}  {:3}  {:24}  {:9}  {:18}  {}",
                    e.step_id, n, e.name, e.size, e.content_type, e.sha256
                );
                *n += 1;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the bytes untouched to `out` (created or truncated) or to stdout; the digest goes
/// to stderr so piping the bytes stays clean.
pub async fn get(
    config: &Config,
    id: &str,
    step: &str,
    n: usize,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let evidence = service(config)
        .await?
        .evidence_item(id, step, n)
        .await
        .map_err(err)?;
    match out {
        Some(path) => std::fs::write(path, &evidence.bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&evidence.bytes)?;
            stdout.flush()?;
        }
    }
    eprintln!(
        "{} ({} bytes, {}) {}",
        evidence.record.name,
        evidence.record.size,
        evidence.record.content_type,
        evidence.record.sha256
    );
    Ok(ExitCode::SUCCESS)
}
