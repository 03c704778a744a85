//! Lacework alerts, in both shapes that reach riposte under the one source name `lacework`:
//!
//! - the **webhook** alert channel's flat body (reference E2), which names no user, resource or
//!   IP, so the alert is marked `needs_enrichment` and [`enrich`] fills it from Details;
//! - an API v2 alert **Details** response (E1), with or without its `data` envelope.
//!
//! Lacework documents no schema for the Azure `entityMap` (E3 "OPEN"), so Details are searched
//! tolerantly for the Activity Log fields wherever they sit; `[alerts.lacework]` JSON pointers
//! (relative to the alert object, i.e. inside `data`) override the search field by field.

use serde_json::{Value, json};

use super::json::{self, OID_CLAIMS, PrincipalHints, Search, TID_CLAIMS, UPN_CLAIMS};
use super::{
    Adapter, Alert, AlertError, AlertSettings, ArmId, Principal, Resource, Source, kind_for_title,
};

pub(crate) struct Lacework;

impl Adapter for Lacework {
    fn name(&self) -> &'static str {
        "lacework"
    }

    fn detect(&self, raw: &Value) -> bool {
        is_webhook(raw) || details_alert(raw).is_some()
    }

    fn parse(&self, raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
        if is_webhook(&raw) {
            return parse_webhook(raw, settings);
        }
        if details_alert(&raw).is_some() {
            return parse_details(raw, settings);
        }
        Err(AlertError::field(
            "data.alertId",
            "required field is missing; the payload is neither a Lacework webhook \
             (event_id, event_title) nor an alert Details response (data.alertId, data.alertName)",
        ))
    }
}

/// The webhook's two identifying fields plus one that only Lacework sends.
fn is_webhook(raw: &Value) -> bool {
    raw.get("event_id").is_some()
        && raw.get("event_title").is_some()
        && (raw.get("lacework_account").is_some() || raw.get("event_link").is_some())
}

/// The alert object of a Details response and the path prefix of its fields: `data` may be the
/// object, a one-element array, or absent (the object itself).
fn details_alert(raw: &Value) -> Option<(&Value, &'static str)> {
    let is_alert =
        |v: &Value| json::at(v, "alertId").is_some() && json::at(v, "alertName").is_some();
    match raw.get("data") {
        Some(d @ Value::Object(_)) if is_alert(d) => Some((d, "data.")),
        Some(Value::Array(items)) if items.len() == 1 && is_alert(&items[0]) => {
            Some((&items[0], "data.0."))
        }
        _ if is_alert(raw) => Some((raw, "")),
        _ => None,
    }
}

fn parse_webhook(raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
    let id = json::req_text(&raw, "event_id")?;
    let title = json::req_text(&raw, "event_title")?;
    let severity = json::severity(
        json::at(&raw, "event_severity").ok_or_else(|| json::missing("event_severity"))?,
        "event_severity",
    )?;
    // The format is undocumented; the raw string stays in `raw` for the audit trail.
    let observed_at = json::time_loose(
        json::at(&raw, "event_timestamp").ok_or_else(|| json::missing("event_timestamp"))?,
        "event_timestamp",
    )?;
    let kind = kind_for_title(&title, settings);
    Ok(Alert {
        id,
        source: Source::Lacework,
        kind,
        title,
        severity,
        observed_at,
        principal: None,
        resources: Vec::new(),
        operation: None,
        source_ip: None,
        needs_enrichment: true,
        raw,
    })
}

