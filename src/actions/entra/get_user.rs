use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Effect, Permissions, PlanContext, unknown,
};
use crate::connectors::{Api, ApiRequest, LookupOutcome};

use super::{USER_SELECT, directory_roles_request, lookup_user, user_url};

/// The role properties riposte's policies read.
const ROLE_SELECT: &str = "id,displayName,roleTemplateId";

/// Looks up a user and the directory roles they hold, so later steps and policies can
/// decide on facts (enabled? synced? guest? privileged?).
pub struct GetUser;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The user's object id or user principal name.
    pub user: String,
}

static INFO: ActionInfo = ActionInfo {
    name: "entra.get_user",
    description: "Look up a user (id, UPN, enabled, synced, type) and their active directory roles.",
    effect: Effect::Read,
    permissions: Permissions {
        graph: &["User.Read.All", "RoleManagement.Read.Directory"],
        entra_roles: &[],
        azure_rbac: &[],
    },
    compensation: "none needed: reads only",
    example: "id: user\nuses: entra.get_user\nwith:\n  user: ${{ alert.principal.upn }}\n",
};

#[async_trait]
impl Action for GetUser {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        let base = ctx.endpoints.graph_v1();
        let user_get = ApiRequest::get(
            Api::Graph,
            format!("{}?$select={USER_SELECT}", user_url(&base, &p.user)),
        );
        // The roles are read by the key the step was given, beside the user itself: the two
        // reads need nothing from each other, and both are on the way to containment. A key
        // Graph takes only in the `users('…')` form is read by the id the user read finds.
        let beside = !p.user.starts_with('$');
        let by_key = directory_roles_request(&user_url(&base, &p.user), ROLE_SELECT);
        let (found, roles_by_key) = if beside {
            let (found, roles) = tokio::join!(lookup_user(ctx, &p.user), ctx.lookup.read(&by_key));
            (found, Some(roles))
        } else {
            (lookup_user(ctx, &p.user).await, None)
        };
        let Some(user) = found? else {
            return Ok(ActionPlan::planned(vec![user_get])
                .outputs(Value::Null)
                .reason("known at run time: no credentials to look the user up"));
        };
        let id = user["id"].as_str().unwrap_or(&p.user).to_string();
        let (roles_get, roles) = match roles_by_key {
            Some(roles) => (by_key, roles?),
            None => {
                let by_id = directory_roles_request(&user_url(&base, &id), ROLE_SELECT);
                let roles = ctx.lookup.read(&by_id).await?;
                (by_id, roles)
            }
        };
        let roles = match roles {
            LookupOutcome::Found(v) => v["value"].clone(),
            // Roles decide what the guardrails allow: roles that cannot be read are not "no
            // roles", they are a target riposte cannot see.
            LookupOutcome::NotFound | LookupOutcome::Unavailable => {
                return Err(ActionError::Refused(format!(
                    "cannot read the directory roles of `{}`; the guardrails need them",
                    p.user
                )));
            }
        };
        let outputs = json!({
            "id": id,
            "upn": user["userPrincipalName"],
            "display_name": user["displayName"],
            "account_enabled": user["accountEnabled"],
            "on_premises_sync_enabled": user["onPremisesSyncEnabled"].as_bool().unwrap_or(false),
            "user_type": user["userType"],
            "sign_in_sessions_valid_from": user["signInSessionsValidFromDateTime"],
            "roles": roles.as_array().map(|rs| rs.iter().map(|r| json!({
                "id": r["id"], "display_name": r["displayName"], "role_template_id": r["roleTemplateId"],
            })).collect::<Vec<_>>()).unwrap_or_default(),
        });
        debug_assert!(!unknown::contains_unknown(&outputs));
        Ok(ActionPlan::planned(vec![user_get, roles_get])
            .pre_state(outputs.clone())
            .outputs(outputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::*;

    /// By the key the step was given (here the UPN), so it goes out beside the user read.
    fn roles_url() -> String {
        format!(
            "{}/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId&$count=true",
            user_url(GRAPH, ALEX_UPN)
        )
    }

    #[tokio::test]
    async fn role_lookup_is_an_advanced_query() {
        let lookup = FakeLookup::strict()
            .user(user_json(ALEX_ID, ALEX_UPN))
            .found(
                roles_url(),
                json!({"value": [{"id": "r1", "displayName": "User Administrator",
                    "roleTemplateId": "fe930be7-5e62-47db-91af-98c3a49a38b1"}]}),
            );
        let env = TestEnv::new(lookup);
        let plan = env
            .plan(&GetUser, json!({ "user": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(
            plan.outputs["roles"][0]["display_name"],
            "User Administrator"
        );
        // Graph refuses the OData cast without both `$count=true` and the header: at plan
        // time (the lookup) and at run time (the planned request).
        let sent = env.lookup.requests();
        let planned = &plan.requests[1];
        for req in [&sent[1], planned] {
            assert_eq!(req.url, roles_url());
            assert_eq!(
                req.headers.get("ConsistencyLevel").map(String::as_str),
                Some("eventual"),
                "{req:?}"
            );
        }
    }

    /// Roles that cannot be read are not "no roles": a Global Administrator whose roles the
    /// lookup could not see must not look like an ordinary user to the guardrails.
    #[tokio::test]
    async fn unreadable_roles_make_the_user_unreadable() {
        let lookup = FakeLookup::strict()
            .user(user_json(ALEX_ID, ALEX_UPN))
            .not_found(roles_url());
        let env = TestEnv::new(lookup);
        let err = env
            .plan(&GetUser, json!({ "user": ALEX_UPN }))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot read the directory roles"),
            "{err}"
        );
    }
}
