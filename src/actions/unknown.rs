//! Values that are known only at run time (no credentials at plan time) are carried through
//! templates and requests as a visible placeholder, `⟨steps.user.outputs.id⟩`.

/// The placeholder for a template path whose value a lookup would provide.
pub fn placeholder(path: &str) -> String {
    format!("⟨{path}⟩")
}

/// Whether a whole value is one placeholder as riposte writes them: `⟨…⟩` whose opening
/// bracket closes only at the very end (placeholders may nest), and never a secret's. A value
/// from an alert or a caller that merely looks like one — `⟨a⟩/../b⟩`, a fake `⟨secret:…⟩` —
/// is text, which the encoders encode like any other.
pub fn is_placeholder(value: &str) -> bool {
    if !value.starts_with('⟨') || value.contains(SECRET_PREFIX) {
        return false;
    }
    let mut depth = 0usize;
    for (at, c) in value.char_indices() {
        match c {
            '⟨' => depth += 1,
            '⟩' => {
                depth = match depth.checked_sub(1) {
                    Some(d) => d,
                    None => return false,
                };
                if depth == 0 {
                    return at + c.len_utf8() == value.len();
                }
            }
            _ => {}
        }
    }
    false
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

/// Whether `s` starts with a redacted secret exactly as riposte writes one:
/// `⟨secret: webhook path, sha256:<16 hex>⟩`. Anything else shaped like a placeholder is
/// just text (perhaps an attacker's), never an exemption.
pub fn starts_with_secret(s: &str) -> bool {
    const HEAD: &str = "⟨secret: webhook path, sha256:";
    let Some(rest) = s.strip_prefix(HEAD) else {
        return false;
    };
    const FINGERPRINT: usize = 16;
    rest.len() >= FINGERPRINT + '⟩'.len_utf8()
        && rest.as_bytes()[..FINGERPRINT]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && rest[FINGERPRINT..].starts_with('⟩')
}

/// Whether a value holds a placeholder for something unknown, ignoring redacted secrets: a
/// request with one cannot be sent as planned.
pub fn contains_unknown(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s
            .match_indices('⟨')
            .any(|(at, _)| !starts_with_secret(&s[at..])),
        serde_json::Value::Array(a) => a.iter().any(contains_unknown),
        serde_json::Value::Object(o) => o.values().any(contains_unknown),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placeholder_is_one_balanced_bracket_pair() {
        assert!(is_placeholder("⟨steps.user.outputs.id⟩"));
        assert!(is_placeholder("⟨object id of ⟨steps.user.outputs.upn⟩⟩"));
        for not in [
            "⟨a⟩/../⟨b⟩",
            "⟨a⟩x",
            "x⟨a⟩",
            "⟨a",
            "⟨secret: webhook path⟩",
            "⟩⟨",
        ] {
            assert!(!is_placeholder(not), "{not}");
        }
    }

    /// Only the exact redaction riposte writes exempts a request from "known at run time";
    /// a value that merely starts like one is unknown, so the request is not sent.
    #[test]
    fn only_riposte_s_own_secret_redaction_is_exempt() {
        let real = format!("⟨secret: webhook path, sha256:{}⟩", "ab".repeat(8));
        assert!(starts_with_secret(&real));
        assert!(!contains_unknown(&serde_json::json!(format!(
            "https://h/{real}"
        ))));
        for fake in [
            "⟨secret: x⟩/../../servicePrincipals/y",
            "⟨secret: webhook path, sha256:zz⟩",
            "⟨secret:⟩",
        ] {
            assert!(!starts_with_secret(fake), "{fake}");
            assert!(contains_unknown(&serde_json::json!(fake)), "{fake}");
        }
    }
    use serde_json::json;

    #[test]
    fn redacted_secrets_are_not_unknown_values() {
        assert!(!contains_unknown(&json!({
            "url": "https://hooks.example.com/⟨secret: webhook path, sha256:0011223344556677⟩"
        })));
        assert!(contains_unknown(&json!({
            "url": "https://hooks.example.com/⟨secret: x⟩/⟨steps.user.outputs.id⟩"
        })));
        assert!(contains_placeholder(&json!("⟨secret: x⟩")));
    }
}
