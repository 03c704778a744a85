use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, Verification, encode, get_all_pages, is_guid, read_all_pages, typed_params,
    unknown, unreadable,
};
use crate::connectors::{Api, ApiRequest, Endpoints, Lookup, LookupOutcome, Method};

use super::{lookup_user, object_id, set_properties, user_key, user_url};

/// Makes the user's next sign-in require multi-factor authentication, by one of three
/// mechanisms a tenant may have in place.
pub struct RequireMfa;

/// How MFA is required. Tenants differ: most target a group with a Conditional Access policy,
/// some still use legacy per-user MFA, P2 tenants can raise the user's risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Add the user to the group a Conditional Access policy requiring MFA targets.
    ConditionalAccessGroup,
    /// Set legacy per-user MFA to `enforced` (Graph beta API).
    PerUser,
    /// Confirm the user compromised in Identity Protection (risk becomes high, so risk-based
    /// Conditional Access applies). Needs Entra ID P2; cannot be undone.
    ConfirmCompromised,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The user's object id or user principal name.
    pub user: String,
    /// How MFA is required. Default: `conditional_access_group`.
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    /// The Conditional Access target group's object id (strategy `conditional_access_group`
    /// only). Default: `[actions] mfa_group_id` from configuration.
    #[serde(default)]
    pub group: Option<String>,
}

fn default_strategy() -> Strategy {
    Strategy::ConditionalAccessGroup
}

static INFO: ActionInfo = ActionInfo {
    name: "entra.require_mfa",
    description: "Require MFA at the user's next sign-in: add them to the Conditional Access MFA group (default), enforce per-user MFA, or confirm them compromised in Identity Protection.",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &[
            "GroupMember.ReadWrite.All",
            "User.Read.All",
            "RoleManagement.ReadWrite.Directory (conditional_access_group with a role-assignable group only)",
            "Policy.ReadWrite.AuthenticationMethod (strategy per_user)",
            "IdentityRiskyUser.ReadWrite.All (strategy confirm_compromised; Entra ID P2)",
        ],
        entra_roles: &[],
        azure_rbac: &[],
    },
    compensation: "conditional_access_group: remove the membership (DELETE /groups/{group}/members/{user}/$ref); per_user: PATCH perUserMfaState back to the recorded value; confirm_compromised: none, a confirmed compromise cannot be undone",
    example: "id: mfa\nuses: entra.require_mfa\nneeds: [user]\nwith:\n  user: ${{ steps.user.outputs.id }}\n  strategy: conditional_access_group\n",
};

#[async_trait]
impl Action for RequireMfa {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        if p.group.is_some() && p.strategy != Strategy::ConditionalAccessGroup {
            return Err(ActionError::Params(
                "`group` applies only to strategy `conditional_access_group`".into(),
            ));
        }
        match p.strategy {
            Strategy::ConditionalAccessGroup => plan_group(&p, ctx).await,
            Strategy::PerUser => plan_per_user(&p, ctx).await,
            Strategy::ConfirmCompromised => plan_confirm_compromised(&p, ctx).await,
        }
    }

    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        let p: Params = typed_params(done)?;
        match p.strategy {
            Strategy::ConditionalAccessGroup => verify_group(done, lookup).await,
            Strategy::PerUser => verify_per_user(done, lookup).await,
            Strategy::ConfirmCompromised => verify_confirmed(done, lookup).await,
        }
    }

    fn compensate(&self, done: &Executed<'_>, endpoints: &Endpoints) -> Compensation {
        let strategy = typed_params::<Params>(done).map(|p| p.strategy);
        match strategy {
            Ok(Strategy::ConditionalAccessGroup) => compensate_group(done, endpoints),
            Ok(Strategy::PerUser) => compensate_per_user(done),
            Ok(Strategy::ConfirmCompromised) => Compensation::Irreversible(
                "a confirmed compromise cannot be undone: dismissing the risk does not restore the previous risk state".into(),
            ),
            Err(e) => Compensation::Irreversible(format!("the step's parameters no longer parse: {e}")),
        }
    }
}

/// The group and member object id of the `members/$ref` POST the step sent: the group from
/// the desired state, the member from the `@odata.id` it referenced.
fn group_and_member(done: &Executed<'_>) -> Option<(String, String)> {
    let group = done.desired_state["group"].as_str()?.to_string();
    let reference = done.requests.first()?.body.as_ref()?["@odata.id"].as_str()?;
    let member = reference.rsplit('/').next()?.to_string();
    Some((group, member))
}

