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
