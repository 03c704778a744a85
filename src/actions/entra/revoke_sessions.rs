use async_trait::async_trait;
use chrono::SecondsFormat;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, Verification, unreadable,
};
use crate::connectors::{Api, ApiRequest, Endpoints, Lookup, LookupOutcome, Method};

use super::{is_guest, lookup_user, read_back_url, user_key, user_url};

/// Invalidates the user's refresh tokens and session cookies (`revokeSignInSessions`), so a
/// stolen session stops working at its next token refresh.
pub struct RevokeSessions;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The user's object id or user principal name.
    pub user: String,
}

/// Said on every plan: reviewers tend to assume revocation is instant.
const ACCESS_TOKEN_NOTE: &str = "access tokens already issued stay valid until they expire (up to about an hour) unless the resource supports Continuous Access Evaluation";

static INFO: ActionInfo = ActionInfo {
    name: "entra.revoke_sessions",
    description: "Revoke the user's refresh tokens and browser sessions (revokeSignInSessions); the user must sign in again.",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &["User.RevokeSessions.All", "User.Read.All"],
        entra_roles: &[
            "Privileged Authentication Administrator (only for targets holding admin roles)",
        ],
        azure_rbac: &[],
    },
    compensation: "none: revoked sessions cannot be restored; the user signs in again",
    example: "id: revoke\nuses: entra.revoke_sessions\nneeds: [user]\nwith:\n  user: ${{ steps.user.outputs.id }}\n",
};

