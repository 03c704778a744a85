//! Azure Monitor alerts in the common alert schema (reference E4).
//!
//! Activity Log alerts carry who did what: `alertContext.caller`, `claims` (a JSON object that
//! Azure serialises into a *string*), `operationName` and `authorization.scope`. Metric and log
//! alerts parse too; they simply name no principal.

use serde_json::Value;

use super::json;
use super::{Adapter, Alert, AlertError, AlertSettings, Source, kind_for_title};

pub(crate) struct AzureMonitor;

const SCHEMA_ID: &str = "azureMonitorCommonAlertSchema";

impl Adapter for AzureMonitor {
    fn name(&self) -> &'static str {
        "azure-monitor"
    }

    /// The schema id is the one field Microsoft guarantees on every common-schema payload.
    fn detect(&self, raw: &Value) -> bool {
        json::at(raw, "schemaId")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(SCHEMA_ID))
    }

    fn parse(&self, raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
        match json::at(&raw, "schemaId").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case(SCHEMA_ID) => {}
            Some(other) => {
                return Err(AlertError::field(
                    "schemaId",
                    format!("expected \"{SCHEMA_ID}\", found {other:?}"),
                ));
            }
            None => return Err(json::missing("schemaId")),
        }
        const E: &str = "data.essentials";
        const C: &str = "data.alertContext";
        let essentials = json::at(&raw, E).ok_or_else(|| json::missing(E))?;
        let context = json::at(&raw, C);

        let id = json::req_text(essentials, "alertId").map_err(|e| json::within(E, e))?;
        let title = json::req_text(essentials, "alertRule").map_err(|e| json::within(E, e))?;
        let severity_path = format!("{E}.severity");
        let severity = json::severity(
            json::at(essentials, "severity").ok_or_else(|| json::missing(&severity_path))?,
            &severity_path,
        )?;
        let fired_path = format!("{E}.firedDateTime");
        let observed_at = json::time_rfc3339(
            json::at(essentials, "firedDateTime").ok_or_else(|| json::missing(&fired_path))?,
            &fired_path,
        )?;
        let description =
            json::opt_text(essentials, "description").map_err(|e| json::within(E, e))?;
        let mut kind = kind_for_title(&title, settings);
        if kind == "other"
            && let Some(d) = &description
        {
            kind = kind_for_title(d, settings);
        }

        let mut resources = Vec::new();
        let mut principal = None;
        let mut operation = None;
        let mut source_ip = None;
        if let Some(ctx) = context {
            // The scope keeps ARM's casing; alertTargetIDs are often lower-cased copies.
            if let Some(scope) =
                json::opt_text(ctx, "authorization.scope").map_err(|e| json::within(C, e))?
            {
                json::push_resource(&mut resources, &scope);
            }
            operation = match json::at(ctx, "operationName") {
                Some(Value::Object(_)) => {
                    json::opt_text(ctx, "operationName.value").map_err(|e| json::within(C, e))?
                }
                Some(v) => json::as_text(v, &format!("{C}.operationName"))?,
                None => None,
            };
            let claims = claims(ctx)?;
            let mut hints = claims
                .as_ref()
                .and_then(Value::as_object)
                .map(json::claims_hints)
                .unwrap_or_default();
            if let Some(caller) = json::opt_text(ctx, "caller").map_err(|e| json::within(C, e))? {
                // The caller is the UPN for users and an object id for service principals.
                if json::looks_like_upn(&caller) {
                    hints.upn = Some(caller);
                } else if json::looks_like_guid(&caller) && hints.object_id.is_none() {
                    hints.object_id = Some(caller);
                }
            }
            hints.declared_type =
                json::opt_text(ctx, "authorization.evidence.principalType").unwrap_or(None);
            principal = hints.into_principal();
            source_ip = claims
                .as_ref()
                .and_then(Value::as_object)
                .and_then(|c| json::str_ci(c, &["ipaddr"]))
                .and_then(json::ip_address)
                .or_else(|| {
                    json::at(ctx, "httpRequest.clientIpAddress")
                        .and_then(Value::as_str)
                        .and_then(json::ip_address)
                });
        }
        match json::at(essentials, "alertTargetIDs") {
            Some(Value::Array(ids)) => {
                for (i, v) in ids.iter().enumerate() {
                    let path = format!("{E}.alertTargetIDs.{i}");
                    if let Some(id) = json::as_text(v, &path)? {
                        json::push_resource(&mut resources, &id);
                    }
                }
            }
            Some(other) => {
                return Err(AlertError::field(
                    format!("{E}.alertTargetIDs"),
                    format!(
                        "expected an array of ARM ids, found {}",
                        json::describe(other)
                    ),
                ));
            }
            None => {}
        }

        Ok(Alert {
            id,
            source: Source::AzureMonitor,
            kind,
            title,
            severity,
            observed_at,
            principal,
            resources,
            operation,
            source_ip,
            needs_enrichment: false,
            raw,
        })
    }
}

