//! Fetching what a Lacework webhook leaves out: the alert's Details from Lacework's API v2.

use super::{Alert, AlertSettings, Source, enrich_lacework};
use crate::connectors::LaceworkClient;

/// Why an alert could not be enriched.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("Lacework Details for alert {id}: {source}")]
    Api {
        id: String,
        #[source]
        source: crate::connectors::ApiError,
    },
    #[error(transparent)]
    Alert(#[from] super::AlertError),
}

/// Fills a webhook alert from Lacework's Details API; other alerts are returned as they are.
pub async fn enrich(
    alert: Alert,
    lacework: Option<&LaceworkClient>,
    settings: &AlertSettings,
) -> Result<Alert, EnrichError> {
    let (true, Source::Lacework, Some(client)) = (alert.needs_enrichment, alert.source, lacework)
    else {
        return Ok(alert);
    };
    let details = client
        .alert_details(&alert.id)
        .await
        .map_err(|source| EnrichError::Api {
            id: alert.id.clone(),
            source,
        })?;
    Ok(super::admissible(
        enrich_lacework(&alert, details, settings)?,
        settings,
    )?)
}
