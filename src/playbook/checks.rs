//! Checks the loader makes that need no loader state: dependency closure, parameter values
//! against an action's JSON Schema, ids, names and ISO 8601 durations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

/// For each step, every step it depends on directly or transitively.
pub(super) fn ancestors(
    needs: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for id in needs.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = needs.get(id).into_iter().flatten().collect();
        while let Some(dep) = stack.pop() {
            if seen.insert(dep.clone()) {
                stack.extend(needs.get(dep).into_iter().flatten());
            }
        }
        out.insert(id.clone(), seen);
    }
    out
}

/// Checks a literal value against a (schemars) property schema: type and enum.
pub(super) fn schema_mismatch(root: &Value, prop: &Value, v: &Value) -> Option<String> {
    let prop = resolve_ref(root, prop);
    if let Some(choices) = prop.get("enum").and_then(Value::as_array) {
        if !choices.contains(v) {
            let names: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
            return Some(format!("{v} is not one of {}", names.join(", ")));
        }
        return None;
    }
    if let Some(one_of) = prop
        .get("oneOf")
        .or_else(|| prop.get("anyOf"))
        .and_then(Value::as_array)
    {
        if one_of
            .iter()
            .all(|alt| schema_mismatch(root, alt, v).is_some())
        {
            return schema_mismatch(root, &one_of[0], v);
        }
        return None;
    }
    if let Some(c) = prop.get("const") {
        return (c != v).then(|| format!("expected {c}"));
    }
    let types: Vec<&str> = match prop.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    let fits = types.iter().any(|t| match *t {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    });
    (!fits).then(|| format!("expected {}, found {}", types.join(" or "), json_type(v)))
}

fn resolve_ref<'a>(root: &'a Value, prop: &'a Value) -> &'a Value {
    match prop.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|ptr| root.pointer(ptr))
            .unwrap_or(prop),
        None => prop,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub(super) fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `30s`, `5m`, `1h`, `250ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}