fn parse_details(raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
    let (alert, prefix) = details_alert(&raw).ok_or_else(|| json::missing("data.alertId"))?;
    let over = Overrides {
        alert,
        prefix,
        settings,
    };
    let id = over.required("id", "alertId")?;
    let title = over.required("title", "alertName")?;
    let (sev_value, sev_path) = over.value("severity", "severity")?;
    let severity = json::severity(
        sev_value.ok_or_else(|| json::missing(&sev_path))?,
        &sev_path,
    )?;
    let (time_value, time_path) = over.value("observed_at", "startTime")?;
    let observed_at = json::time_loose(
        time_value.ok_or_else(|| json::missing(&time_path))?,
        &time_path,
    )?;
    let kind = match over.text("kind")? {
        Some(k) => k,
        None => kind_of(alert, &title, settings),
    };
    let found = who_and_what(alert, settings)?;
    Ok(Alert {
        id,
        source: Source::Lacework,
        kind,
        title,
        severity,
        observed_at,
        principal: found.principal,
        resources: found.resources,
        operation: found.operation,
        source_ip: found.source_ip,
        needs_enrichment: false,
        raw,
    })
}

/// The kind from the alert name, else from `alertInfo.subject` (which repeats the rule's
/// wording when the name is a custom one).
fn kind_of(alert: &Value, title: &str, settings: &AlertSettings) -> String {
    let kind = kind_for_title(title, settings);
    if kind != "other" {
        return kind;
    }
    json::at(alert, "alertInfo.subject")
        .and_then(Value::as_str)
        .map(|s| kind_for_title(s, settings))
        .unwrap_or(kind)
}

/// Fills a webhook alert from the Details of the same alert: principal, resources, operation
/// and IP come from Details; id, source, title, severity and time stay the webhook's, since the
/// webhook is what was received and acknowledged. Both payloads are kept in `raw`.
///
/// Details for a different alert id are refused: acting on them would contain the wrong user.
pub fn enrich(
    webhook: &Alert,
    details: Value,
    settings: &AlertSettings,
) -> Result<Alert, AlertError> {
    if webhook.source != Source::Lacework {
        return Err(AlertError::field(
            "source",
            format!(
                "only lacework alerts are enriched from Lacework Details, found {}",
                webhook.source
            ),
        ));
    }
    let (alert, prefix) = details_alert(&details).ok_or_else(|| {
        AlertError::field(
            "data.alertId",
            "required field is missing; expected a Lacework alert Details response",
        )
    })?;
    let over = Overrides {
        alert,
        prefix,
        settings,
    };
    let (details_id, id_path) = over.text_at("id", "alertId")?;
    if let Some(details_id) = details_id
        && details_id != webhook.id
    {
        return Err(AlertError::field(
            id_path,
            format!(
                "these Details are for alert {details_id}, not {}",
                webhook.id
            ),
        ));
    }
    let found = who_and_what(alert, settings)?;
    let mut kind = webhook.kind.clone();
    if kind == "other"
        && let Some(name) = json::at(alert, "alertName").and_then(Value::as_str)
    {
        kind = kind_of(alert, name, settings);
    }
    // Enriching twice must not nest the webhook inside itself.
    let webhook_raw = match webhook.raw.get("webhook") {
        Some(inner) if !webhook.needs_enrichment && webhook.raw.get("details").is_some() => {
            inner.clone()
        }
        _ => webhook.raw.clone(),
    };
    Ok(Alert {
        kind,
        principal: found.principal,
        resources: found.resources,
        operation: found.operation,
        source_ip: found.source_ip,
        needs_enrichment: false,
        raw: json!({"webhook": webhook_raw, "details": details}),
        ..webhook.clone()
    })
}

/// `[alerts.lacework]` pointers, resolved against the alert object; a field without a pointer
/// falls back to its documented Details key.
struct Overrides<'a> {
    alert: &'a Value,
    prefix: &'static str,
    settings: &'a AlertSettings,
}

