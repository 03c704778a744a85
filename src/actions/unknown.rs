//! Values known only at run time (no credentials at plan time, an evidence step not yet run).
//!
//! While a plan is being built such a value travels through templates, parameters and request
//! builders as text, so every builder can carry it without a second code path. What makes it
//! an unknown rather than text is a **mark** no input can carry: a private-use character
//! followed by a random nonce drawn once per process and never shown. An alert, a caller or an
//! API answer may send `⟨steps.user.outputs.id⟩` verbatim; without the mark it is text, which
//! the encoders encode like any other and the lookups validate like any other.
//!
//! When the plan is sealed (`plan::seal`) the marks are turned into the plan's typed record —
//! each step's `unknowns` — and removed, so plans show `⟨…⟩` and the executor decides from
//! that list, never from the shape of a string.

use std::sync::OnceLock;

/// The opening of every unknown: U+E000 (private use) and 32 hex digits of randomness.
pub fn mark() -> &'static str {
    static MARK: OnceLock<String> = OnceLock::new();
    MARK.get_or_init(|| {
        let nonce: u128 = rand::random();
        format!("\u{E000}{nonce:032x}")
    })
}

/// The unknown standing for `what` (a template path, or a description such as
/// `object id of adele@contoso.com`), as builders carry it while planning.
pub fn placeholder(what: &str) -> String {
    format!("{}⟨{what}⟩", mark())
}

/// Whether the whole value is one unknown written by [`placeholder`]: it starts with the mark
/// and its opening bracket closes at the very end. Anything else — a look-alike from outside,
/// or a template that joined an unknown with text — is not a single unknown.
pub fn is_placeholder(value: &str) -> bool {
    value
        .strip_prefix(mark())
        .is_some_and(|rest| balanced_len(rest) == Some(rest.len()))
}

/// What an unknown stands for, as a reviewer reads it (`steps.user.outputs.id`); `None` for
/// any value that is not one.
pub fn describe(value: &str) -> Option<String> {
    if !is_placeholder(value) {
        return None;
    }
    let shown = shown(value);
    Some(shown['⟨'.len_utf8()..shown.len() - '⟩'.len_utf8()].to_string())
}

/// Whether a value holds an unknown anywhere (alone, or inside a rendered string).
pub fn contains_unknown(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains(mark()),
        serde_json::Value::Array(a) => a.iter().any(contains_unknown),
        serde_json::Value::Object(o) => {
            o.keys().any(|k| k.contains(mark())) || o.values().any(contains_unknown)
        }
        _ => false,
    }
}

/// The text as a plan shows it: every mark removed, so an unknown reads `⟨…⟩`.
pub fn shown(text: &str) -> String {
    text.replace(mark(), "")
}

/// `text` split into runs of plain text (`false`) and unknowns (`true`), in order. An unknown
/// runs from its mark to the bracket that balances its first `⟨`; a mark not followed by a
/// balanced pair is an unknown up to the end (it cannot be sent either way).
pub fn spans(text: &str) -> Vec<(bool, &str)> {
    let mark = mark();
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(mark) {
        if at > 0 {
            out.push((false, &rest[..at]));
        }
        let after = &rest[at + mark.len()..];
        let len = balanced_len(after).unwrap_or(after.len());
        let end = at + mark.len() + len;
        out.push((true, &rest[at..end]));
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

/// Every unknown in `value`, as the plan shows them, in order of appearance (no repeats).
pub fn collect(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => {
            for (unknown, part) in spans(s) {
                let part = shown(part);
                if unknown && !into.contains(&part) {
                    into.push(part);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, into)),
        serde_json::Value::Object(o) => o.values().for_each(|v| collect(v, into)),
        _ => {}
    }
}

/// The same value with every mark removed from its strings and keys.
pub fn shown_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains(mark()) => *s = shown(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(shown_value),
        serde_json::Value::Object(o) => {
            if o.keys().any(|k| k.contains(mark())) {
                let entries = std::mem::take(o);
                for (k, mut v) in entries {
                    shown_value(&mut v);
                    o.insert(shown(&k), v);
                }
            } else {
                o.values_mut().for_each(shown_value);
            }
        }
        _ => {}
    }
}

/// The length of the leading `⟨…⟩` of `s` (brackets nest), or `None` when `s` does not start
/// with one that closes.
fn balanced_len(s: &str) -> Option<usize> {
    if !s.starts_with('⟨') {
        return None;
    }
    let mut depth = 0usize;
    for (at, c) in s.char_indices() {
        match c {
            '⟨' => depth += 1,
            '⟩' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at + c.len_utf8());
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_riposte_s_own_unknowns_are_unknown() {
        assert!(is_placeholder(&placeholder("steps.user.outputs.id")));
        let nested = placeholder(&format!(
            "object id of {}",
            placeholder("steps.user.outputs.upn")
        ));
        assert!(is_placeholder(&nested));
        assert_eq!(
            describe(&nested).as_deref(),
            Some("object id of ⟨steps.user.outputs.upn⟩")
        );
        // Text shaped like an unknown, from an alert or a caller, is text.
        for look_alike in [
            "⟨steps.user.outputs.id⟩",
            "\u{E000}⟨steps.user.outputs.id⟩",
            "\u{E000}00000000000000000000000000000000⟨x⟩",
            "⟨secret: webhook path, sha256:0011223344556677⟩",
        ] {
            assert!(!is_placeholder(look_alike), "{look_alike}");
            assert!(!contains_unknown(&json!(look_alike)), "{look_alike}");
            assert_eq!(describe(look_alike), None);
        }
        for joined in [
            format!("{}/../{}", placeholder("a"), placeholder("b")),
            format!("{}x", placeholder("a")),
            format!("x{}", placeholder("a")),
        ] {
            assert!(!is_placeholder(&joined), "{joined}");
            assert!(contains_unknown(&json!(joined)), "{joined}");
        }
    }

    #[test]
    fn spans_separate_text_from_unknowns() {
        let a = placeholder("a");
        let text = format!("x ⟨y⟩ {a} z");
        let parts = spans(&text);
        assert_eq!(
            parts,
            vec![(false, "x ⟨y⟩ "), (true, a.as_str()), (false, " z")]
        );
        // A mark with no closing bracket runs to the end and is still an unknown.
        let broken = format!("x{}⟨y", mark());
        assert!(spans(&broken).last().unwrap().0);
    }

    #[test]
    fn sealing_shows_brackets_and_lists_each_unknown_once() {
        let a = placeholder("steps.user.outputs.id");
        let mut v = json!({ "url": format!("https://g/users/{a}"), "x": [a.clone(), "⟨t⟩"] });
        let mut found = Vec::new();
        collect(&v, &mut found);
        assert_eq!(found, vec!["⟨steps.user.outputs.id⟩"]);
        shown_value(&mut v);
        assert_eq!(
            v,
            json!({ "url": "https://g/users/⟨steps.user.outputs.id⟩", "x": ["⟨steps.user.outputs.id⟩", "⟨t⟩"] })
        );
        assert!(!contains_unknown(&v), "a sealed plan holds text only");
    }
}
