//! Small lookups over raw alert JSON shared by the adapters.
//!
//! Every helper that can fail returns [`AlertError::Field`] with the dotted path it was asked
//! about (`data.essentials.firedDateTime`), so a user can find the offending field in the
//! payload without reading our code. Values are only read, never interpreted as templates.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::{AlertError, Principal, PrincipalType, Resource, Severity};

/// The value at a dotted path (`data.essentials.alertId`; numeric segments index arrays).
/// Keys that contain dots themselves (`@odata.type`) need `Value::get`.
/// `null` counts as absent, since sources write `null` for "not known".
pub(crate) fn at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(map) => map.get(seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

/// A short description of a JSON value for error messages: strings quoted, containers by kind.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            // Long values would drown the message; the start is enough to recognise them.
            let shown: String = s.chars().take(60).collect();
            if shown.len() < s.len() {
                format!("{:?}…", shown)
            } else {
                format!("{s:?}")
            }
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Text from a string or a number (ids are numbers in Lacework, strings elsewhere).
/// Empty strings count as absent.
pub(crate) fn as_text(value: &Value, path: &str) -> Result<Option<String>, AlertError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(AlertError::field(
            path,
            format!("expected a string, found {}", describe(other)),
        )),
    }
}

/// Optional text at a dotted path; present but of the wrong type is an error.
pub(crate) fn opt_text(root: &Value, path: &str) -> Result<Option<String>, AlertError> {
    match at(root, path) {
        Some(v) => as_text(v, path),
        None => Ok(None),
    }
}

/// Required text at a dotted path.
pub(crate) fn req_text(root: &Value, path: &str) -> Result<String, AlertError> {
    opt_text(root, path)?.ok_or_else(|| missing(path))
}

/// Puts a sub-object's path in front of an error from a lookup relative to it.
pub(crate) fn within(base: &str, err: AlertError) -> AlertError {
    match err {
        AlertError::Field { path, problem } => AlertError::Field {
            path: format!("{base}.{path}"),
            problem,
        },
        other => other,
    }
}

pub(crate) fn missing(path: &str) -> AlertError {
    AlertError::field(path, "required field is missing")
}

/// An RFC 3339 time. Azure sometimes omits the offset on fields that are documented as UTC
/// (`createdTimeUtc`, `firedDateTime` in older schemas), so a bare ISO date-time is read as UTC.
pub(crate) fn time_rfc3339(value: &Value, path: &str) -> Result<DateTime<Utc>, AlertError> {
    let text = value.as_str().map(str::trim).unwrap_or_default();
    parse_rfc3339(text).ok_or_else(|| {
        AlertError::field(
            path,
            format!("expected an RFC 3339 time, found {}", describe(value)),
        )
    })
}

fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|n| n.and_utc())
}

/// A time in any of the forms Lacework is seen to send: RFC 3339, `21 Apr 2026 04:00 GMT`
/// (with or without seconds, with a UTC zone name or a numeric offset), RFC 2822 / HTTP dates,
/// and epoch seconds or milliseconds. Zone names beyond those RFC 2822 defines are refused
/// rather than guessed, since a wrong hour would misplace the alert against the Activity Log.
pub(crate) fn time_loose(value: &Value, path: &str) -> Result<DateTime<Utc>, AlertError> {
    let parsed = match value {
        Value::Number(n) => n.as_i64().and_then(epoch),
        Value::String(s) => parse_loose(s.trim()),
        _ => None,
    };
    parsed.ok_or_else(|| {
        AlertError::field(
            path,
            format!(
                "expected an RFC 3339 time or one like \"21 Apr 2026 04:00 GMT\", found {}",
                describe(value)
            ),
        )
    })
}

