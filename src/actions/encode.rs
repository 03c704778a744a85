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

/// What an unknown standing for a whole ARM id leaves as-is: a segment's characters and `/`.
const ARM_ID: &AsciiSet = &SEGMENT.remove(b'/');

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

/// `value` encoded with `unencoded` left as-is, except riposte's own unknowns
/// ([`unknown::spans`]), which stay readable: a request holding one is never sent (the plan
/// lists it as known only at run time), and no input can make text into one. What an unknown
/// quotes (`object id of a#b@contoso.com`) is still encoded where it would change the URL's
/// structure, so the plan shows the URL exactly as it will be once the value is known.
fn encode(value: &str, unencoded: &'static AsciiSet) -> String {
    let mut out = String::with_capacity(value.len());
    for (is_unknown, part) in unknown::spans(value) {
        if is_unknown {
            readable_unknown(part, unencoded, &mut out);
        } else {
            out.extend(utf8_percent_encode(part, unencoded));
        }
    }
    out
}

/// An unknown as a URL shows it: its mark, brackets, spaces and any non-ASCII text as they
/// are, every ASCII character the slot would encode encoded.
fn readable_unknown(part: &str, unencoded: &'static AsciiSet, out: &mut String) {
    for c in part.chars() {
        if c.is_ascii() && c != ' ' {
            let byte = [c as u8];
            out.extend(percent_encoding::percent_encode(&byte, unencoded));
        } else {
            out.push(c);
        }
    }
}

/// One path segment: a guest's `#EXT#` becomes `%23EXT%23`, a `/` cannot start a new segment.
pub fn segment(value: &str) -> String {
    encode(value, SEGMENT)
}

/// A query parameter value (an OData filter around an unknown keeps the unknown readable).
pub fn query_value(value: &str) -> String {
    encode(value, QUERY)
}

/// An OData string literal, quotes included: `'` inside is doubled (`O'Brien` → `'O''Brien'`).
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An ARM id used as a path: each segment encoded on its own, the slashes kept. An unknown
/// inside it is one slot, never split at a `/` it describes; an unknown that is the whole id
/// stands for all of it, leading slash included.
pub fn arm_path(id: &str) -> String {
    if unknown::is_placeholder(id) {
        let mut out = String::new();
        readable_unknown(id, ARM_ID, &mut out);
        return out;
    }
    let mut out = String::from("/");
    for (is_unknown, part) in unknown::spans(id.trim_matches('/')) {
        if is_unknown {
            out.push_str(part);
            continue;
        }
        for (i, seg) in part.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.extend(utf8_percent_encode(seg, SEGMENT));
        }
    }
    out
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
    fn unknowns_inside_a_query_value_stay_readable() {
        let upn = unknown::placeholder("steps.user.outputs.upn");
        assert_eq!(
            unknown::shown(&query_value(&format!("caller eq '{upn}' and x"))),
            "caller%20eq%20'⟨steps.user.outputs.upn⟩'%20and%20x"
        );
        assert_eq!(query_value("a ⟨b"), "a%20%E2%9F%A8b");
    }

    /// Text shaped like an unknown — from an alert, a caller, or an API answer — is text:
    /// encoded, so it decodes to exactly itself and cannot add a segment or a parameter.
    #[test]
    fn look_alike_unknowns_are_encoded() {
        for hostile in [
            "⟨steps.user.outputs.id⟩",
            "⟨secret: x⟩/../../servicePrincipals/y⟩",
            "⟨a⟩/../⟨b⟩",
            "⟨x&$filter=1⟩⟨y⟩",
            "⟨a/../../servicePrincipals/x⟩",
            "⟨w?x=1#f⟩",
            "⟨a%2Fb⟩",
            "⟨a\nb⟩",
            "\u{E000}⟨x⟩",
        ] {
            let s = segment(hostile);
            assert!(
                !s.contains(['⟨', '/', '?', '#', '&', '\n']),
                "{hostile} → {s}"
            );
            let q = query_value(hostile);
            assert!(
                !q.contains(['⟨', '?', '#', '&', '=', '\n']),
                "{hostile} → {q}"
            );
            let p = arm_path(hostile);
            assert!(!p.contains('⟨') && !p.contains(['?', '#', '\n']), "{p}");
        }
    }

    /// Riposte's own unknowns stay readable wherever they sit, and an ARM id's unknown is one
    /// slot even when what it describes holds slashes.
    #[test]
    fn riposte_s_unknowns_are_carried_whole() {
        let vm = unknown::placeholder("steps.vm.outputs.id");
        assert_eq!(unknown::shown(&arm_path(&vm)), "⟨steps.vm.outputs.id⟩");
        let disk = unknown::placeholder("each disk of /subscriptions/s/x");
        assert_eq!(
            unknown::shown(&arm_path(&format!("/subscriptions/s g/disks/{disk}"))),
            "/subscriptions/s%20g/disks/⟨each disk of /subscriptions/s/x⟩"
        );
        let oid = unknown::placeholder("object id of o'brien@contoso.com");
        assert_eq!(
            unknown::shown(&segment(&oid)),
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
