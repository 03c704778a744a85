//! The webhook sink: `POST /_emulator/webhooks/{name}` stands in for a Teams or Slack
//! incoming webhook, so the demo and the tests see every notification riposte posts.
//!
//! It refuses what the real services refuse, so a message that would bounce off Slack or
//! Teams bounces here too: a sink named `slack…` wants Slack's shape (a `text` or `blocks`;
//! Slack answers `400 invalid_payload` / `no_text`), any other name Teams' (a `message` with
//! Adaptive Card attachments, or a connector card with `text`; Teams answers 400 with a short
//! text). Bodies must be JSON with `Content-Type: application/json`. Accepted messages answer
//! like the services do (`ok` from Slack, `1` from Teams) and are listed by
//! `GET /_emulator/webhooks/{name}`.

use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use super::http::Req;

/// One accepted message.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookMessage {
    pub seq: u64,
    pub at: String,
    pub name: String,
    pub body: Value,
}

/// Every message accepted, in order.
#[derive(Debug, Default)]
pub struct Sink {
    messages: Vec<WebhookMessage>,
}

impl Sink {
    pub fn list(&self, name: Option<&str>) -> Vec<WebhookMessage> {
        self.messages
            .iter()
            .filter(|m| name.is_none_or(|n| m.name == n))
            .cloned()
            .collect()
    }

    pub fn clear(&mut self) {
        self.messages.clear();
    }

    /// Answers a post to the sink `name` as the service behind it would.
    pub fn receive(&mut self, name: &str, req: &Req) -> Response<Body> {
        let slack = name.to_ascii_lowercase().starts_with("slack");
        let json_type = req
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
        let body: Option<Value> = if json_type {
            serde_json::from_slice(&req.body).ok()
        } else {
            None
        };
        let refusal = match (&body, slack) {
            (None, true) => Some("invalid_payload"),
            (None, false) => Some("Invalid webhook request - Payload must be JSON"),
            (Some(b), true) => slack_refusal(b),
            (Some(b), false) => teams_refusal(b),
        };
        if let Some(text) = refusal {
            return text_response(StatusCode::BAD_REQUEST, text);
        }
        let seq = self.messages.len() as u64 + 1;
        self.messages.push(WebhookMessage {
            seq,
            at: super::http::now_rfc3339(),
            name: name.to_string(),
            body: body.unwrap_or(Value::Null),
        });
        text_response(StatusCode::OK, if slack { "ok" } else { "1" })
    }
}

fn slack_refusal(body: &Value) -> Option<&'static str> {
    let text = body["text"].as_str().is_some_and(|t| !t.is_empty());
    let blocks = body["blocks"].as_array();
    match blocks {
        Some(blocks) if blocks.iter().any(|b| b["type"].as_str().is_none()) => {
            Some("invalid_blocks")
        }
        Some(blocks) if blocks.len() > 50 => Some("invalid_blocks"),
        Some(_) => None,
        None if text => None,
        None => Some("no_text"),
    }
}

fn teams_refusal(body: &Value) -> Option<&'static str> {
    if body["type"] == "message" {
        let attachments = body["attachments"].as_array();
        let cards = attachments.is_some_and(|a| {
            !a.is_empty()
                && a.iter().all(|c| {
                    c["contentType"] == "application/vnd.microsoft.card.adaptive"
                        && c["content"]["type"] == "AdaptiveCard"
                        && c["content"]["body"].is_array()
                })
        });
        return (!cards).then_some("Invalid webhook request - attachments must be Adaptive Cards");
    }
    // A connector (MessageCard-style) payload: Teams requires its text.
    let text = body["text"].as_str().is_some_and(|t| !t.trim().is_empty());
    (!text).then_some("Summary or Text is required.")
}

fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text.to_string()))
        .expect("a static response builds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slack_wants_text_or_typed_blocks() {
        assert_eq!(slack_refusal(&json!({})), Some("no_text"));
        assert_eq!(slack_refusal(&json!({"text": "hi"})), None);
        assert_eq!(
            slack_refusal(&json!({"blocks": [{"text": "x"}]})),
            Some("invalid_blocks")
        );
        assert_eq!(
            slack_refusal(&json!({"blocks": [{"type": "section"}]})),
            None
        );
    }

    #[test]
    fn teams_wants_adaptive_cards_or_text() {
        assert!(teams_refusal(&json!({"type": "message", "attachments": []})).is_some());
        assert!(teams_refusal(&json!({"title": "no text"})).is_some());
        assert_eq!(teams_refusal(&json!({"text": "hi"})), None);
        let card = json!({"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "body": []}}]});
        assert_eq!(teams_refusal(&card), None);
    }
}
