//! Bearer tokens → roles. Tokens are configured as sha256 digests only, so the
//! configuration file (and a backup of it) grants nothing; a presented token is hashed and
//! compared with every entry in constant time.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use super::settings::{Role, TokenEntry};
use super::signature::constant_time_eq;
use crate::engine::service::Caller;

/// The configured tokens, digests normalised to lower-case hex.
pub(crate) struct Tokens {
    entries: Vec<(String, Role, String)>,
}

impl Tokens {
    pub(crate) fn new(entries: &[TokenEntry]) -> Tokens {
        Tokens {
            entries: entries
                .iter()
                .map(|e| (e.name.clone(), e.role, e.sha256.trim().to_ascii_lowercase()))
                .collect(),
        }
    }

    /// The name and role of the entry whose digest matches `token`. Every entry is compared,
    /// match or not, so timing reveals neither which entry matched nor how closely.
    fn find(&self, token: &str) -> Option<(&str, Role)> {
        let digest = token_digest(token);
        let mut found = None;
        for (name, role, sha256) in &self.entries {
            if constant_time_eq(digest.as_bytes(), sha256.as_bytes()) && found.is_none() {
                found = Some((name.as_str(), *role));
            }
        }
        found
    }

    /// The role the token named `name` holds now, if it is still configured. A review-page
    /// session opened with a token lasts no longer than the token's entry, and never holds
    /// more than the entry's current role.
    pub(crate) fn role_of(&self, name: &str) -> Option<Role> {
        self.entries
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, role, _)| *role)
    }

    /// The caller a token stands for (`token:<name>`), if its role may do what `needed`
    /// names. An `ingest` token may post alerts and nothing else.
    pub(crate) fn authorize(&self, token: Option<&str>, needed: Role) -> Result<Caller, ApiError> {
        self.authorize_as(token, needed).map(|(caller, _)| caller)
    }

    /// [`Tokens::authorize`], with the role the token holds (the review page's sign-in keeps
    /// it in the session).
    pub(crate) fn authorize_as(
        &self,
        token: Option<&str>,
        needed: Role,
    ) -> Result<(Caller, Role), ApiError> {
        let token = token.ok_or(ApiError::Unauthenticated(
            "this route needs a bearer token (Authorization: Bearer <token>)",
        ))?;
        let (name, held) = self
            .find(token)
            .ok_or(ApiError::Unauthenticated("the bearer token is not known"))?;
        let allowed = match needed {
            Role::Ingest => held == Role::Ingest || held >= Role::Responder,
            _ => held >= needed,
        };
        if !allowed {
            return Err(ApiError::Forbidden { needed, held });
        }
        Ok((
            Caller {
                name: format!("token:{name}"),
            },
            held,
        ))
    }
}

/// The token of `Authorization: Bearer <token>`; `Ok(None)` when there is no such header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthenticated(
            "the Authorization header must read `Bearer <token>`",
        )),
    }
}

/// The least role a route needs, as a type so a handler's signature states it.
pub(crate) trait Requirement {
    const ROLE: Role;
}

pub(crate) struct Viewer;
pub(crate) struct Responder;
pub(crate) struct Approver;

impl Requirement for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Requirement for Responder {
    const ROLE: Role = Role::Responder;
}
impl Requirement for Approver {
    const ROLE: Role = Role::Approver;
}

/// A caller authenticated by `Authorization: Bearer` with at least `R`'s role. Extracted
/// from the request head, so an unauthenticated request is refused before its body is read.
pub(crate) struct Authenticated<R> {
    pub caller: Caller,
    _role: PhantomData<R>,
}

impl<R: Requirement> FromRequestParts<AppState> for Authenticated<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = state.tokens.authorize(bearer(&parts.headers)?, R::ROLE)?;
        Ok(Authenticated {
            caller,
            _role: PhantomData,
        })
    }
}

/// An `ingest` token (or a responder or higher) sending alerts: the token comes from
/// `Authorization: Bearer` or, for webhook channels that can only be given a URL, from the
/// `token` query parameter — and then only an `ingest` token, since a URL leaks more easily
/// than a header. Only ingestion accepts the query form; nothing logs the query string.
pub(crate) struct Sender {
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let from_query = || {
            parts.uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
            })
        };
        let caller = match bearer(&parts.headers)? {
            Some(token) => state.tokens.authorize(Some(token), Role::Ingest)?,
            None => {
                let (caller, held) = state
                    .tokens
                    .authorize_as(from_query().as_deref(), Role::Ingest)?;
                if held != Role::Ingest {
                    return Err(ApiError::Forbidden {
                        needed: Role::Ingest,
                        held,
                    });
                }
                caller
            }
        };
        Ok(Sender { caller })
    }
}

/// What `[[server.tokens]]` stores for a token: the hex sha256 of its text.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