/// `alertContext.claims`, decoded: Activity Log alerts send it as a JSON string, other
/// producers as an object. A string that is not JSON is an error, since the principal would
/// otherwise silently vanish.
fn claims(ctx: &Value) -> Result<Option<Value>, AlertError> {
    match json::at(ctx, "claims") {
        None => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(v @ Value::String(s)) if !s.trim().is_empty() => match json::embedded_json(v) {
            Some(parsed @ Value::Object(_)) => Ok(Some(parsed)),
            _ => Err(AlertError::field(
                "data.alertContext.claims",
                format!(
                    "expected a JSON object (or one serialised as a string), found {}",
                    json::describe(v)
                ),
            )),
        },
        Some(Value::String(_)) => Ok(None),
        Some(other) => Err(AlertError::field(
            "data.alertContext.claims",
            format!("expected a JSON object, found {}", json::describe(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::PrincipalType;
    use serde_json::json;

    fn payload(claims: Value) -> Value {
        json!({
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": {
                    "alertId": "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/1",
                    "alertRule": "vm-run-command",
                    "severity": "Sev1",
                    "firedDateTime": "2026-04-21T04:00:12.1234567Z",
                    "alertTargetIDs": ["/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm"]
                },
                "alertContext": {
                    "authorization": {"scope": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"},
                    "claims": claims,
                    "operationName": "Microsoft.Compute/virtualMachines/runCommand/action"
                }
            }
        })
    }

    #[test]
    fn claims_as_string_or_object() {
        let claims = json!({
            "http://schemas.microsoft.com/identity/claims/objectidentifier": "oid-1",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "alex.wilber@contoso.com",
            "ipaddr": "203.0.113.45"
        });
        for c in [claims.clone(), Value::String(claims.to_string())] {
            let alert = AzureMonitor
                .parse(payload(c), &AlertSettings::default())
                .unwrap();
            let p = alert.principal.unwrap();
            assert_eq!(p.upn.as_deref(), Some("alex.wilber@contoso.com"));
            assert_eq!(p.object_id.as_deref(), Some("oid-1"));
            assert_eq!(alert.source_ip.as_deref(), Some("203.0.113.45"));
            // Scope spelling wins over the lower-cased target id; one resource, not two.
            assert_eq!(alert.resources.len(), 1);
            assert!(
                alert.resources[0]
                    .id
                    .contains("Microsoft.Compute/virtualMachines/vm")
            );
        }
    }

    #[test]
    fn app_only_caller_is_a_service_principal() {
        let mut p = payload(
            json!({"appid": "c0ffee00-1111-4222-8333-444455556666", "idtyp": "app",
            "http://schemas.microsoft.com/identity/claims/objectidentifier": "sp-oid"}),
        );
        p["data"]["alertContext"]["caller"] = json!("sp-oid");
        let alert = AzureMonitor.parse(p, &AlertSettings::default()).unwrap();
        let principal = alert.principal.unwrap();
        assert_eq!(principal.kind, PrincipalType::ServicePrincipal);
        assert_eq!(principal.upn, None);
    }

    #[test]
    fn claims_that_are_not_json_are_an_error() {
        let err = AzureMonitor
            .parse(payload(json!("{not json")), &AlertSettings::default())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("data.alertContext.claims: "),
            "{err}"
        );
    }
}
