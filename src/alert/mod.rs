//! The normalised [`Alert`] and one adapter per source.
//!
//! Adapters turn a source's payload into an `Alert`; they know nothing about playbooks.
//! Alert values are data: nothing here (or anywhere downstream) parses them as templates.

mod arm_id;
mod azure_monitor;
mod defender;
mod enrich;
mod generic;
mod json;
mod lacework;
mod sentinel;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use arm_id::ArmId;
pub use enrich::{EnrichError, enrich};
pub use lacework::enrich as enrich_lacework;

/// Where an alert came from. The names are the `source` values of the normalised alert and of
/// `riposte plan --source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Lacework,
    Sentinel,
    Defender,
    AzureMonitor,
    Generic,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Lacework,
        Source::Sentinel,
        Source::Defender,
        Source::AzureMonitor,
        Source::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Lacework => "lacework",
            Source::Sentinel => "sentinel",
            Source::Defender => "defender",
            Source::AzureMonitor => "azure-monitor",
            Source::Generic => "generic",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalised severity, ordered so that triggers can say "at least high".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: [&'static str; 5] = ["informational", "low", "medium", "high", "critical"];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Accepts the spellings sources use: names in any case, Lacework's 1 (critical) … 5 (info),
    /// Azure Monitor's `Sev0` (critical) … `Sev4` (verbose), Graph's `unknown`.
    pub fn parse_loose(text: &str) -> Option<Severity> {
        let t = text.trim().to_ascii_lowercase();
        Some(match t.as_str() {
            "critical" | "1" | "sev0" => Severity::Critical,
            "high" | "2" | "sev1" => Severity::High,
            "medium" | "moderate" | "3" | "sev2" => Severity::Medium,
            "low" | "4" | "sev3" => Severity::Low,
            "informational" | "info" | "information" | "5" | "sev4" | "unknown" | "verbose" => {
                Severity::Informational
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalType {
    #[default]
    User,
    ServicePrincipal,
}

/// Who the alert is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Principal {
    pub upn: Option<String>,
    pub object_id: Option<String>,
    pub tenant_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: PrincipalType,
}

/// An Azure resource the alert names, split from its ARM id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    pub name: Option<String>,
}

impl Resource {
    /// Builds a resource from an ARM id; ids that do not parse are kept verbatim with no parts.
    pub fn from_id(id: &str) -> Resource {
        // The canonical id is what requests are built from, so surrounding whitespace can go.
        match ArmId::parse(id.trim()) {
            Some(arm) => Resource {
                id: arm.canonical(),
                kind: arm.resource_type(),
                subscription_id: arm.subscription_id.clone(),
                resource_group: arm.resource_group.clone(),
                name: arm.name(),
            },
            None => Resource {
                id: id.to_string(),
                kind: None,
                subscription_id: None,
                resource_group: None,
                name: None,
            },
        }
    }
}

/// The normalised alert every playbook sees as `alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The source's own id, so the same alert delivered twice can be recognised.
    pub id: String,
    pub source: Source,
    /// What happened, in riposte's words (e.g. `first_access`); triggers match on it.
    pub kind: String,
    pub title: String,
    pub severity: Severity,
    pub observed_at: DateTime<Utc>,
    pub principal: Option<Principal>,
    pub resources: Vec<Resource>,
    pub operation: Option<String>,
    pub source_ip: Option<String>,
    /// True when the payload lacks who/what (Lacework's webhook): the Details API must fill it in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_enrichment: bool,
    /// The payload exactly as received.
    pub raw: Value,
}

/// Alert parsing settings from configuration (`[alerts]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// The most resources one alert may name (default 20): each one costs ARM reads and
    /// snapshots, so an alert naming thousands is refused rather than obeyed.
    #[serde(default = "default_max_resources")]
    pub max_resources: usize,
    /// Title (case-insensitive substring) → kind, checked before the built-in table.
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// Lacework Details: JSON pointers that override the Activity Log field search.
    #[serde(default)]
    pub lacework: FieldMap,
    /// The generic JSON source: JSON pointers for each normalised field.
    #[serde(default)]
    pub generic: FieldMap,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            max_resources: default_max_resources(),
            kinds: BTreeMap::new(),
            lacework: FieldMap::default(),
            generic: FieldMap::default(),
        }
    }
}

fn default_max_resources() -> usize {
    20
}

/// Whether `key` names a user the way Entra does: an object id (a GUID) or a user principal
/// name (`local@domain`, the characters Entra allows, a guest's `#EXT#` included). Anything
/// else — a `/`, a `?`, a placeholder look-alike — is not a user riposte will act on.
pub fn is_user_key(key: &str) -> bool {
    json::looks_like_guid(key) || is_upn(key)
}

