//! KQL encoding, in one place: a value from an alert reaches a query only as a string
//! literal made here, bound by a `let` statement in front of the playbook's query text. The
//! query refers to the name; the value can never end the literal, comment out the rest or
//! add an operator.
//!
//! KQL's rules (Kusto "The string data type"): in a double-quoted literal a backslash
//! escapes the enclosing quote, `\t`, `\n` and itself; a raw line break is not allowed inside
//! quotes. Every other character, the single quote included, stands for itself.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Why a value or a name cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KqlError {
    /// A binding name must be a plain identifier that is not a KQL keyword.
    #[error(
        "`{0}` is not a usable KQL name (a letter or _ then letters, digits or _, at most 64, not a keyword)"
    )]
    Name(String),
}

/// `value` as a double-quoted KQL string literal: `"` and `\` escaped, line breaks and tabs
/// as `\n`, `\r`, `\t`. Other control characters have no documented escape; each becomes
/// U+FFFD, so the literal stays printable text and says plainly that something was there.
pub fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words a `let` name may not be (they would change what the statement means).
const KEYWORDS: &[&str] = &[
    "let",
    "set",
    "alias",
    "declare",
    "pattern",
    "restrict",
    "access",
    "to",
    "on",
    "by",
    "and",
    "or",
    "not",
    "true",
    "false",
    "null",
    "with",
    "where",
    "project",
    "extend",
    "summarize",
    "join",
    "union",
    "take",
    "limit",
    "sort",
    "order",
    "top",
    "render",
    "evaluate",
    "print",
    "datatable",
    "range",
    "materialize",
    "toscalar",
    "view",
    "as",
];

/// Checks a binding name: from the playbook's text, but checked anyway, because it is
/// written into the query unquoted.
pub fn check_name(name: &str) -> Result<(), KqlError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    let keyword = KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name));
    if !first_ok || !rest_ok || name.len() > 64 || keyword {
        return Err(KqlError::Name(name.to_string()));
    }
    Ok(())
}

/// One `let name = "value";` line per binding, in name order, to put in front of a query.
pub fn let_statements(bindings: &BTreeMap<String, String>) -> Result<String, KqlError> {
    let mut out = String::new();
    for (name, value) in bindings {
        check_name(name)?;
        let _ = writeln!(out, "let {name} = {};", string_literal(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a literal back as KQL does (the emulator has its own reader; this one keeps
    /// the library's tests self-contained): the value, and what follows the literal.
    fn read_back(literal: &str) -> (String, &str) {
        assert!(literal.starts_with('"'), "{literal}");
        let mut out = String::new();
        let mut chars = literal[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (out, &literal[i + 2..]),
                '\\' => match chars.next().unwrap().1 {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    e @ ('"' | '\\' | '\'') => out.push(e),
                    e => panic!("escape \\{e} is not KQL"),
                },
                '\n' | '\r' => panic!("raw line break in {literal:?}"),
                c => out.push(c),
            }
        }
        panic!("unterminated {literal:?}")
    }

    #[test]
    fn quotes_backslashes_and_line_breaks_are_escaped() {
        assert_eq!(string_literal("plain"), "\"plain\"");
        assert_eq!(string_literal("o'brien"), "\"o'brien\"");
        assert_eq!(string_literal("say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(string_literal(r"CONTOSO\alex"), r#""CONTOSO\\alex""#);
        assert_eq!(string_literal("a\nb\r\tc"), r#""a\nb\r\tc""#);
        assert_eq!(string_literal(r#"\""#), r#""\\\"""#);
        assert_eq!(string_literal(""), "\"\"");
    }

    #[test]
    fn hostile_values_stay_one_literal() {
        for hostile in [
            "x\" or 1==1 //",
            "x' or 1==1 //",
            "\"; SecurityEvent | take 100000; let y = \"",
            "a\\\" | where 1==1 //",
            "\\",
            "end\\",
            "mixed '\" \\' \\\" ''\"\"",
            "line\n| project secret",
            "nul\u{0}bell\u{7}",
            "@\"verbatim\"",
        ] {
            let literal = string_literal(hostile);
            let (value, after) = read_back(&literal);
            assert_eq!(after, "", "{hostile:?} broke out: {literal}");
            let expected: String = hostile
                .chars()
                .map(|c| {
                    if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect();
            assert_eq!(value, expected, "{literal}");
            assert!(!literal.contains('\n'), "{literal}");
        }
    }

    #[test]
    fn names_are_identifiers_and_not_keywords() {
        assert!(check_name("account").is_ok());
        assert!(check_name("_x1").is_ok());
        for bad in [
            "",
            "1x",
            "a b",
            "a;b",
            "let",
            "WHERE",
            "a-b",
            "x\"",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn let_statements_bind_each_value() {
        let bindings = BTreeMap::from([
            ("computer".to_string(), "vm-web-01".to_string()),
            ("account".to_string(), "x\" or 1==1 //".to_string()),
        ]);
        assert_eq!(
            let_statements(&bindings).unwrap(),
            "let account = \"x\\\" or 1==1 //\";\nlet computer = \"vm-web-01\";\n"
        );
        let bad = BTreeMap::from([("a;b".to_string(), "v".to_string())]);
        assert!(let_statements(&bad).is_err());
    }
}
