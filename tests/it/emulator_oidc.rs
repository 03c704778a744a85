//! The emulator's review-page sign-in against a plain HTTP client standing in for the browser
//! and the relying party: discovery, the authorize checks, the picker, the code + PKCE
//! redemption and the id token it gives.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Client, StatusCode, redirect};
use riposte_emulator::oidc::{REVIEW_CLIENT_ID, REVIEW_CLIENT_SECRET, REVIEW_USERS};
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::Value;
use sha2::Digest as _;

const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-abc";
const CALLBACK: &str = "http://127.0.0.1:9/auth/callback";

struct Env {
    emulator: EmulatorHandle,
    http: Client,
    base: String,
}

impl Env {
    fn start() -> Env {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let emulator =
            Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
        let base = emulator.base_url();
        let http = Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        Env {
            emulator,
            http,
            base,
        }
    }

    fn authorize_url(&self, redirect_uri: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", REVIEW_CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid profile")
            .append_pair("state", "st<ate>")
            .append_pair("nonce", "n-0S6_WzA2Mj")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}/{TENANT}/oauth2/v2.0/authorize?{query}", self.base)
    }

    /// GETs the picker and posts it for `name`; returns the redirect's query pairs.
    async fn pick(&self, name: &str) -> Vec<(String, String)> {
        let url = self.authorize_url(CALLBACK);
        let page = self.http.get(&url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains(name), "the picker lists {name}");
        assert!(
            html.contains("st&lt;ate&gt;") && !html.contains("st<ate>"),
            "the request's values are escaped in the picker"
        );
        let oid = REVIEW_USERS.iter().find(|u| u.name == name).unwrap().oid;
        let mut form: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        form.push(("user".into(), oid.into()));
        let answer = self
            .http
            .post(url.split('?').next().unwrap())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FOUND);
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(CALLBACK), "{location}");
        url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    async fn redeem(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {pairs:?}"))
}

fn code_form<'a>(code: &'a str, verifier: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", REVIEW_CLIENT_ID),
        ("client_secret", secret),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ]
}

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap()
}

