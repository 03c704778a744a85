//! Token issuance (Entra client credentials, IMDS, App Service) and the bearer check every API
//! route runs.
//!
//! Issued tokens are real JWTs so clients that peek at `exp` or `roles` see what Entra would give
//! them; they are signed HS256 with a per-instance key because nothing outside the emulator ever
//! needs to verify them.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::Digest as _;

use super::Shared;
use super::http::{self, Req};
use super::tenant;

/// Audiences by API, for every cloud (tokens follow the cloud, not the emulator's address).
pub const GRAPH_AUDIENCES: &[&str] = &[
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.usgovcloudapi.net",
    "https://management.core.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
    "https://management.core.chinacloudapi.cn",
];
pub const LOG_ANALYTICS_AUDIENCES: &[&str] = &[
    "https://api.loganalytics.io",
    "https://api.loganalytics.azure.com",
    "https://api.loganalytics.us",
    "https://api.loganalytics.azure.cn",
];

/// Claims of an issued access token (v1 shape, as Entra issues for client credentials).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub appid: String,
    pub oid: String,
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub idtyp: String,
    pub ver: String,
}

/// Why a bearer token was refused; each API words it in its own error shape.
#[derive(Debug, Clone)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired { exp: i64 },
    WrongAudience { aud: String },
}

/// Signs and checks the emulator's access tokens.
pub struct Issuer {
    key: Vec<u8>,
}

impl Issuer {
    pub fn new() -> Issuer {
        Issuer {
            key: rand::random::<[u8; 32]>().to_vec(),
        }
    }

    /// Issues a token; returns it with its `exp`.
    pub fn issue(
        &self,
        tenant_id: &str,
        appid: &str,
        oid: &str,
        aud: &str,
        roles: Vec<String>,
        lifetime: i64,
    ) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            aud: aud.to_owned(),
            iss: format!("https://sts.windows.net/{tenant_id}/"),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            tid: tenant_id.to_owned(),
            appid: appid.to_owned(),
            oid: oid.to_owned(),
            sub: oid.to_owned(),
            roles,
            idtyp: "app".to_owned(),
            ver: "1.0".to_owned(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .expect("HS256 signing with an in-memory key cannot fail");
        (token, claims.exp)
    }

    /// Checks a request's bearer token against the audiences of the API it calls.
    pub fn check(&self, req: &Req, audiences: &[&str]) -> Result<Claims, AuthFailure> {
        let token = req.bearer().ok_or(AuthFailure::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.key),
            &validation,
        )
        .map_err(|_| AuthFailure::Invalid)?
        .claims;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(AuthFailure::Expired { exp: claims.exp });
        }
        let aud = claims.aud.trim_end_matches('/');
        if !audiences.iter().any(|a| a.eq_ignore_ascii_case(aud)) {
            return Err(AuthFailure::WrongAudience {
                aud: claims.aud.clone(),
            });
        }
        Ok(claims)
    }
}

impl Default for Issuer {
    fn default() -> Self {
        Issuer::new()
    }
}

/// Whether a resource (App ID URI) names an API the emulator serves.
fn known_resource(resource: &str) -> bool {
    let r = resource.trim_end_matches('/');
    GRAPH_AUDIENCES
        .iter()
        .chain(ARM_AUDIENCES)
        .chain(LOG_ANALYTICS_AUDIENCES)
        .any(|a| a.eq_ignore_ascii_case(r))
}