impl<'a> Overrides<'a> {
    fn pointer(&self, field: &str) -> Option<&'a str> {
        let map = &self.settings.lacework;
        match field {
            "id" => map.id.as_deref(),
            "title" => map.title.as_deref(),
            "kind" => map.kind.as_deref(),
            "severity" => map.severity.as_deref(),
            "observed_at" => map.observed_at.as_deref(),
            "principal_upn" => map.principal_upn.as_deref(),
            "principal_object_id" => map.principal_object_id.as_deref(),
            "tenant_id" => map.tenant_id.as_deref(),
            "resources" => map.resources.as_deref(),
            "operation" => map.operation.as_deref(),
            "source_ip" => map.source_ip.as_deref(),
            _ => None,
        }
    }

    fn overridden(&self, field: &str) -> bool {
        self.pointer(field).is_some()
    }

    /// The value and the path to report for it: the pointer when configured, else the key.
    fn value(&self, field: &str, key: &str) -> Result<(Option<&'a Value>, String), AlertError> {
        match self.pointer(field) {
            Some(ptr) => Ok((
                json::pointer(self.alert, ptr, &format!("alerts.lacework.{field}"))?,
                ptr.to_string(),
            )),
            None => Ok((json::at(self.alert, key), format!("{}{key}", self.prefix))),
        }
    }

    fn text_at(&self, field: &str, key: &str) -> Result<(Option<String>, String), AlertError> {
        let (v, path) = self.value(field, key)?;
        let text = match v {
            Some(v) => json::as_text(v, &path)?,
            None => None,
        };
        Ok((text, path))
    }

    /// Text from a configured pointer only (`None` when not configured).
    fn text(&self, field: &str) -> Result<Option<String>, AlertError> {
        if !self.overridden(field) {
            return Ok(None);
        }
        Ok(self.text_at(field, "")?.0)
    }

    fn required(&self, field: &str, key: &str) -> Result<String, AlertError> {
        let (text, path) = self.text_at(field, key)?;
        text.ok_or_else(|| json::missing(&path))
    }
}

/// Who did what, where from.
struct Found {
    principal: Option<Principal>,
    resources: Vec<Resource>,
    operation: Option<String>,
    source_ip: Option<String>,
}

/// Search order for each field. Explicit claim names come before looser keys, and every value
/// must look right (a UPN has an `@`, an object id is a GUID, an IP parses) so that a key
/// reused for something else in an unknown entityMap shape is passed over.
const UPN_KEYS: &[&[&str]] = &[
    &["claims", UPN_CLAIMS[0]],
    &["claims", "upn"],
    &["caller"],
    &["userPrincipalName"],
    &["upn"],
    &[UPN_CLAIMS[0]],
    &["principalName"],
    &["principalId"],
    &["userName"],
    &["unique_name"],
];
const OID_KEYS: &[&[&str]] = &[
    &["claims", OID_CLAIMS[0]],
    &["claims", "oid"],
    &[OID_CLAIMS[0]],
    &["objectIdentifier"],
    &["oid"],
    &["aadUserId"],
    &["azureAdUserId"],
    &["principalObjectId"],
    &["principalId"],
    &["objectId"],
    // A service principal's caller is its object id.
    &["caller"],
];
const TID_KEYS: &[&[&str]] = &[&[TID_CLAIMS[0]], &["tid"], &["tenantId"], &["aadTenantId"]];
const OPERATION_KEYS: &[&[&str]] = &[
    &["operationName", "value"],
    &["operationName"],
    &["OperationNameValue"],
];
const IP_KEYS: &[&[&str]] = &[
    &["httpRequest", "clientIpAddress"],
    &["claims", "ipaddr"],
    &["callerIpAddress"],
    &["ipaddr"],
    &["clientIpAddress"],
    &["sourceIpAddress"],
    &["sourceIp"],
    &["ipAddress"],
];
const RESOURCE_KEYS: &[&[&str]] = &[
    &["resourceId"],
    &["resourceUri"],
    &["targetResourceId"],
    &["authorization", "scope"],
];