/// The user's direct groups (`memberOf`, as the plan read them) must now include the group.
async fn verify_group(
    done: &Executed<'_>,
    lookup: &dyn Lookup,
) -> Result<Verification, ActionError> {
    let (Some((group, member)), Some(sent)) = (group_and_member(done), done.requests.first())
    else {
        return Ok(Verification::Unchecked("no request was sent".into()));
    };
    // `{graph}/v1.0/groups/…`: the Graph base is what precedes `/v1.0/`.
    let Some((graph_base, _)) = sent.url.split_once("/v1.0/") else {
        return Ok(Verification::Unchecked(format!(
            "cannot tell the Graph base from {}",
            sent.url
        )));
    };
    let url = format!("{graph_base}/v1.0/users/{member}/memberOf?$select=id");
    let found = read_all_pages(lookup, Api::Graph, url).await?;
    let LookupOutcome::Found(Value::Array(groups)) = &found else {
        return Ok(unreadable(&found, "the user's group memberships"));
    };
    let member_now = groups.iter().any(|g| {
        g["id"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(&group))
    });
    Ok(if member_now {
        Verification::Verified(json!({ "group": group, "member": true }))
    } else {
        Verification::Mismatch(format!("the user is not a member of group {group}"))
    })
}

/// The add succeeded, so the user was not a member before (Graph refuses duplicates): removing
/// the membership restores the previous state exactly.
fn compensate_group(done: &Executed<'_>, endpoints: &Endpoints) -> Compensation {
    let Some((group, member)) = group_and_member(done) else {
        return Compensation::NotNeeded;
    };
    Compensation::Requests(vec![ApiRequest::new(
        Method::Delete,
        Api::Graph,
        format!(
            "{}/groups/{}/members/{member}/$ref",
            endpoints.graph_v1(),
            encode::segment(&group)
        ),
    )])
}

async fn verify_per_user(
    done: &Executed<'_>,
    lookup: &dyn Lookup,
) -> Result<Verification, ActionError> {
    let Some(sent) = done.requests.first() else {
        return Ok(Verification::Unchecked("no request was sent".into()));
    };
    let found = lookup.get(Api::Graph, &sent.url).await?;
    Ok(match &found {
        LookupOutcome::Found(r) if r["perUserMfaState"] == "enforced" => {
            Verification::Verified(json!({ "perUserMfaState": "enforced" }))
        }
        LookupOutcome::Found(r) => Verification::Mismatch(format!(
            "perUserMfaState is {} after enforcing it",
            r["perUserMfaState"]
        )),
        other => unreadable(other, "the user's authentication requirements"),
    })
}

/// PATCHes the recorded previous state back; without one riposte would be guessing.
fn compensate_per_user(done: &Executed<'_>) -> Compensation {
    let Some(sent) = done.requests.first() else {
        return Compensation::NotNeeded;
    };
    match done.pre_state["perUserMfaState"].as_str() {
        Some(before) => Compensation::Requests(vec![set_properties(
            sent.url.clone(),
            json!({ "perUserMfaState": before }),
        )]),
        None => Compensation::Irreversible(
            "the per-user MFA state before the run was not read, so there is no value to restore"
                .into(),
        ),
    }
}

async fn verify_confirmed(
    done: &Executed<'_>,
    lookup: &dyn Lookup,
) -> Result<Verification, ActionError> {
    let Some(sent) = done.requests.first() else {
        return Ok(Verification::Unchecked("no request was sent".into()));
    };
    let Some(uid) = sent.body.as_ref().and_then(|b| b["userIds"][0].as_str()) else {
        return Ok(Verification::Unchecked("the request named no user".into()));
    };
    let Some(base) = sent.url.strip_suffix("/confirmCompromised") else {
        return Ok(Verification::Unchecked(format!(
            "unexpected request URL {}",
            sent.url
        )));
    };
    let url = format!(
        "{base}/{}?$select=id,riskLevel,riskState",
        encode::segment(uid)
    );
    let found = lookup.get(Api::Graph, &url).await?;
    Ok(match &found {
        LookupOutcome::Found(r) if r["riskState"] == "confirmedCompromised" => {
            Verification::Verified(
                json!({ "riskState": r["riskState"], "riskLevel": r["riskLevel"] }),
            )
        }
        // Identity Protection processes the confirmation asynchronously.
        LookupOutcome::Found(r) => Verification::Unchecked(format!(
            "riskState still reads {}; Identity Protection applies confirmations asynchronously",
            r["riskState"]
        )),
        other => unreadable(other, "the risky user"),
    })
}

