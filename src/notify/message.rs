//! One [`Notice`] in the shape each chat service expects: a Teams Adaptive Card inside a
//! `message` with an attachment, or Slack Block Kit blocks with a plain `text` fallback.
//!
//! Every value in a notice may come from an alert (its title, a principal's name) or an
//! upstream answer, so each is escaped for the markup that shows it: Slack's `mrkdwn` turns
//! `<url|text>` into a link and `<!channel>` into a mention; a Teams text block renders
//! Markdown links. A hostile alert title must arrive as text, never as a link or a ping.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Notice, NotifySettings, WebhookFormat};
use crate::connectors::{Api, ApiRequest, Method};

/// Slack refuses a header over 150 characters and a section text over 3,000.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 3000;
/// Reasons shown in one message; the review page has the rest.
const MAX_REASONS: usize = 10;

/// The request that posts `notice`, or `None` when no webhook is configured.
pub fn request(settings: &NotifySettings, notice: &Notice) -> Option<ApiRequest> {
    let url = settings.webhook_url.as_ref()?.expose_secret().to_string();
    let body = match format_for(settings.format, &url) {
        WebhookFormat::Slack => slack(notice),
        _ => teams(notice),
    };
    Some(ApiRequest::new(Method::Post, Api::Webhook, url).with_body(body))
}

/// The shape `url` expects when the configuration leaves it to riposte.
pub fn format_for(format: WebhookFormat, url: &str) -> WebhookFormat {
    match format {
        WebhookFormat::Auto => {
            let host = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
            if host.as_deref() == Some("hooks.slack.com") {
                WebhookFormat::Slack
            } else {
                WebhookFormat::Teams
            }
        }
        f => f,
    }
}

/// The facts both shapes show, in order, as (label, value).
fn facts(notice: &Notice) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Run", notice.run_id.clone()),
        ("Playbook", notice.playbook.clone()),
    ];
    if let Some(p) = &notice.principal {
        facts.push(("Principal", p.clone()));
    }
    facts.push(("Mode", notice.mode.clone()));
    facts.push(("Status", notice.status.clone()));
    if let Some(t) = &notice.alert_title {
        facts.push(("Alert", t.clone()));
    }
    facts
}

fn shown_reasons(notice: &Notice) -> Vec<String> {
    let mut shown: Vec<String> = notice.reasons.iter().take(MAX_REASONS).cloned().collect();
    if notice.reasons.len() > MAX_REASONS {
        shown.push(format!(
            "… and {} more on the review page",
            notice.reasons.len() - MAX_REASONS
        ));
    }
    shown
}

/// An Adaptive Card (schema 1.4, what Teams renders) in the `message` envelope Teams'
/// incoming webhooks and workflows accept.
pub fn teams(notice: &Notice) -> Value {
    let facts: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": teams_text(&value)}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
               "text": teams_text(&notice.headline())}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    let reasons = shown_reasons(notice);
    if !reasons.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Why", "wrap": true}));
        for reason in reasons {
            body.push(json!({"type": "TextBlock", "wrap": true, "text": teams_text(&format!("• {reason}"))}));
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open in riposte", "url": notice.link}],
            }
        }]
    })
}

/// Block Kit: a header, the facts, the reasons and a button to the run, plus `text` for
/// notifications and clients without blocks.
pub fn slack(notice: &Notice) -> Value {
    let headline = notice.headline();
    let fields: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(label, value)| {
            json!({"type": "mrkdwn", "text": truncate(&format!("*{label}*\n{}", slack_text(&value)), 2000)})
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&headline, SLACK_HEADER_MAX)}}),
        json!({"type": "section", "fields": fields}),
    ];
    let reasons = shown_reasons(notice);
    if !reasons.is_empty() {
        let text: Vec<String> = reasons
            .iter()
            .map(|r| format!("• {}", slack_text(r)))
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*Why*\n{}", text.join("\n")), SLACK_TEXT_MAX)}}));
    }
    blocks.push(json!({"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": "Open in riposte"}, "url": notice.link,
    }]}));
    json!({
        "text": truncate(&slack_text(&headline), SLACK_TEXT_MAX),
        "blocks": blocks,
    })
}

