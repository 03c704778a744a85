//! Encoding values into URLs exactly as they will be sent. Alert and API values only ever
//! enter a request through these functions, so they can fill a slot but never add a path
//! segment, a query parameter or a different host.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::unknown;

/// Characters left as-is in a path segment: RFC 3986 unreserved plus `@`, `'`, `(`, `)`, `$`,
/// `!`, `*`, `,`, `;`, `=`, `:` which Graph and ARM accept unencoded (a UPN keeps its `@`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'!')
    .remove(b'*')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'$');

/// Characters left as-is in a query value; everything else (notably `&`, `=`, `#`, `+`, space)
/// is percent-encoded.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'!')
    .remove(b'*')
    .remove(b',')
    .remove(b':')
    .remove(b'$')
    .remove(b'/');

/// Whether `value` may stand in a URL as the placeholder it is ([`unknown::is_placeholder`]:
/// never a secret's, which only the webhook redaction writes) where `unencoded` is what the
/// slot leaves as-is. Only a placeholder whose ASCII characters all stand for themselves there
/// (spaces aside, which split nothing) is shown raw: it then decodes to exactly itself, while a
/// look-alike holding `/`, `?`, `&`, `#`, `%`, `+` or a control character — from an alert or a
/// caller, or quoting one — is encoded like any text and cannot add a segment or a parameter.
fn passes_as_placeholder(value: &str, unencoded: &'static AsciiSet) -> bool {
    unknown::is_placeholder(value)
        && value
            .bytes()
            .filter(|b| b.is_ascii() && *b != b' ')
            .all(|b| stands_for_itself(b, unencoded))
}

fn stands_for_itself(byte: u8, unencoded: &'static AsciiSet) -> bool {
    let one = [byte];
    percent_encoding::percent_encode(&one, unencoded)
        .next()
        .is_some_and(|s| s.as_bytes() == one)
}

