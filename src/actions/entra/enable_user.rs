use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, Verification,
};
use crate::connectors::{Endpoints, Lookup};

use super::{
    lookup_user, restore_account_enabled, set_properties, user_key, user_url,
    verify_account_enabled,
};

/// Lets the user sign in again: `accountEnabled = true`. The compensation of
/// `entra.disable_user`, and the way an analyst releases a user after review.
pub struct EnableUser;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The user's object id or user principal name.
    pub user: String,
}

static INFO: ActionInfo = ActionInfo {
    name: "entra.enable_user",
    description: "Allow the user to sign in again (accountEnabled = true).",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &["User.EnableDisableAccount.All", "User.Read.All"],
        entra_roles: &[
            "Privileged Authentication Administrator (only for targets holding admin roles)",
        ],
        azure_rbac: &[],
    },
    compensation: "entra.disable_user",
    example: "id: release\nuses: entra.enable_user\nwith:\n  user: ${{ alert.principal.object_id }}\n",
};

#[async_trait]
impl Action for EnableUser {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        let found = lookup_user(ctx, &p.user).await?;
        let desired = json!({ "accountEnabled": true });
        if let Some(u) = &found
            && u["accountEnabled"] == json!(true)
        {
            return Ok(
                ActionPlan::already_satisfied("the account is already enabled")
                    .pre_state(json!({ "accountEnabled": true }))
                    .desired_state(desired),
            );
        }
        let url = user_url(
            &ctx.endpoints.graph_v1(),
            &user_key(found.as_ref(), &p.user),
        );
        let request = set_properties(url, desired.clone());
        let mut plan = ActionPlan::planned(vec![request]).desired_state(desired);
        if let Some(u) = &found {
            plan = plan.pre_state(json!({ "accountEnabled": u["accountEnabled"] }));
            if u["onPremisesSyncEnabled"] == json!(true) {
                // Active Directory is the source of authority: a cloud-side change lasts only
                // until the next sync if the AD account is still disabled.
                plan = plan.note(
                    "on-premises-synced user: enable the account in Active Directory too, or the next directory sync disables it again",
                );
            }
        }
        Ok(plan)
    }

    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        verify_account_enabled(done, lookup, true).await
    }

    /// `entra.disable_user`'s request: the same PATCH with `accountEnabled: false`.
    fn compensate(&self, done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        restore_account_enabled(done, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    #[tokio::test]
    async fn patches_account_enabled_true_by_object_id() {
        let mut user = user_json(ALEX_ID, ALEX_UPN);
        user["accountEnabled"] = json!(false);
        let env = TestEnv::new(FakeLookup::strict().user(user));
        let plan = env
            .plan(&EnableUser, json!({ "user": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "PATCH");
        assert_eq!(url, format!("{GRAPH}/users/{ALEX_ID}"));
        assert_eq!(body, Some(&json!({ "accountEnabled": true })));
        assert_eq!(plan.pre_state, json!({ "accountEnabled": false }));
    }

    #[tokio::test]
    async fn verify_and_compensate_mirror_disable_user() {
        let mut user = user_json(ALEX_ID, ALEX_UPN);
        user["accountEnabled"] = json!(false);
        let env = TestEnv::new(FakeLookup::strict().user(user));
        let params = json!({ "user": ALEX_UPN });
        let plan = env.plan(&EnableUser, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let read = format!("{GRAPH}/users/{ALEX_ID}?$select=id,accountEnabled");
        let lookup = FakeLookup::strict().found(read.clone(), json!({ "accountEnabled": true }));
        assert_eq!(
            EnableUser.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(json!({ "accountEnabled": true }))
        );
        let lookup = FakeLookup::strict().found(read, json!({ "accountEnabled": false }));
        assert!(matches!(
            EnableUser.verify(&done, &lookup).await.unwrap(),
            Verification::Mismatch(_)
        ));
        let undo = compensation_requests(EnableUser.compensate(&done, &Endpoints::default()));
        assert_eq!(undo.len(), 1);
        assert_eq!(undo[0].method, crate::connectors::Method::Patch);
        assert!(undo[0].retry_safe);
        assert_eq!(undo[0].url, format!("{GRAPH}/users/{ALEX_ID}"));
        assert_eq!(undo[0].body, Some(json!({ "accountEnabled": false })));
    }

    #[tokio::test]
    async fn enabled_account_is_already_satisfied() {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let plan = env
            .plan(&EnableUser, json!({ "user": ALEX_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
        assert!(plan.requests.is_empty());
    }

    #[tokio::test]
    async fn synced_user_gets_a_note() {
        let mut user = user_json(SYNCED_ID, SYNCED_UPN);
        user["accountEnabled"] = json!(false);
        user["onPremisesSyncEnabled"] = json!(true);
        let env = TestEnv::new(FakeLookup::strict().user(user));
        let plan = env
            .plan(&EnableUser, json!({ "user": SYNCED_UPN }))
            .await
            .unwrap();
        assert!(plan.notes.iter().any(|n| n.contains("Active Directory")));
    }

    #[tokio::test]
    async fn without_credentials_the_guest_upn_is_encoded_in_the_url() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&EnableUser, json!({ "user": GUEST_UPN }))
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(
            url,
            format!("{GRAPH}/users/AdeleVance_fabrikam.com%23EXT%23@contoso.onmicrosoft.com")
        );
        assert_eq!(plan.pre_state, serde_json::Value::Null);
    }

    #[tokio::test]
    async fn missing_user_is_refused() {
        let env = TestEnv::new(FakeLookup::strict().not_found(user_get_url(OBRIEN_UPN)));
        let err = env
            .plan(&EnableUser, json!({ "user": OBRIEN_UPN }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(
            env.lookup.calls(),
            vec![format!(
                "{GRAPH}/users/megan.o'brien@contoso.com?$select={}",
                crate::actions::entra::USER_SELECT
            )]
        );
    }
}
