//! `[notify]` service events against the emulator's webhook sink: a Global Administrator's
//! containment that waits is told with why and a link, its completion is told once, the
//! cursor survives a new service on the same store (nothing told twice), and a webhook that
//! refuses the message is given up on, recorded, and does not hold up what follows.

use crate::common;

use std::collections::BTreeMap;

use riposte::engine::service::{Caller, Invocation, ServiceApi};
use riposte::store::RunStatus;
use riposte_emulator::Tenant;

const GRADY: &str = "grady.archie@contoso.com";
const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";

/// The emulator configuration with `[notify]` posting to `path` on the emulator (a webhook
/// sink, or a path that answers 404).
fn with_notify(path: &str, format: Option<&str>) -> impl FnOnce(String) -> String {
    let path = path.to_string();
    let format = format
        .map(|f| format!("format = \"{f}\"\n"))
        .unwrap_or_default();
    move |toml: String| {
        let base = toml
            .lines()
            .find_map(|l| l.strip_prefix("graph_endpoint = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("the emulator configuration names its Graph endpoint")
            .to_string();
        format!(
            "{toml}\n[notify]\nwebhook_url = \"{base}{path}\"\n{format}\n[server]\npublic_url = \"https://riposte.contoso.example/\"\n"
        )
    }
}

fn caller(name: &str) -> Caller {
    Caller { name: name.into() }
}

async fn invoke_grady(service: &riposte::engine::Service) -> String {
    let id = service
        .invoke_playbook(
            "first-access-containment",
            Invocation {
                inputs: BTreeMap::new(),
                principal: Some(GRADY.into()),
                resources: vec![VM.into()],
            },
            &caller("token:responder"),
        )
        .await
        .unwrap();
    let run = service.drive(&id, None).await.unwrap();
    assert_eq!(run.status, RunStatus::AwaitingApproval);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_containment_and_its_completion_are_each_told_once_with_why_and_a_link() {
    let (emulator, service, dir) = common::service_on_emulator_with(
        Tenant::default_fixture(),
        "enforce",
        with_notify("/_emulator/webhooks/soc", None),
    )
    .await;
    // The follower starts at the trail's head when it first looks.
    assert_eq!(service.tell_pass().await.unwrap(), 0);
    let id = invoke_grady(&service).await;
    assert_eq!(service.tell_pass().await.unwrap(), 1);
    let messages = emulator.state().webhook_messages(Some("soc"));
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let card = messages[0].body.to_string();
    for needle in [
        "Approval needed",
        GRADY,
        "first-access-containment",
        "Global Administrator",
        &format!("https://riposte.contoso.example/runs/{id}"),
        "application/vnd.microsoft.card.adaptive",
    ] {
        assert!(card.contains(needle), "{needle} missing from {card}");
    }
    // Nothing new: nothing told again.
    assert_eq!(service.tell_pass().await.unwrap(), 0);

    let hash = service.run(&id).await.unwrap().run.plan_hash.unwrap();
    service
        .approve(&id, &hash, &caller("token:approver"))
        .await
        .unwrap();
    let mut run = service.drive(&id, None).await.unwrap();
    if run.status == RunStatus::Running {
        run = service.drive(&id, None).await.unwrap();
    }
    // Riposte's identity holds User Administrator, which Graph does not let disable a Global
    // Administrator: the approved run fails on those steps, and the notice says why.
    let (headline, why) = match run.status {
        RunStatus::Succeeded => ("Run finished", None),
        RunStatus::Failed => ("Run failed", Some("request-id")),
        other => panic!("the approved run ended {other:?}"),
    };

    // Another service on the same store (a restart, another replica) resumes from the cursor.
    let config = common::config_from_toml(
        dir.path(),
        &std::fs::read_to_string(dir.path().join("riposte.toml")).unwrap(),
    );
    let again = riposte::app::App::new(config)
        .unwrap()
        .service()
        .await
        .unwrap();
    // The first service's lease on the cursor still stands: the second waits its turn.
    assert_eq!(again.tell_pass().await.unwrap(), 0);
    assert_eq!(service.tell_pass().await.unwrap(), 1);
    let messages = emulator.state().webhook_messages(Some("soc"));
    // The playbook's own `notify` step posts to the action webhook, which these tests leave
    // unset; so the sink holds only the service's two notices.
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let last = messages[1].body.to_string();
    assert!(last.contains(headline), "{last}");
    if let Some(why) = why {
        assert!(last.contains(why), "{last}");
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_notice_is_recorded_and_does_not_hold_up_the_next() {
    // Slack's shape to a webhook that has gone (404).
    let (emulator, service, _dir) = common::service_on_emulator_with(
        Tenant::default_fixture(),
        "enforce",
        with_notify("/_emulator/gone/slack", Some("slack")),
    )
    .await;
    service.tell_pass().await.unwrap();
    let first = invoke_grady(&service).await;
    service.tell_pass().await.unwrap();
    assert!(emulator.state().webhook_messages(None).is_empty());
    let records = service.store().audit_records(1, 1000).await.unwrap();
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r.kind == "notice.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{records:#?}");
    assert_eq!(failed[0].run_id.as_deref(), Some(first.as_str()));
    assert_eq!(failed[0].body["event"], "awaiting_approval");
    // The cursor moved past it: the next pass does not try it again.
    assert_eq!(service.tell_pass().await.unwrap(), 0);
    emulator.shutdown().await;
}

/// The sink refuses what the service behind it would: Slack wants `text` or typed blocks,
/// Teams a card, both JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_sink_refuses_what_slack_and_teams_refuse() {
    let emulator = riposte_emulator::Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        Tenant::default_fixture(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let post = |name: &str, body: &'static str| {
        http.post(riposte_emulator::webhook_sink_url(
            &emulator.base_url(),
            name,
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
    };
    let refused = post("slack-soc", r#"{"title": "no text"}"#).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.text().await.unwrap(), "no_text");
    let ok = post("slack-soc", r#"{"text": "hello"}"#).await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "ok");
    let refused = post("teams-soc", r#"{"type": "message", "attachments": []}"#)
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let listed: serde_json::Value = http
        .get(format!(
            "{}/_emulator/webhooks/slack-soc",
            emulator.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["body"]["text"], "hello");
    emulator.shutdown().await;
}

/// A message that looks like a run-time unknown (`⟨steps.user.outputs.id⟩`) is text like any
/// other: the step is exact, runs, and the webhook receives the characters as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_shaped_text_reaches_the_webhook_verbatim() {
    let (emulator, service, _dir) =
        common::service_on_emulator_with(Tenant::default_fixture(), "enforce", |toml| {
            let base = toml
                .lines()
                .find_map(|l| l.strip_prefix("graph_endpoint = \""))
                .and_then(|l| l.strip_suffix('"'))
                .unwrap()
                .to_string();
            // `[actions]` is the emulator configuration's last table.
            format!(
                "{toml}notify_webhook_url = \"{}\"\n",
                riposte_emulator::webhook_sink_url(&base, "soc")
            )
        })
        .await;
    let message = "Sign-in blocked ⟨steps.user.outputs.id⟩ \u{e000}⟨secret⟩ ⟨x";
    let id = service
        .invoke_action(
            "notify.webhook",
            BTreeMap::from([("message".to_string(), serde_json::json!(message))]),
            &caller("token:responder"),
        )
        .await
        .unwrap();
    let run = service.drive(&id, None).await.unwrap();
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "{:#?}",
        service.report(&id).await
    );
    let messages = emulator.state().webhook_messages(Some("soc"));
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0].body["text"], message);
    emulator.shutdown().await;
}
