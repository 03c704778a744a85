//! Values that are known only at run time (no credentials at plan time) are carried through
//! templates and requests as a visible placeholder, `⟨steps.user.outputs.id⟩`.

/// The placeholder for a template path whose value a lookup would provide.
pub fn placeholder(path: &str) -> String {
    format!("⟨{path}⟩")
}

/// Whether a whole value is a placeholder.
pub fn is_placeholder(value: &str) -> bool {
    value.starts_with('⟨') && value.ends_with('⟩')
}

/// Whether a value contains a placeholder anywhere (e.g. inside a rendered string).
pub fn contains_placeholder(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('⟨'),
        serde_json::Value::Array(a) => a.iter().any(contains_placeholder),
        serde_json::Value::Object(o) => o.values().any(contains_placeholder),
        _ => false,
    }
}

/// The prefix of a placeholder that hides a secret the engine restores when it sends (a
/// webhook's path), as opposed to a value nobody knows yet.
pub const SECRET_PREFIX: &str = "⟨secret:";

/// Whether a value holds a placeholder for something unknown, ignoring redacted secrets: a
/// request with one cannot be sent as planned.
pub fn contains_unknown(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s
            .match_indices('⟨')
            .any(|(at, _)| !s[at..].starts_with(SECRET_PREFIX)),
        serde_json::Value::Array(a) => a.iter().any(contains_unknown),
        serde_json::Value::Object(o) => o.values().any(contains_unknown),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacted_secrets_are_not_unknown_values() {
        assert!(!contains_unknown(&json!({
            "url": "https://hooks.example.com/⟨secret: webhook path, sha256:0011⟩"
        })));
        assert!(contains_unknown(&json!({
            "url": "https://hooks.example.com/⟨secret: x⟩/⟨steps.user.outputs.id⟩"
        })));
        assert!(contains_placeholder(&json!("⟨secret: x⟩")));
    }
}
