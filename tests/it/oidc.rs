//! The review page's sign-in client against the emulator, with a plain HTTP client standing
//! in for the browser: authorize URL → picker → callback → `finish`, and every way an id
//! token or a callback can be wrong.

use reqwest::{StatusCode, redirect};
use riposte::connectors::{AzureSettings, Endpoints, HttpClient, HttpOptions};
use riposte::server::oidc::{OidcClient, OidcError, PendingLogin, SignedIn};
use riposte::server::{OidcSettings, Role};
use riposte_emulator::oidc::{IdTokenPatch, REVIEW_USERS};
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::json;

const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";

struct Env {
    emulator: EmulatorHandle,
    oidc: OidcClient,
    browser: reqwest::Client,
    callback: String,
}

/// What the callback URL brought back.
struct Callback {
    code: String,
    state: String,
}

impl Env {
    async fn start() -> Env {
        Env::with_tenant(TENANT).await
    }

    async fn with_tenant(tenant: &str) -> Env {
        riposte::connectors::install_crypto_provider();
        let emulator =
            Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
        let oidc = client(&emulator, tenant).await.unwrap();
        Env {
            browser: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            callback: "http://127.0.0.1:8080/auth/callback".into(),
            emulator,
            oidc,
        }
    }

    /// The browser's part: follows the authorize URL, picks `name`, and reads the callback.
    async fn browse(&self, url: &url::Url, name: &str) -> Callback {
        let page = self.browser.get(url.as_str()).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains(name));
        let oid = REVIEW_USERS.iter().find(|u| u.name == name).unwrap().oid;
        // The picker's form holds the request's parameters and the picked user.
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("user".into(), oid.into()));
        let mut action = url.clone();
        action.set_query(None);
        let answer = self
            .browser
            .post(action.as_str())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FOUND);
        let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(&self.callback), "{location}");
        let get = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        Callback {
            code: get("code"),
            state: get("state"),
        }
    }

    /// A whole sign-in as `name`.
    async fn sign_in(&self, name: &str) -> Result<SignedIn, OidcError> {
        let (url, pending) = self.oidc.begin(&self.callback).unwrap();
        let back = self.browse(&url, name).await;
        self.oidc.finish(&back.code, &back.state, &pending).await
    }
}

/// A client configured the way a deployment is: `[azure]` and `[server.oidc]` as the emulator
/// prints them (`tenant` overrides `[azure] tenant_id`).
async fn client(emulator: &EmulatorHandle, tenant: &str) -> Result<OidcClient, OidcError> {
    use figment::providers::Format as _;
    let text = format!(
        "{}\n{}",
        riposte_emulator::client_config_toml(&emulator.base_url()),
        emulator.oidc_config_toml()
    );
    let config = figment::Figment::from(figment::providers::Toml::string(&text));
    let settings: OidcSettings = config.extract_inner("server.oidc").unwrap();
    let mut azure: AzureSettings = config.extract_inner("azure").unwrap();
    azure.tenant_id = Some(tenant.to_owned());
    let http = HttpClient::new(HttpOptions {
        max_retries: 0,
        ..HttpOptions::default()
    })
    .unwrap();
    OidcClient::discover_for(&settings, &azure, http).await
}

fn patch(claims: serde_json::Value) -> IdTokenPatch {
    IdTokenPatch {
        claims: claims.as_object().unwrap().clone(),
        ..IdTokenPatch::default()
    }
}

