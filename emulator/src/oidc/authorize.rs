//! `GET /{tenant}/oauth2/v2.0/authorize`: checks the request as Entra does, then shows a
//! user picker where Entra would ask for a password; `POST` of the picker issues the code.
//!
//! As in Entra, a request whose client or redirect URI cannot be trusted gets an error page
//! and is never redirected (that would hand a code or an error to whoever named the URI);
//! every other problem is redirected back to the registered URI with `error`,
//! `error_description` and `state`.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::super::Shared;
use super::super::http::{self, Req};
use super::{CODE_LIFETIME_SECONDS, Grant, REVIEW_CLIENT_ID, REVIEW_USERS, ReviewUser};

/// The parameters of one authorize request (from the query, or the picker's form).
struct Params(Vec<(String, String)>);

impl Params {
    fn of(req: &Req) -> Params {
        let raw: &[u8] = if req.method == Method::POST {
            &req.body
        } else {
            req.query.as_bytes()
        };
        Params(
            url::form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Where and how an answer goes back to the client.
struct Reply {
    redirect_uri: url::Url,
    mode: Mode,
    state: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// A request that passed every check.
struct Checked {
    reply: Reply,
    challenge: Option<(String, String)>,
    nonce: Option<String>,
    scope: String,
}

/// The review app accepts any loopback port, the way Entra treats `http://127.0.0.1` and
/// `http://localhost` redirect URIs of native apps, so a test's riposte on `127.0.0.1:0` can
/// sign in; the path must be riposte's callback, and nothing else may vary.
fn registered(uri: &str) -> Option<url::Url> {
    let parsed = url::Url::parse(uri).ok()?;
    let ok = parsed.scheme() == "http"
        && matches!(parsed.host_str(), Some("127.0.0.1" | "localhost"))
        && parsed.path() == "/auth/callback"
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    ok.then_some(parsed)
}

pub(super) fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let params = Params::of(req);
    let checked = match check(&params) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.respond(req),
    };
    if req.method == Method::GET {
        return picker(req, &params);
    }
    let Some(user) = params
        .get("user")
        .and_then(|oid| REVIEW_USERS.iter().find(|u| u.oid == oid))
    else {
        return error_page(
            req,
            50034,
            "The user account does not exist in the directory. Pick one of the listed accounts.",
        );
    };
    let code = issue(shared, &checked, *user);
    shared.bump("authorization_codes_issued");
    respond(&checked.reply, &[("code", code.as_str())])
}

/// Records a new one-time code for the checked request and the picked user.
fn issue(shared: &Shared, checked: &Checked, user: ReviewUser) -> String {
    let code = format!("1.AQ{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 48]>()));
    let grant = Grant {
        client_id: REVIEW_CLIENT_ID.to_owned(),
        redirect_uri: checked.reply.redirect_uri.to_string(),
        challenge: checked.challenge.clone(),
        nonce: checked.nonce.clone(),
        scope: checked.scope.clone(),
        user,
        expires: chrono::Utc::now().timestamp() + CODE_LIFETIME_SECONDS,
        redeemed: false,
    };
    shared
        .oidc
        .codes
        .lock()
        .expect("codes lock")
        .insert(code.clone(), grant);
    code
}

/// Why a request is refused, and whether it may be told through the redirect URI.
enum Refusal {
    Page {
        code: u32,
        message: String,
    },
    Redirect {
        reply: Reply,
        error: &'static str,
        code: u32,
        message: String,
    },
}

impl Refusal {
    fn respond(self, req: &Req) -> Response<Body> {
        match self {
            Refusal::Page { code, message } => error_page(req, code, &message),
            Refusal::Redirect {
                reply,
                error,
                code,
                message,
            } => respond(
                &reply,
                &[
                    ("error", error),
                    ("error_description", &format!("AADSTS{code}: {message}")),
                ],
            ),
        }
    }
}

fn missing(name: &str) -> String {
    format!("The request body must contain the following parameter: '{name}'.")
}

fn check(params: &Params) -> Result<Checked, Refusal> {
    let page = |code, message: String| Refusal::Page { code, message };
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page(900144, missing("client_id")))?;
    if !client_id.eq_ignore_ascii_case(REVIEW_CLIENT_ID) {
        return Err(page(
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory, or it has no redirect URIs for sign-in."
            ),
        ));
    }
    let uri = params
        .get("redirect_uri")
        .ok_or_else(|| page(900144, missing("redirect_uri")))?;
    let redirect_uri = registered(uri).ok_or_else(|| {
        page(
            50011,
            format!("The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{REVIEW_CLIENT_ID}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."),
        )
    })?;
    let (mode, mode_error) = match params.get("response_mode") {
        None | Some("query") => (Mode::Query, None),
        Some("fragment") => (Mode::Fragment, None),
        Some("form_post") => (Mode::FormPost, None),
        Some(other) => (Mode::Query, Some(other.to_owned())),
    };
    let reply = Reply {
        redirect_uri,
        mode,
        state: params.get("state").map(str::to_owned),
    };
    let redirect = |reply, error, code, message| {
        Err(Refusal::Redirect {
            reply,
            error,
            code,
            message,
        })
    };
    if let Some(other) = mode_error {
        return redirect(
            reply,
            "invalid_request",
            900144,
            format!(
                "The provided value for the input parameter 'response_mode' is not valid: '{other}'. Expected 'query', 'fragment' or 'form_post'."
            ),
        );
    }
    match params.get("response_type") {
        None => return redirect(reply, "invalid_request", 900144, missing("response_type")),
        Some("code") => {}
        Some(other) => {
            return redirect(
                reply,
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application."),
            );
        }
    }
    let Some(scope) = params.get("scope").map(str::to_owned) else {
        return redirect(reply, "invalid_request", 900144, missing("scope"));
    };
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return redirect(reply, "invalid_request", 900144, missing("code_challenge"));
        }
        // Entra takes `plain` and `S256`; without a method the challenge is plain (RFC 7636).
        (Some(c), None | Some("plain")) => Some((c.to_owned(), "plain".to_owned())),
        (Some(c), Some("S256")) => Some((c.to_owned(), "S256".to_owned())),
        (Some(_), Some(other)) => {
            return redirect(
                reply,
                "invalid_request",
                501471,
                format!(
                    "The code_challenge_method '{other}' is not supported. Use 'S256' or 'plain'."
                ),
            );
        }
    };
    Ok(Checked {
        reply,
        challenge,
        nonce: params.get("nonce").map(str::to_owned),
        scope,
    })
}

