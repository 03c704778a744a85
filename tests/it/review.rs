//! The review page in front of the real service and the emulator: sign-in with a token,
//! sessions in the store (SQLite, and PostgreSQL when configured), the list and run pages
//! (escaped), CSRF and role checks on every button, approval that runs, sign-out that ends
//! the session server-side.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use riposte::config::{Role, TokenEntry};
use riposte::engine::service::ServiceApi;
use riposte::engine::{Service, ServiceOptions};
use riposte::store::RunStatus;
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use sha2::{Digest, Sha256};

const INGEST: &str = "review-test-ingest-token";
const APPROVER: &str = "review-test-approver-token";
const VIEWER: &str = "review-test-viewer-token";

const ALEX: (&str, &str) = (
    "alex.wilber@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
);
const GLOBAL_ADMIN: (&str, &str) = (
    "grady.archie@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000005",
);
/// What a hostile alert puts in its title.
const HOSTILE: &str = "<script>alert('x')</script>";

struct World {
    emulator: EmulatorHandle,
    service: Arc<Service>,
    base: String,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

/// The fixture tenant with riposte's app also a Privileged Authentication Administrator, so
/// an approved containment of the Global Administrator can succeed.
fn privileged_tenant() -> Tenant {
    let text = std::fs::read_to_string(common::root().join("tests/fixtures/tenant.yaml")).unwrap();
    let app_roles = "    directory_roles: [fe930be7-5e62-47db-91af-98c3a49a38b1]\n";
    assert!(text.contains(app_roles), "fixture layout changed");
    let text = text.replacen(
        app_roles,
        "    directory_roles: [fe930be7-5e62-47db-91af-98c3a49a38b1, 7be44c8a-adaf-4e2a-84d6-ab2649e08a13]\n",
        1,
    );
    Tenant::from_yaml_str(&text).unwrap()
}

async fn world(postgres: bool) -> Option<World> {
    riposte::connectors::install_crypto_provider();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), privileged_tenant()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = if postgres {
        match common::postgres_url("review").await {
            Some(url) => url,
            None => {
                emulator.shutdown().await;
                return None;
            }
        }
    } else {
        format!("sqlite://{}", dir.path().join("riposte.db").display())
    };
    let mut config = common::config_from_toml(
        dir.path(),
        &common::emulator_toml(&emulator.base_url(), &store_url, "enforce"),
    );
    config.server.tokens = [
        ("lacework", Role::Ingest, INGEST),
        ("alice", Role::Approver, APPROVER),
        ("val", Role::Viewer, VIEWER),
    ]
    .into_iter()
    .map(|(name, role, token)| TokenEntry {
        name: name.into(),
        role,
        sha256: riposte::server::token_digest(token),
    })
    .collect();
    let service = riposte::app::App::new(config.clone())
        .unwrap()
        .service_with(ServiceOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api: Arc<dyn ServiceApi> = service.clone();
    let router = riposte::server::router(api, &config.server);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(riposte::server::serve(listener, router, async move {
        let _ = rx.await;
    }));
    Some(World {
        emulator,
        service,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown: Some(tx),
        _dir: dir,
    })
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

impl World {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("riposte_session={c}"));
        }
        answer(req.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("riposte_session={c}"));
        }
        answer(req.send().await.unwrap()).await
    }

    /// Signs in with `token`; the session cookie's value and the `Set-Cookie` text.
    async fn sign_in(&self, token: &str) -> (String, String) {
        let a = self
            .post("/auth/login", None, &[("token", token), ("next", "/")])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let set = a.headers["set-cookie"].to_str().unwrap().to_string();
        let value = set
            .strip_prefix("riposte_session=")
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_string();
        (value, set)
    }

    async fn ingest(&self, who: (&str, &str), alert_id: u64, title: &str) {
        let text = String::from_utf8(common::fixture("lacework-details.json")).unwrap();
        let text = text.replace(ALEX.0, who.0).replace(ALEX.1, who.1);
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["data"]["alertId"] = serde_json::json!(alert_id);
        v["data"]["alertName"] = serde_json::json!(title);
        let resp = self
            .http
            .post(format!("{}/v1/alerts/lacework", self.base))
            .bearer_auth(INGEST)
            .json(&v)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }

    /// Drives runs until the run of `principal` reaches `status`; its id.
    async fn run_reaching(&self, (upn, oid): (&str, &str), status: RunStatus) -> String {
        let mut runs = Vec::new();
        for _ in 0..50 {
            self.service.process_alerts().await.unwrap();
            for r in &self.service.runs(100, None).await.unwrap() {
                if matches!(
                    r.status,
                    RunStatus::Pending | RunStatus::Planning | RunStatus::Running
                ) {
                    self.service.drive(&r.id, None).await.unwrap();
                }
            }
            runs = self.service.runs(100, None).await.unwrap();
            if let Some(r) = runs.iter().find(|r| {
                r.principal_key
                    .as_deref()
                    .is_some_and(|p| p.contains(upn) || p.contains(oid))
                    && r.status == status
            }) {
                return r.id.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen: Vec<_> = runs
            .iter()
            .map(|r| (&r.principal_key, r.status, &r.last_error))
            .collect();
        panic!("no run of {upn} became {status:?}: {seen:?}");
    }

    async fn status_of(&self, id: &str) -> RunStatus {
        self.service.run(id).await.unwrap().run.status
    }

    /// Mutating requests the emulator received that name `oid`.
    fn mutations_of(&self, oid: &str) -> usize {
        self.emulator
            .state()
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && r.path.contains(oid))
            .count()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.emulator.shutdown().await;
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

/// The value of the first hidden field `name` in a page.
fn field(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..][..body[start..].find('"').unwrap()].to_string()
}

fn session_digest(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

async fn the_review_page_signs_in_shows_and_approves(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };

    // Without a session: a redirect to sign-in, and nothing of the tenant.
    for path in ["/", "/runs/anything"] {
        let a = w.get(path, None).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            a.location().starts_with("/auth/login?next="),
            "{}",
            a.location()
        );
        assert!(a.body.is_empty(), "{}", a.body);
    }
    let a = w.get("/", Some("not-a-session")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let a = w.get("/runs/r-1", None).await;
    assert_eq!(a.location(), "/auth/login?next=%2Fruns%2Fr-1");
    let a = w.post("/runs/r-1/approve", None, &[("csrf", "x")]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location(), "/auth/login?next=%2F");

    // A Global Administrator's containment waits; an ordinary user's (newer) runs.
    let title = format!("{HOSTILE} first access");
    w.ingest(GLOBAL_ADMIN, 91_001, &title).await;
    let waiting = w
        .run_reaching(GLOBAL_ADMIN, RunStatus::AwaitingApproval)
        .await;
    w.ingest(ALEX, 91_002, "first access").await;
    let done = w.run_reaching(ALEX, RunStatus::Succeeded).await;
    let a = w.get(&format!("/runs/{waiting}"), None).await;
    assert!(!a.body.contains(&waiting) && !a.body.contains("grady"));

    // A wrong token: the sign-in page again, with the error, and no cookie.
    let a = w
        .post("/auth/login", None, &[("token", "wrong"), ("next", "/")])
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        a.body.contains("not known") && a.body.contains("name=\"token\""),
        "{}",
        a.body
    );
    assert!(!a.headers.contains_key("set-cookie"));
    // An ingest token may not open a session.
    let a = w
        .post("/auth/login", None, &[("token", INGEST), ("next", "/")])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // A post another site made is refused before the token is looked at.
    let a = answer(
        w.http
            .post(format!("{}/auth/login", w.base))
            .header("origin", "http://evil.example")
            .form(&[("token", APPROVER)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(!a.headers.contains_key("set-cookie"));

    // The right token: a session cookie, HttpOnly, SameSite=Lax, not Secure on loopback.
    let (alice, set_cookie) = w.sign_in(APPROVER).await;
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("; SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("; Path=/"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    // Only the digest of the id is stored.
    let store = w.service.store();
    let row = store
        .find_session(&session_digest(&alice), chrono::Utc::now())
        .await
        .unwrap()
        .expect("the session is stored under the digest of its id");
    assert_eq!(row.caller, "token:alice");
    assert_eq!(row.role, "approver");
    assert!(
        store
            .find_session(&alice, chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
    );

    // The list: the run awaiting approval first, though the other is newer.
    let a = w.get("/", Some(&alice)).await;
    assert_eq!(a.status, StatusCode::OK);
    let (first, second) = (a.body.find(&waiting).unwrap(), a.body.find(&done).unwrap());
    assert!(first < second, "awaiting approval first");
    assert_eq!(a.body.matches("<h1").count(), 1);
    assert!(a.body.contains("<th scope=\"col\">"));

    // The run page: why it waits, each request, escaped.
    let page = w.get(&format!("/runs/{waiting}"), Some(&alice)).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(!body.contains(HOSTILE), "the alert's title is escaped");
    assert!(body.contains("&lt;script&gt;"), "{body}");
    assert!(
        body.contains("holds Global Administrator: approval required"),
        "{body}"
    );
    assert!(
        body.contains(&format!("/users/{}", GLOBAL_ADMIN.1)) || body.contains("/users/grady"),
        "{body}"
    );
    assert!(
        body.contains("<td class=\"mono\">PATCH</td>")
            || body.contains("<td class=\"mono\">POST</td>")
    );
    assert!(
        body.contains("accountEnabled"),
        "a request body is shown: {body}"
    );
    assert!(!body.contains("<script"), "no script at all");
    let csrf = field(body, "csrf");
    let hash = field(body, "plan_hash");
    assert!(
        body.contains(&format!("<code>{hash}</code>")),
        "the hash approved is shown"
    );
    let approve = format!("/runs/{waiting}/approve");

    // No CSRF token, a wrong one: 403, and the run still waits.
    let a = w
        .post(&approve, Some(&alice), &[("plan_hash", &hash)])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let a = w
        .post(
            &approve,
            Some(&alice),
            &[("csrf", "forged"), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Another session's token is not this session's.
    let (val, _) = w.sign_in(VIEWER).await;
    let val_page = w.get(&format!("/runs/{waiting}"), Some(&val)).await;
    let val_csrf = field(&val_page.body, "csrf");
    let a = w
        .post(
            &approve,
            Some(&alice),
            &[("csrf", &val_csrf), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(w.status_of(&waiting).await, RunStatus::AwaitingApproval);

    // A viewer sees no button, and a viewer's post is refused.
    assert!(!val_page.body.contains("id=\"approve\""));
    assert!(!val_page.body.contains("name=\"plan_hash\""));
    let a = w
        .post(
            &approve,
            Some(&val),
            &[("csrf", &val_csrf), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("approver"), "{}", a.body);
    assert_eq!(w.status_of(&waiting).await, RunStatus::AwaitingApproval);
    assert_eq!(
        w.mutations_of(GLOBAL_ADMIN.1),
        0,
        "nothing sent before approval"
    );

    // A refusal by the service is an error page with its message and status.
    let a = w
        .post(
            &approve,
            Some(&alice),
            &[("csrf", &csrf), ("plan_hash", "sha256:00")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(a.body.contains("is not the run"), "{}", a.body);

    // Only the four buttons are operations.
    let a = w
        .post(
            &format!("/runs/{waiting}/delete"),
            Some(&alice),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    // Approved with the right token: the run executes.
    let a = w
        .post(
            &approve,
            Some(&alice),
            &[("csrf", &csrf), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location(), format!("/runs/{waiting}"));
    w.run_reaching(GLOBAL_ADMIN, RunStatus::Succeeded).await;
    assert!(
        w.mutations_of(GLOBAL_ADMIN.1) > 0,
        "the approved requests were sent"
    );
    let a = w.get(&format!("/runs/{waiting}"), Some(&alice)).await;
    assert!(a.body.contains("status-succeeded"));
    assert!(!a.body.contains("id=\"approve\""));
    // The findings, drawn as the incident report draws them: the seed's chart and the
    // Activity Log timeline.
    assert!(a.body.contains("What riposte found"), "{}", a.body);
    assert!(
        a.body.contains("<figure class=\"chart\"><svg"),
        "{}",
        a.body
    );
    assert!(a.body.contains("The user's Azure operations"), "{}", a.body);

    // Sign-out needs the token, deletes the row, and the old cookie opens nothing.
    let a = w.post("/auth/logout", Some(&alice), &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w
        .post("/auth/logout", Some(&alice), &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location(), "/auth/login");
    assert!(
        a.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(
        store
            .find_session(&session_digest(&alice), chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store.delete_session(&session_digest(&alice)).await.unwrap(),
        "the row is gone"
    );
    let a = w.get("/", Some(&alice)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);

    // OIDC is not configured; the API still answers JSON.
    let a = w.get("/auth/callback", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("OIDC sign-in is not configured"));
    let a = w.get("/v1/nothing", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    w.stop().await;
}

/// Sessions expire: a session past its time is not found, and opening another sweeps it.
async fn expired_sessions_are_gone(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    let store = w.service.store();
    let now = chrono::Utc::now();
    let old = riposte::store::SessionRecord {
        id_sha256: session_digest("old"),
        caller: "token:alice".into(),
        role: "approver".into(),
        csrf_token: "t".into(),
        created_at: now - chrono::Duration::hours(9),
        expires_at: now - chrono::Duration::hours(1),
    };
    store.create_session(&old).await.unwrap();
    assert!(
        store
            .find_session(&old.id_sha256, now)
            .await
            .unwrap()
            .is_none()
    );
    let a = w.get("/", Some("old")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    w.sign_in(APPROVER).await;
    assert!(
        !store.delete_session(&old.id_sha256).await.unwrap(),
        "swept at sign-in"
    );
    w.stop().await;
}

/// The service's refusal reaches the page: the identity that asked for a run may not approve
/// it, even with the approver role and a right CSRF token.
async fn the_requester_cannot_approve_their_own_run_from_the_page(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    let resp = w
        .http
        .post(format!("{}/v1/actions/entra.disable_user", w.base))
        .bearer_auth(APPROVER)
        .json(&serde_json::json!({"params": {"user": GLOBAL_ADMIN.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let run: serde_json::Value = resp.json().await.unwrap();
    let id = run["run_id"].as_str().unwrap().to_string();
    for _ in 0..50 {
        if w.status_of(&id).await == RunStatus::AwaitingApproval {
            break;
        }
        w.service.drive(&id, None).await.unwrap();
    }
    assert_eq!(w.status_of(&id).await, RunStatus::AwaitingApproval);
    let (alice, _) = w.sign_in(APPROVER).await;
    let page = w.get(&format!("/runs/{id}"), Some(&alice)).await;
    let (csrf, hash) = (field(&page.body, "csrf"), field(&page.body, "plan_hash"));
    let a = w
        .post(
            &format!("/runs/{id}/approve"),
            Some(&alice),
            &[("csrf", &csrf), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        a.body.contains("cannot approve a run they requested"),
        "{}",
        a.body
    );
    assert_eq!(w.status_of(&id).await, RunStatus::AwaitingApproval);
    w.stop().await;
}

/// A session lasts no longer than its token: once the token is gone from `[server] tokens`
/// (the service restarted with another configuration), its cookie opens nothing.
async fn removing_a_token_ends_its_sessions(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    let (alice, _) = w.sign_in(APPROVER).await;
    assert_eq!(w.get("/", Some(&alice)).await.status, StatusCode::OK);
    let settings = riposte::config::ServerSettings {
        tokens: vec![TokenEntry {
            name: "val".into(),
            role: Role::Viewer,
            sha256: riposte::server::token_digest(VIEWER),
        }],
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api: Arc<dyn ServiceApi> = w.service.clone();
    let router = riposte::server::router(api, &settings);
    let server = tokio::spawn(riposte::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let a = w
        .http
        .get(format!("http://{addr}/"))
        .header("cookie", format!("riposte_session={alice}"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    server.abort();
    w.stop().await;
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(false).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(true).await })*
        }
    };
}

on_both_stores!(
    the_review_page_signs_in_shows_and_approves,
    expired_sessions_are_gone,
    the_requester_cannot_approve_their_own_run_from_the_page,
    removing_a_token_ends_its_sessions,
);