#[tokio::test]
async fn an_approver_signs_in_with_code_and_pkce_and_is_recorded_by_object_id() {
    let env = Env::start().await;
    let (url, pending) = env.oidc.begin(&env.callback).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let has = |k: &str, v: &str| query.iter().any(|(qk, qv)| qk == k && qv == v);
    assert!(has("code_challenge_method", "S256"), "{url}");
    assert!(has("response_type", "code") && has("nonce", &pending.nonce));
    assert!(has("state", &pending.state) && has("redirect_uri", &env.callback));
    assert!(!url.as_str().contains(&pending.pkce_verifier));
    // The pending login is what the server keeps: it survives the store.
    let stored: PendingLogin =
        serde_json::from_str(&serde_json::to_string(&pending).unwrap()).unwrap();
    let back = env.browse(&url, "Lee Approver").await;
    let signed_in = env
        .oidc
        .finish(&back.code, &back.state, &stored)
        .await
        .unwrap();
    assert_eq!(
        signed_in.caller.name,
        "oidc:5e1ec7ed-0000-4000-8000-000000000003"
    );
    assert_eq!(signed_in.role, Role::Approver);
    assert_eq!(signed_in.name, "Lee Approver");
    assert_eq!(signed_in.username, "lee.approver@contoso.onmicrosoft.com");
    assert_eq!(
        env.oidc.issuer(),
        format!("{}/{TENANT}/v2.0", env.emulator.base_url())
    );
    for (name, role) in [
        ("Alex Viewer", Role::Viewer),
        ("Megan Responder", Role::Responder),
        ("Grady Admin", Role::Admin),
    ] {
        assert_eq!(env.sign_in(name).await.unwrap().role, role, "{name}");
    }
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn a_tenant_named_by_domain_signs_in_against_its_guid() {
    let env = Env::with_tenant("contoso.onmicrosoft.com").await;
    assert!(env.oidc.issuer().ends_with(&format!("/{TENANT}/v2.0")));
    assert!(env.sign_in("Alex Viewer").await.is_ok());
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn a_tampered_id_token_is_refused() {
    let env = Env::start().await;
    env.emulator.state().patch_next_id_token(IdTokenPatch {
        tamper: true,
        ..patch(json!({"roles": ["Riposte.Admin"]}))
    });
    let error = env.sign_in("Alex Viewer").await.unwrap_err();
    assert!(matches!(error, OidcError::InvalidIdToken(_)), "{error}");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn the_nonce_of_another_sign_in_is_refused() {
    let env = Env::start().await;
    let (url, pending) = env.oidc.begin(&env.callback).unwrap();
    let (_, other) = env.oidc.begin(&env.callback).unwrap();
    let back = env.browse(&url, "Grady Admin").await;
    // The state matches, but the pending login is another sign-in's.
    let swapped = PendingLogin {
        nonce: other.nonce,
        ..pending
    };
    let error = env
        .oidc
        .finish(&back.code, &back.state, &swapped)
        .await
        .unwrap_err();
    assert!(matches!(error, OidcError::NonceMismatch), "{error}");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn a_callback_with_another_state_redeems_nothing() {
    let env = Env::start().await;
    let (url, pending) = env.oidc.begin(&env.callback).unwrap();
    let back = env.browse(&url, "Grady Admin").await;
    let issued = env.emulator.state().counter("tokens_issued");
    let error = env
        .oidc
        .finish(&back.code, "forged-state", &pending)
        .await
        .unwrap_err();
    assert!(matches!(error, OidcError::StateMismatch), "{error}");
    assert_eq!(env.emulator.state().counter("tokens_issued"), issued);
    // And a pending login older than a code's life is refused before redemption.
    let stale = PendingLogin {
        created: pending.created - chrono::Duration::minutes(11),
        ..pending
    };
    let error = env
        .oidc
        .finish(&back.code, &back.state, &stale)
        .await
        .unwrap_err();
    assert!(matches!(error, OidcError::Expired), "{error}");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn an_expired_code_is_refused_with_entras_error() {
    let env = Env::start().await;
    let (url, pending) = env.oidc.begin(&env.callback).unwrap();
    let back = env.browse(&url, "Lee Approver").await;
    env.emulator.state().expire_authorization_codes();
    let error = env
        .oidc
        .finish(&back.code, &back.state, &pending)
        .await
        .unwrap_err();
    match &error {
        OidcError::Refused {
            error: e, codes, ..
        } => {
            assert_eq!(
                (e.as_str(), codes.as_slice()),
                ("invalid_grant", &[70008][..])
            );
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("AADSTS70008"), "{error}");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn id_tokens_for_another_audience_tenant_or_time_or_without_a_role_are_refused() {
    let env = Env::start().await;
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            json!({"aud": "c0ffee00-1111-4222-8333-444455556666"}),
            "audience",
        ),
        (
            json!({"iss": "https://login.microsoftonline.com/d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11/v2.0"}),
            "issuer",
        ),
        (json!({"exp": now - 600}), "expired"),
        (json!({"nbf": now + 600}), "not yet valid"),
        (json!({"nonce": null}), "nonce"),
        (
            json!({"tid": "00000000-0000-0000-0000-000000000001"}),
            "tenant",
        ),
        (json!({"roles": ["Other.App.Role"]}), "role"),
        (json!({"oid": "oidc:admin"}), "oid"),
    ];
    for (claims, what) in cases {
        env.emulator.state().patch_next_id_token(patch(claims));
        let error = env.sign_in("Grady Admin").await.unwrap_err();
        let expected = match what {
            "nonce" => matches!(error, OidcError::NonceMismatch),
            "tenant" => matches!(error, OidcError::WrongTenant { .. }),
            "role" => matches!(error, OidcError::NoRole),
            _ => matches!(error, OidcError::InvalidIdToken(_)),
        };
        assert!(expected, "{what}: {error}");
    }
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn a_key_rollover_is_followed_once_and_an_unknown_key_is_refused() {
    let env = Env::start().await;
    let keys_read = |env: &Env| {
        env.emulator
            .state()
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/discovery/v2.0/keys"))
            .count()
    };
    assert_eq!(keys_read(&env), 1, "discovery reads the JWKS");
    env.emulator.state().rotate_signing_key();
    assert!(env.sign_in("Alex Viewer").await.is_ok());
    assert_eq!(
        keys_read(&env),
        2,
        "an unseen kid makes the client read the JWKS again"
    );
    assert!(env.sign_in("Alex Viewer").await.is_ok());
    assert_eq!(keys_read(&env), 2, "a known kid needs no read");
    env.emulator.state().patch_next_id_token(IdTokenPatch {
        kid: Some("nobody-published-this".into()),
        ..IdTokenPatch::default()
    });
    let error = env.sign_in("Alex Viewer").await.unwrap_err();
    assert!(matches!(error, OidcError::UnknownKey(_)), "{error}");
    assert_eq!(keys_read(&env), 3, "one more read, then refused");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn discovery_for_a_tenant_the_authority_does_not_know_fails() {
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let error = client(&emulator, "00000000-0000-0000-0000-000000000001")
        .await
        .unwrap_err();
    assert!(matches!(error, OidcError::Unreachable { .. }), "{error}");
    emulator.shutdown().await;
}

/// A discovery document is an answer from the network: an issuer that is not the configured
/// authority's, or an endpoint on another host (the secret would go there), is refused.
#[tokio::test]
async fn a_discovery_document_off_the_authority_is_refused() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
    riposte::connectors::install_crypto_provider();
    let server = MockServer::start().await;
    let base = server.uri();
    let document = |issuer: String, token_endpoint: String| {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/{TENANT}/oauth2/v2.0/authorize"),
            "token_endpoint": token_endpoint,
            "jwks_uri": format!("{base}/{TENANT}/discovery/v2.0/keys"),
        })
    };
    let good_token = format!("{base}/{TENANT}/oauth2/v2.0/token");
    let cases = [
        (
            document(
                format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
                good_token.clone(),
            ),
            "issuer",
        ),
        (
            document(
                format!("{base}/{TENANT}/v2.0"),
                format!("http://127.0.0.2:9/{TENANT}/oauth2/v2.0/token"),
            ),
            "endpoint",
        ),
        (
            document(format!("{base}/{TENANT}/v2.0"), format!("{base}.evil/x")),
            "endpoint",
        ),
    ];
    let endpoints = Endpoints::default().with_overrides(Some(&base), None, None, None);
    let settings: OidcSettings =
        serde_json::from_value(json!({"client_id": "app", "client_secret": "s"})).unwrap();
    for (body, what) in cases {
        server.reset().await;
        Mock::given(matchers::method("GET"))
            .and(matchers::path(format!(
                "/{TENANT}/v2.0/.well-known/openid-configuration"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(&body))
            .mount(&server)
            .await;
        let http = HttpClient::new(HttpOptions::default()).unwrap();
        let error = OidcClient::discover(&settings, &endpoints, TENANT, http)
            .await
            .unwrap_err();
        let expected = match what {
            "issuer" => matches!(error, OidcError::IssuerMismatch { .. }),
            _ => matches!(error, OidcError::BadDocument { .. }),
        };
        assert!(expected, "{what}: {error}");
    }
}
