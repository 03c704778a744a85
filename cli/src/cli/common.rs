//! What several commands share: reading an alert (and enriching it).

use std::path::Path;

use anyhow::Context;

use riposte::alert::{self, Alert};
use riposte::app::App;

/// Reads, parses and (for a Lacework webhook) enriches an alert file.
pub async fn read_alert(app: &App, path: &Path, source: Option<&str>) -> anyhow::Result<Alert> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read alert {}", path.display()))?;
    let parsed = alert::parse_alert(&bytes, source, &app.config.alerts)
        .with_context(|| format!("alert {} was rejected", path.display()))?;
    let enriched = alert::enrich(parsed, app.connectors.lacework(), &app.config.alerts).await?;
    if enriched.needs_enrichment {
        eprintln!(
            "note: this {} alert carries no user or resource; configure [lacework] so riposte can fetch them from Lacework's Details API",
            enriched.source
        );
    }
    Ok(enriched)
}
