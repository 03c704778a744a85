//! What of an upstream error body riposte repeats: Microsoft's error `code` when it looks like
//! one, a short message stripped of control and formatting characters, and the request id.
//! Never the raw body — plans, reports, the run view, API errors, logs and the audit trail
//! show these errors to viewers, and a hostile upstream (or a parameter the API reflects in
//! its message) must not put text, markup or line breaks of its choosing there.

/// The longest message kept, in characters; longer ones end in `…`.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// The longest error code kept. Microsoft's are short identifiers (`Request_ResourceNotFound`,
/// `AuthorizationFailed`, `BadArgumentError`).
pub const MAX_CODE_CHARS: usize = 64;

/// `code` when it is a plausible error code (1–64 of `[A-Za-z0-9._-]`), else `invalid-code`
/// (so a viewer sees that the upstream sent something else).
pub fn error_code(code: &str) -> String {
    if code.is_empty() {
        return String::new();
    }
    let plausible = code.chars().count() <= MAX_CODE_CHARS
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plausible {
        code.to_string()
    } else {
        "invalid-code".to_string()
    }
}

/// `message` on one line: control characters (line breaks, escapes), bidirectional and other
/// invisible formatting characters become spaces, runs of whitespace one space, markup
/// brackets are dropped, and at most [`MAX_MESSAGE_CHARS`] characters are kept.
pub fn error_message(message: &str) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut last_space = true;
    for c in message.chars() {
        let c = if c.is_control() || is_format(c) || c.is_whitespace() {
            ' '
        } else if matches!(c, '<' | '>') {
            continue;
        } else {
            c
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if kept == MAX_MESSAGE_CHARS {
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('…');
            return out;
        }
        out.push(c);
        kept += 1;
    }
    out.trim_end().to_string()
}

/// A request id as Microsoft sends them (a GUID, or ARM's and Log Analytics' hex and dash
/// forms); anything else is dropped rather than shown.
pub fn request_id(id: &str) -> Option<String> {
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    plausible.then(|| id.to_string())
}

/// Unicode format characters that change how text reads without being visible: bidi
/// embeddings, overrides and isolates, zero-width characters, the byte-order mark.
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_identifiers_or_marked_invalid() {
        assert_eq!(
            error_code("Request_ResourceNotFound"),
            "Request_ResourceNotFound"
        );
        assert_eq!(
            error_code("Microsoft.Compute.Error-1"),
            "Microsoft.Compute.Error-1"
        );
        assert_eq!(error_code(""), "");
        for hostile in ["<b>x</b>", "a b", "x\ny", &"A".repeat(65)] {
            assert_eq!(error_code(hostile), "invalid-code", "{hostile:?}");
        }
    }

    #[test]
    fn messages_are_one_bounded_line_without_markup_or_invisible_text() {
        let hostile = "Not found.\r\n\u{1b}[31mFAKE: run approved\u{202E}txt.exe <script>alert(1)</script>\t\t end";
        let shown = error_message(hostile);
        assert_eq!(
            shown,
            "Not found. [31mFAKE: run approved txt.exe scriptalert(1)/script end"
        );
        let long = error_message(&"x".repeat(5000));
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(error_message("exactly"), "exactly");
    }

    #[test]
    fn request_ids_are_kept_only_in_their_usual_forms() {
        let guid = "0d6a9c3e-1b2f-4e5a-8c7d-9e0f1a2b3c4d";
        assert_eq!(request_id(guid).as_deref(), Some(guid));
        assert_eq!(request_id("abc\r\nSet-Cookie: x"), None);
        assert_eq!(request_id(&"a".repeat(65)), None);
    }
}
