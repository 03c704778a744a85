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
        // A span longer than the calendar reaches back (`P99999999999D`) is refused here rather
        // than overflowing the clock arithmetic.
        let from = ctx
            .now
            .checked_sub_signed(span)
            .ok_or_else(|| {
                ActionError::Params(format!(
                    "timespan `{}` reaches back before any date riposte can name",
                    p.timespan
                ))
            })?
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        // ActivityLogs_List allows only the time window plus one scope (resource group,
        // resource, provider or correlation id) in `$filter`; `caller` is not among them, so
        // the window is read and the caller's events are kept client-side.
        let filter = format!("eventTimestamp ge '{from}' and eventTimestamp le '{to}'");
        let url = format!(
            "{}/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter={}",
            ctx.endpoints.arm,
            encode::segment(&subscription),
            encode::query_value(&filter)
        );
        let request = ApiRequest::get(Api::Arm, url).keep_items("caller", p.caller.clone());
        let mut plan = ActionPlan::planned(vec![request])
            .outputs(json!({ "subscription": subscription, "from": from, "to": to }))
            .note("every page (nextLink) is collected when the run executes")
            .note("the caller's events are kept and the others dropped before the evidence is stored (the Activity Log cannot filter on caller)");
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

    fn keep(caller: &str) -> Option<crate::connectors::KeepItems> {
        Some(crate::connectors::KeepItems {
            field: "caller".into(),
            equals: caller.into(),
        })
    }

    #[tokio::test]
    async fn a_span_older_than_the_calendar_is_refused_not_a_panic() {
        let env = TestEnv::offline();
        let err = env
            .plan(
                &ActivityLog,
                json!({ "caller": ALEX_UPN, "timespan": "P99999999999D" }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)), "{err:?}");
        assert!(err.to_string().contains("P99999999999D"), "{err}");
    }

    #[tokio::test]
    async fn reads_the_window_and_keeps_the_callers_events_client_side() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&ActivityLog, json!({ "caller": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "GET");
        assert_eq!(body, None);
        // `caller eq` is not a documented $filter pattern: only the window is sent.
        assert_eq!(
            url,
            format!(
                "{}eventTimestamp%20ge%20'2026-03-22T04:05:00Z'%20and%20eventTimestamp%20le%20'2026-04-21T04:05:00Z'",
                base()
            )
        );
        assert_eq!(plan.requests[0].keep, keep(ALEX_UPN));
        assert_eq!(plan.outputs["from"], "2026-03-22T04:05:00Z");
        assert!(
            env.lookup.calls().is_empty(),
            "evidence is read at run time"
        );
    }

    #[tokio::test]
    async fn the_caller_never_reaches_the_url_and_hours_are_accepted() {
        let other = "00000000-1111-2222-3333-444444444444";
        let env = TestEnv::offline();
        let hostile = format!("{GUEST_UPN}' or eventTimestamp ge '2000-01-01T00:00:00Z&$top=1");
        for caller in [OBRIEN_UPN, hostile.as_str()] {
            let plan = env
                .plan(
                    &ActivityLog,
                    json!({ "caller": caller, "subscription": other, "timespan": "PT12H" }),
                )
                .await
                .unwrap();
            let (_, url, _) = only_request(&plan);
            assert_eq!(
                url,
                format!(
                    "{ARM}/subscriptions/{other}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=eventTimestamp%20ge%20'2026-04-20T16:05:00Z'%20and%20eventTimestamp%20le%20'2026-04-21T04:05:00Z'"
                )
            );
            assert_eq!(plan.requests[0].keep, keep(caller));
        }
    }

    #[tokio::test]
    async fn a_placeholder_caller_stays_in_the_request() {
        let env = TestEnv::offline();
        let with = json!({ "caller": unknown::placeholder("steps.user.outputs.upn") });
        let plan = env.plan(&ActivityLog, with.clone()).await.unwrap();
        assert_eq!(plan.requests[0].keep, keep("⟨steps.user.outputs.upn⟩"));
        // The unknown is carried into the request, so the sealed plan lists it and the engine
        // sends nothing until the run knows it.
        let carrying = env
            .plan_carrying_unknowns(&ActivityLog, serde_json::from_value(with).unwrap())
            .await
            .unwrap();
        assert!(unknown::contains_unknown(
            &serde_json::to_value(&carrying.requests[0]).unwrap()
        ));
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
