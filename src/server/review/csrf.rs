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

/// Whether a POST may be from this site. Browsers send `Sec-Fetch-Site` on form posts and it
/// decides alone when present (it needs no knowledge of our host name, so a reverse proxy that
/// rewrites `Host` does not break it); an older browser's `Origin` must then name the `Host`
/// the request was sent to. Absent headers (a script) pass: the CSRF token, or for sign-in the
/// token itself, still has to be right. This is what protects the sign-in form, which has no
/// session yet (login CSRF: a site signing a victim in as the attacker).
pub(crate) fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: the person typed or bookmarked it; never another site's doing.
        return matches!(site.as_bytes(), b"same-origin" | b"none");
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
        // Behind a proxy that rewrites Host, the browser's own verdict still decides.
        assert!(same_site(&headers(&[
            ("host", "backend:8080"),
            ("origin", "https://riposte.contoso.com"),
            ("sec-fetch-site", "same-origin"),
        ])));
    }
}