fn epoch(n: i64) -> Option<DateTime<Utc>> {
    // Seconds reach 1e11 only in the year 5138; anything larger is milliseconds.
    if n.abs() >= 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

fn parse_loose(text: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = httpdate::parse_http_date(text) {
        return Some(DateTime::<Utc>::from(t));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().and_then(epoch);
    }
    // `21 Apr 2026 04:00 GMT`, optionally with a weekday (`Tue, `) and seconds.
    let body = match text.split_once(", ") {
        Some((day, rest)) if day.chars().all(|c| c.is_ascii_alphabetic()) => rest,
        _ => text,
    };
    let (stamp, zone) = body.rsplit_once(' ')?;
    const FORMATS: [&str; 2] = ["%d %b %Y %H:%M:%S", "%d %b %Y %H:%M"];
    if ["GMT", "UTC", "Z"]
        .iter()
        .any(|z| zone.eq_ignore_ascii_case(z))
    {
        return FORMATS
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(stamp, f).ok())
            .map(|n| n.and_utc());
    }
    FORMATS.iter().find_map(|f| {
        DateTime::parse_from_str(body, &format!("{f} %z"))
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// A severity in any spelling [`Severity::parse_loose`] knows.
pub(crate) fn severity(value: &Value, path: &str) -> Result<Severity, AlertError> {
    let text = match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    text.as_deref()
        .and_then(Severity::parse_loose)
        .ok_or_else(|| {
            AlertError::field(
                path,
                format!(
                    "expected a severity (critical, high, medium, low, informational, 1–5 or \
                     Sev0–Sev4), found {}",
                    describe(value)
                ),
            )
        })
}

/// Resolves a configured JSON pointer. `setting` names the configuration key so that a
/// malformed pointer is reported where the user must fix it.
pub(crate) fn pointer<'a>(
    root: &'a Value,
    ptr: &str,
    setting: &str,
) -> Result<Option<&'a Value>, AlertError> {
    if !ptr.is_empty() && !ptr.starts_with('/') {
        return Err(AlertError::field(
            setting,
            format!("{ptr:?} is not a JSON pointer; it must start with \"/\" (e.g. \"/alert/id\")"),
        ));
    }
    Ok(root.pointer(ptr).filter(|v| !v.is_null()))
}

/// Object keys compared the way tolerant lookups need: case, `_`, `-` and spaces ignored, so
/// `principalId`, `PRINCIPAL_ID` and `principal-id` are one key.
pub(crate) fn norm_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The value under `key` compared with [`norm_key`]; `null` counts as absent.
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let want = norm_key(key);
    map.iter()
        .find(|(k, v)| !v.is_null() && norm_key(k) == want)
        .map(|(_, v)| v)
}

