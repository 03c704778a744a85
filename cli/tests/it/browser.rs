//! The review page in a real browser: headless Chromium (Debian's `chromium`) driven through
//! `chromedriver` (Debian's `chromium-driver`) with WebDriver, against the real `riposte serve`
//! and the emulator. Sign in with a token → the list → the run → why it waits (the policy
//! reason naming the role) → approve → the run succeeds → the emulator received the approved
//! requests. Screenshots of the list and the run page are kept under
//! `<target dir>/screenshots/`.
//!
//! Without chromedriver or Chromium the test is skipped with its reason, unless
//! `RIPOSTE_TEST_BROWSER_REQUIRED=1` (CI sets it): then it fails.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use riposte_emulator::{Emulator, Tenant};
use sha2::Digest;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const INGEST: &str = "browser-test-ingest-token";
const APPROVER: &str = "browser-test-approver-token";
const GLOBAL_ADMIN: (&str, &str) = (
    "grady.archie@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000005",
);
const ALEX: (&str, &str) = (
    "alex.wilber@contoso.com",
    "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
);

/// A process we started, in its own process group, killed with that group when dropped
/// (also when the test panics): chromedriver takes Chromium and its helpers with it.
struct Guard {
    child: Child,
}

impl Guard {
    fn spawn(command: &mut Command) -> Guard {
        use std::os::unix::process::CommandExt as _;
        Guard {
            child: command.process_group(0).spawn().unwrap(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser is there; the reason when it is not.
fn browser_missing() -> Option<String> {
    [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} is missing (apt-get install -y chromium chromium-driver)"))
}

/// `<target dir>/screenshots`: `CARGO_TARGET_DIR`, else three levels above this test
/// binary (`<target>/debug/deps/it-…`).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        });
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fixture tenant with riposte's app also a Privileged Authentication Administrator, so
/// the approved containment of the Global Administrator can succeed.
fn privileged_tenant() -> Tenant {
    let path = crate::common::root().join("tests/fixtures/tenant.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let app_roles = "    directory_roles: [fe930be7-5e62-47db-91af-98c3a49a38b1]\n";
    assert!(text.contains(app_roles), "fixture layout changed");
    let text = text.replacen(
        app_roles,
        "    directory_roles: [fe930be7-5e62-47db-91af-98c3a49a38b1, 7be44c8a-adaf-4e2a-84d6-ab2649e08a13]\n",
        1,
    );
    Tenant::from_yaml_str(&text).unwrap()
}

/// `riposte serve` on a free loopback port; its API's base URL.
fn serve(config: &Path) -> (Guard, String) {
    let log = config.with_file_name("serve.log");
    let mut guard = Guard::spawn(
        Command::new(env!("CARGO_BIN_EXE_riposte"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RIPOSTE_LOG", "riposte=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = guard.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut file = std::fs::File::create(&log).unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(file, "{line}");
            if let Some(rest) = line.split("riposte API listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let api = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "riposte serve did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    (guard, api)
}

fn alert(who: (&str, &str)) -> serde_json::Value {
    let text = String::from_utf8(crate::common::fixture("lacework-details.json")).unwrap();
    let text = text.replace(ALEX.0, who.0).replace(ALEX.1, who.1);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data"]["alertId"] = serde_json::json!(93_001);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_sees_why_a_run_waits_approves_it_and_it_runs() {
    let Some((emulator, dir, store)) = start() else {
        return;
    };
    let digest = |t: &str| hex::encode(sha2::Sha256::digest(t.as_bytes()));
    let config = dir.path().join("riposte.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
             [[server.tokens]]\nname = \"lacework\"\nrole = \"ingest\"\nsha256 = \"{}\"\n\n\
             [[server.tokens]]\nname = \"alice\"\nrole = \"approver\"\nsha256 = \"{}\"\n",
            crate::common::emulator_toml(&emulator.base_url(), &store, "dry-run"),
            digest(INGEST),
            digest(APPROVER),
        ),
    )
    .unwrap();
    let (_serve, api) = serve(&config);

    // A Global Administrator's containment, in dry-run: it waits for approval.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{api}/v1/alerts/lacework"))
        .bearer_auth(INGEST)
        .json(&alert(GLOBAL_ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let mut run_id = String::new();
    for _ in 0..300 {
        let runs: serde_json::Value = http
            .get(format!("{api}/v1/runs?status=awaiting_approval"))
            .bearer_auth(APPROVER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(id) = runs["runs"][0]["id"].as_str() {
            run_id = id.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!run_id.is_empty(), "the run never waited for approval");

    let (_driver, browser) = start_browser(dir.path()).await;

    // Signed out, the list sends the browser to sign-in.
    browser.goto(&format!("{api}/")).await.unwrap();
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), "/auth/login", "{url}");
    browser
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(APPROVER)
        .await
        .unwrap();
    browser
        .find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The list, with the run waiting.
    let shots = screenshot_dir();
    let link = browser
        .wait()
        .for_element(Locator::Css(&format!("a[href=\"/runs/{run_id}\"]")))
        .await
        .unwrap();
    let list_png = shots.join("review-list.png");
    std::fs::write(&list_png, browser.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", list_png.display());
    link.click().await.unwrap();

    // The run page says why it waits: the policy names the role.
    let why = browser
        .wait()
        .for_element(Locator::Id("why"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        why.contains("holds Global Administrator: approval required"),
        "{why}"
    );
    let run_png = shots.join("review-run.png");
    std::fs::write(&run_png, browser.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", run_png.display());
    let mutations = |log: &serde_json::Value| {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] != "GET"
                    && r["path"]
                        .as_str()
                        .is_some_and(|p| p.contains(GLOBAL_ADMIN.1))
            })
            .count()
    };
    let requests = format!("{}/_emulator/requests", emulator.base_url());
    let before: serde_json::Value = http
        .get(&requests)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mutations(&before), 0, "nothing is sent before approval");

    // Approve; reload until the run has succeeded.
    browser
        .find(Locator::Id("approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut status = String::new();
    for _ in 0..300 {
        // The element may go stale under us while the page (re)loads: read it again then.
        let element = browser
            .wait()
            .for_element(Locator::Id("run-status"))
            .await
            .unwrap();
        match element.text().await {
            Ok(text) => status = text,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        if status.trim() == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser.refresh().await.unwrap();
    }
    assert_eq!(status.trim(), "succeeded");
    let after: serde_json::Value = http
        .get(&requests)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        mutations(&after) > 0,
        "the emulator received the approved requests"
    );
    let done_png = shots.join("review-run-succeeded.png");
    std::fs::write(&done_png, browser.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", done_png.display());
    browser.close().await.unwrap();
    emulator.shutdown().await;
}

/// The emulator (riposte's app privileged enough to contain a Global Administrator), a
/// directory and its store URL; `None` (the test skips) when there is no browser, which
/// `RIPOSTE_TEST_BROWSER_REQUIRED=1` turns into a failure.
fn start() -> Option<(riposte_emulator::EmulatorHandle, tempfile::TempDir, String)> {
    if let Some(reason) = browser_missing() {
        if std::env::var("RIPOSTE_TEST_BROWSER_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("the browser test is required (RIPOSTE_TEST_BROWSER_REQUIRED=1) but {reason}");
        }
        eprintln!("browser test skipped: {reason}");
        return None;
    }
    riposte::connectors::install_crypto_provider();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), privileged_tenant()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("riposte.db").display());
    Some((emulator, dir, store))
}

/// chromedriver on a free port, driving headless Chromium with a profile under `dir`; the
/// guard stops chromedriver (and its browser) when dropped.
async fn start_browser(dir: &Path) -> (Guard, fantoccini::Client) {
    let http = reqwest::Client::new();
    let port = free_port();
    let driver = Guard::spawn(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if http.get(format!("{webdriver}/status")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = dir.join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let browser = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("chromedriver starts a Chromium session");

    (driver, browser)
}

/// The same page with `[server.oidc]`: the browser goes to the emulated Entra ID, a person
/// picks their account, and comes back signed in as `oidc:<object id>` with their app role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_entra_id_in_the_browser() {
    let Some((emulator, dir, store)) = start() else {
        return;
    };
    // The callback must be known before the listener is: a fixed free port.
    let port = free_port();
    let config = dir.path().join("riposte.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n{}",
            crate::common::emulator_toml(&emulator.base_url(), &store, "dry-run"),
            emulator.oidc_config_toml(),
        ),
    )
    .unwrap();
    let (_serve, api) = serve(&config);
    let (_driver, browser) = start_browser(dir.path()).await;

    browser.goto(&format!("{api}/")).await.unwrap();
    // Signed out: via /auth/login to the emulated identity platform's picker.
    let lee = riposte_emulator::oidc::REVIEW_USERS
        .iter()
        .find(|u| u.name == "Lee Approver")
        .unwrap();
    let pick = browser
        .wait()
        .for_element(Locator::Css(&format!("button[value=\"{}\"]", lee.oid)))
        .await
        .unwrap();
    let url = browser.current_url().await.unwrap();
    assert!(
        url.as_str().starts_with(&emulator.base_url()),
        "the browser is at {url}"
    );
    let shots = screenshot_dir();
    let picker_png = shots.join("review-entra-picker.png");
    std::fs::write(&picker_png, browser.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", picker_png.display());
    pick.click().await.unwrap();

    // Back on the review page, signed in as the person.
    browser
        .wait()
        .for_element(Locator::Css("h1"))
        .await
        .unwrap();
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&api), "the browser is at {url}");
    assert_eq!(url.path(), "/");
    let page = browser.source().await.unwrap();
    assert!(page.contains(&format!("oidc:{}", lee.oid)), "{page}");
    browser.close().await.unwrap();
    emulator.shutdown().await;
}