fn graph_roles_for(resource: &str, roles: &[String]) -> Vec<String> {
    let r = resource.trim_end_matches('/');
    if GRAPH_AUDIENCES.iter().any(|a| a.eq_ignore_ascii_case(r)) {
        roles.to_vec()
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Entra ID: POST /{tenant}/oauth2/v2.0/token

/// An Entra error in its token-endpoint shape.
pub fn entra_error(
    req: &Req,
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
) -> Response<Body> {
    let trace = &req.ctx.request_id;
    let correlation = req
        .ctx
        .client_request_id
        .clone()
        .unwrap_or_else(http::new_id);
    let timestamp = req.ctx.received.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let mut response = http::json(status, &body);
    http::set_header(&mut response, "x-ms-request-id", trace);
    if let Some(id) = &req.ctx.client_request_id {
        http::set_header(&mut response, "client-request-id", id);
    }
    response
}

/// `POST /{tenant}/oauth2/v2.0/token` with the client-credentials grant (the authorization-code
/// grant is `oidc`'s).
pub fn token_endpoint(shared: &Shared, req: &Req) -> Response<Body> {
    let segments = req.segments();
    let path_ok = segments.len() == 4
        && segments[1].eq_ignore_ascii_case("oauth2")
        && segments[2].eq_ignore_ascii_case("v2.0")
        && segments[3].eq_ignore_ascii_case("token");
    if !path_ok || req.method != Method::POST {
        return entra_error(
            req,
            StatusCode::NOT_FOUND,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests to /{tenant}/oauth2/v2.0/token.",
        );
    }
    let tenant_in_path = &segments[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let state = shared.state.lock().expect("state lock");
    let tenant_ok = state.tenant_id.eq_ignore_ascii_case(tenant_in_path)
        || state
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(tenant_in_path));
    if !tenant_ok {
        return entra_error(
            req,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant_in_path}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some("authorization_code") => {
            drop(state);
            return crate::oidc::redeem(shared, req, &form);
        }
        Some(other) => {
            return entra_error(
                req,
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            );
        }
        None => {
            return entra_error(
                req,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
    }
    let basic = basic_credentials(req);
    let client_id = field("client_id").or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
    let Some(client_id) = client_id else {
        return entra_error(
            req,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(app) = state
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&client_id))
    else {
        return entra_error(
            req,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_in_path}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    };
    let resource = match parse_scope(field("scope").as_deref()) {
        Ok(resource) => resource,
        Err(message) => {
            return entra_error(
                req,
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                &message,
            );
        }
    };
    let secret = field("client_secret").or_else(|| basic.map(|(_, s)| s));
    let assertion = field("client_assertion");
    if let Some(assertion) = assertion {
        if field("client_assertion_type").as_deref()
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return entra_error(
                req,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            );
        }
        let allowed_tenants: Vec<&str> = std::iter::once(state.tenant_id.as_str())
            .chain(state.domains.iter().map(String::as_str))
            .collect();
        if let Err((code, message)) = verify_assertion(app, &assertion, &allowed_tenants) {
            return entra_error(
                req,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                code,
                &message,
            );
        }
    } else if let Some(secret) = secret {
        if !app.secrets.iter().any(|s| s == &secret) {
            return entra_error(
                req,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            );
        }
    } else {
        return entra_error(
            req,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        );
    }
    let oid = app
        .object_id
        .clone()
        .unwrap_or_else(|| app.client_id.clone());
    let roles = graph_roles_for(&resource, &app.graph_roles);
    let lifetime = state.behaviour.token_lifetime_seconds;
    let (token, _) = shared.issuer.issue(
        &state.tenant_id,
        &app.client_id,
        &oid,
        &resource,
        roles,
        lifetime,
    );
    drop(state);
    shared.bump("tokens_issued");
    let mut response = http::json(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime.max(0),
            "ext_expires_in": lifetime.max(0),
            "access_token": token,
        }),
    );
    http::set_header(&mut response, "x-ms-request-id", &req.ctx.request_id);
    http::set_header(&mut response, "cache-control", "no-store, no-cache");
    if let Some(id) = &req.ctx.client_request_id {
        http::set_header(&mut response, "client-request-id", id);
    }
    response
}

/// `client_id:secret` from HTTP Basic (RFC 6749 §2.3.1: both parts form-encoded).
pub(crate) fn basic_credentials(req: &Req) -> Option<(String, String)> {
    let value = req.header("authorization")?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// The resource of a client-credentials scope: exactly one `<resource>/.default`.
fn parse_scope(scope: Option<&str>) -> Result<String, String> {
    let Some(scope) = scope.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err("The provided request must include a 'scope' input parameter.".into());
    };
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let invalid = || {
        format!(
            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        )
    };
    if scopes.len() != 1 {
        return Err(invalid());
    }
    let Some(resource) = scopes[0].strip_suffix("/.default") else {
        return Err(invalid());
    };
    if !known_resource(resource) {
        return Err(invalid());
    }
    Ok(resource.to_owned())
}

/// Checks a certificate client assertion; errors carry the AADSTS code and message.
fn verify_assertion(
    app: &tenant::App,
    assertion: &str,
    tenants: &[&str],
) -> Result<(), (u32, String)> {
    let malformed = || (50027, "JWT token is invalid or malformed.".to_owned());
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    let (thumbprint, by_sha256) = match header.alg {
        Algorithm::PS256 | Algorithm::RS256 => match (&header.x5t_s256, &header.x5t) {
            (Some(t), _) if header.alg == Algorithm::PS256 || header.x5t.is_none() => {
                (t.clone(), true)
            }
            (_, Some(t)) => (t.clone(), false),
            _ => {
                return Err((
                    700027,
                    "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '']".into(),
                ));
            }
        },
        other => {
            return Err((
                700027,
                format!(
                    "Client assertion failed signature validation. [Reason - Algorithm '{other:?}' is not supported.]"
                ),
            ));
        }
    };
    let thumbprint = thumbprint.trim_end_matches('=');
    let certificate = app
        .certificates
        .iter()
        .find(|c| {
            let (sha1, sha256) = thumbprints(c);
            let wanted = if by_sha256 { sha256 } else { sha1 };
            wanted.is_some_and(|w| w.trim_end_matches('=') == thumbprint)
        })
        .ok_or_else(|| {
            (
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                    app.client_id
                ),
            )
        })?;
    let pem = certificate
        .public_key_pem
        .as_deref()
        .or(certificate.certificate_pem.as_deref())
        .unwrap_or_default();
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
        (
            700027,
            "Client assertion failed signature validation. [Reason - The registered key is not an RSA key.]".to_owned(),
        )
    })?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature
            | jsonwebtoken::errors::ErrorKind::ImmatureSignature => (
                700024,
                "Client assertion is not within its valid time range.".to_owned(),
            ),
            _ => (
                700027,
                "Client assertion failed signature validation.".to_owned(),
            ),
        })?
        .claims;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    if !claim("iss").eq_ignore_ascii_case(&app.client_id)
        || !claim("sub").eq_ignore_ascii_case(&app.client_id)
    {
        return Err((
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .".into(),
        ));
    }
    let aud = claim("aud").trim_end_matches('/').to_ascii_lowercase();
    let aud_ok = tenants.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        aud.ends_with(&format!("/{t}/oauth2/v2.0/token"))
            || aud.ends_with(&format!("/{t}/oauth2/token"))
    });
    if !aud_ok {
        return Err((
            700027,
            format!(
                "Client assertion contains an invalid audience '{}'; expected the token endpoint of this tenant.",
                claim("aud")
            ),
        ));
    }
    Ok(())
}

