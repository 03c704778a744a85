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

/// Blocks sign-in: `accountEnabled = false`. Undone by `entra.enable_user`.
pub struct DisableUser;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The user's object id or user principal name.
    pub user: String,
}

static INFO: ActionInfo = ActionInfo {
    name: "entra.disable_user",
    description: "Block the user from signing in (accountEnabled = false).",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &["User.EnableDisableAccount.All", "User.Read.All"],
        entra_roles: &[
            "Privileged Authentication Administrator (only for targets holding admin roles)",
        ],
        azure_rbac: &[],
    },
    compensation: "entra.enable_user",
    example: "id: suspend\nuses: entra.disable_user\nneeds: [user]\nwith:\n  user: ${{ steps.user.outputs.id }}\n",
};

#[async_trait]
impl Action for DisableUser {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        let found = lookup_user(ctx, &p.user).await?;
        let url = user_url(
            &ctx.endpoints.graph_v1(),
            &user_key(found.as_ref(), &p.user),
        );
        let desired = json!({ "accountEnabled": false });
        let mut plan = match &found {
            Some(u) if u["accountEnabled"] == json!(false) => {
                return Ok(
                    ActionPlan::already_satisfied("the account is already disabled")
                        .pre_state(json!({ "accountEnabled": false }))
                        .desired_state(desired),
                );
            }
            Some(u) => ActionPlan::planned(vec![set_properties(
                url,
                json!({ "accountEnabled": false }),
            )])
            .pre_state(json!({ "accountEnabled": u["accountEnabled"] })),
            None => ActionPlan::planned(vec![set_properties(
                url,
                json!({ "accountEnabled": false }),
            )]),
        };
        if found
            .as_ref()
            .is_some_and(|u| u["onPremisesSyncEnabled"] == json!(true))
        {
            plan = plan.note(
                "on-premises-synced user: the next directory sync can re-enable the account; disable it in Active Directory too",
            );
        }
        Ok(plan.desired_state(desired))
    }

    /// Graph applies the PATCH before answering 204, so the read-back is immediate.
    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        verify_account_enabled(done, lookup, false).await
    }

    /// `entra.enable_user`'s request: the same PATCH with `accountEnabled: true`.
    fn compensate(&self, done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        restore_account_enabled(done, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::*;
    use serde_json::Value;

    fn read_back() -> String {
        format!("{GRAPH}/users/{ALEX_ID}?$select=id,accountEnabled")
    }

    async fn planned() -> (Value, ActionPlan) {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let params = json!({ "user": ALEX_UPN });
        let plan = env.plan(&DisableUser, params.clone()).await.unwrap();
        (params, plan)
    }

    #[tokio::test]
    async fn verify_reads_account_enabled_back() {
        let (params, plan) = planned().await;
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict().found(read_back(), json!({ "accountEnabled": false }));
        assert_eq!(
            DisableUser.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(json!({ "accountEnabled": false }))
        );
        assert_eq!(lookup.calls(), vec![read_back()]);
        let still = FakeLookup::strict().found(read_back(), json!({ "accountEnabled": true }));
        assert!(matches!(
            DisableUser.verify(&done, &still).await.unwrap(),
            Verification::Mismatch(_)
        ));
        let gone = FakeLookup::strict().not_found(read_back());
        assert!(matches!(
            DisableUser.verify(&done, &gone).await.unwrap(),
            Verification::Mismatch(_)
        ));
        let offline = FakeLookup::offline();
        assert!(matches!(
            DisableUser.verify(&done, &offline).await.unwrap(),
            Verification::Unchecked(_)
        ));
    }

    #[tokio::test]
    async fn compensation_enables_the_account_again() {
        let (params, plan) = planned().await;
        let done = executed(&params, &plan, &[]);
        let undo = compensation_requests(DisableUser.compensate(&done, &Endpoints::default()));
        assert_eq!(
            undo,
            vec![set_properties(
                format!("{GRAPH}/users/{ALEX_ID}"),
                json!({ "accountEnabled": true })
            )]
        );
    }

    #[tokio::test]
    async fn without_a_recorded_pre_state_compensation_refuses_to_guess() {
        let env = TestEnv::offline();
        let params = json!({ "user": ALEX_ID });
        let plan = env.plan(&DisableUser, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        assert!(matches!(
            DisableUser.compensate(&done, &Endpoints::default()),
            Compensation::Irreversible(why) if why.contains("not read")
        ));
    }
}
