//! Review-page sessions: opening one after a sign-in (API token here; the OIDC callback calls
//! [`open`] too), the cookie, and finding the session a request carries.
//!
//! The cookie `riposte_session` holds 256 random bits (base64url); the store keeps only their
//! sha256 ([`SessionStore`]), so a copy of the store signs nobody in. A session lasts
//! [`LIFETIME`] and is not extended: a SOC shift, then sign in again.
//!
//! The cookie is `HttpOnly` (no script reads it — the page has none anyway), `SameSite=Lax`
//! (not sent on another site's form posts) and `Path=/`, and `Secure` unless the listener is
//! loopback: on `127.0.0.1`/`::1` the page is plain HTTP from the same machine (the demo, a
//! tunnel), where a `Secure` cookie would never be sent back; anywhere else riposte is expected
//! behind TLS and the cookie must not travel in clear.

use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;

use super::super::AppState;
use super::super::settings::Role;
use crate::engine::service::Caller;
use crate::store::{SessionRecord, SessionStore, StoreError};

/// The cookie's name.
pub const COOKIE: &str = "riposte_session";
/// How long a session lasts from sign-in.
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(8);

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the session could not be stored: {0}")]
    Store(#[from] StoreError),
}

/// A session just opened: what the browser gets. The id is the secret; it is never stored.
#[derive(Debug)]
pub struct OpenedSession {
    id: String,
    /// The token every form of the session carries.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl OpenedSession {
    /// The `Set-Cookie` value carrying the session: `HttpOnly; SameSite=Lax; Path=/`, a
    /// `Max-Age` of the session's lifetime, and `Secure` when `secure` (see the module
    /// documentation for when: [`secure_cookies`]).
    pub fn set_cookie(&self, secure: bool) -> HeaderValue {
        let text = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
            self.id,
            LIFETIME.num_seconds(),
            if secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&text).expect("base64url and fixed text are valid header text")
    }
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn expired_cookie(secure: bool) -> HeaderValue {
    let text = format!(
        "{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).expect("fixed text is valid header text")
}

/// Whether the cookie must be `Secure`: unless riposte listens on a loopback address.
pub fn secure_cookies(listen: &std::net::SocketAddr) -> bool {
    !listen.ip().is_loopback()
}

/// 256 random bits from the operating system's CSPRNG (through `rand`'s thread generator,
/// reseeded from it), base64url without padding.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a secret id: the digest API tokens are configured as.
pub(super) fn digest(id: &str) -> String {
    crate::server::token_digest(id)
}

/// Opens a session for `caller` with `role` for [`LIFETIME`]: stores its digest, caller, role
/// and CSRF token, and hands back what goes into the cookie. Expired sessions are removed on
/// the way, so the table holds only live ones without a sweeper task.
pub async fn open(
    store: &dyn SessionStore,
    caller: &Caller,
    role: Role,
) -> Result<OpenedSession, SessionError> {
    let now = Utc::now();
    store.delete_expired_sessions(now).await?;
    let id = random_token();
    let opened = OpenedSession {
        csrf_token: random_token(),
        expires_at: now + LIFETIME,
        id,
    };
    store
        .create_session(&SessionRecord {
            id_sha256: digest(&opened.id),
            caller: caller.name.clone(),
            role: role.as_str().to_string(),
            csrf_token: opened.csrf_token.clone(),
            created_at: now,
            expires_at: opened.expires_at,
        })
        .await?;
    Ok(opened)
}

/// The value of the request's cookie `name`, if it carries a non-empty one.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The session id the request's cookie carries, if any.
fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The signed-in person a request comes from. Extracting it from a request without a live
/// session is refused with a redirect to sign-in ([`NotSignedIn`]), before any handler reads
/// tenant data.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub caller: Caller,
    pub role: Role,
    pub csrf_token: String,
    /// The digest the session is stored under (for sign-out).
    pub id_sha256: String,
}

/// No live session: answered with `303 See Other` to `/auth/login?next=<this page>`
/// (`next=/` for a form post).
pub(crate) struct NotSignedIn {
    pub next: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = NotSignedIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NotSignedIn> {
        // After sign-in the browser goes back to the page it asked for; a form post cannot be
        // repeated by a redirect, so it goes to the list.
        let next = if parts.method == axum::http::Method::GET {
            parts.uri.path().to_string()
        } else {
            "/".to_string()
        };
        let not_signed_in = || NotSignedIn { next: next.clone() };
        let Some(id) = cookie_id(&parts.headers) else {
            return Err(not_signed_in());
        };
        let Some(store) = state.service.sessions() else {
            return Err(not_signed_in());
        };
        let id_sha256 = digest(id);
        // A store failure reads as signed out: the page then asks for sign-in again, which
        // reports the store's trouble, rather than showing anything.
        let Ok(Some(record)) = store.find_session(&id_sha256, Utc::now()).await else {
            return Err(not_signed_in());
        };
        let Ok(mut role) = Role::from_str(&record.role) else {
            return Err(not_signed_in());
        };
        // A token removed from `[server] tokens` ends its sessions; a lowered role applies
        // at once.
        if let Some(name) = record.caller.strip_prefix("token:") {
            match state.tokens.role_of(name) {
                Some(now) => role = role.min(now),
                None => return Err(not_signed_in()),
            }
        }
        if role < Role::Viewer {
            return Err(not_signed_in());
        }
        Ok(SignedIn {
            caller: Caller {
                name: record.caller,
            },
            role,
            csrf_token: record.csrf_token,
            id_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_off_loopback() {
        let opened = OpenedSession {
            id: random_token(),
            csrf_token: random_token(),
            expires_at: Utc::now(),
        };
        let plain = opened.set_cookie(false);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("riposte_session="), "{plain}");
        assert!(
            plain.contains("; HttpOnly; SameSite=Lax; Path=/;"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(
            opened
                .set_cookie(true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(secure_cookies(&"0.0.0.0:8080".parse().unwrap()));
        assert!(secure_cookies(&"10.1.2.3:443".parse().unwrap()));
        assert!(!secure_cookies(&"127.0.0.1:8080".parse().unwrap()));
        assert!(!secure_cookies(&"[::1]:8080".parse().unwrap()));
    }

    #[test]
    fn a_session_id_is_256_random_bits() {
        let a = random_token();
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&a)
                .unwrap()
                .len(),
            32
        );
        assert_ne!(a, random_token());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; riposte_session=xyz; b=2"),
        );
        assert_eq!(cookie_id(&h), Some("xyz"));
        h.insert(header::COOKIE, HeaderValue::from_static("riposte_session="));
        assert_eq!(cookie_id(&h), None);
    }
}