/// `POST /groups/{gid}/members/$ref`, unless the user is already a direct member (Graph
/// answers 400 to a duplicate add, so the check is not only politeness).
async fn plan_group(p: &Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
    let group = p
        .group
        .clone()
        .or_else(|| ctx.settings.mfa_group_id.clone())
        .ok_or_else(|| {
            ActionError::Params(
                "strategy `conditional_access_group` needs a group: set `group` in the step or `mfa_group_id` under [actions] in configuration".into(),
            )
        })?;
    if !is_guid(&group) && !unknown::is_placeholder(&group) {
        return Err(ActionError::Params(format!(
            "group `{group}` is not an object id (a GUID)"
        )));
    }
    let graph = ctx.endpoints.graph_v1();
    let found = lookup_user(ctx, &p.user).await?;
    let uid = object_id(found.as_ref(), &p.user);
    let mut notes = Vec::new();

    if !unknown::is_placeholder(&group) {
        let group_url = format!(
            "{graph}/groups/{}?$select=id,displayName,isAssignableToRole",
            encode::segment(&group)
        );
        match ctx.lookup.get(Api::Graph, &group_url).await? {
            LookupOutcome::NotFound => {
                return Err(ActionError::Refused(format!(
                    "group `{group}` does not exist; check `group` or `mfa_group_id` under [actions]"
                )));
            }
            LookupOutcome::Found(g) if g["isAssignableToRole"] == json!(true) => notes.push(
                "the group is role-assignable: adding members also needs RoleManagement.ReadWrite.Directory".to_string(),
            ),
            _ => {}
        }
    }

    let desired = json!({ "group": group, "member": true });
    let mut pre_state = Value::Null;
    if found.is_some() {
        let member_of = format!("{}/memberOf?$select=id", user_url(&graph, &uid));
        if let LookupOutcome::Found(Value::Array(groups)) =
            get_all_pages(ctx, Api::Graph, member_of).await?
        {
            let member = groups.iter().any(|g| {
                g["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(&group))
            });
            if member {
                return Ok(ActionPlan::already_satisfied(
                    "the user is already a member of the MFA group",
                )
                .pre_state(json!({ "group": group, "member": true }))
                .desired_state(desired));
            }
            pre_state = json!({ "group": group, "member": false });
        }
    }

    let request = ApiRequest::new(
        Method::Post,
        Api::Graph,
        format!("{graph}/groups/{}/members/$ref", encode::segment(&group)),
    )
    .with_body(
        json!({ "@odata.id": format!("{graph}/directoryObjects/{}", encode::segment(&uid)) }),
    );
    let mut plan = ActionPlan::planned(vec![request])
        .pre_state(pre_state)
        .desired_state(desired)
        .note("MFA is required only if a Conditional Access policy targets this group; riposte does not check the policy");
    for n in notes {
        plan = plan.note(n);
    }
    Ok(plan)
}

/// Legacy per-user MFA through the beta `authentication/requirements` resource.
async fn plan_per_user(p: &Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
    let found = lookup_user(ctx, &p.user).await?;
    let url = format!(
        "{}/authentication/requirements",
        user_url(
            &ctx.endpoints.graph_beta(),
            &user_key(found.as_ref(), &p.user)
        )
    );
    let desired = json!({ "perUserMfaState": "enforced" });
    let mut pre_state = Value::Null;
    if found.is_some() {
        match ctx.lookup.get(Api::Graph, &url).await? {
            LookupOutcome::Found(current) => {
                let state = current
                    .get("perUserMfaState")
                    .cloned()
                    .unwrap_or(Value::Null);
                if state == "enforced" {
                    return Ok(
                        ActionPlan::already_satisfied("per-user MFA is already enforced")
                            .pre_state(json!({ "perUserMfaState": state }))
                            .desired_state(desired),
                    );
                }
                pre_state = json!({ "perUserMfaState": state });
            }
            LookupOutcome::NotFound => {
                return Err(ActionError::Refused(format!(
                    "no authentication requirements found for user `{}`",
                    p.user
                )));
            }
            LookupOutcome::Unavailable => {}
        }
    }
    Ok(ActionPlan::planned(vec![
        set_properties(url, desired.clone()),
    ])
    .pre_state(pre_state)
    .desired_state(desired)
    .note("per-user MFA is legacy and set through Graph beta; Microsoft recommends Conditional Access"))
}

/// Identity Protection's confirmCompromised: the strongest lever, and a one-way one.
async fn plan_confirm_compromised(
    p: &Params,
    ctx: &PlanContext<'_>,
) -> Result<ActionPlan, ActionError> {
    let graph = ctx.endpoints.graph_v1();
    let found = lookup_user(ctx, &p.user).await?;
    let uid = object_id(found.as_ref(), &p.user);
    let desired = json!({ "riskState": "confirmedCompromised", "riskLevel": "high" });
    let mut pre_state = Value::Null;
    if found.is_some() {
        let risky = format!(
            "{graph}/identityProtection/riskyUsers/{}?$select=id,riskLevel,riskState",
            encode::segment(&uid)
        );
        match ctx.lookup.get(Api::Graph, &risky).await? {
            LookupOutcome::Found(r) if r["riskState"] == "confirmedCompromised" => {
                return Ok(ActionPlan::already_satisfied(
                    "the user is already confirmed compromised",
                )
                .pre_state(json!({ "riskState": r["riskState"], "riskLevel": r["riskLevel"] }))
                .desired_state(desired));
            }
            LookupOutcome::Found(r) => {
                pre_state = json!({ "riskState": r["riskState"], "riskLevel": r["riskLevel"] });
            }
            // Never flagged: Identity Protection has no record of the user yet.
            LookupOutcome::NotFound => {
                pre_state = json!({ "riskState": "none", "riskLevel": "none" });
            }
            LookupOutcome::Unavailable => {}
        }
    }
    // Confirming twice leaves the same state, so a retry after a transient failure is safe.
    let request = ApiRequest::new(
        Method::Post,
        Api::Graph,
        format!("{graph}/identityProtection/riskyUsers/confirmCompromised"),
    )
    .with_body(json!({ "userIds": [uid] }))
    .retry_safe();
    Ok(ActionPlan::planned(vec![request])
        .pre_state(pre_state)
        .desired_state(desired)
        .note("no compensation is possible: a confirmed compromise cannot be undone (only dismissed, which does not restore the previous risk)")
        .note("needs Microsoft Entra ID P2 (Identity Protection); the API allows about one request per second per tenant"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;
    use crate::connectors::ApiError;

    fn group_get() -> String {
        format!("{GRAPH}/groups/{MFA_GROUP}?$select=id,displayName,isAssignableToRole")
    }

    fn member_of(uid: &str) -> String {
        format!("{GRAPH}/users/{uid}/memberOf?$select=id")
    }

    fn group_json(assignable: bool) -> Value {
        json!({ "id": MFA_GROUP, "displayName": "CA-Require-MFA", "isAssignableToRole": assignable })
    }

    #[tokio::test]
    async fn adds_the_user_to_the_settings_group() {
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(group_get(), group_json(false))
                .found(
                    member_of(ALEX_ID),
                    json!({ "value": [{ "id": "00000000-0000-0000-0000-000000000999" }] }),
                ),
        );
        let plan = env
            .plan(&RequireMfa, json!({ "user": ALEX_UPN }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "POST");
        assert_eq!(url, format!("{GRAPH}/groups/{MFA_GROUP}/members/$ref"));
        assert_eq!(
            body,
            Some(&json!({ "@odata.id": format!("{GRAPH}/directoryObjects/{ALEX_ID}") }))
        );
        assert_eq!(
            plan.pre_state,
            json!({ "group": MFA_GROUP, "member": false })
        );
    }

    #[tokio::test]
    async fn member_on_a_later_page_is_already_satisfied() {
        let next = format!("{GRAPH}/users/{ALEX_ID}/memberOf?$select=id&$skiptoken=abc");
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(group_get(), group_json(false))
                .found(
                    member_of(ALEX_ID),
                    json!({ "value": [{ "id": "x" }], "@odata.nextLink": next }),
                )
                .found(
                    next.clone(),
                    json!({ "value": [{ "id": MFA_GROUP.to_uppercase() }] }),
                ),
        );
        let plan = env
            .plan(&RequireMfa, json!({ "user": ALEX_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
        assert!(plan.requests.is_empty());
        assert!(env.lookup.calls().contains(&next));
    }

    #[tokio::test]
    async fn next_link_to_another_host_is_refused() {
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(group_get(), group_json(false))
                .found(
                    member_of(ALEX_ID),
                    json!({ "value": [], "@odata.nextLink": "https://evil.example/steal" }),
                ),
        );
        let err = env
            .plan(&RequireMfa, json!({ "user": ALEX_ID }))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ActionError::Api(ApiError::ForeignNextLink { .. })),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("https://evil.example/steal"),
            "{err}"
        );
        assert!(!env.lookup.calls().iter().any(|c| c.contains("evil")));
    }

    #[tokio::test]
    async fn explicit_group_and_role_assignable_note() {
        let other = "11111111-2222-3333-4444-555555555555";
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(GUEST_ID, GUEST_UPN))
                .found(
                    format!("{GRAPH}/groups/{other}?$select=id,displayName,isAssignableToRole"),
                    json!({ "id": other, "isAssignableToRole": true }),
                )
                .found(member_of(GUEST_ID), json!({ "value": [] })),
        );
        let plan = env
            .plan(&RequireMfa, json!({ "user": GUEST_UPN, "group": other }))
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(url, format!("{GRAPH}/groups/{other}/members/$ref"));
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("RoleManagement.ReadWrite.Directory"))
        );
        // The guest was looked up by its encoded UPN.
        assert!(env.lookup.calls()[0].contains("%23EXT%23"));
    }

    #[tokio::test]
    async fn no_group_anywhere_is_a_parameter_error() {
        let mut env = TestEnv::offline();
        env.settings.mfa_group_id = None;
        let err = env
            .plan(&RequireMfa, json!({ "user": ALEX_ID }))
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)));
        assert!(err.to_string().contains("mfa_group_id"), "{err}");
    }

    #[tokio::test]
    async fn missing_group_is_refused() {
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .not_found(group_get()),
        );
        let err = env
            .plan(&RequireMfa, json!({ "user": ALEX_ID }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[tokio::test]
    async fn group_with_another_strategy_is_rejected() {
        let env = TestEnv::offline();
        let err = env
            .plan(
                &RequireMfa,
                json!({ "user": ALEX_ID, "strategy": "per_user", "group": MFA_GROUP }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)));
    }

    #[tokio::test]
    async fn offline_upn_gets_an_object_id_placeholder() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&RequireMfa, json!({ "user": OBRIEN_UPN }))
            .await
            .unwrap();
        let (_, _, body) = only_request(&plan);
        assert_eq!(
            body,
            Some(
                &json!({ "@odata.id": format!("{GRAPH}/directoryObjects/⟨object id of {OBRIEN_UPN}⟩") })
            )
        );
        assert_eq!(plan.pre_state, Value::Null);
    }

    #[tokio::test]
    async fn per_user_patches_beta_and_records_the_previous_state() {
        let req = format!("{GRAPH_BETA}/users/{ALEX_ID}/authentication/requirements");
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(req.clone(), json!({ "perUserMfaState": "disabled" })),
        );
        let plan = env
            .plan(
                &RequireMfa,
                json!({ "user": ALEX_UPN, "strategy": "per_user" }),
            )
            .await
            .unwrap();
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "PATCH");
        assert_eq!(url, req);
        assert_eq!(body, Some(&json!({ "perUserMfaState": "enforced" })));
        assert_eq!(plan.pre_state, json!({ "perUserMfaState": "disabled" }));
    }

    #[tokio::test]
    async fn per_user_already_enforced_is_satisfied() {
        let req = format!("{GRAPH_BETA}/users/{ALEX_ID}/authentication/requirements");
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(req, json!({ "perUserMfaState": "enforced" })),
        );
        let plan = env
            .plan(
                &RequireMfa,
                json!({ "user": ALEX_ID, "strategy": "per_user" }),
            )
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
    }

    #[tokio::test]
    async fn per_user_offline_keeps_the_encoded_guest_upn() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &RequireMfa,
                json!({ "user": GUEST_UPN, "strategy": "per_user" }),
            )
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(
            url,
            format!(
                "{GRAPH_BETA}/users/AdeleVance_fabrikam.com%23EXT%23@contoso.onmicrosoft.com/authentication/requirements"
            )
        );
    }

    #[tokio::test]
    async fn confirm_compromised_posts_the_object_id() {
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(OBRIEN_ID, OBRIEN_UPN))
                .not_found(format!(
                    "{GRAPH}/identityProtection/riskyUsers/{OBRIEN_ID}?$select=id,riskLevel,riskState"
                )),
        );
        let plan = env
            .plan(
                &RequireMfa,
                json!({ "user": OBRIEN_UPN, "strategy": "confirm_compromised" }),
            )
            .await
            .unwrap();
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "POST");
        assert_eq!(
            url,
            format!("{GRAPH}/identityProtection/riskyUsers/confirmCompromised")
        );
        assert_eq!(body, Some(&json!({ "userIds": [OBRIEN_ID] })));
        assert!(plan.notes.iter().any(|n| n.contains("no compensation")));
        assert!(plan.notes.iter().any(|n| n.contains("P2")));
    }

    #[tokio::test]
    async fn confirm_compromised_twice_is_satisfied() {
        let env = TestEnv::new(
            FakeLookup::strict().user(user_json(ALEX_ID, ALEX_UPN)).found(
                format!("{GRAPH}/identityProtection/riskyUsers/{ALEX_ID}?$select=id,riskLevel,riskState"),
                json!({ "id": ALEX_ID, "riskLevel": "high", "riskState": "confirmedCompromised" }),
            ),
        );
        let plan = env
            .plan(
                &RequireMfa,
                json!({ "user": ALEX_ID, "strategy": "confirm_compromised" }),
            )
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
    }

    async fn planned_group() -> (Value, ActionPlan) {
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(group_get(), group_json(false))
                .found(member_of(ALEX_ID), json!({ "value": [] })),
        );
        let params = json!({ "user": ALEX_UPN, "strategy": "conditional_access_group" });
        let plan = env.plan(&RequireMfa, params.clone()).await.unwrap();
        (params, plan)
    }

    #[tokio::test]
    async fn group_verify_reads_member_of_and_compensation_removes_the_membership() {
        let (params, plan) = planned_group().await;
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict().found(
            member_of(ALEX_ID),
            json!({ "value": [{ "id": "x" }, { "id": MFA_GROUP }] }),
        );
        assert_eq!(
            RequireMfa.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(json!({ "group": MFA_GROUP, "member": true }))
        );
        let lookup = FakeLookup::strict().found(member_of(ALEX_ID), json!({ "value": [] }));
        assert!(matches!(
            RequireMfa.verify(&done, &lookup).await.unwrap(),
            Verification::Mismatch(_)
        ));
        let undo = compensation_requests(RequireMfa.compensate(&done, &Endpoints::default()));
        assert_eq!(
            undo,
            vec![ApiRequest::new(
                Method::Delete,
                Api::Graph,
                format!("{GRAPH}/groups/{MFA_GROUP}/members/{ALEX_ID}/$ref")
            )]
        );
    }

    #[tokio::test]
    async fn per_user_verify_and_compensation_restore_the_recorded_state() {
        let req = format!("{GRAPH_BETA}/users/{ALEX_ID}/authentication/requirements");
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .found(req.clone(), json!({ "perUserMfaState": "enabled" })),
        );
        let params = json!({ "user": ALEX_ID, "strategy": "per_user" });
        let plan = env.plan(&RequireMfa, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let lookup =
            FakeLookup::strict().found(req.clone(), json!({ "perUserMfaState": "enforced" }));
        assert_eq!(
            RequireMfa.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(json!({ "perUserMfaState": "enforced" }))
        );
        let lookup =
            FakeLookup::strict().found(req.clone(), json!({ "perUserMfaState": "enabled" }));
        assert!(matches!(
            RequireMfa.verify(&done, &lookup).await.unwrap(),
            Verification::Mismatch(_)
        ));
        let undo = compensation_requests(RequireMfa.compensate(&done, &Endpoints::default()));
        assert_eq!(
            undo,
            vec![set_properties(req, json!({ "perUserMfaState": "enabled" }))]
        );
    }

    #[tokio::test]
    async fn confirm_compromised_is_verified_and_irreversible() {
        let risky = format!(
            "{GRAPH}/identityProtection/riskyUsers/{ALEX_ID}?$select=id,riskLevel,riskState"
        );
        let env = TestEnv::new(
            FakeLookup::strict()
                .user(user_json(ALEX_ID, ALEX_UPN))
                .not_found(risky.clone()),
        );
        let params = json!({ "user": ALEX_ID, "strategy": "confirm_compromised" });
        let plan = env.plan(&RequireMfa, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict().found(
            risky,
            json!({ "riskState": "confirmedCompromised", "riskLevel": "high" }),
        );
        assert!(matches!(
            RequireMfa.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(_)
        ));
        assert!(matches!(
            RequireMfa.compensate(&done, &Endpoints::default()),
            Compensation::Irreversible(why) if why.contains("cannot be undone")
        ));
    }

    #[tokio::test]
    async fn unknown_strategy_is_rejected() {
        let env = TestEnv::offline();
        let err = env
            .plan(&RequireMfa, json!({ "user": ALEX_ID, "strategy": "sms" }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }
}
