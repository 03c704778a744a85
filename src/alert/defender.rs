//! Microsoft Graph security alerts (`/security/alerts_v2`, reference E6), from Defender XDR and
//! Defender for Cloud. Who and what come from `evidence[]`, typed by `@odata.type`.

use serde_json::Value;

use super::json::{self, PrincipalHints};
use super::{Adapter, Alert, AlertError, AlertSettings, Severity, Source, kind_for_title};

pub(crate) struct Defender;

const ALERT_TYPE: &str = "#microsoft.graph.security.alert";

impl Adapter for Defender {
    fn name(&self) -> &'static str {
        "defender"
    }

    /// A Graph security alert: typed as one, from an `alerts_v2` response, or carrying the
    /// fields only that resource has together (`providerAlertId` with `evidence`/`detectionSource`).
    /// A `{"value": [...]}` list counts when its context says alerts_v2 or its first item is one,
    /// so that a list of the wrong length gets a clear error from `parse` rather than "unrecognised".
    fn detect(&self, raw: &Value) -> bool {
        let context = raw
            .get("@odata.context")
            .and_then(Value::as_str)
            .is_some_and(|c| c.contains("security/alerts_v2"));
        context
            || match json::at(raw, "value") {
                Some(Value::Array(items)) => items.first().is_some_and(is_alert),
                _ => is_alert(raw),
            }
    }

    fn parse(&self, raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
        let base = match json::at(&raw, "value") {
            Some(Value::Array(items)) if items.len() == 1 => "value.0.",
            Some(Value::Array(items)) => {
                return Err(AlertError::field(
                    "value",
                    format!("expected exactly one alert, found {}", items.len()),
                ));
            }
            _ => "",
        };
        let alert = if base.is_empty() {
            &raw
        } else {
            json::at(&raw, "value.0").ok_or_else(|| json::missing("value.0"))?
        };
        let p = |name: &str| format!("{base}{name}");

        let id = json::req_text(alert, "id").map_err(|e| rebase(base, e))?;
        let title = json::req_text(alert, "title").map_err(|e| rebase(base, e))?;
        // Graph writes `unknown` when the provider did not say; that is informational.
        let severity = match json::at(alert, "severity") {
            Some(v) => json::severity(v, &p("severity"))?,
            None => Severity::Informational,
        };
        let observed_at = json::time_rfc3339(
            json::at(alert, "createdDateTime")
                .ok_or_else(|| json::missing(&p("createdDateTime")))?,
            &p("createdDateTime"),
        )?;
        let mut kind = kind_for_title(&title, settings);
        if kind == "other"
            && let Some(d) = json::opt_text(alert, "description").map_err(|e| rebase(base, e))?
        {
            kind = kind_for_title(&d, settings);
        }
        let tenant_id = json::opt_text(alert, "tenantId").map_err(|e| rebase(base, e))?;

        let mut principal = None;
        let mut resources = Vec::new();
        let mut source_ip = None;
        let evidence = match json::at(alert, "evidence") {
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => {
                return Err(AlertError::field(
                    p("evidence"),
                    format!("expected an array, found {}", json::describe(other)),
                ));
            }
            None => &[],
        };
        for item in evidence {
            let Some(kind) = item.get("@odata.type").and_then(Value::as_str) else {
                continue;
            };
            match kind.rsplit('.').next().unwrap_or_default() {
                "userEvidence" if principal.is_none() => {
                    let account = json::at(item, "userAccount");
                    let text = |k: &str| {
                        account
                            .and_then(|a| json::at(a, k))
                            .and_then(Value::as_str)
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    };
                    principal = PrincipalHints {
                        upn: text("userPrincipalName").filter(|u| json::looks_like_upn(u)),
                        object_id: text("azureAdUserId"),
                        tenant_id: tenant_id.clone(),
                        ..PrincipalHints::default()
                    }
                    .into_principal();
                }
                "ipEvidence" if source_ip.is_none() => {
                    source_ip = json::at(item, "ipAddress")
                        .and_then(Value::as_str)
                        .and_then(json::ip_address);
                }
                "azureResourceEvidence" => {
                    if let Some(id) = json::at(item, "resourceId").and_then(Value::as_str) {
                        json::push_resource(&mut resources, id);
                    }
                }
                _ => {}
            }
        }

        Ok(Alert {
            id,
            source: Source::Defender,
            kind,
            title,
            severity,
            observed_at,
            principal,
            resources,
            // alerts_v2 names no operation; the evidence describes entities, not API calls.
            operation: None,
            source_ip,
            needs_enrichment: false,
            raw,
        })
    }
}

fn is_alert(v: &Value) -> bool {
    let typed = v
        .get("@odata.type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(ALERT_TYPE));
    typed
        || (json::at(v, "providerAlertId").is_some()
            && (json::at(v, "evidence").is_some() || json::at(v, "detectionSource").is_some()))
}

/// Errors from lookups inside `value[0]` carry that prefix.
fn rebase(base: &str, err: AlertError) -> AlertError {
    if base.is_empty() {
        err
    } else {
        json::within(base.trim_end_matches('.'), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_of_two_is_an_error_and_unknown_is_informational() {
        let alert = json!({"id": "a", "providerAlertId": "p", "evidence": [], "title": "t",
                           "severity": "unknown", "createdDateTime": "2026-04-21T04:00:00Z"});
        assert!(Defender.detect(&json!({"value": [alert.clone(), alert.clone()]})));
        let err = Defender
            .parse(
                json!({"value": [alert.clone(), alert.clone()]}),
                &AlertSettings::default(),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "value: expected exactly one alert, found 2"
        );
        let a = Defender
            .parse(json!({"value": [alert]}), &AlertSettings::default())
            .unwrap();
        assert_eq!(a.severity, Severity::Informational);
    }

    #[test]
    fn errors_inside_a_list_name_the_item() {
        let alert = json!({"id": "a", "providerAlertId": "p", "evidence": [], "title": "t",
                           "createdDateTime": "later"});
        let err = Defender
            .parse(json!({"value": [alert]}), &AlertSettings::default())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("value.0.createdDateTime: "),
            "{err}"
        );
    }
}