#[tokio::test]
async fn discovery_names_the_emulator_as_the_login_host() {
    let env = Env::start();
    for tenant in [TENANT, "contoso.onmicrosoft.com"] {
        let doc: Value = env
            .http
            .get(format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                env.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let base = &env.base;
        assert_eq!(doc["issuer"], format!("{base}/{TENANT}/v2.0"));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{base}/{TENANT}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            doc["token_endpoint"],
            format!("{base}/{TENANT}/oauth2/v2.0/token")
        );
        assert_eq!(
            doc["jwks_uri"],
            format!("{base}/{TENANT}/discovery/v2.0/keys")
        );
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert!(
            doc["response_types_supported"]
                .as_array()
                .unwrap()
                .contains(&"code".into())
        );
        assert!(doc.get("code_challenge_methods_supported").is_none());
    }
    let unknown = env
        .http
        .get(format!(
            "{}/fabrikam.com/v2.0/.well-known/openid-configuration",
            env.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unregistered_uri_or_for_an_unknown_client() {
    let env = Env::start();
    for uri in [
        "http://evil.example/auth/callback",
        "http://127.0.0.1:9@evil.example/auth/callback",
        "http://127.0.0.1:9/elsewhere",
    ] {
        let response = env.http.get(env.authorize_url(uri)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("AADSTS50011"), "{html}");
        assert!(
            !html.contains("<a href"),
            "the hostile URI is text, not a link"
        );
    }
    let url = env
        .authorize_url(CALLBACK)
        .replace(REVIEW_CLIENT_ID, "c0ffee00-1111-4222-8333-444455556666");
    let response = env.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("AADSTS700016"));
    // Other problems go back to the registered URI, with the state.
    let url = env
        .authorize_url(CALLBACK)
        .replace("response_type=code", "response_type=token");
    let response = env.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(value(&pairs, "error"), "unsupported_response_type");
    assert_eq!(value(&pairs, "state"), "st<ate>");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn picker_code_and_verifier_give_an_id_token_that_verifies_against_the_jwks() {
    let env = Env::start();
    let pairs = env.pick("Lee Approver").await;
    assert_eq!(value(&pairs, "state"), "st<ate>");
    let code = value(&pairs, "code");
    let (status, body) = env
        .redeem(&code_form(code, VERIFIER, REVIEW_CLIENT_SECRET))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string());
    let id_token = body["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwks: JwkSet = env
        .http
        .get(format!("{}/{TENANT}/discovery/v2.0/keys", env.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[REVIEW_CLIENT_ID]);
    validation.set_issuer(&[format!("{}/{TENANT}/v2.0", env.base)]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["oid"], "5e1ec7ed-0000-4000-8000-000000000003");
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["name"], "Lee Approver");
    assert_eq!(
        claims["preferred_username"],
        "lee.approver@contoso.onmicrosoft.com"
    );
    assert_eq!(
        claims["roles"],
        serde_json::json!(["Riposte.Viewer", "Riposte.Approver"])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    // The log keeps no code, verifier or secret.
    let log = serde_json::to_string(&env.emulator.state().requests()).unwrap();
    for secret in [code, VERIFIER, REVIEW_CLIENT_SECRET] {
        assert!(!log.contains(secret), "the request log holds a secret");
    }
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn redemption_refuses_a_wrong_verifier_uri_or_secret_and_a_second_use() {
    let env = Env::start();
    let pairs = env.pick("Megan Responder").await;
    let code = value(&pairs, "code").to_owned();
    let wrong_verifier = "x".repeat(43);
    let (status, body) = env
        .redeem(&code_form(&code, &wrong_verifier, REVIEW_CLIENT_SECRET))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(aadsts(&body), 501481);

    let (status, body) = env.redeem(&code_form(&code, VERIFIER, "guess")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(aadsts(&body), 7000215);

    let mut other_uri = code_form(&code, VERIFIER, REVIEW_CLIENT_SECRET);
    other_uri[4].1 = "http://127.0.0.1:10/auth/callback";
    let (status, body) = env.redeem(&other_uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(aadsts(&body), 500112);

    let (status, _) = env
        .redeem(&code_form(&code, VERIFIER, REVIEW_CLIENT_SECRET))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "failed attempts do not use the code up"
    );
    let (status, body) = env
        .redeem(&code_form(&code, VERIFIER, REVIEW_CLIENT_SECRET))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(aadsts(&body), 54005);

    let pairs = env.pick("Alex Viewer").await;
    env.emulator.state().expire_authorization_codes();
    let (_, body) = env
        .redeem(&code_form(
            value(&pairs, "code"),
            VERIFIER,
            REVIEW_CLIENT_SECRET,
        ))
        .await;
    assert_eq!(aadsts(&body), 70008);
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn the_code_goes_back_in_the_response_mode_asked_for_and_only_for_a_listed_user() {
    let env = Env::start();
    let post = |mode: &str, user: &str| {
        let url = format!("{}&response_mode={mode}", env.authorize_url(CALLBACK));
        let mut form: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        form.push(("user".into(), user.into()));
        env.http
            .post(url.split('?').next().unwrap().to_owned())
            .form(&form)
            .send()
    };
    let lee = REVIEW_USERS[2].oid;
    let fragment = post("fragment", lee).await.unwrap();
    assert_eq!(fragment.status(), StatusCode::FOUND);
    let location = url::Url::parse(fragment.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.query().is_none());
    assert!(location.fragment().unwrap().contains("code="));
    let form_post = post("form_post", lee).await.unwrap();
    assert_eq!(form_post.status(), StatusCode::OK);
    let html = form_post.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")), "{html}");
    assert!(html.contains("name=\"code\"") && html.contains("st&lt;ate&gt;"));
    let nobody = post("query", "00000000-0000-0000-0000-000000000000")
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::BAD_REQUEST);
    assert!(nobody.headers().get("location").is_none());
    assert!(nobody.text().await.unwrap().contains("AADSTS50034"));
    assert_eq!(
        env.emulator.state().counter("authorization_codes_issued"),
        2
    );
    env.emulator.shutdown().await;
}