/// The first non-empty string under any of `keys` (in that order).
pub(crate) fn str_ci<'a>(map: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| get_ci(map, k))
        .filter_map(Value::as_str)
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// JSON that a source serialised into a string (Activity Log `claims`, Sentinel alert
/// `Entities`): parsed again when it holds an object or an array, else `None`.
pub(crate) fn embedded_json(value: &Value) -> Option<Value> {
    let text = value.as_str()?.trim();
    if !(text.starts_with('{') || text.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

pub(crate) fn looks_like_upn(text: &str) -> bool {
    let t = text.trim();
    match t.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty() && !domain.is_empty() && !t.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Entra object ids, tenant ids and app ids are GUIDs.
pub(crate) fn looks_like_guid(text: &str) -> bool {
    let t = text.trim();
    t.len() == 36
        && t.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An IP address, accepting the `address:port` form Activity Log sometimes records.
pub(crate) fn ip_address(text: &str) -> Option<String> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    t.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_string())
}

/// Adds a resource unless an id equal ignoring case is already there: Azure Monitor lower-cases
/// ids that other fields of the same payload spell properly, and the first spelling wins.
pub(crate) fn push_resource(resources: &mut Vec<Resource>, id: &str) {
    let id = id.trim();
    if id.is_empty() {
        return;
    }
    let resource = Resource::from_id(id);
    if !resources
        .iter()
        .any(|r| r.id.eq_ignore_ascii_case(&resource.id))
    {
        resources.push(resource);
    }
}

/// What a payload says about who acted, before deciding whether it names a principal.
#[derive(Debug, Default)]
pub(crate) struct PrincipalHints {
    pub upn: Option<String>,
    pub object_id: Option<String>,
    pub tenant_id: Option<String>,
    /// `principalType` (Activity Log `authorization.evidence`) or a similar explicit label.
    pub declared_type: Option<String>,
    /// The token's `idtyp` claim: `app` for app-only tokens.
    pub token_type: Option<String>,
    /// Whether the token carried an `appid`/`azp` claim.
    pub has_app_id: bool,
}

impl PrincipalHints {
    /// The principal, or `None` when nothing identifies one. A service principal is recognised
    /// by an explicit label, an app-only token, or an app id with no UPN (users always have one).
    pub(crate) fn into_principal(self) -> Option<Principal> {
        if self.upn.is_none() && self.object_id.is_none() {
            return None;
        }
        let declared = self.declared_type.as_deref().map(norm_key);
        let kind = match declared.as_deref() {
            Some("serviceprincipal" | "application" | "app" | "managedidentity" | "msi") => {
                PrincipalType::ServicePrincipal
            }
            Some("user" | "guest" | "member") => PrincipalType::User,
            _ if self
                .token_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("app")) =>
            {
                PrincipalType::ServicePrincipal
            }
            _ if self.upn.is_none() && self.has_app_id => PrincipalType::ServicePrincipal,
            _ => PrincipalType::User,
        };
        Some(Principal {
            upn: self.upn,
            object_id: self.object_id,
            tenant_id: self.tenant_id,
            kind,
        })
    }
}

/// Claim names as Azure writes them into Activity Log `claims` (long URIs) and as tokens carry
/// them (short names).
pub(crate) const UPN_CLAIMS: [&str; 3] = [
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "unique_name",
];
pub(crate) const OID_CLAIMS: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
];
pub(crate) const TID_CLAIMS: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/tenantid",
    "tid",
];

/// Principal hints from a claims object.
pub(crate) fn claims_hints(claims: &Map<String, Value>) -> PrincipalHints {
    PrincipalHints {
        upn: str_ci(claims, &UPN_CLAIMS)
            .filter(|s| looks_like_upn(s))
            .map(str::to_string),
        object_id: str_ci(claims, &OID_CLAIMS).map(str::to_string),
        tenant_id: str_ci(claims, &TID_CLAIMS).map(str::to_string),
        declared_type: None,
        token_type: str_ci(claims, &["idtyp"]).map(str::to_string),
        has_app_id: str_ci(claims, &["appid", "azp"]).is_some(),
    }
}

/// A tolerant search over a payload whose nesting is not documented (Lacework's entityMap,
/// Sentinel's alert details): fields are found by key wherever they sit, keys compare with
/// [`norm_key`], and JSON serialised into strings is searched as well.
///
/// Priority is defined, not accidental: candidates are tried in the order given, and for each
/// candidate the shallowest match wins (breadth-first, then document order).
pub(crate) struct Search {
    expanded: Value,
}

impl Search {
    pub(crate) fn new(root: &Value) -> Search {
        Search {
            expanded: expand_embedded(root, 0, false),
        }
    }

    /// Every object in the payload, breadth-first.
    fn objects(&self) -> Vec<&Map<String, Value>> {
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([&self.expanded]);
        while let Some(v) = queue.pop_front() {
            match v {
                Value::Object(map) => {
                    out.push(map);
                    queue.extend(map.values());
                }
                Value::Array(items) => queue.extend(items.iter()),
                _ => {}
            }
        }
        out
    }

    /// The first value accepted by `accept`, trying `candidates` (key paths) in order.
    pub(crate) fn first(
        &self,
        candidates: &[&[&str]],
        accept: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let objects = self.objects();
        candidates.iter().find_map(|keys| {
            objects
                .iter()
                .filter_map(|map| follow(map, keys))
                .find(|s| accept(s))
        })
    }

