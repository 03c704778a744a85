//! Lacework alerts, in both shapes that reach riposte under the one source name `lacework`:
//!
//! - the **webhook** alert channel's flat body (reference E2), which names no user, resource or
//!   IP, so the alert is marked `needs_enrichment` and [`enrich`] fills it from Details;
//! - an API v2 alert **Details** response (E1), with or without its `data` envelope.
//!
//! Lacework documents the Details `entityMap` as `{"<EntityType>": [{"KEY": {…}, "PROPS": {…}}]}`
//! and no Azure keys inside it (E3 "OPEN"). The **principal** — whom riposte acts on — comes
//! only from the typed entries that name who acted: the `CT_User` entity (`KEY.username`,
//! `KEY.principal_id`, `PROPS.principal_type`) and the Activity Log record of an
//! `AzureActivityEvent` (`PROPS`) or `Events` (`PROPS.EVENT.AZURE_ACTIVITY_LOG`) entity, at its
//! documented Activity Log fields (`caller`, `claims`, `authorization.evidence.principalType`).
//! Never from another entity type, a description, or JSON text inside a field: those hold
//! what an attacker chose (resource names, tags, request bodies). Resources, the operation and
//! the caller's IP are still searched tolerantly; `[alerts.lacework]` JSON pointers (relative
//! to the alert object, i.e. inside `data`, explicit operator configuration) override field by
//! field.

use serde_json::{Map, Value, json};

use super::json::{self, PrincipalHints, Search};
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

/// Search order for the fields that do not choose whom riposte acts on. Every value must look
/// right (an operation has a `/`, an IP parses, a resource is a strict ARM id) so that a key
/// reused for something else in an unknown entityMap shape is passed over.
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

/// The entity types whose entries name who acted, and where in an entry its Activity Log
/// record sits (`AzureActivityEvent` keeps it in `PROPS`, `Events` in `PROPS.EVENT.AZURE_ACTIVITY_LOG`).
const USER_ENTITY: &str = "CT_User";
const ACTIVITY_ENTITIES: &[(&str, &[&str])] = &[
    ("AzureActivityEvent", &["PROPS"]),
    ("Events", &["PROPS", "EVENT", "AZURE_ACTIVITY_LOG"]),
];

/// The entries of one entity type of the entityMap (type names compare with [`json::norm_key`]).
fn entries<'a>(
    alert: &'a Value,
    entity_type: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    alert
        .get("entityMap")
        .and_then(Value::as_object)
        .and_then(|map| json::get_ci(map, entity_type))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// The object at `keys` below `map`, keys compared with [`json::norm_key`].
fn object_at<'a>(map: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Map<String, Value>> {
    keys.iter()
        .try_fold(map, |cur, k| json::get_ci(cur, k)?.as_object())
}

/// Who acted, according to one Activity Log record: its token's claims (an object, or the
/// JSON text Azure serialises them into — the one field parsed again), then `caller` (a UPN
/// for a user, the object id for a service principal).
fn activity_record_hints(record: &Map<String, Value>) -> PrincipalHints {
    let claims = json::get_ci(record, "claims").and_then(|c| match c {
        Value::Object(_) => Some(c.clone()),
        _ => json::embedded_json(c).filter(Value::is_object),
    });
    let mut hints = claims
        .as_ref()
        .and_then(Value::as_object)
        .map(json::claims_hints)
        .unwrap_or_default();
    hints.object_id = hints.object_id.filter(|s| json::looks_like_guid(s));
    hints.tenant_id = hints.tenant_id.filter(|s| json::looks_like_guid(s));
    let caller = json::follow(record, &["caller"]);
    if hints.upn.is_none() {
        hints.upn = caller.clone().filter(|c| json::looks_like_upn(c));
    }
    if hints.object_id.is_none() {
        hints.object_id = caller.filter(|c| json::looks_like_guid(c));
    }
    hints.declared_type = json::follow(record, &["authorization", "evidence", "principalType"]);
    hints
}

