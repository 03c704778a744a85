//! What several commands share: reading an alert (and enriching it), building connectors.

use std::path::Path;

use anyhow::Context;

use crate::alert::{self, Alert};
use crate::config::Config;
use crate::connectors::{Connectors, HttpOptions, Lookup, NoLookup};

/// The outbound side, when anything is configured to talk to.
pub fn connectors(config: &Config) -> anyhow::Result<Connectors> {
    Connectors::new(
        &config.azure,
        config.lacework.as_ref(),
        HttpOptions::default(),
    )
    .context("cannot set up the Azure and Lacework clients")
}

/// The planner's read-only door: real lookups with credentials, unknowns without.
pub fn lookup(config: &Config, connectors: &Connectors) -> Box<dyn Lookup> {
    if connectors.has_azure_credentials() || config.azure.has_credentials() {
        Box::new(connectors.read_only())
    } else {
        Box::new(NoLookup)
    }
}

/// Reads, parses and (for a Lacework webhook) enriches an alert file.
pub async fn read_alert(
    config: &Config,
    connectors: &Connectors,
    path: &Path,
    source: Option<&str>,
) -> anyhow::Result<Alert> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read alert {}", path.display()))?;
    let parsed = alert::parse_alert(&bytes, source, &config.alerts)
        .with_context(|| format!("alert {} was rejected", path.display()))?;
    let enriched = alert::enrich(parsed, connectors.lacework(), &config.alerts).await?;
    if enriched.needs_enrichment {
        eprintln!(
            "note: this {} alert carries no user or resource; configure [lacework] so riposte can fetch them from Lacework's Details API",
            enriched.source
        );
    }
    Ok(enriched)
}
