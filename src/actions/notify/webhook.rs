//! `notify.webhook`: a message to a Teams or Slack incoming webhook.
//!
//! An incoming webhook's URL *is* its credential (Slack's `/services/T…/B…/<secret>`,
//! Teams' `webhookb2/…`, a Logic App's `?sig=…`), so the plan never shows it: the request URL
//! keeps scheme and host and replaces path and query with
//! `⟨secret: webhook path, sha256:…⟩`, whether the URL came from configuration or from the
//! step. The fingerprint binds the approved plan to that exact URL without revealing it. When
//! the run executes, the engine resolves the real URL again with [`target_url`] (from the
//! same step parameters and settings) and sends only if [`redact`] of it equals the planned
//! URL.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, ActionSettings, Effect, Executed, Permissions,
    PlanContext,
};
use crate::connectors::cloud::check_endpoint_scheme;
use crate::connectors::{Api, ApiRequest, Method};

/// Posts a short message about the run to a chat channel.
pub struct Webhook;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The incoming webhook URL (https). Default: `notify_webhook_url` under [actions] in
    /// configuration, which keeps the secret out of the playbook.
    #[serde(default)]
    pub url: Option<String>,
    /// The message text (Slack requires `text`; Teams shows it as the card body).
    pub message: String,
    /// A title shown above the message (Teams cards). Default: none.
    #[serde(default)]
    pub title: Option<String>,
}

static INFO: ActionInfo = ActionInfo {
    name: "notify.webhook",
    description: "Post a message (JSON {title, text}) to a Teams or Slack incoming webhook; the webhook URL is a secret and plans show it redacted.",
    effect: Effect::Notify,
    permissions: Permissions::NONE,
    compensation: "none: a sent message cannot be recalled",
    example: "id: tell\nuses: notify.webhook\nneeds: [suspend]\nwith:\n  title: Contained ${{ alert.principal.upn }}\n  message: Sign-in blocked after ${{ alert.title }}\n",
};

/// The real URL to post to: the step's, else the configured one.
pub fn target_url(url: Option<&str>, settings: &ActionSettings) -> Result<String, ActionError> {
    url.map(str::to_string)
        .or_else(|| settings.notify_webhook_url.clone())
        .ok_or_else(|| {
            ActionError::Params(
                "no webhook: set `url` in the step or `notify_webhook_url` under [actions] in configuration".into(),
            )
        })
}

