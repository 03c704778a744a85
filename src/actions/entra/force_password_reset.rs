use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, Verification,
};
use crate::connectors::{Endpoints, Lookup};

use super::{is_synced, lookup_user, set_properties, user_key, user_url};

/// Makes the user choose a new password at their next sign-in (`passwordProfile`
/// flags). Riposte never sets or sees a password: the user (after MFA, if asked) does.
pub struct ForcePasswordReset;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The user's object id or user principal name.
    pub user: String,
    /// Also require multi-factor authentication before the change
    /// (`forceChangePasswordNextSignInWithMfa`), so a thief holding only the password cannot
    /// complete it. Default: false.
    #[serde(default = "default_with_mfa")]
    pub with_mfa: bool,
}

fn default_with_mfa() -> bool {
    false
}

/// What an on-premises-synced user needs instead: Graph refuses the PATCH with 400.
const SYNCED_INSTRUCTION: &str = "on-premises-synced user: Microsoft Graph refuses password profile changes for directory-synced users; reset the password in on-premises Active Directory (or use password writeback) and set \"User must change password at next logon\" there";

static INFO: ActionInfo = ActionInfo {
    name: "entra.force_password_reset",
    description: "Require the user to change their password at next sign-in (optionally after MFA); no password is set or shown. Not for federated or on-premises-synced users.",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &["User-PasswordProfile.ReadWrite.All", "User.Read.All"],
        entra_roles: &[
            "User Administrator (app-only password profile updates)",
            "Privileged Authentication Administrator (only for targets holding admin roles)",
        ],
        azure_rbac: &[],
    },
    compensation: "PATCH passwordProfile.forceChangePasswordNextSignIn = false (and the MFA flag, if set); this only helps before the user signs in: once they have chosen a new password the old one is gone",
    example: "id: reset\nuses: entra.force_password_reset\nneeds: [user]\nif: not steps.user.outputs.on_premises_sync_enabled\nwith:\n  user: ${{ steps.user.outputs.id }}\n  with_mfa: true\n",
};

#[async_trait]
impl Action for ForcePasswordReset {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        let found = lookup_user(ctx, &p.user).await?;
        if is_synced(found.as_ref()) {
            return Ok(ActionPlan::blocked(SYNCED_INSTRUCTION)
                .pre_state(json!({ "onPremisesSyncEnabled": true })));
        }
        let mut profile = serde_json::Map::new();
        profile.insert("forceChangePasswordNextSignIn".into(), Value::Bool(true));
        if p.with_mfa {
            profile.insert(
                "forceChangePasswordNextSignInWithMfa".into(),
                Value::Bool(true),
            );
        }
        let body = json!({ "passwordProfile": profile });
        let url = user_url(
            &ctx.endpoints.graph_v1(),
            &user_key(found.as_ref(), &p.user),
        );
        let plan = ActionPlan::planned(vec![set_properties(url, body.clone())]).desired_state(body);
        Ok(match &found {
            Some(_) => plan.pre_state(json!({ "onPremisesSyncEnabled": false })),
            None => plan.note(
                "whether the user is synced from Active Directory is known at run time; Graph refuses this change for synced users",
            ),
        })
    }

    /// Graph never returns `passwordProfile` on a read, so there is nothing to compare.
    async fn verify(
        &self,
        _done: &Executed<'_>,
        _lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        Ok(Verification::Unchecked(
            "passwordProfile is not readable through Graph; the 204 answer is the evidence".into(),
        ))
    }

    /// Clears the flags the step set, on the same user URL. It only helps while the user has
    /// not signed in since: a password already changed stays changed.
    fn compensate(&self, done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        let Some(sent) = done.requests.first() else {
            return Compensation::NotNeeded;
        };
        let set = sent
            .body
            .as_ref()
            .and_then(|b| b.get("passwordProfile"))
            .and_then(Value::as_object);
        let mut profile = serde_json::Map::new();
        for flag in set.into_iter().flat_map(|p| p.keys()) {
            profile.insert(flag.clone(), Value::Bool(false));
        }
        if profile.is_empty() {
            return Compensation::NotNeeded;
        }
        Compensation::Requests(vec![set_properties(
            sent.url.clone(),
            json!({ "passwordProfile": profile }),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    #[tokio::test]
    async fn patches_the_flag_and_never_a_password() {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let plan = env
            .plan(&ForcePasswordReset, json!({ "user": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "PATCH");
        assert_eq!(url, format!("{GRAPH}/users/{ALEX_ID}"));
        assert_eq!(
            body,
            Some(&json!({ "passwordProfile": { "forceChangePasswordNextSignIn": true } }))
        );
        let whole = serde_json::to_string(&plan).unwrap();
        assert!(!whole.contains("\"password\""), "{whole}");
        assert!(plan.blocked.is_none());
    }

    #[tokio::test]
    async fn with_mfa_adds_the_mfa_flag() {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let plan = env
            .plan(
                &ForcePasswordReset,
                json!({ "user": ALEX_ID, "with_mfa": true }),
            )
            .await
            .unwrap();
        let (_, _, body) = only_request(&plan);
        assert_eq!(
            body,
            Some(&json!({ "passwordProfile": {
                "forceChangePasswordNextSignIn": true,
                "forceChangePasswordNextSignInWithMfa": true
            } }))
        );
    }

    #[tokio::test]
    async fn synced_user_is_blocked_with_no_request() {
        let mut user = user_json(SYNCED_ID, SYNCED_UPN);
        user["onPremisesSyncEnabled"] = json!(true);
        let env = TestEnv::new(FakeLookup::strict().user(user));
        let plan = env
            .plan(&ForcePasswordReset, json!({ "user": SYNCED_UPN }))
            .await
            .unwrap();
        assert!(plan.requests.is_empty());
        let blocked = plan.blocked.as_deref().unwrap();
        assert!(blocked.contains(
            "reset the password in on-premises Active Directory (or use password writeback)"
        ));
    }

    #[tokio::test]
    async fn without_credentials_plans_the_patch_with_a_caveat() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&ForcePasswordReset, json!({ "user": OBRIEN_UPN }))
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(url, format!("{GRAPH}/users/megan.o'brien@contoso.com"));
        assert!(plan.notes.iter().any(|n| n.contains("synced")));
    }

    #[tokio::test]
    async fn verify_is_unchecked_and_compensation_clears_both_flags() {
        let env = TestEnv::new(FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)));
        let params = json!({ "user": ALEX_ID, "with_mfa": true });
        let plan = env.plan(&ForcePasswordReset, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict();
        assert!(matches!(
            ForcePasswordReset.verify(&done, &lookup).await.unwrap(),
            Verification::Unchecked(why) if why.contains("not readable")
        ));
        assert!(lookup.calls().is_empty());
        let undo =
            compensation_requests(ForcePasswordReset.compensate(&done, &Endpoints::default()));
        assert_eq!(
            undo,
            vec![set_properties(
                format!("{GRAPH}/users/{ALEX_ID}"),
                json!({ "passwordProfile": {
                        "forceChangePasswordNextSignIn": false,
                        "forceChangePasswordNextSignInWithMfa": false,
                    } })
            )]
        );
    }

    #[test]
    fn with_mfa_defaults_to_false() {
        let p: Params = serde_json::from_value(json!({ "user": ALEX_ID })).unwrap();
        assert!(!p.with_mfa);
    }
}