/// base64url SHA-1 and SHA-256 thumbprints of a certificate credential.
fn thumbprints(c: &tenant::Certificate) -> (Option<String>, Option<String>) {
    if let Some(der) = c.certificate_pem.as_deref().and_then(pem_der) {
        let sha1 = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der));
        let sha256 = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));
        return (Some(sha1), Some(sha256));
    }
    (c.x5t.clone(), c.x5t_s256.clone())
}

/// The DER inside the first PEM block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).ok()
}

// ---------------------------------------------------------------------------------------------
// Managed identity: IMDS and App Service

fn imds_error(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    http::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// `GET /metadata/identity/oauth2/token` (IMDS, VM/VMSS).
pub fn imds(shared: &Shared, req: &Req) -> Response<Body> {
    if !req
        .path
        .eq_ignore_ascii_case("/metadata/identity/oauth2/token")
        || req.method != Method::GET
    {
        return imds_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested path was not found.",
        );
    }
    if !req
        .header("metadata")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    if req.query_param("api-version").is_none() {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    managed_identity_token(shared, req, true)
}

/// `GET /msi/token` (App Service / Functions `IDENTITY_ENDPOINT`).
pub fn app_service(shared: &Shared, req: &Req) -> Response<Body> {
    let expected = shared
        .state
        .lock()
        .expect("state lock")
        .managed_identity
        .as_ref()
        .map(|m| m.identity_header.clone());
    if expected.is_none() || req.header("x-identity-header") != expected.as_deref() {
        return http::json(
            StatusCode::BAD_REQUEST,
            &json!({"statusCode": 400, "message": "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER."}),
        );
    }
    managed_identity_token(shared, req, false)
}

fn managed_identity_token(shared: &Shared, req: &Req, imds_shape: bool) -> Response<Body> {
    let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required audience parameter not specified",
        );
    };
    if !known_resource(&resource) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    }
    let state = shared.state.lock().expect("state lock");
    let Some(identity) = state.managed_identity.clone() else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    let picked = req
        .query_param("client_id")
        .map(|c| c.eq_ignore_ascii_case(&identity.client_id))
        .or_else(|| {
            req.query_param("object_id")
                .or_else(|| req.query_param("principal_id"))
                .map(|o| o.eq_ignore_ascii_case(&identity.object_id))
        })
        .unwrap_or(true);
    if !picked {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    }
    let lifetime = state.behaviour.token_lifetime_seconds;
    let (token, exp) = shared.issuer.issue(
        &state.tenant_id,
        &identity.client_id,
        &identity.object_id,
        &resource,
        graph_roles_for(&resource, &identity.graph_roles),
        lifetime,
    );
    drop(state);
    shared.bump("tokens_issued");
    let now = chrono::Utc::now().timestamp();
    let body = if imds_shape {
        json!({
            "access_token": token,
            "refresh_token": "",
            "expires_in": lifetime.max(0).to_string(),
            "expires_on": exp.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        })
    } else {
        json!({
            "access_token": token,
            "expires_on": exp.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        })
    };
    http::json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_exactly_one_known_resource_with_default() {
        assert_eq!(
            parse_scope(Some("https://graph.microsoft.com/.default")).unwrap(),
            "https://graph.microsoft.com"
        );
        assert!(parse_scope(Some("https://management.azure.com//.default")).is_ok());
        assert!(parse_scope(None).is_err());
        assert!(parse_scope(Some("https://graph.microsoft.com/User.Read")).is_err());
        assert!(parse_scope(Some("https://example.com/.default")).is_err());
        assert!(
            parse_scope(Some(
                "https://graph.microsoft.com/.default https://management.azure.com/.default"
            ))
            .is_err()
        );
    }

    #[test]
    fn issued_tokens_are_checked_for_audience_and_expiry() {
        let issuer = Issuer::new();
        let (token, _) = issuer.issue("t", "a", "o", "https://management.azure.com/", vec![], 60);
        let req = |token: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
            Req {
                method: Method::GET,
                path: "/".into(),
                query: String::new(),
                headers,
                body: Default::default(),
                ctx: http::Ctx {
                    request_id: "r".into(),
                    client_request_id: None,
                    base_url: "http://x".into(),
                    received: chrono::Utc::now(),
                },
            }
        };
        assert!(issuer.check(&req(&token), ARM_AUDIENCES).is_ok());
        assert!(matches!(
            issuer.check(&req(&token), GRAPH_AUDIENCES),
            Err(AuthFailure::WrongAudience { .. })
        ));
        let (old, _) = issuer.issue("t", "a", "o", "https://graph.microsoft.com", vec![], -1);
        assert!(matches!(
            issuer.check(&req(&old), GRAPH_AUDIENCES),
            Err(AuthFailure::Expired { .. })
        ));
        assert!(matches!(
            Issuer::new().check(&req(&token), ARM_AUDIENCES),
            Err(AuthFailure::Invalid)
        ));
    }
}