    /// Every value accepted by `accept` under any of `candidates`, in priority order.
    pub(crate) fn all(&self, candidates: &[&[&str]], accept: impl Fn(&str) -> bool) -> Vec<String> {
        let objects = self.objects();
        candidates
            .iter()
            .flat_map(|keys| objects.iter().filter_map(|map| follow(map, keys)))
            .filter(|s| accept(s))
            .collect()
    }

    /// Every string value with the key it sits under, breadth-first; for last-resort scans.
    pub(crate) fn strings(&self) -> Vec<(&str, String)> {
        self.objects()
            .into_iter()
            .flat_map(|map| map.iter())
            .flat_map(|(k, v)| match v {
                Value::String(s) => vec![(k.as_str(), s.clone())],
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|s| (k.as_str(), s.to_string()))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// The text at `keys` below `map` (each key compared with [`norm_key`]).
pub(crate) fn follow(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    let (last, path) = keys.split_last()?;
    let mut cur = map;
    for k in path {
        cur = get_ci(cur, k)?.as_object()?;
    }
    let text = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match get_ci(cur, last)? {
        // Sentinel custom details are lists of strings, one per matching row.
        Value::Array(items) => items.iter().find_map(text),
        other => text(other),
    }
}

/// The keys under which sources serialise JSON into a string: Activity Log `claims`,
/// Sentinel `Custom Details` and `Entities`, and the like. Only these are parsed again: a
/// JSON text inside a free-text field (a description, a user agent, a resource name an
/// attacker chose) stays text, so it can never name the principal riposte acts on.
const EMBEDDED_JSON_KEYS: &[&str] = &[
    "claims",
    "customdetails",
    "entities",
    "authorization",
    "httprequest",
    "properties",
    "evidence",
    "extendedproperties",
];

/// A copy of `value` with JSON-in-a-string under [`EMBEDDED_JSON_KEYS`] replaced by the
/// parsed value, so a search sees Activity Log `claims` and similar. Depth is bounded:
/// alerts are data from outside.
fn expand_embedded(value: &Value, depth: usize, documented: bool) -> Value {
    if depth > 64 {
        return value.clone();
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let documented = EMBEDDED_JSON_KEYS.contains(&norm_key(k).as_str());
                    (k.clone(), expand_embedded(v, depth + 1, documented))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand_embedded(v, depth + 1, documented))
                .collect(),
        ),
        Value::String(_) if documented => match embedded_json(value) {
            Some(parsed) => expand_embedded(&parsed, depth + 1, false),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_index_objects_and_arrays() {
        let v = json!({"a": {"b": [{"c": "x"}], "n": null}});
        assert_eq!(at(&v, "a.b.0.c"), Some(&json!("x")));
        assert_eq!(at(&v, "a.n"), None);
        assert_eq!(at(&v, "a.b.1.c"), None);
    }

    #[test]
    fn wrong_types_name_the_path() {
        let v = json!({"t": {"x": 1}});
        let err = req_text(&v, "t").unwrap_err();
        assert_eq!(err.to_string(), "t: expected a string, found an object");
        assert_eq!(
            req_text(&v, "u").unwrap_err().to_string(),
            "u: required field is missing"
        );
    }

    #[test]
    fn rfc3339_with_long_fractions_and_bare_utc() {
        let want = Utc.with_ymd_and_hms(2026, 4, 21, 4, 0, 12).unwrap();
        for text in [
            "2026-04-21T04:00:12Z",
            "2026-04-21T06:00:12+02:00",
            "2026-04-21T04:00:12.0000000Z",
            "2026-04-21T04:00:12",
        ] {
            let got = time_rfc3339(&json!(text), "p").unwrap();
            assert_eq!(got.timestamp(), want.timestamp(), "{text}");
        }
        let err = time_rfc3339(&json!("yesterday"), "data.essentials.firedDateTime").unwrap_err();
        assert_eq!(
            err.to_string(),
            "data.essentials.firedDateTime: expected an RFC 3339 time, found \"yesterday\""
        );
    }

    #[test]
    fn lacework_time_forms() {
        let want = Utc.with_ymd_and_hms(2026, 4, 21, 4, 0, 0).unwrap();
        for v in [
            json!("21 Apr 2026 04:00 GMT"),
            json!("21 Apr 2026 04:00:00 UTC"),
            json!("Tue, 21 Apr 2026 04:00:00 GMT"),
            json!("21 Apr 2026 06:00 +0200"),
            json!("2026-04-21T04:00:00.000Z"),
            json!(1776744000),
            json!(1776744000000_i64),
            json!("1776744000000"),
        ] {
            assert_eq!(time_loose(&v, "event_timestamp").unwrap(), want, "{v}");
        }
        // RFC 2822 defines the US zone names; other names would be a guess.
        assert_eq!(
            time_loose(&json!("21 Apr 2026 04:00 PST"), "t").unwrap(),
            want + chrono::Duration::hours(8)
        );
        assert!(time_loose(&json!("21 Apr 2026 04:00 CEST"), "t").is_err());
        assert!(time_loose(&json!("soon"), "t").is_err());
    }

    #[test]
    fn keys_compare_loosely() {
        let v = json!({"PRINCIPAL_ID": "a", "Address": "b"});
        let map = v.as_object().unwrap();
        assert_eq!(get_ci(map, "principalId"), Some(&json!("a")));
        assert_eq!(str_ci(map, &["address"]), Some("b"));
    }

    #[test]
    fn service_principal_hints() {
        let app_only = PrincipalHints {
            object_id: Some("x".into()),
            has_app_id: true,
            ..Default::default()
        };
        assert_eq!(
            app_only.into_principal().unwrap().kind,
            PrincipalType::ServicePrincipal
        );
        let user = PrincipalHints {
            upn: Some("alex.wilber@contoso.com".into()),
            has_app_id: true,
            ..Default::default()
        };
        assert_eq!(user.into_principal().unwrap().kind, PrincipalType::User);
        assert!(PrincipalHints::default().into_principal().is_none());
    }

    #[test]
    fn search_prefers_candidate_order_then_depth() {
        let v = json!({
            "deep": {"deeper": {"caller": "deep@contoso.com"}},
            "caller": "shallow@contoso.com",
            "x": {"claims": "{\"upn\": \"claims@contoso.com\"}"},
            "PROPS": {"USER_PRINCIPAL_NAME": "props@contoso.com"}
        });
        let search = Search::new(&v);
        let upn = |keys: &[&[&str]]| search.first(keys, looks_like_upn);
        assert_eq!(upn(&[&["caller"]]).as_deref(), Some("shallow@contoso.com"));
        assert_eq!(
            upn(&[&["claims", "upn"], &["caller"]]).as_deref(),
            Some("claims@contoso.com")
        );
        assert_eq!(
            upn(&[&["userPrincipalName"]]).as_deref(),
            Some("props@contoso.com")
        );
        assert_eq!(upn(&[&["missing"]]), None);
    }

    /// JSON found inside a free-text field is not a source of facts: only the keys where
    /// sources serialise JSON are parsed again.
    #[test]
    fn json_inside_free_text_stays_text() {
        let v = json!({
            "description": "{\"caller\": \"ceo@contoso.com\"}",
            "event": {"details": {"caller": "alex.wilber@contoso.com"}},
        });
        let search = Search::new(&v);
        assert_eq!(
            search.first(&[&["caller"]], looks_like_upn).as_deref(),
            Some("alex.wilber@contoso.com")
        );
    }

    #[test]
    fn ips_and_guids() {
        assert_eq!(
            ip_address("203.0.113.45:51234").as_deref(),
            Some("203.0.113.45")
        );
        assert_eq!(ip_address("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert!(ip_address("not-an-ip").is_none());
        assert!(looks_like_guid("a1e7d1c2-5b3f-4c8e-9d21-000000000001"));
        assert!(!looks_like_guid("alex.wilber@contoso.com"));
    }
}