/// Sends `fields` (and the request's `state`) back to the client in its response mode.
fn respond(reply: &Reply, fields: &[(&str, &str)]) -> Response<Body> {
    let mut pairs: Vec<(&str, &str)> = fields.to_vec();
    if let Some(state) = &reply.state {
        pairs.push(("state", state));
    }
    let mut url = reply.redirect_uri.clone();
    match reply.mode {
        Mode::Query => {
            url.query_pairs_mut().extend_pairs(&pairs);
        }
        Mode::Fragment => {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            url.set_fragment(Some(&encoded));
        }
        Mode::FormPost => {
            let inputs: String = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        r#"<input type="hidden" name="{}" value="{}">"#,
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            return html(
                StatusCode::OK,
                &format!(
                    r#"<form method="post" action="{}">{inputs}<button type="submit">Continue</button></form><script>document.forms[0].submit()</script>"#,
                    escape(url.as_str())
                ),
            );
        }
    }
    let mut response = http::empty(StatusCode::FOUND);
    http::set_header(&mut response, "location", url.as_str());
    http::set_header(&mut response, "cache-control", "no-store, no-cache");
    response
}

/// The user picker: the request's parameters ride along as hidden fields, and each review
/// user is a submit button.
fn picker(req: &Req, params: &Params) -> Response<Body> {
    let hidden: String = params
        .0
        .iter()
        .filter(|(k, _)| k != "user")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let buttons: String = REVIEW_USERS
        .iter()
        .map(|u| {
            format!(
                "<li><button type=\"submit\" name=\"user\" value=\"{}\">{} <small>({})</small></button></li>\n",
                escape(u.oid),
                escape(u.name),
                escape(&u.roles.join(", "))
            )
        })
        .collect();
    let action = escape(&req.path);
    html(
        StatusCode::OK,
        &format!(
            "<h1>Pick an account</h1>\n<p>Emulated Microsoft identity platform: choose who signs in.</p>\n<form method=\"post\" action=\"{action}\">\n{hidden}<ul>\n{buttons}</ul>\n</form>"
        ),
    )
}

/// Entra's "Sorry, but we're having trouble signing you in" page.
pub(super) fn error_page(req: &Req, code: u32, message: &str) -> Response<Body> {
    html(
        StatusCode::BAD_REQUEST,
        &format!(
            "<h1>Sorry, but we're having trouble signing you in.</h1>\n<p id=\"error\">AADSTS{code}: {}</p>\n<p>Trace ID: {}</p>",
            escape(message),
            escape(&req.ctx.request_id)
        ),
    )
}

fn html(status: StatusCode, body: &str) -> Response<Body> {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>\n<body>\n{body}\n</body></html>\n"
    );
    let mut response = Response::new(Body::from(page));
    *response.status_mut() = status;
    http::set_header(&mut response, "content-type", "text/html; charset=utf-8");
    http::set_header(&mut response, "x-frame-options", "DENY");
    response
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_callbacks_are_registered() {
        assert!(registered("http://127.0.0.1:54321/auth/callback").is_some());
        assert!(registered("http://localhost/auth/callback").is_some());
        for uri in [
            "https://127.0.0.1:1/auth/callback",
            "http://evil.example/auth/callback",
            "http://127.0.0.1:1@evil.example/auth/callback",
            "http://127.0.0.1:1/auth/callback?next=x",
            "http://127.0.0.1:1/other",
            "http://127.0.0.1.evil.example/auth/callback",
        ] {
            assert!(registered(uri).is_none(), "{uri}");
        }
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
