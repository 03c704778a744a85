//! Cross-site request checks for the page's forms: the session's token in every form, and a
//! refusal of requests a browser says came from another site.

use axum::http::{HeaderMap, header};

use crate::digest::constant_time_eq;

/// Whether `presented` is the session's CSRF token, compared in constant time so timing
/// does not reveal how much of a guess was right. A missing token never matches.
pub(crate) fn token_matches(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !p.is_empty() => constant_time_eq(expected.as_bytes(), p.as_bytes()),
        _ => false,
    }
}

/// Whether a POST may be from this site: browsers send `Sec-Fetch-Site` and `Origin` on
/// form posts, and when either says another site sent it, it is refused. Absent headers
/// (an old browser, a script) pass: the CSRF token, or for sign-in the token itself, still
/// has to be right. This is what protects the sign-in form, which has no session yet
/// (login CSRF: a site signing a victim in as the attacker).
pub(crate) fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site != b"same-origin" && site != b"none" {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    // `Origin: null` (a sandboxed frame, a redirect from elsewhere) is not this site.
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(origin_host) = url.host_str() else {
        return false;
    };
    let origin_authority = match url.port() {
        Some(port) => format!("{origin_host}:{port}"),
        None => origin_host.to_string(),
    };
    origin_authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_the_exact_token_matches() {
        assert!(token_matches("abc", Some("abc")));
        assert!(!token_matches("abc", Some("abd")));
        assert!(!token_matches("abc", Some("ab")));
        assert!(!token_matches("abc", Some("")));
        assert!(!token_matches("abc", None));
    }

    #[test]
    fn a_post_from_another_site_is_refused() {
        assert!(same_site(&headers(&[])));
        assert!(same_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ])));
        assert!(!same_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null"),
        ])));
        assert!(!same_site(&headers(&[("origin", "http://127.0.0.1:8080")])));
    }
}
