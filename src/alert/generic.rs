//! Any JSON alert, mapped field by field with the JSON pointers in `[alerts.generic]`.
//!
//! `id`, `title` and `observed_at` must be configured, since an alert without them cannot be
//! deduplicated, matched or placed in time. Every other field is optional; `severity` defaults
//! to informational (like Graph's `unknown`) and `kind` to the title table.

use serde_json::Value;

use super::json::{self, PrincipalHints};
use super::{Adapter, Alert, AlertError, AlertSettings, Severity, Source, kind_for_title};

pub(crate) struct Generic;

impl Adapter for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    /// Never guessed: once configured, the generic source would accept anything.
    fn detect(&self, _raw: &Value) -> bool {
        false
    }

    fn parse(&self, raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError> {
        let map = &settings.generic;
        let lookup = Lookup { raw: &raw };
        let id = lookup.required("id", map.id.as_deref())?;
        let title = lookup.required("title", map.title.as_deref())?;
        let observed_path = configured("observed_at", map.observed_at.as_deref())?;
        let observed_at = match lookup.value("observed_at", Some(observed_path))? {
            Some(v) => json::time_loose(v, observed_path)?,
            None => return Err(json::missing(observed_path)),
        };
        let severity = match lookup.value("severity", map.severity.as_deref())? {
            Some(v) => json::severity(v, map.severity.as_deref().unwrap_or_default())?,
            None => Severity::Informational,
        };
        let kind = match lookup.text("kind", map.kind.as_deref())? {
            Some(k) => k,
            None => kind_for_title(&title, settings),
        };
        let principal = PrincipalHints {
            upn: lookup.text("principal_upn", map.principal_upn.as_deref())?,
            object_id: lookup.text("principal_object_id", map.principal_object_id.as_deref())?,
            tenant_id: lookup.text("tenant_id", map.tenant_id.as_deref())?,
            ..PrincipalHints::default()
        }
        .into_principal();

        let mut resources = Vec::new();
        if let Some(ptr) = map.resources.as_deref() {
            match lookup.value("resources", Some(ptr))? {
                None => {}
                Some(Value::String(s)) => json::push_resource(&mut resources, s),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str() {
                            Some(s) => json::push_resource(&mut resources, s),
                            None => {
                                return Err(AlertError::field(
                                    format!("{ptr}/{i}"),
                                    format!("expected an ARM id, found {}", json::describe(item)),
                                ));
                            }
                        }
                    }
                }
                Some(other) => {
                    return Err(AlertError::field(
                        ptr,
                        format!(
                            "expected an ARM id or an array of them, found {}",
                            json::describe(other)
                        ),
                    ));
                }
            }
        }
        let operation = lookup.text("operation", map.operation.as_deref())?;
        let source_ip = lookup.text("source_ip", map.source_ip.as_deref())?;

        Ok(Alert {
            id,
            source: Source::Generic,
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

/// The configured pointer for a required field, or an error saying what to configure.
fn configured<'a>(field: &str, ptr: Option<&'a str>) -> Result<&'a str, AlertError> {
    ptr.ok_or_else(|| {
        AlertError::field(
            format!("alerts.generic.{field}"),
            format!(
                "no JSON pointer configured; the generic source needs one, e.g. \
                 [alerts.generic] {field} = \"/alert/{field}\""
            ),
        )
    })
}

/// Pointer lookups that report errors at the pointer (the payload's location) or at the
/// setting (when the pointer itself is malformed).
struct Lookup<'a> {
    raw: &'a Value,
}

impl<'a> Lookup<'a> {
    fn value(&self, field: &str, ptr: Option<&str>) -> Result<Option<&'a Value>, AlertError> {
        match ptr {
            Some(p) => json::pointer(self.raw, p, &format!("alerts.generic.{field}")),
            None => Ok(None),
        }
    }

    fn text(&self, field: &str, ptr: Option<&str>) -> Result<Option<String>, AlertError> {
        match (self.value(field, ptr)?, ptr) {
            (Some(v), Some(p)) => json::as_text(v, p),
            _ => Ok(None),
        }
    }

    fn required(&self, field: &str, ptr: Option<&str>) -> Result<String, AlertError> {
        let p = configured(field, ptr)?;
        self.text(field, Some(p))?.ok_or_else(|| json::missing(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::FieldMap;
    use serde_json::json;

    fn settings(map: FieldMap) -> AlertSettings {
        AlertSettings {
            generic: map,
            ..AlertSettings::default()
        }
    }

    #[test]
    fn unconfigured_id_says_what_to_set() {
        let err = Generic
            .parse(json!({}), &AlertSettings::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("alerts.generic.id: no JSON pointer configured"),
            "{err}"
        );
    }

    #[test]
    fn resources_string_or_array_and_malformed_pointer() {
        let raw = json!({"i": 7, "t": "x", "at": "2026-04-21T04:00:00Z", "r": "/subscriptions/s/resourceGroups/rg",
                         "rs": ["/subscriptions/s/resourceGroups/a", "/subscriptions/s/resourceGroups/b"]});
        let mut map = FieldMap {
            id: Some("/i".into()),
            title: Some("/t".into()),
            observed_at: Some("/at".into()),
            resources: Some("/r".into()),
            ..FieldMap::default()
        };
        let a = Generic.parse(raw.clone(), &settings(map.clone())).unwrap();
        assert_eq!(a.id, "7");
        assert_eq!(a.resources.len(), 1);
        map.resources = Some("/rs".into());
        assert_eq!(
            Generic
                .parse(raw.clone(), &settings(map.clone()))
                .unwrap()
                .resources
                .len(),
            2
        );
        map.resources = Some("/i".into());
        let err = Generic
            .parse(raw.clone(), &settings(map.clone()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/i: expected an ARM id or an array of them, found 7"
        );
        map.resources = Some("r".into());
        let err = Generic.parse(raw, &settings(map)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("alerts.generic.resources: \"r\" is not a JSON pointer"),
            "{err}"
        );
    }
}