#[async_trait]
impl Action for RevokeSessions {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        let found = lookup_user(ctx, &p.user).await?;
        let url = format!(
            "{}/revokeSignInSessions",
            user_url(
                &ctx.endpoints.graph_v1(),
                &user_key(found.as_ref(), &p.user)
            )
        );
        // Repeating the call only moves the cut-off forward again, which is what a retry
        // wants; so the client may resend it after a transient failure.
        let request = ApiRequest::new(Method::Post, Api::Graph, url).retry_safe();
        let mut plan = ActionPlan::planned(vec![request])
            // Verification reads the timestamp back: it must not be older than the plan.
            .desired_state(json!({
                "signInSessionsValidFromDateTime": {
                    "not_before": ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true)
                }
            }));
        if let Some(u) = &found {
            plan = plan.pre_state(json!({
                "signInSessionsValidFromDateTime": u["signInSessionsValidFromDateTime"]
            }));
        }
        if is_guest(found.as_ref(), &p.user) {
            plan = plan.note(
                "guest (B2B) user: this revokes sessions in this tenant only; sessions in the user's home tenant are not covered",
            );
        }
        Ok(plan.note(ACCESS_TOKEN_NOTE))
    }

    /// The cut-off must have moved past the value the plan read (or, planned without
    /// credentials, reached the plan's clock). Graph replicates the property lazily, so a
    /// cut-off that has not moved yet is reported as unchecked, not as a failure: the revoke
    /// call's success answer stands.
    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        let Some(url) = read_back_url(
            done,
            "/revokeSignInSessions",
            "id,signInSessionsValidFromDateTime",
        ) else {
            return Ok(Verification::Unchecked("no request was sent".into()));
        };
        let found = lookup.get(Api::Graph, &url).await?;
        let LookupOutcome::Found(user) = &found else {
            return Ok(unreadable(&found, "the user"));
        };
        let now = user["signInSessionsValidFromDateTime"]
            .as_str()
            .and_then(parse_time);
        let before = done.pre_state["signInSessionsValidFromDateTime"]
            .as_str()
            .and_then(parse_time);
        let not_before = done.desired_state["signInSessionsValidFromDateTime"]["not_before"]
            .as_str()
            .and_then(parse_time);
        let moved = match (now, before, not_before) {
            (Some(now), Some(before), _) => now > before,
            (Some(now), None, Some(not_before)) => now >= not_before,
            _ => false,
        };
        Ok(if moved {
            Verification::Verified(json!({
                "signInSessionsValidFromDateTime": user["signInSessionsValidFromDateTime"]
            }))
        } else {
            Verification::Unchecked(format!(
                "signInSessionsValidFromDateTime reads {} and has not moved yet; Graph updates it lazily after a revocation, so the success answer stands",
                user["signInSessionsValidFromDateTime"]
            ))
        })
    }

    fn compensate(&self, _done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        Compensation::Irreversible("sessions cannot be restored".into())
    }
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    #[tokio::test]
    async fn posts_without_a_body_and_records_the_cut_off() {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let plan = env
            .plan(&RevokeSessions, json!({ "user": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "POST");
        assert_eq!(url, format!("{GRAPH}/users/{ALEX_ID}/revokeSignInSessions"));
        assert_eq!(body, None);
        assert!(plan.requests[0].retry_safe);
        assert_eq!(
            plan.pre_state,
            json!({ "signInSessionsValidFromDateTime": "2026-04-01T08:00:00Z" })
        );
        assert_eq!(
            plan.desired_state["signInSessionsValidFromDateTime"]["not_before"],
            "2026-04-21T04:05:00Z"
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("Continuous Access Evaluation"))
        );
        assert!(!plan.notes.iter().any(|n| n.contains("B2B")));
    }

    async fn planned() -> (serde_json::Value, ActionPlan) {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let params = json!({ "user": ALEX_ID });
        let plan = env.plan(&RevokeSessions, params.clone()).await.unwrap();
        (params, plan)
    }

    fn read_back() -> String {
        format!("{GRAPH}/users/{ALEX_ID}?$select=id,signInSessionsValidFromDateTime")
    }

    #[tokio::test]
    async fn verify_sees_the_cut_off_move() {
        let (params, plan) = planned().await;
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict().found(
            read_back(),
            json!({ "signInSessionsValidFromDateTime": "2026-04-21T04:05:07Z" }),
        );
        assert_eq!(
            RevokeSessions.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(
                json!({ "signInSessionsValidFromDateTime": "2026-04-21T04:05:07Z" })
            )
        );
        assert_eq!(lookup.calls(), vec![read_back()]);
    }

    #[tokio::test]
    async fn a_lagging_cut_off_is_unchecked_not_a_mismatch() {
        let (params, plan) = planned().await;
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict().found(
            read_back(),
            json!({ "signInSessionsValidFromDateTime": "2026-04-01T08:00:00Z" }),
        );
        match RevokeSessions.verify(&done, &lookup).await.unwrap() {
            Verification::Unchecked(why) => assert!(why.contains("lazily"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn sessions_cannot_be_restored() {
        let (params, plan) = planned().await;
        let done = executed(&params, &plan, &[]);
        assert_eq!(
            RevokeSessions.compensate(&done, &Endpoints::default()),
            Compensation::Irreversible("sessions cannot be restored".into())
        );
    }

    #[tokio::test]
    async fn guest_gets_the_home_tenant_note() {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(GUEST_ID, GUEST_UPN)));
        let plan = env
            .plan(&RevokeSessions, json!({ "user": GUEST_ID }))
            .await
            .unwrap();
        assert!(plan.notes.iter().any(|n| n.contains("home tenant")));
    }

    #[tokio::test]
    async fn guest_by_user_type_only_gets_the_note() {
        let mut user = user_json(OBRIEN_ID, OBRIEN_UPN);
        user["userType"] = json!("Guest");
        let env = TestEnv::new(FakeLookup::strict().user(user));
        let plan = env
            .plan(&RevokeSessions, json!({ "user": OBRIEN_ID }))
            .await
            .unwrap();
        assert!(plan.notes.iter().any(|n| n.contains("home tenant")));
    }

    #[tokio::test]
    async fn without_credentials_the_guest_upn_is_encoded_and_noted() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&RevokeSessions, json!({ "user": GUEST_UPN }))
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(
            url,
            format!(
                "{GRAPH}/users/AdeleVance_fabrikam.com%23EXT%23@contoso.onmicrosoft.com/revokeSignInSessions"
            )
        );
        assert!(plan.notes.iter().any(|n| n.contains("home tenant")));
        assert_eq!(plan.pre_state, serde_json::Value::Null);
    }

    #[tokio::test]
    async fn placeholder_user_stays_visible() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &RevokeSessions,
                json!({ "user": crate::actions::unknown::placeholder("steps.user.outputs.id") }),
            )
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(
            url,
            format!("{GRAPH}/users/⟨steps.user.outputs.id⟩/revokeSignInSessions")
        );
        assert!(env.lookup.calls().is_empty());
    }
}