/// Whether two sets of hints name the same principal (or `other` names none), so `other` may
/// fill in what `chosen` lacks (the tenant, the token's type) without mixing two principals.
fn same_principal(chosen: &PrincipalHints, other: &PrincipalHints) -> bool {
    let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    };
    eq(&chosen.upn, &other.upn) && eq(&chosen.object_id, &other.object_id)
}

/// The principal from the typed entityMap entries only: the first `CT_User` entry that names
/// one, else the first Activity Log record that does; later records about the same principal
/// fill in its tenant and token type.
fn typed_principal(alert: &Value) -> PrincipalHints {
    let mut users = entries(alert, USER_ENTITY).map(|entry| PrincipalHints {
        upn: object_at(entry, &["KEY"])
            .and_then(|k| json::follow(k, &["username"]))
            .filter(|s| json::looks_like_upn(s)),
        object_id: object_at(entry, &["KEY"])
            .and_then(|k| json::follow(k, &["principal_id"]))
            .filter(|s| json::looks_like_guid(s)),
        declared_type: object_at(entry, &["PROPS"])
            .and_then(|p| json::follow(p, &["principal_type"])),
        ..PrincipalHints::default()
    });
    let records: Vec<PrincipalHints> = ACTIVITY_ENTITIES
        .iter()
        .flat_map(|(entity_type, path)| {
            entries(alert, entity_type).filter_map(|entry| object_at(entry, path))
        })
        .map(activity_record_hints)
        .collect();
    let names_someone = |h: &PrincipalHints| h.upn.is_some() || h.object_id.is_some();
    let mut records = records.into_iter().filter(names_someone);
    let Some(mut chosen) = users.find(names_someone).or_else(|| records.next()) else {
        return PrincipalHints::default();
    };
    for record in records {
        if !same_principal(&chosen, &record) {
            continue;
        }
        chosen.upn = chosen.upn.or(record.upn);
        chosen.object_id = chosen.object_id.or(record.object_id);
        chosen.tenant_id = chosen.tenant_id.or(record.tenant_id);
        chosen.declared_type = chosen.declared_type.or(record.declared_type);
        chosen.token_type = chosen.token_type.or(record.token_type);
        chosen.has_app_id |= record.has_app_id;
    }
    chosen
}

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

    let mut hints = typed_principal(alert);
    for (field, slot) in [
        ("principal_upn", &mut hints.upn),
        ("principal_object_id", &mut hints.object_id),
        ("tenant_id", &mut hints.tenant_id),
    ] {
        if over.overridden(field) {
            *slot = over.text(field)?;
        }
    }

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

    /// Activity Log fields under an undocumented entity type and nesting: the resource, the
    /// operation and the IP are still found, but nobody is named, since only the typed
    /// entries may say whom riposte acts on.
    #[test]
    fn an_untyped_shape_names_resources_but_no_principal() {
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
        assert_eq!(a.principal, None);
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.45"));
        assert_eq!(
            a.operation.as_deref(),
            Some("Microsoft.Compute/virtualMachines/runCommand/action")
        );
        assert_eq!(a.resources.len(), 1);
        assert_eq!(a.resources[0].name.as_deref(), Some("vm-web-01"));
    }

    /// The typed entries in both shapes the fixtures hold: `CT_User` with an
    /// `AzureActivityEvent`, and an `Events` Activity Log record with serialised claims.
    #[test]
    fn the_principal_comes_from_the_typed_entries() {
        for fixture in [SEED, EVENTS] {
            let a = parse_fixture(fixture, |_| {});
            let p = a.principal.expect(fixture);
            assert_eq!(p.upn.as_deref(), Some(ALEX), "{fixture}");
            assert_eq!(p.object_id.as_deref(), Some(ALEX_ID), "{fixture}");
            assert_eq!(p.tenant_id.as_deref(), Some(TENANT), "{fixture}");
            assert_eq!(p.kind, PrincipalType::User, "{fixture}");
        }
    }

    const SEED: &str = include_str!("../../tests/fixtures/alerts/lacework-details.json");
    const EVENTS: &str = include_str!("../../tests/fixtures/alerts/lacework-details-events.json");
    const ALEX: &str = "alex.wilber@contoso.com";
    const ALEX_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
    const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
    const CEO: &str = "ceo@contoso.com";

    /// Parses a fixture's alert object after `edit` (which sees the alert, inside any `data`).
    fn parse_fixture(fixture: &str, edit: impl FnOnce(&mut Value)) -> Alert {
        let mut raw: Value = serde_json::from_str(fixture).unwrap();
        let alert = match raw.get_mut("data") {
            Some(_) => &mut raw["data"],
            None => &mut raw,
        };
        edit(alert);
        Lacework.parse(raw, &AlertSettings::default()).unwrap()
    }

    fn upn_of(a: &Alert) -> Option<&str> {
        a.principal.as_ref().and_then(|p| p.upn.as_deref())
    }

    /// The tolerant search took the shallowest `caller`/`userName`/… anywhere: a second user
    /// in a description object beat the Activity Log record's caller.
    #[test]
    fn a_user_in_a_description_does_not_steer_the_principal() {
        for fixture in [SEED, EVENTS] {
            let a = parse_fixture(fixture, |alert| {
                alert["alertInfo"]["description"] = json!({"text": format!("Azure user {CEO} invoked …"), "caller": CEO, "userName": CEO});
            });
            assert_eq!(upn_of(&a), Some(ALEX), "{fixture}");
        }
    }

    /// Another entity type — a resource whose tags the attacker wrote — naming a user.
    #[test]
    fn a_user_in_an_unrelated_entity_type_does_not_steer_the_principal() {
        for fixture in [SEED, EVENTS] {
            let a = parse_fixture(fixture, |alert| {
                alert["entityMap"]["Resource"] = json!([{
                    "KEY": {"caller": CEO, "upn": CEO},
                    "PROPS": {"tags": {"userPrincipalName": CEO, "objectId": "0000aaaa-bbbb-4ccc-8ddd-eeeeffff0000"}}
                }]);
            });
            assert_eq!(upn_of(&a), Some(ALEX), "{fixture}");
            assert_eq!(
                a.principal.unwrap().object_id.as_deref(),
                Some(ALEX_ID),
                "{fixture}"
            );
        }
    }

    /// JSON text inside a field that sources use for serialised JSON (`properties`), outside
    /// the Activity Log record: it was parsed and its `caller` was the shallowest.
    #[test]
    fn json_text_inside_a_field_does_not_steer_the_principal() {
        for fixture in [SEED, EVENTS] {
            let a = parse_fixture(fixture, |alert| {
                let entity = if alert["entityMap"].get("Events").is_some() {
                    "Events"
                } else {
                    "AzureActivityEvent"
                };
                alert["entityMap"][entity][0]["PROPS"]["properties"] = json!(format!(
                    "{{\"caller\": \"{CEO}\", \"principalType\": \"User\"}}"
                ));
                alert["entityMap"][entity][0]["KEY"]["authorization"] =
                    json!(format!("{{\"caller\": \"{CEO}\"}}"));
            });
            assert_eq!(upn_of(&a), Some(ALEX), "{fixture}");
        }
    }

    /// A record about someone else does not lend its tenant or token type to the principal.
    #[test]
    fn a_second_record_about_another_user_adds_nothing() {
        let a = parse_fixture(SEED, |alert| {
            alert["entityMap"]["AzureActivityEvent"][0]["PROPS"]["claims"] = json!({
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": CEO,
                "idtyp": "app"
            });
        });
        let p = a.principal.unwrap();
        assert_eq!(p.upn.as_deref(), Some(ALEX));
        assert_eq!(p.kind, PrincipalType::User);
        assert_eq!(p.tenant_id, None);
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
        // Without the pointer, neither `User` nor `Other` is a typed entity: nobody is named.
        let a = Lacework.parse(raw, &AlertSettings::default()).unwrap();
        assert_eq!(a.principal, None);
    }

    #[test]
    fn service_principal_from_activity_log_evidence() {
        let raw = details(json!({"AzureActivityEvent": [{"KEY": {}, "PROPS": {
            "caller": "7d2c0000-0000-4000-8000-00000000abcd",
            "authorization": {"evidence": {"principalType": "ServicePrincipal"}}
        }}]}));
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