/// The URL as a plan may show it: scheme, host and port, with path and query replaced by a
/// placeholder carrying a fingerprint. Errors never repeat the URL.
pub fn redact(url: &str) -> Result<String, ActionError> {
    let parsed = url::Url::parse(url)
        .map_err(|_| ActionError::Params("the webhook url is not a valid URL".into()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| ActionError::Params("the webhook url has no host".into()))?;
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let origin = format!("{}://{host}{port}", parsed.scheme());
    let has_secret = (parsed.path() != "/" && !parsed.path().is_empty())
        || parsed.query().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some();
    if !has_secret {
        return Ok(format!("{origin}/"));
    }
    let fingerprint = hex::encode(Sha256::digest(url.as_bytes()));
    Ok(format!(
        "{origin}/⟨secret: webhook path, sha256:{}⟩",
        &fingerprint[..16]
    ))
}

#[async_trait]
impl Action for Webhook {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        if p.message.trim().is_empty() {
            return Err(ActionError::Params("`message` is empty".into()));
        }
        let real = target_url(p.url.as_deref(), ctx.settings)?;
        let shown = redact(&real)?;
        check_endpoint_scheme(&real).map_err(|_| {
            ActionError::Params(format!(
                "webhook url {shown} must use https (plain http is accepted only for loopback addresses)"
            ))
        })?;
        let mut body = Map::new();
        if let Some(title) = &p.title {
            body.insert("title".into(), Value::String(title.clone()));
        }
        body.insert("text".into(), Value::String(p.message.clone()));
        let from = if p.url.is_some() {
            "the step's `url`"
        } else {
            "`notify_webhook_url` in configuration"
        };
        Ok(ActionPlan::planned(vec![
            ApiRequest::new(Method::Post, Api::Webhook, shown).with_body(Value::Object(body)),
        ])
        .outputs(json!({}))
        .note(format!(
            "the webhook URL ({from}) is a secret: the plan shows only its host and a fingerprint"
        )))
    }

    /// Restores the real URL from the same sources the plan used, and sends only if it is the
    /// URL that was approved: a configuration change since the plan must not redirect the
    /// message (or the approval) somewhere else.
    fn prepare(
        &self,
        planned: &ApiRequest,
        done: &Executed<'_>,
        settings: &ActionSettings,
    ) -> Result<ApiRequest, ActionError> {
        let url = done.params.get("url").and_then(Value::as_str);
        let real = target_url(url, settings)?;
        if redact(&real)? != planned.url {
            return Err(ActionError::Refused(
                "the webhook URL differs from the one in the approved plan (its fingerprint changed); plan again".into(),
            ));
        }
        Ok(ApiRequest {
            url: real,
            ..planned.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    const SLACK: &str = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX";

    #[tokio::test]
    async fn posts_title_and_text_to_the_configured_url_redacted() {
        let mut env = TestEnv::offline();
        env.settings.notify_webhook_url = Some(SLACK.into());
        let plan = env
            .plan(
                &Webhook,
                json!({ "title": "Contained alex.wilber@contoso.com", "message": "Sign-in blocked" }),
            )
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "POST");
        let fp = &hex::encode(Sha256::digest(SLACK.as_bytes()))[..16];
        assert_eq!(
            url,
            format!("https://hooks.slack.com/⟨secret: webhook path, sha256:{fp}⟩")
        );
        assert_eq!(
            body,
            Some(
                &json!({ "title": "Contained alex.wilber@contoso.com", "text": "Sign-in blocked" })
            )
        );
        assert_eq!(plan.requests[0].api, Api::Webhook);
        assert!(
            !plan.requests[0].retry_safe,
            "a resent message is a duplicate message"
        );
        let whole = serde_json::to_string(&plan).unwrap();
        assert!(
            !whole.contains("XXXXXXXX") && !whole.contains("T000"),
            "{whole}"
        );
    }

    #[tokio::test]
    async fn prepare_restores_the_real_url_only_if_it_is_the_planned_one() {
        let mut env = TestEnv::offline();
        env.settings.notify_webhook_url = Some(SLACK.into());
        let params = json!({ "message": "m" });
        let plan = env.plan(&Webhook, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let sent = Webhook
            .prepare(&plan.requests[0], &done, &env.settings)
            .unwrap();
        assert_eq!(sent.url, SLACK);
        assert_eq!(sent.body, plan.requests[0].body);
        assert_eq!(sent.method, Method::Post);

        let mut moved = env.settings.clone();
        moved.notify_webhook_url = Some("https://hooks.slack.com/services/T000/B000/other".into());
        let err = Webhook
            .prepare(&plan.requests[0], &done, &moved)
            .unwrap_err();
        assert!(err.to_string().contains("approved plan"), "{err}");
        assert!(!err.to_string().contains("other"), "{err}");

        // A step `url` wins over configuration, at plan time and at send time alike.
        let teams = "https://contoso.webhook.office.com/webhookb2/abc";
        let params = json!({ "url": teams, "message": "m" });
        let plan = env.plan(&Webhook, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let sent = Webhook
            .prepare(&plan.requests[0], &done, &env.settings)
            .unwrap();
        assert_eq!(sent.url, teams);
    }

    #[tokio::test]
    async fn a_step_url_is_redacted_too_and_text_alone_is_fine() {
        let env = TestEnv::offline();
        let teams = "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456";
        let plan = env
            .plan(&Webhook, json!({ "url": teams, "message": "hello" }))
            .await
            .unwrap();
        let (_, url, body) = only_request(&plan);
        assert!(url.starts_with("https://contoso.webhook.office.com/⟨secret: webhook path"));
        assert!(!url.contains("webhookb2"));
        assert_eq!(body, Some(&json!({ "text": "hello" })));
    }

    #[test]
    fn redaction_covers_query_and_userinfo_and_binds_the_url() {
        let sig = redact(
            "https://prod.logic.azure.com:443/workflows/1/triggers/manual/paths/invoke?sig=abc",
        )
        .unwrap();
        assert!(!sig.contains("sig=") && !sig.contains("workflows"), "{sig}");
        let user = redact("https://u:p@example.com/").unwrap();
        assert!(!user.contains("u:p"));
        assert_eq!(
            redact("https://example.com").unwrap(),
            "https://example.com/"
        );
        assert_ne!(
            redact("https://hooks.slack.com/services/a").unwrap(),
            redact("https://hooks.slack.com/services/b").unwrap()
        );
        assert_eq!(redact(SLACK).unwrap(), redact(SLACK).unwrap());
    }

    #[tokio::test]
    async fn plain_http_is_refused_without_echoing_the_secret() {
        let env = TestEnv::offline();
        let err = env
            .plan(
                &Webhook,
                json!({ "url": "http://hooks.example.com/secret-path", "message": "m" }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)));
        assert!(!err.to_string().contains("secret-path"), "{err}");
        let err = env
            .plan(
                &Webhook,
                json!({ "url": "not a url/secret", "message": "m" }),
            )
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[tokio::test]
    async fn no_url_anywhere_or_empty_message_is_a_parameter_error() {
        let env = TestEnv::offline();
        let err = env
            .plan(&Webhook, json!({ "message": "m" }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("notify_webhook_url"), "{err}");
        let err = env
            .plan(&Webhook, json!({ "url": SLACK, "message": " " }))
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)));
    }

    #[tokio::test]
    async fn loopback_http_is_accepted_for_the_emulator() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &Webhook,
                json!({ "url": "http://127.0.0.1:9000/hook", "message": "m" }),
            )
            .await
            .unwrap();
        assert!(
            only_request(&plan)
                .1
                .starts_with("http://127.0.0.1:9000/⟨secret")
        );
    }
}
