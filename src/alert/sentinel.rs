//! Microsoft Sentinel incidents, as the automation-rule / Logic App incident trigger delivers
//! them (reference E5), or as the incidents API returns one (the same object without the
//! trigger's envelope).
//!
//! Entities come in two spellings: the incident API's camelCase `relatedEntities`
//! (`{kind, properties{accountName, upnSuffix, aadUserId}}`) and the alerts' PascalCase
//! `Entities` (`{Type, Name, UPNSuffix, AadUserId}`), the latter sometimes serialised into a
//! string. Both are read, wherever they sit below the incident's properties.

use serde_json::{Map, Value};

use super::json::{self, PrincipalHints};
use super::{Adapter, Alert, AlertError, AlertSettings, Principal, Source, kind_for_title};

pub(crate) struct Sentinel;

const INCIDENT_TYPE: &str = "Microsoft.SecurityInsights/Incidents";

impl Adapter for Sentinel {
    fn name(&self) -> &'static str {
        "sentinel"
    }

    fn detect(&self, raw: &Value) -> bool {
        let is_incident_type = |path: &str| {
            json::at(raw, path)
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(INCIDENT_TYPE))
        };
        json::at(raw, "objectSchemaType")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("Incident"))
            || is_incident_type("object.type")
            || is_incident_type("type")
    }

    fn parse(&self, raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
        // The trigger wraps the incident in `object`; the API returns it bare.
        let base = if json::at(&raw, "object").is_some() {
            "object"
        } else {
            ""
        };
        let path = |rest: &str| {
            if base.is_empty() {
                rest.to_string()
            } else {
                format!("{base}.{rest}")
            }
        };
        let props_path = path("properties");
        let props = json::at(&raw, &props_path).ok_or_else(|| json::missing(&props_path))?;
        let field = |name: &str| format!("{props_path}.{name}");

        let id = match json::opt_text(&raw, &path("id"))? {
            Some(id) => id,
            None => {
                json::opt_text(&raw, &path("name"))?.ok_or_else(|| json::missing(&path("id")))?
            }
        };
        let title = json::req_text(&raw, &field("title"))?;
        let severity = json::severity(
            json::at(props, "severity").ok_or_else(|| json::missing(&field("severity")))?,
            &field("severity"),
        )?;
        let observed_at = json::time_rfc3339(
            json::at(props, "createdTimeUtc")
                .ok_or_else(|| json::missing(&field("createdTimeUtc")))?,
            &field("createdTimeUtc"),
        )?;
        let mut kind = kind_for_title(&title, settings);
        if kind == "other"
            && let Some(d) = json::opt_text(&raw, &field("description"))?
        {
            kind = kind_for_title(&d, settings);
        }

        let entities = Entities::collect(props);
        // Sentinel carries no operation field; analytic rules often surface the Activity
        // Log's `OperationNameValue` as a custom detail in the alerts' extended properties.
        let operation = json::Search::new(props).first(
            &[
                &["OperationNameValue"],
                &["operationName", "value"],
                &["operationName"],
            ],
            |s| s.contains('/'),
        );

        Ok(Alert {
            id,
            source: Source::Sentinel,
            kind,
            title,
            severity,
            observed_at,
            principal: entities.principal,
            resources: entities.resources,
            operation,
            source_ip: entities.source_ip,
            needs_enrichment: false,
            raw,
        })
    }
}

/// What the incident's entities say, merged across both spellings.
#[derive(Default)]
struct Entities {
    principal: Option<Principal>,
    resources: Vec<super::Resource>,
    source_ip: Option<String>,
}

impl Entities {
    fn collect(props: &Value) -> Entities {
        let mut found = Entities::default();
        let mut lists = Vec::new();
        entity_lists(props, &mut lists, 0);
        for entity in lists
            .iter()
            .flat_map(|l| l.iter())
            .filter_map(Value::as_object)
        {
            found.add(entity);
        }
        found
    }

    fn add(&mut self, entity: &Map<String, Value>) {
        // camelCase: `kind` + `properties`; PascalCase: `Type` beside the fields. The camelCase
        // `type` is the ARM type (`Microsoft.SecurityInsights/Entities`), so `kind` comes first.
        let Some(kind) = json::str_ci(entity, &["kind", "type"]) else {
            return; // a PascalCase `$ref` to an entity listed elsewhere
        };
        let props = json::get_ci(entity, "properties")
            .and_then(Value::as_object)
            .unwrap_or(entity);
        match json::norm_key(kind).as_str() {
            "account" => self.add_account(props),
            "azureresource" => {
                if let Some(id) = json::str_ci(props, &["resourceId"]) {
                    json::push_resource(&mut self.resources, id);
                }
            }
            // A host entity of an Azure VM carries the VM's ARM id.
            "host" => {
                if let Some(id) = json::str_ci(props, &["azureID"])
                    && id.starts_with('/')
                {
                    json::push_resource(&mut self.resources, id);
                }
            }
            "ip" if self.source_ip.is_none() => {
                self.source_ip = json::str_ci(props, &["address"]).and_then(json::ip_address);
            }
            _ => {}
        }
    }