fn is_upn(key: &str) -> bool {
    let Some((local, domain)) = key.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 113
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~+".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    local_ok && domain_ok
}

/// Refuses an alert that names more resources than `[alerts] max_resources`, a resource that
/// is not a strict ARM id, or a principal that is not a user key (an object id or a UPN).
pub fn admissible(alert: Alert, settings: &AlertSettings) -> Result<Alert, AlertError> {
    if let Some(p) = &alert.principal {
        if let Some(upn) = &p.upn
            && !is_upn(upn)
        {
            return Err(AlertError::field(
                "principal.upn",
                format!("`{upn}` is not a user principal name"),
            ));
        }
        if let Some(oid) = &p.object_id
            && !json::looks_like_guid(oid)
        {
            return Err(AlertError::field(
                "principal.object_id",
                format!("`{oid}` is not an object id (a GUID)"),
            ));
        }
    }
    // An id that does not parse strictly (`..`, `%2e`, whitespace, a query) is refused here
    // rather than kept as text a later stage might still send somewhere.
    if let Some((i, r)) = alert
        .resources
        .iter()
        .enumerate()
        .find(|(_, r)| ArmId::parse(&r.id).is_none())
    {
        return Err(AlertError::field(
            format!("resources.{i}"),
            format!(
                "`{}` is not an ARM resource id (expected /subscriptions/{{sub}}/resourceGroups/{{rg}}/providers/…, no `.`, `..`, empty or encoded segments)",
                r.id
            ),
        ));
    }
    if alert.resources.len() > settings.max_resources {
        return Err(AlertError::TooManyResources {
            found: alert.resources.len(),
            max: settings.max_resources,
        });
    }
    Ok(alert)
}

/// JSON pointers (RFC 6901) naming where each normalised field is found in a payload.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub id: Option<String>,
    pub title: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub observed_at: Option<String>,
    pub principal_upn: Option<String>,
    pub principal_object_id: Option<String>,
    pub tenant_id: Option<String>,
    /// A pointer to one ARM id, or to an array of them.
    pub resources: Option<String>,
    pub operation: Option<String>,
    pub source_ip: Option<String>,
}

/// Why a payload could not become an alert. Each names the field path and the problem.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlertError {
    #[error("alert is not valid JSON: {0}")]
    NotJson(String),
    #[error("{path}: {problem}")]
    Field { path: String, problem: String },
    #[error(
        "cannot tell the alert's source: it matches {}; pass --source to choose",
        .matched.join(", ")
    )]
    Ambiguous { matched: Vec<&'static str> },
    #[error(
        "cannot tell the alert's source: it matches none of lacework, sentinel, defender, azure-monitor; \
         pass --source (generic needs [alerts.generic] pointers)"
    )]
    Unrecognised,
    #[error(
        "unknown source `{0}`; expected one of lacework, sentinel, defender, azure-monitor, generic"
    )]
    UnknownSource(String),
    #[error(
        "resources: the alert names {found} resources, more than [alerts] max_resources = {max}"
    )]
    TooManyResources { found: usize, max: usize },
}