/// Slack's three control characters, as its formatting guide asks; with them escaped no
/// link, mention or channel ping can be formed.
pub fn slack_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown's link and emphasis characters escaped with a backslash, so a Teams text block
/// shows them instead of forming a link; bare URLs are broken with a zero-width joiner
/// after the scheme so Teams does not link them either.
pub fn teams_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '[' | ']' | '(' | ')' | '*' | '_' | '`' | '#' | '<' | '>' | '~' | '!' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out.replace("://", ":\u{2060}//")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::ServiceEvent;

    fn notice(title: &str) -> Notice {
        Notice {
            event: ServiceEvent::AwaitingApproval,
            run_id: "0190-run".into(),
            playbook: "first-access-containment".into(),
            principal: Some("grady@contoso.com".into()),
            mode: "dry-run".into(),
            status: "awaiting_approval".into(),
            alert_title: Some(title.into()),
            reasons: vec!["Grady Admin holds Global Administrator: approval required".into()],
            link: "https://riposte.contoso.com/runs/0190-run".into(),
        }
    }

    fn settings(url: &str, format: WebhookFormat) -> NotifySettings {
        NotifySettings {
            webhook_url: Some(SecretString::from(url.to_string())),
            format,
            ..NotifySettings::default()
        }
    }

    use secrecy::SecretString;

    #[test]
    fn slack_hooks_get_blocks_and_everything_else_an_adaptive_card() {
        let n = notice("New API call");
        let slack = request(
            &settings(
                "https://hooks.slack.com/services/T/B/x",
                WebhookFormat::Auto,
            ),
            &n,
        )
        .unwrap();
        assert!(slack.body.as_ref().unwrap()["blocks"].is_array());
        let teams = request(
            &settings(
                "https://contoso.webhook.office.com/webhookb2/x",
                WebhookFormat::Auto,
            ),
            &n,
        )
        .unwrap();
        let body = teams.body.unwrap();
        assert_eq!(body["type"], "message");
        assert_eq!(
            body["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(body["attachments"][0]["content"]["type"], "AdaptiveCard");
        let forced = request(
            &settings("https://chat.contoso.com/hook", WebhookFormat::Slack),
            &n,
        )
        .unwrap();
        assert!(forced.body.unwrap()["blocks"].is_array());
        assert_eq!(teams.method, Method::Post);
        assert_eq!(teams.api, Api::Webhook);
    }

    #[test]
    fn no_webhook_no_request() {
        assert!(request(&NotifySettings::default(), &notice("x")).is_none());
    }

    #[test]
    fn a_hostile_title_cannot_form_a_slack_link_or_mention() {
        let n = notice("<https://evil.example|Click to re-enable> <!channel>");
        let text = slack(&n).to_string();
        assert!(!text.contains("<https://evil"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
    }

    #[test]
    fn a_hostile_title_cannot_form_a_teams_link() {
        let n = notice("[Approve here](https://evil.example) https://evil.example");
        let card = teams(&n).to_string();
        assert!(!card.contains("[Approve here](https://evil"), "{card}");
        assert!(!card.contains(" https://evil"), "{card}");
        assert!(card.contains(r"\\[Approve here\\]"), "{card}");
    }

    #[test]
    fn each_message_carries_who_what_why_and_the_link() {
        let n = notice("New API call");
        for body in [teams(&n), slack(&n)] {
            let text = body.to_string();
            for needle in [
                "grady@contoso.com",
                "first-access-containment",
                "Global Administrator",
                "https://riposte.contoso.com/runs/0190-run",
                "Approval needed",
            ] {
                assert!(text.contains(needle), "{needle} missing from {text}");
            }
        }
    }

    #[test]
    fn slack_limits_are_kept() {
        let mut n = notice(&"a".repeat(5000));
        n.principal = Some("p".repeat(400));
        n.reasons = (0..40)
            .map(|i| format!("reason {i} {}", "r".repeat(200)))
            .collect();
        let body = slack(&n);
        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= SLACK_HEADER_MAX);
        for block in body["blocks"].as_array().unwrap() {
            if let Some(t) = block["text"]["text"].as_str() {
                assert!(t.chars().count() <= SLACK_TEXT_MAX);
            }
        }
        assert!(body.to_string().contains("30 more on the review page"));
    }

    #[test]
    fn a_webhook_url_that_is_not_https_is_refused_without_repeating_it() {
        let err = settings("http://chat.example/hook/secret", WebhookFormat::Auto)
            .check()
            .unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(
            settings("http://127.0.0.1:9/x", WebhookFormat::Auto)
                .check()
                .is_ok()
        );
    }
}
