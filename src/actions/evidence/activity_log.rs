use async_trait::async_trait;
use chrono::SecondsFormat;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Effect, Permissions, PlanContext, encode, is_guid,
    unknown,
};
use crate::connectors::{Api, ApiRequest};

use super::{default_timespan, parse_timespan};

/// Collects what the caller did in the subscription (Azure Activity Log), the first thing an
/// investigator reads after a first-access alert.
pub struct ActivityLog;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Whose operations to collect: the caller as the Activity Log records it (a user's UPN,
    /// or an application's id).
    pub caller: String,
    /// The subscription id to read. Default: the subscription of the alert's first resource.
    #[serde(default)]
    pub subscription: Option<String>,
    /// How far back to look, as an ISO 8601 duration (`P30D`, `PT12H`, `P1DT6H`); the window
    /// ends when the plan is made. Default: `P30D`.
    #[serde(default = "default_timespan")]
    pub timespan: String,
}

static INFO: ActionInfo = ActionInfo {
    name: "evidence.activity_log",
    description: "Collect the caller's Azure Activity Log events in a subscription over a time window.",
    effect: Effect::Evidence,
    permissions: Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &["Microsoft.Insights/eventtypes/values/read (Reader or Monitoring Reader)"],
    },
    compensation: "none needed: reads only",
    example: "id: activity\nuses: evidence.activity_log\nwith:\n  caller: ${{ alert.principal.upn }}\n  timespan: P30D\n",
};

/// How long the Activity Log keeps events.
const RETENTION_DAYS: i64 = 90;

#[async_trait]
impl Action for ActivityLog {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        let span = parse_timespan(&p.timespan)?;
        if p.caller.trim().is_empty() {
            return Err(ActionError::Params("`caller` is empty".into()));
        }
        let subscription = p
            .subscription
            .clone()
            .or_else(|| {
                ctx.alert
                    .resources
                    .first()
                    .and_then(|r| r.subscription_id.clone())
            })
            .ok_or_else(|| {
                ActionError::Params(
                    "no subscription: set `subscription`, or use an alert that names a resource"
                        .into(),
                )
            })?;
        if !is_guid(&subscription) && !unknown::is_placeholder(&subscription) {
            return Err(ActionError::Params(format!(
                "subscription `{subscription}` is not a subscription id (a GUID)"
            )));
        }
        // A fixed window, so the plan states exactly which events it will read.
        let to = ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let from = (ctx.now - span).to_rfc3339_opts(SecondsFormat::Secs, true);
        let filter = format!(
            "eventTimestamp ge '{from}' and eventTimestamp le '{to}' and caller eq {}",
            encode::odata_string(&p.caller)
        );
        let url = format!(
            "{}/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter={}",
            ctx.endpoints.arm,
            encode::segment(&subscription),
            encode::query_value_with_placeholders(&filter)
        );
        let mut plan = ActionPlan::planned(vec![ApiRequest::get(Api::Arm, url)])
            .outputs(json!({ "subscription": subscription, "from": from, "to": to }))
            .note("every page (nextLink) is collected when the run executes");
        if span.num_days() > RETENTION_DAYS {
            plan = plan.note(format!(
                "the Activity Log keeps {RETENTION_DAYS} days: older events are not returned"
            ));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    fn base() -> String {
        format!(
            "{ARM}/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter="
        )
    }

    #[tokio::test]
    async fn filters_on_the_window_and_the_caller_from_the_alert_subscription() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&ActivityLog, json!({ "caller": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "GET");
        assert_eq!(body, None);
        assert_eq!(
            url,
            format!(
                "{}eventTimestamp%20ge%20'2026-03-22T04:05:00Z'%20and%20eventTimestamp%20le%20'2026-04-21T04:05:00Z'%20and%20caller%20eq%20'alex.wilber@contoso.com'",
                base()
            )
        );
        assert_eq!(plan.outputs["from"], "2026-03-22T04:05:00Z");
        assert!(
            env.lookup.calls().is_empty(),
            "evidence is read at run time"
        );
    }

    #[tokio::test]
    async fn apostrophes_are_doubled_and_hours_accepted() {
        let other = "00000000-1111-2222-3333-444444444444";
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &ActivityLog,
                json!({ "caller": OBRIEN_UPN, "subscription": other, "timespan": "PT12H" }),
            )
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(
            url,
            format!(
                "{ARM}/subscriptions/{other}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=eventTimestamp%20ge%20'2026-04-20T16:05:00Z'%20and%20eventTimestamp%20le%20'2026-04-21T04:05:00Z'%20and%20caller%20eq%20'megan.o''brien@contoso.com'"
            )
        );
    }

    #[tokio::test]
    async fn a_guest_caller_is_encoded_and_cannot_break_the_query() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &ActivityLog,
                json!({ "caller": format!("{GUEST_UPN}&$top=1") }),
            )
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert!(url.ends_with("caller%20eq%20'AdeleVance_fabrikam.com%23EXT%23@contoso.onmicrosoft.com%26$top%3D1'"), "{url}");
    }

    #[tokio::test]
    async fn placeholder_caller_stays_readable() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &ActivityLog,
                json!({ "caller": "⟨steps.user.outputs.upn⟩" }),
            )
            .await
            .unwrap();
        assert!(
            only_request(&plan)
                .1
                .ends_with("caller%20eq%20'⟨steps.user.outputs.upn⟩'")
        );
    }

    #[tokio::test]
    async fn long_windows_are_noted_and_bad_ones_refused() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &ActivityLog,
                json!({ "caller": ALEX_UPN, "timespan": "P120D" }),
            )
            .await
            .unwrap();
        assert!(plan.notes.iter().any(|n| n.contains("90 days")));
        for with in [
            json!({ "caller": ALEX_UPN, "timespan": "P1M" }),
            json!({ "caller": ALEX_UPN, "subscription": "not-a-sub" }),
            json!({ "caller": "" }),
        ] {
            assert!(matches!(
                env.plan(&ActivityLog, with).await,
                Err(ActionError::Params(_))
            ));
        }
    }

    #[tokio::test]
    async fn no_subscription_anywhere_is_a_parameter_error() {
        let mut env = TestEnv::offline();
        env.alert.resources.clear();
        let err = env
            .plan(&ActivityLog, json!({ "caller": ALEX_UPN }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("subscription"), "{err}");
    }
}
