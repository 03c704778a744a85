use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Effect, Permissions, PlanContext,
};
use crate::connectors::{Api, ApiRequest, Method};

use super::{lookup_user, user_key, user_url};

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
            Some(u) => ActionPlan::planned(vec![
                ApiRequest::new(Method::Patch, Api::Graph, url)
                    .with_body(json!({ "accountEnabled": false })),
            ])
            .pre_state(json!({ "accountEnabled": u["accountEnabled"] })),
            None => ActionPlan::planned(vec![
                ApiRequest::new(Method::Patch, Api::Graph, url)
                    .with_body(json!({ "accountEnabled": false })),
            ]),
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
}