    /// The first account that names someone is the principal; later accounts for the same
    /// person (the other spelling of the same entity) only fill in what it lacked.
    fn add_account(&mut self, props: &Map<String, Value>) {
        let name = json::str_ci(props, &["accountName", "name"]);
        let suffix = json::str_ci(props, &["upnSuffix"]);
        let upn = json::str_ci(props, &["userPrincipalName", "upn"])
            .filter(|u| json::looks_like_upn(u))
            .map(str::to_string)
            .or_else(|| name.filter(|n| json::looks_like_upn(n)).map(str::to_string))
            .or_else(|| match (name, suffix) {
                (Some(n), Some(s)) => Some(format!("{n}@{s}")),
                _ => None,
            });
        let hints = PrincipalHints {
            upn,
            object_id: json::str_ci(props, &["aadUserId"]).map(str::to_string),
            tenant_id: json::str_ci(props, &["aadTenantId", "azureTenantId", "tenantId"])
                .map(str::to_string),
            declared_type: None,
            token_type: None,
            has_app_id: json::str_ci(props, &["appId"]).is_some(),
        };
        let Some(new) = hints.into_principal() else {
            return;
        };
        match &mut self.principal {
            None => self.principal = Some(new),
            Some(cur) => {
                let same_upn =
                    matches!((&cur.upn, &new.upn), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
                let same_id = matches!((&cur.object_id, &new.object_id), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
                if same_upn || same_id {
                    cur.upn = cur.upn.take().or(new.upn);
                    cur.object_id = cur.object_id.take().or(new.object_id);
                    cur.tenant_id = cur.tenant_id.take().or(new.tenant_id);
                }
            }
        }
    }
}

/// Arrays of entities below `value`: any `relatedEntities` or `Entities` key, whether it holds
/// an array or an array serialised into a string (Sentinel alerts do both).
fn entity_lists(value: &Value, out: &mut Vec<Vec<Value>>, depth: usize) {
    if depth > 32 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = json::norm_key(k);
                if key == "relatedentities" || key == "entities" {
                    match v {
                        Value::Array(items) => out.push(items.clone()),
                        Value::String(_) => {
                            if let Some(Value::Array(items)) = json::embedded_json(v) {
                                out.push(items);
                            }
                        }
                        _ => {}
                    }
                }
                entity_lists(v, out, depth + 1);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| entity_lists(v, out, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::PrincipalType;
    use serde_json::json;

    fn incident(props: Value) -> Value {
        let mut p = json!({
            "title": "First access", "severity": "High", "createdTimeUtc": "2026-04-21T04:05:00Z"
        });
        if let (Some(a), Some(b)) = (p.as_object_mut(), props.as_object()) {
            a.extend(b.clone());
        }
        json!({"objectSchemaType": "Incident", "object": {"id": "/subscriptions/s/x/Incidents/1", "properties": p}})
    }

    #[test]
    fn camel_case_related_entities() {
        let raw = incident(json!({"relatedEntities": [
            {"kind": "Account", "type": "Microsoft.SecurityInsights/Entities",
             "properties": {"accountName": "alex.wilber", "upnSuffix": "contoso.com", "aadUserId": "oid"}},
            {"kind": "Ip", "properties": {"address": "203.0.113.45"}},
            {"kind": "AzureResource", "properties": {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"}}
        ]}));
        let a = Sentinel.parse(raw, &AlertSettings::default()).unwrap();
        let p = a.principal.unwrap();
        assert_eq!(p.upn.as_deref(), Some("alex.wilber@contoso.com"));
        assert_eq!(p.object_id.as_deref(), Some("oid"));
        assert_eq!(p.kind, PrincipalType::User);
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.45"));
        assert_eq!(a.resources[0].name.as_deref(), Some("vm"));
    }

    #[test]
    fn pascal_case_entities_even_as_a_string() {
        let entities = json!([
            {"$id": "2", "Name": "alex.wilber", "UPNSuffix": "contoso.com", "Type": "account"},
            {"$id": "3", "AadUserId": "oid", "Name": "alex.wilber", "UPNSuffix": "contoso.com", "Type": "account"},
            {"$ref": "2"},
            {"$id": "4", "Address": "203.0.113.45", "Type": "ip"}
        ]);
        let raw = incident(json!({"alerts": [{"properties": {"Entities": entities.to_string()}}]}));
        let a = Sentinel.parse(raw, &AlertSettings::default()).unwrap();
        let p = a.principal.unwrap();
        assert_eq!(p.upn.as_deref(), Some("alex.wilber@contoso.com"));
        // Filled in from the second spelling of the same account.
        assert_eq!(p.object_id.as_deref(), Some("oid"));
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.45"));
    }

    #[test]
    fn missing_title_names_the_path() {
        let mut raw = incident(json!({}));
        raw["object"]["properties"]
            .as_object_mut()
            .map(|p| p.remove("title"));
        let err = Sentinel.parse(raw, &AlertSettings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "object.properties.title: required field is missing"
        );
    }
}
