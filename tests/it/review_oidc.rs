//! The review page's sign-in with Entra ID, end to end against the emulator: `/auth/login`
//! sends the browser to the authorize endpoint, the picker answers, `/auth/callback` opens a
//! session for `oidc:<object id>` with the app role's rights, and a callback this browser did
//! not start (login CSRF), a replayed callback, and the token form are refused.

use crate::common;

use std::sync::Arc;

use reqwest::{StatusCode, redirect};
use riposte::engine::service::ServiceApi;
use riposte_emulator::oidc::REVIEW_USERS;
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};

struct World {
    emulator: EmulatorHandle,
    base: String,
    browser: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    riposte::connectors::install_crypto_provider();
    let emulator =
        Emulator::start("127.0.0.1:0".parse().unwrap(), Tenant::default_fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let toml = format!(
        "{}\n[server]\npublic_url = \"{base}\"\n\n{}",
        common::emulator_toml(&emulator.base_url(), &store, "dry-run"),
        emulator.oidc_config_toml()
    );
    let config = common::config_from_toml(dir.path(), &toml);
    let app = riposte::app::App::new(config.clone()).unwrap();
    let service = app.service().await.unwrap();
    let sign_in = riposte::server::oidc::EntraSignIn::new(
        config
            .server
            .oidc
            .clone()
            .expect("[server.oidc] is configured"),
        &config.azure,
        app.connectors.http().clone(),
        &config.server.public_url(),
    );
    let api: Arc<dyn ServiceApi> = service;
    let router = riposte::server::router_with_sign_in(api, &config.server, Some(sign_in));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(riposte::server::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    World {
        emulator,
        base,
        browser: reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap(),
        _stop: stop,
        _dir: dir,
    }
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

impl World {
    /// `/auth/login` → the authorize URL and this browser's login cookie.
    async fn start_sign_in(&self) -> (url::Url, String) {
        let login = self
            .browser
            .get(format!("{}/auth/login?next=/runs/x", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        let cookie = set_cookie(&login, "riposte_login").expect("a login cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(cookie.contains("Path=/auth/callback"), "{cookie}");
        let to = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
        assert!(to.as_str().starts_with(&self.emulator.base_url()), "{to}");
        (to, cookie_pair(&cookie))
    }

    /// The picker: `name` chosen; returns the callback URL it redirects to.
    async fn pick(&self, authorize: &url::Url, name: &str) -> String {
        let oid = REVIEW_USERS.iter().find(|u| u.name == name).unwrap().oid;
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("user".into(), oid.into()));
        let mut action = authorize.clone();
        action.set_query(None);
        let answer = self
            .browser
            .post(action.as_str())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FOUND);
        let back = answer.headers()["location"].to_str().unwrap().to_string();
        assert!(
            back.starts_with(&format!("{}/auth/callback?", self.base)),
            "{back}"
        );
        back
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.browser.get(url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_with_entra_id_and_the_page_knows_them_by_object_id() {
    let w = world().await;
    let (authorize, login_cookie) = w.start_sign_in().await;
    let callback = w.pick(&authorize, "Lee Approver").await;
    let done = w.get(&callback, Some(&login_cookie)).await;
    assert_eq!(
        done.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        done.text().await
    );
    assert_eq!(done.headers()["location"], "/runs/x");
    let session = set_cookie(&done, "riposte_session").expect("a session cookie");
    let cleared = set_cookie(&done, "riposte_login").expect("the login cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let list = w
        .get(&format!("{}/", w.base), Some(&cookie_pair(&session)))
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    let page = list.text().await.unwrap();
    let lee = REVIEW_USERS
        .iter()
        .find(|u| u.name == "Lee Approver")
        .unwrap();
    assert!(page.contains(&format!("oidc:{}", lee.oid)), "{page}");
    assert!(page.contains("approver"), "{page}");

    // The same callback again: its pending sign-in was used up.
    let replay = w.get(&callback, Some(&login_cookie)).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&replay, "riposte_session").is_none());
    w.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_this_browser_did_not_start_signs_nobody_in() {
    let w = world().await;
    // The attacker starts a sign-in and picks themself, then hands the victim the callback.
    let (authorize, _attackers_cookie) = w.start_sign_in().await;
    let callback = w.pick(&authorize, "Grady Admin").await;
    let victim = w.get(&callback, None).await;
    assert_eq!(victim.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&victim, "riposte_session").is_none());
    // A login cookie of another sign-in does not fit this callback either.
    let (_, other_cookie) = w.start_sign_in().await;
    let crossed = w.get(&callback, Some(&other_cookie)).await;
    assert_eq!(
        crossed.status(),
        StatusCode::FORBIDDEN,
        "{:?}",
        crossed.text().await
    );
    assert!(set_cookie(&crossed, "riposte_session").is_none());
    // With Entra ID configured, the token form signs nobody in.
    let token = w
        .browser
        .post(format!("{}/auth/login", w.base))
        .form(&[("token", "anything"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::FORBIDDEN);
    w.emulator.shutdown().await;
}
