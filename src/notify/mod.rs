//! `[notify]`: service events told to a person. When a run starts waiting for an approval,
//! finishes or fails, riposte posts a message to a Teams or Slack incoming webhook with who,
//! what and why, and a link to the run's review page (`{public_url}/runs/{id}`).
//!
//! This part only says what a message is and shapes it for each chat service
//! ([`message`]); the engine decides when an event happened (it follows the audit trail) and
//! sends the request through the connectors.

pub mod message;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// A service event a person may be told about (`[notify] events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceEvent {
    /// A run's plan waits for an approver.
    AwaitingApproval,
    /// A held containment is about to be rolled back by itself (time-boxed runs).
    HoldExpiring,
    /// A run executed (succeeded, or was compensated as its playbook asked).
    Finished,
    /// A run failed: executing, or planning after its last attempt.
    Failed,
}

impl ServiceEvent {
    pub const ALL: [ServiceEvent; 4] = [
        ServiceEvent::AwaitingApproval,
        ServiceEvent::HoldExpiring,
        ServiceEvent::Finished,
        ServiceEvent::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceEvent::AwaitingApproval => "awaiting_approval",
            ServiceEvent::HoldExpiring => "hold_expiring",
            ServiceEvent::Finished => "finished",
            ServiceEvent::Failed => "failed",
        }
    }
}

/// Which chat service's message shape the webhook expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Slack for `hooks.slack.com`, else Teams.
    #[default]
    Auto,
    /// An Adaptive Card in a `message` (Teams workflows and connectors).
    Teams,
    /// Block Kit blocks with a `text` fallback.
    Slack,
}

/// `[notify]`. Without `webhook_url` nothing is posted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// The incoming webhook. Its URL is its credential, so it is a secret: never logged,
    /// never shown.
    #[serde(default)]
    pub webhook_url: Option<SecretString>,
    /// The events to post; all four by default.
    #[serde(default = "all_events")]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub format: WebhookFormat,
}

fn all_events() -> Vec<ServiceEvent> {
    ServiceEvent::ALL.to_vec()
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            webhook_url: None,
            events: all_events(),
            format: WebhookFormat::Auto,
        }
    }
}

impl NotifySettings {
    /// Whether `event` is to be posted at all.
    pub fn wants(&self, event: ServiceEvent) -> bool {
        self.webhook_url.is_some() && self.events.contains(&event)
    }

    /// A configuration that cannot work, said before the service starts: a webhook that is
    /// not https (loopback excepted).
    pub fn check(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        if let Some(url) = &self.webhook_url {
            // The error must not repeat the URL: it is the credential.
            crate::connectors::cloud::check_endpoint_scheme(url.expose_secret()).map_err(|_| {
                "[notify] webhook_url must be an https URL (plain http only on loopback)"
                    .to_string()
            })?;
        }
        Ok(())
    }
}

/// What one message says. Every text field may hold what an alert or an upstream answer
/// said, so [`message`] escapes each for the service's markup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub event: ServiceEvent,
    pub run_id: String,
    pub playbook: String,
    /// The user or principal the run acts on.
    pub principal: Option<String>,
    /// `dry-run` or `enforce`.
    pub mode: String,
    pub status: String,
    /// The alert that started the run, if one did.
    pub alert_title: Option<String>,
    /// Why: the policy reasons a plan waits on, or why the run failed.
    pub reasons: Vec<String>,
    /// The run's review page.
    pub link: String,
}

impl Notice {
    /// The headline: what happened, to whom.
    pub fn headline(&self) -> String {
        let what = match self.event {
            ServiceEvent::AwaitingApproval => "Approval needed",
            ServiceEvent::HoldExpiring => "Containment hold expiring",
            ServiceEvent::Finished => "Run finished",
            ServiceEvent::Failed => "Run failed",
        };
        match &self.principal {
            Some(p) => format!("{what}: {} for {p}", self.playbook),
            None => format!("{what}: {}", self.playbook),
        }
    }
}