impl AlertError {
    pub(crate) fn field(path: impl Into<String>, problem: impl Into<String>) -> AlertError {
        AlertError::Field {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// One source's parser.
pub(crate) trait Adapter: Sync {
    /// The name `--source` uses and the error messages print.
    fn name(&self) -> &'static str;
    /// Whether the payload looks like this source's; used only when `--source` is not given.
    fn detect(&self, raw: &Value) -> bool;
    fn parse(&self, raw: Value, settings: &AlertSettings) -> Result<Alert, AlertError>;
}

/// Every adapter, in one list. Lacework has two payload shapes (webhook, Details) behind one name.
fn adapters() -> [&'static dyn Adapter; 5] {
    [
        &lacework::Lacework,
        &sentinel::Sentinel,
        &defender::Defender,
        &azure_monitor::AzureMonitor,
        &generic::Generic,
    ]
}

/// Parses a payload into an alert. `source` picks the adapter; without it, exactly one adapter
/// must recognise the payload.
pub fn parse_alert(
    bytes: &[u8],
    source: Option<&str>,
    settings: &AlertSettings,
) -> Result<Alert, AlertError> {
    let raw: Value =
        serde_json::from_slice(bytes).map_err(|e| AlertError::NotJson(e.to_string()))?;
    parse_alert_value(raw, source, settings)
}

/// As [`parse_alert`], for a payload already decoded.
pub fn parse_alert_value(
    raw: Value,
    source: Option<&str>,
    settings: &AlertSettings,
) -> Result<Alert, AlertError> {
    let adapter = match source {
        Some(name) => *adapters()
            .iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| AlertError::UnknownSource(name.to_string()))?,
        None => {
            // The generic source matches anything once configured, so it is never guessed.
            let matched: Vec<&dyn Adapter> = adapters()
                .into_iter()
                .filter(|a| a.name() != "generic" && a.detect(&raw))
                .collect();
            match matched.as_slice() {
                [one] => *one,
                [] => return Err(AlertError::Unrecognised),
                many => {
                    return Err(AlertError::Ambiguous {
                        matched: many.iter().map(|a| a.name()).collect(),
                    });
                }
            }
        }
    };
    admissible(adapter.parse(raw, settings)?, settings)
}

/// Maps a title to riposte's kind: configuration first, then the built-in table, else `other`.
pub(crate) fn kind_for_title(title: &str, settings: &AlertSettings) -> String {
    let lower = title.to_lowercase();
    if let Some(kind) = settings
        .kinds
        .iter()
        .find(|(needle, _)| lower.contains(&needle.to_lowercase()))
        .map(|(_, kind)| kind.clone())
    {
        return kind;
    }
    const BUILT_IN: [(&str, &str); 3] = [
        (
            "new azure api call invoked by user accessed resource for the first time",
            "first_access",
        ),
        (
            "new azure user performed operation on resource for the first time",
            "first_access",
        ),
        ("accessed resource for the first time", "first_access"),
    ];
    BUILT_IN
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, kind)| kind.to_string())
        .unwrap_or_else(|| "other".to_string())
}

impl Alert {
    /// The alert a manual invocation acts on: who and what the responder names, nothing else.
    pub fn manual(
        id: impl Into<String>,
        title: impl Into<String>,
        upn: Option<String>,
        resources: &[String],
        now: DateTime<Utc>,
    ) -> Alert {
        let principal = upn.map(|upn| {
            // An object id (GUID) is as good a key as a UPN for every action.
            let is_guid = uuid::Uuid::parse_str(&upn).is_ok();
            Principal {
                upn: (!is_guid).then(|| upn.clone()),
                object_id: is_guid.then_some(upn),
                tenant_id: None,
                kind: PrincipalType::User,
            }
        });
        Alert {
            id: id.into(),
            source: Source::Generic,
            kind: "manual".into(),
            title: title.into(),
            severity: Severity::High,
            observed_at: now,
            principal,
            resources: resources.iter().map(|r| Resource::from_id(r)).collect(),
            operation: None,
            source_ip: None,
            needs_enrichment: false,
            raw: serde_json::json!({"manual": true}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adapters keep an id that does not parse as text with no parts; the door refuses it,
    /// naming which resource.
    #[test]
    fn a_resource_that_is_not_a_strict_arm_id_is_refused() {
        let vm = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v";
        let alert = |ids: &[&str]| Alert {
            id: "a".into(),
            source: Source::Generic,
            kind: "other".into(),
            title: "t".into(),
            severity: Severity::High,
            observed_at: chrono::Utc::now(),
            principal: None,
            resources: ids.iter().map(|id| Resource::from_id(id)).collect(),
            operation: None,
            source_ip: None,
            needs_enrichment: false,
            raw: serde_json::Value::Null,
        };
        let settings = AlertSettings::default();
        assert!(admissible(alert(&[vm]), &settings).is_ok());
        for bad in [
            format!("{vm}/../../../x"),
            format!("{vm}?a=1"),
            "vm-web-01".into(),
        ] {
            let err = admissible(alert(&[vm, &bad]), &settings).unwrap_err();
            assert!(err.to_string().starts_with("resources.1:"), "{err}");
        }
    }

    #[test]
    fn user_keys_are_object_ids_or_upns() {
        for ok in [
            "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
            "alex.wilber@contoso.com",
            "AdeleVance_adatum.com#EXT#@contoso.onmicrosoft.com",
            "o'brien@contoso.com",
        ] {
            assert!(is_user_key(ok), "{ok}");
        }
        for bad in [
            "alex@contoso.com/../servicePrincipals/x",
            "alex@contoso.com?$select=x",
            "⟨secret: webhook path⟩@x.com",
            "alex wilber@contoso.com",
            "@contoso.com",
            "alex@",
            "alex@contoso..com",
            "not-a-user",
        ] {
            assert!(!is_user_key(bad), "{bad}");
        }
    }
}