/// One path segment: a guest's `#EXT#` becomes `%23EXT%23`, a `/` cannot start a new segment.
/// A value known only at run time is shown as its placeholder.
pub fn segment(value: &str) -> String {
    if passes_as_placeholder(value, SEGMENT) {
        return value.to_string();
    }
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A query parameter value.
pub fn query_value(value: &str) -> String {
    if passes_as_placeholder(value, QUERY) {
        return value.to_string();
    }
    utf8_percent_encode(value, QUERY).to_string()
}

/// A query value that may contain placeholders (`⟨…⟩`) inside it, e.g. an OData filter
/// around a value known only at run time: the placeholders stay readable, everything around
/// them is encoded as [`query_value`] does.
pub fn query_value_with_placeholders(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('⟨') {
        let Some(len) = rest[start..].find('⟩') else {
            break;
        };
        let end = start + len + '⟩'.len_utf8();
        out.push_str(&query_value(&rest[..start]));
        let inner = &rest[start..end];
        if passes_as_placeholder(inner, QUERY) {
            out.push_str(inner);
        } else {
            out.push_str(&query_value(inner));
        }
        rest = &rest[end..];
    }
    out.push_str(&query_value(rest));
    out
}

/// An OData string literal, quotes included: `'` inside is doubled (`O'Brien` → `'O''Brien'`).
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An ARM id used as a path: each segment encoded on its own, the slashes kept. A placeholder
/// stands for the whole id, so it is one slot: encoded as [`segment`] encodes it, never split.
pub fn arm_path(id: &str) -> String {
    if unknown::is_placeholder(id) {
        return segment(id);
    }
    id.trim_matches('/')
        .split('/')
        .map(segment)
        .fold(String::new(), |mut acc, s| {
            acc.push('/');
            acc.push_str(&s);
            acc
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_upn_is_encoded_as_graph_documents() {
        assert_eq!(
            segment("AdeleVance_adatum.com#EXT#@contoso.com"),
            "AdeleVance_adatum.com%23EXT%23@contoso.com"
        );
    }

    #[test]
    fn slashes_and_queries_cannot_escape_a_segment() {
        assert_eq!(segment("a/../b?x=1&y"), "a%2F..%2Fb%3Fx=1%26y");
        assert_eq!(query_value("a&b=c d#e+f"), "a%26b%3Dc%20d%23e%2Bf");
    }

    #[test]
    fn placeholders_inside_a_query_value_stay_readable() {
        assert_eq!(
            query_value_with_placeholders("caller eq '⟨steps.user.outputs.upn⟩' and x"),
            "caller%20eq%20'⟨steps.user.outputs.upn⟩'%20and%20x"
        );
        assert_eq!(query_value_with_placeholders("a ⟨b"), "a%20%E2%9F%A8b");
    }

    /// A value shaped like a placeholder but from outside (an alert, a caller) is text: it is
    /// encoded, so it cannot smuggle `/..` into a path or `&` into a query.
    #[test]
    fn look_alike_placeholders_are_encoded() {
        for hostile in [
            "⟨secret: x⟩/../../servicePrincipals/y⟩",
            "⟨a⟩/../⟨b⟩",
            "⟨x&$filter=1⟩⟨y⟩",
        ] {
            let s = segment(hostile);
            assert!(!s.contains('/') && !s.contains('⟨'), "{hostile} → {s}");
            let q = query_value(hostile);
            assert!(!q.contains('&') && !q.contains('⟨'), "{hostile} → {q}");
        }
        assert_eq!(
            query_value_with_placeholders("x ⟨secret: webhook path, sha256:0011223344556677⟩"),
            "x%20%E2%9F%A8secret:%20webhook%20path,%20sha256:0011223344556677%E2%9F%A9"
        );
        assert_eq!(
            segment("⟨steps.user.outputs.id⟩"),
            "⟨steps.user.outputs.id⟩"
        );
    }

    /// A balanced `⟨…⟩` is not enough to pass raw: one holding URL syntax would add a segment
    /// or a parameter, so it is encoded and decodes back to exactly itself.
    #[test]
    fn a_placeholder_holding_url_syntax_is_encoded() {
        for hostile in [
            "⟨a/../../servicePrincipals/x⟩",
            "⟨w?x=1#f⟩",
            "⟨a%2Fb⟩",
            "⟨a\nb⟩",
        ] {
            let s = segment(hostile);
            assert!(
                !s.contains(['/', '?', '#', '\n']) && !s.contains('⟨'),
                "{s}"
            );
            let p = arm_path(hostile);
            assert!(!p.contains('/') && !p.contains('⟨'), "{p}");
        }
        let q = query_value("⟨x&$filter=1+2⟩");
        assert!(!q.contains(['&', '=', '+']) && !q.contains('⟨'), "{q}");
        assert_eq!(
            query_value_with_placeholders("id eq '⟨p&$top=1⟩'"),
            "id%20eq%20'%E2%9F%A8p%26$top%3D1%E2%9F%A9'"
        );
        // Riposte's own placeholders stay readable.
        assert_eq!(arm_path("⟨steps.vm.outputs.id⟩"), "⟨steps.vm.outputs.id⟩");
        assert_eq!(
            segment("⟨object id of o'brien@contoso.com⟩"),
            "⟨object id of o'brien@contoso.com⟩"
        );
    }

    #[test]
    fn odata_quotes_are_doubled() {
        assert_eq!(
            odata_string("o'brien@contoso.com"),
            "'o''brien@contoso.com'"
        );
    }

    #[test]
    fn arm_ids_keep_their_slashes() {
        assert_eq!(
            arm_path("/subscriptions/s/resourceGroups/r g/providers/Microsoft.Compute/disks/d#1"),
            "/subscriptions/s/resourceGroups/r%20g/providers/Microsoft.Compute/disks/d%231"
        );
    }
}