fn who_and_what(alert: &Value, settings: &AlertSettings) -> Result<Found, AlertError> {
    let over = Overrides {
        alert,
        prefix: "",
        settings,
    };
    let search = Search::new(alert);
    let pick = |field: &str,
                keys: &[&[&str]],
                accept: fn(&str) -> bool|
     -> Result<Option<String>, AlertError> {
        if over.overridden(field) {
            over.text(field)
        } else {
            Ok(search.first(keys, accept))
        }
    };

    let upn = pick("principal_upn", UPN_KEYS, json::looks_like_upn)?;
    let hints = PrincipalHints {
        upn,
        object_id: pick("principal_object_id", OID_KEYS, json::looks_like_guid)?,
        tenant_id: pick("tenant_id", TID_KEYS, json::looks_like_guid)?,
        declared_type: search.first(&[&["principalType"]], |_| true),
        token_type: search.first(&[&["idtyp"]], |_| true),
        has_app_id: search.first(&[&["appid"], &["azp"]], |_| true).is_some(),
    };

    let mut resources = Vec::new();
    if over.overridden("resources") {
        let (value, path) = over.value("resources", "")?;
        match value {
            None => {}
            Some(Value::String(s)) => json::push_resource(&mut resources, s),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let id = item.as_str().ok_or_else(|| {
                        AlertError::field(
                            format!("{path}/{i}"),
                            format!("expected an ARM id, found {}", json::describe(item)),
                        )
                    })?;
                    json::push_resource(&mut resources, id);
                }
            }
            Some(other) => {
                return Err(AlertError::field(
                    path,
                    format!(
                        "expected an ARM id or an array of them, found {}",
                        json::describe(other)
                    ),
                ));
            }
        }
    } else {
        for id in search.all(RESOURCE_KEYS, |s| ArmId::parse(s).is_some()) {
            json::push_resource(&mut resources, &id);
        }
        if resources.is_empty() {
            // Last resort: any value that is the ARM id of a resource, except Activity Log
            // event ids (`…/events/{id}/ticks/{n}`), which name a log record.
            for (key, id) in search.strings() {
                let is_resource = ArmId::parse(&id).is_some_and(|a| {
                    a.namespace.is_some()
                        && !a
                            .types
                            .iter()
                            .any(|(t, _)| t.eq_ignore_ascii_case("events"))
                });
                if is_resource && !key.eq_ignore_ascii_case("id") {
                    json::push_resource(&mut resources, &id);
                }
            }
        }
    }

    Ok(Found {
        principal: hints.into_principal(),
        resources,
        operation: pick("operation", OPERATION_KEYS, |s| s.contains('/'))?,
        // Normalised (`203.0.113.45:51234` → `203.0.113.45`); a pointer's value is kept as is.
        source_ip: pick("source_ip", IP_KEYS, |s| json::ip_address(s).is_some())?
            .map(|ip| json::ip_address(&ip).unwrap_or(ip)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{FieldMap, PrincipalType, Severity};

    fn webhook() -> Value {
        json!({
            "event_title": "New Azure API Call Invoked by User Accessed Resource for the First Time",
            "event_link": "https://contoso.lacework.net/ui/investigation/recents/EventDossier-51234",
            "lacework_account": "contoso",
            "event_source": "Azure",
            "event_description": "d",
            "event_timestamp": "21 Apr 2026 04:00 GMT",
            "event_type": "CloudActivity",
            "event_id": 51234,
            "event_severity": 2
        })
    }

    #[test]
    fn webhook_needs_enrichment() {
        let a = Lacework
            .parse(webhook(), &AlertSettings::default())
            .unwrap();
        assert_eq!(a.id, "51234");
        assert_eq!(a.kind, "first_access");
        assert_eq!(a.severity, Severity::High);
        assert!(a.needs_enrichment && a.principal.is_none() && a.resources.is_empty());
    }

    /// Activity Log fields under an undocumented, differently cased nesting, with claims
    /// serialised into a string.
    fn details(entity_map: Value) -> Value {
        json!({"data": {
            "alertId": 51234, "alertName": "Azure first access", "severity": "High",
            "startTime": "2026-04-21T04:00:00.000Z",
            "alertInfo": {"subject": "New Azure User Performed Operation on Resource for the First Time"},
            "entityMap": entity_map
        }})
    }

    #[test]
    fn tolerant_search_in_unknown_shapes() {
        let raw = details(
            json!({"AzureActivity": [{"KEY": {"EVENT_ID": "e"}, "PROPS": {
                "ACTIVITY": {
                    "CLAIMS": "{\"http://schemas.microsoft.com/identity/claims/objectidentifier\": \"a1e7d1c2-5b3f-4c8e-9d21-000000000001\", \"ipaddr\": \"203.0.113.45\"}",
                    "Caller": "alex.wilber@contoso.com",
                    "OPERATION_NAME": {"VALUE": "Microsoft.Compute/virtualMachines/runCommand/action"},
                    "RESOURCE_ID": "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourcegroups/rg-prod/providers/microsoft.compute/virtualmachines/vm-web-01"
                }
            }}]}),
        );
        let a = Lacework.parse(raw, &AlertSettings::default()).unwrap();
        assert_eq!(a.kind, "first_access", "from alertInfo.subject");
        let p = a.principal.unwrap();
        assert_eq!(p.upn.as_deref(), Some("alex.wilber@contoso.com"));
        assert_eq!(
            p.object_id.as_deref(),
            Some("a1e7d1c2-5b3f-4c8e-9d21-000000000001")
        );
        assert_eq!(p.kind, PrincipalType::User);
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.45"));
        assert_eq!(
            a.operation.as_deref(),
            Some("Microsoft.Compute/virtualMachines/runCommand/action")
        );
        assert_eq!(a.resources.len(), 1);
        assert_eq!(a.resources[0].name.as_deref(), Some("vm-web-01"));
    }

    #[test]
    fn pointers_override_the_search() {
        let raw = details(
            json!({"User": [{"KEY": {"principal": "alex.wilber@contoso.com"}}],
                                  "Other": {"caller": "someone.else@contoso.com",
                                            "where": ["/subscriptions/s/resourceGroups/rg"]}}),
        );
        let settings = AlertSettings {
            lacework: FieldMap {
                principal_upn: Some("/entityMap/User/0/KEY/principal".into()),
                resources: Some("/entityMap/Other/where".into()),
                ..FieldMap::default()
            },
            ..AlertSettings::default()
        };
        let a = Lacework.parse(raw.clone(), &settings).unwrap();
        assert_eq!(
            a.principal.and_then(|p| p.upn).as_deref(),
            Some("alex.wilber@contoso.com")
        );
        assert_eq!(a.resources[0].resource_group.as_deref(), Some("rg"));
        // Without the pointer, the search finds the caller.
        let a = Lacework.parse(raw, &AlertSettings::default()).unwrap();
        assert_eq!(
            a.principal.and_then(|p| p.upn).as_deref(),
            Some("someone.else@contoso.com")
        );
    }

    #[test]
    fn service_principal_from_activity_log_evidence() {
        let raw = details(json!({"Activity": {
            "caller": "7d2c0000-0000-4000-8000-00000000abcd",
            "authorization": {"evidence": {"principalType": "ServicePrincipal"}}
        }}));
        let p = Lacework
            .parse(raw, &AlertSettings::default())
            .unwrap()
            .principal
            .unwrap();
        assert_eq!(p.kind, PrincipalType::ServicePrincipal);
        assert_eq!(
            p.object_id.as_deref(),
            Some("7d2c0000-0000-4000-8000-00000000abcd")
        );
    }

    #[test]
    fn enrich_refuses_details_of_another_alert() {
        let hook = Lacework
            .parse(webhook(), &AlertSettings::default())
            .unwrap();
        let mut other = details(json!({}));
        other["data"]["alertId"] = json!(99);
        let err = enrich(&hook, other, &AlertSettings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data.alertId: these Details are for alert 99, not 51234"
        );
    }
}
