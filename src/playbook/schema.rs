//! The playbook JSON Schema, for editors. Each step's `with` is checked against the schema of
//! the action it `uses`, straight from the action registry, so the two cannot disagree.

use serde_json::{Value, json};

use crate::actions;
use crate::alert::{Severity, Source};

/// The schema `riposte schema` prints and `schema/playbook.schema.json` ships.
pub fn playbook_schema() -> Value {
    let expression = json!({"type": "string", "pattern": "\\$\\{\\{.*\\}\\}"});
    let duration = json!({"oneOf": [
        {"type": "integer", "minimum": 1},
        {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}
    ]});
    let names: Vec<&str> = actions::registry().iter().map(|a| a.info().name).collect();
    // Each action's definitions move to the root, prefixed with the action's name, because a
    // `$ref` resolves against the whole document, not the nested parameter schema.
    let mut defs = serde_json::Map::new();
    let with_by_action: Vec<Value> = actions::registry()
        .iter()
        .map(|a| {
            let mut params = a.params_schema().to_value();
            let prefix = a.info().name;
            if let Some(obj) = params.as_object_mut() {
                obj.remove("$schema");
                obj.remove("title");
                if let Some(Value::Object(own)) = obj.remove("$defs") {
                    for (name, mut def) in own {
                        rewrite_refs(&mut def, prefix);
                        defs.insert(format!("{prefix}.{name}"), def);
                    }
                }
            }
            rewrite_refs(&mut params, prefix);
            json!({
                "if": {"properties": {"uses": {"const": a.info().name}}, "required": ["uses"]},
                "then": {"properties": {"with": params}}
            })
        })
        .collect();
    let sources: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
    let trigger = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "source": {"enum": sources, "description": "Only alerts from this source."},
            "kind": {"type": "string", "description": "Only alerts of this kind, e.g. first_access."},
            "title": {"type": "string", "description": "Case-insensitive substring of the alert title."},
            "min_severity": {"enum": Severity::NAMES, "description": "Only alerts at least this severe."},
            "if": {"type": "string", "description": "An expression over `alert`."}
        }
    });
    let inputs = json!({
        "type": "object",
        "additionalProperties": {"oneOf": [
            {"enum": ["string", "integer", "number", "boolean", "list", "object"]},
            {"type": "object", "additionalProperties": false, "required": ["type"], "properties": {
                "type": {"enum": ["string", "integer", "number", "boolean", "list", "object"]},
                "default": {},
                "description": {"type": "string"},
                "required": {"type": "boolean"}
            }}
        ]}
    });
    let retry = json!({"oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 20},
        {"type": "object", "additionalProperties": false, "properties": {
            "attempts": {"type": "integer", "minimum": 1, "maximum": 20},
            "backoff": duration.clone()
        }}
    ]});
    let step = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "uses"],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            "name": {"type": "string"},
            "uses": {"enum": names},
            "with": {"type": "object"},
            "if": {"type": ["string", "boolean"]},
            "needs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "for_each": expression,
            "retry": retry,
            "timeout": duration,
            "on_error": {"enum": ["fail", "continue", "compensate"]}
        },
        "allOf": with_by_action
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://riposte.dev/schema/playbook.schema.json",
        "$defs": defs,
        "title": "riposte playbook",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "steps"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
            "version": {"type": "string"},
            "description": {"type": "string"},
            "owner": {"type": "string"},
            "stage": {"enum": ["live", "trial"], "description": "`trial` playbooks only plan."},
            "on": {"oneOf": [trigger.clone(), {"type": "array", "items": trigger}]},
            "inputs": inputs,
            "steps": {"type": "array", "minItems": 1, "items": step},
            "outputs": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    })
}

/// `#/$defs/X` → `#/$defs/{prefix}.X`, everywhere in `v`.
fn rewrite_refs(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Some(name) = child.as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
                        *child = Value::String(format!("#/$defs/{prefix}.{name}"));
                    }
                } else {
                    rewrite_refs(child, prefix);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_refs(i, prefix)),
        _ => {}
    }
}
