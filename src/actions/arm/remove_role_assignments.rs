use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, Verification, encode, get_all_pages, is_guid, read_all_pages, typed_params,
    unknown, unreadable,
};
use crate::connectors::{Api, ApiRequest, Endpoints, Lookup, LookupOutcome, Method};

use super::{ROLE_ASSIGNMENTS_API_VERSION, parse_resource, resource_url};

/// Takes away a principal's Azure RBAC access to a resource: every role assignment that
/// applies there, each deleted at its own scope.
pub struct RemoveRoleAssignments;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The scope: an ARM id of a resource, resource group or subscription.
    pub resource: String,
    /// The principal's object id (user, group or service principal).
    pub principal: String,
    /// Also remove assignments made above the scope (resource group, subscription, management
    /// group) that the resource inherits. Without them the principal keeps its access.
    /// Default: true.
    #[serde(default = "default_include_inherited")]
    pub include_inherited: bool,
}

fn default_include_inherited() -> bool {
    true
}

static INFO: ActionInfo = ActionInfo {
    name: "arm.remove_role_assignments",
    description: "Delete the principal's Azure role assignments at, below and (by default) above the scope, recording each so it can be re-created.",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &[
            "Microsoft.Authorization/roleAssignments/read",
            "Microsoft.Authorization/roleAssignments/delete",
        ],
    },
    compensation: "re-create each recorded assignment: PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01 with its roleDefinitionId, principalId, principalType and condition",
    example: "id: rbac\nuses: arm.remove_role_assignments\nwith:\n  resource: ${{ alert.resources[0].id }}\n  principal: ${{ alert.principal.object_id }}\n",
};

/// Where an assignment sits relative to the scope the step names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    At,
    Below,
    Above,
}

/// ARM ids compare case-insensitively; `/` alone is the tenant root. `None`: the assignment
/// is on an unrelated scope, which the listing should never return.
fn placement(assignment_scope: &str, scope: &str) -> Option<Placement> {
    let a = assignment_scope.trim_end_matches('/').to_ascii_lowercase();
    let s = scope.trim_end_matches('/').to_ascii_lowercase();
    if a == s {
        Some(Placement::At)
    } else if a.starts_with(&format!("{s}/")) {
        Some(Placement::Below)
    } else if s.starts_with(&format!("{a}/")) {
        Some(Placement::Above)
    } else {
        None
    }
}

/// `{arm}{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=…&$filter=…`,
/// the filter encoded exactly as sent.
pub fn list_url(arm: &str, scope: &str, principal: &str) -> String {
    // A placeholder principal stays readable inside the literal; anything else in it is
    // encoded, so no value can close the literal or add a parameter.
    let filter = encode::query_value(&format!(
        "principalId eq {}",
        encode::odata_string(principal)
    ));
    format!(
        "{arm}{}/providers/Microsoft.Authorization/roleAssignments?api-version={ROLE_ASSIGNMENTS_API_VERSION}&$filter={filter}",
        encode::arm_path(scope)
    )
}

#[async_trait]
impl Action for RemoveRoleAssignments {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        if !is_guid(&p.principal) && !unknown::is_placeholder(&p.principal) {
            return Err(ActionError::Params(format!(
                "principal `{}` is not an object id (a GUID); use entra.get_user's `id` output for a UPN",
                p.principal
            )));
        }
        let scope_known = !unknown::is_placeholder(&p.resource);
        if scope_known {
            parse_resource(&p.resource)?;
        }
        let arm = &ctx.endpoints.arm;
        let listing = if scope_known && !unknown::is_placeholder(&p.principal) {
            get_all_pages(ctx, Api::Arm, list_url(arm, &p.resource, &p.principal)).await?
        } else {
            LookupOutcome::Unavailable
        };
        let assignments = match listing {
            LookupOutcome::Found(Value::Array(items)) => items,
            LookupOutcome::Found(_) => Vec::new(),
            LookupOutcome::NotFound => {
                return Err(ActionError::Refused(format!(
                    "scope `{}` does not exist",
                    p.resource
                )));
            }
            LookupOutcome::Unavailable => return Ok(unknown_plan(ctx, &p)),
        };

        let mut requests = Vec::new();
        let mut recorded = Vec::new();
        let mut kept_inherited = 0;
        let mut notes = Vec::new();
        for a in &assignments {
            let props = &a["properties"];
            let (Some(id), Some(scope)) = (a["id"].as_str(), props["scope"].as_str()) else {
                notes.push(
                    "an assignment without an id or scope was returned and skipped".to_string(),
                );
                continue;
            };
            // The filter already selects the principal; this guards against a listing that
            // ignored it.
            if !props["principalId"]
                .as_str()
                .is_some_and(|pid| pid.eq_ignore_ascii_case(&p.principal))
            {
                continue;
            }
            if !id
                .to_ascii_lowercase()
                .contains("/providers/microsoft.authorization/roleassignments/")
            {
                notes.push(format!("`{id}` is not a role assignment id; skipped"));
                continue;
            }
            let Some(place) = placement(scope, &p.resource) else {
                notes.push(format!(
                    "`{id}` is on an unrelated scope `{scope}`; skipped"
                ));
                continue;
            };
            if place == Placement::Above && !p.include_inherited {
                kept_inherited += 1;
                continue;
            }
            recorded.push(json!({
                "id": id,
                "name": a["name"],
                "scope": scope,
                "placement": match place { Placement::At => "at", Placement::Below => "below", Placement::Above => "above" },
                "roleDefinitionId": props["roleDefinitionId"],
                "principalId": props["principalId"],
                "principalType": props["principalType"],
                "condition": props["condition"],
                "conditionVersion": props["conditionVersion"],
                "description": props["description"],
            }));
            requests.push(ApiRequest::new(
                Method::Delete,
                Api::Arm,
                resource_url(arm, id, ROLE_ASSIGNMENTS_API_VERSION),
            ));
        }
        if kept_inherited > 0 {
            notes.push(format!(
                "{kept_inherited} assignment(s) above the scope are kept (include_inherited is false): the principal keeps that inherited access"
            ));
        }
        notes.push(
            "access the principal has through groups it belongs to is not listed here and is not removed".to_string(),
        );
        let pre_state = json!({ "assignments": recorded });
        let desired_state = json!({ "assignments": [] });
        let outputs = json!({
            "removed": recorded.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()
        });
        let mut plan = if requests.is_empty() {
            ActionPlan::already_satisfied(
                "the principal holds no role assignments that apply to the scope",
            )
        } else {
            ActionPlan::planned(requests)
        };
        for n in notes {
            plan = plan.note(n);
        }
        Ok(plan
            .pre_state(pre_state)
            .desired_state(desired_state)
            .outputs(outputs))
    }

    /// Lists the principal's assignments at the scope again, as the plan did: none of the
    /// removed ids may still be there.
    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        let p: Params = typed_params(done)?;
        let removed = recorded(done);
        let Some(arm) = arm_base(done) else {
            return Ok(Verification::Unchecked(
                "no assignment was recorded, so there is nothing to look for".into(),
            ));
        };
        let url = list_url(&arm, &p.resource, &p.principal);
        let found = read_all_pages(lookup, Api::Arm, url).await?;
        let LookupOutcome::Found(Value::Array(now)) = &found else {
            return Ok(unreadable(&found, "the role assignments"));
        };
        let still: Vec<&str> = removed
            .iter()
            .filter_map(|r| r["id"].as_str())
            .filter(|id| {
                now.iter()
                    .any(|a| a["id"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(id)))
            })
            .collect();
        Ok(if still.is_empty() {
            Verification::Verified(
                json!({ "removed": removed.iter().map(|r| &r["id"]).collect::<Vec<_>>() }),
            )
        } else {
            Verification::Mismatch(format!("still assigned: {}", still.join(", ")))
        })
    }

    /// Re-creates every recorded assignment under its own name and scope, so the principal
    /// gets back exactly the access it had (same role, same condition).
    fn compensate(&self, done: &Executed<'_>, endpoints: &Endpoints) -> Compensation {
        let removed = recorded(done);
        if removed.is_empty() {
            return Compensation::NotNeeded;
        }
        let mut requests = Vec::new();
        for r in removed {
            let (Some(scope), Some(name)) = (r["scope"].as_str(), r["name"].as_str()) else {
                return Compensation::Irreversible(format!(
                    "the recorded assignment {} has no scope or name to re-create it under",
                    r["id"]
                ));
            };
            let mut properties = serde_json::Map::new();
            for key in ["roleDefinitionId", "principalId", "principalType"] {
                properties.insert(key.into(), r[key].clone());
            }
            for key in ["condition", "conditionVersion"] {
                if !r[key].is_null() {
                    properties.insert(key.into(), r[key].clone());
                }
            }
            requests.push(
                ApiRequest::new(
                    Method::Put,
                    Api::Arm,
                    format!(
                        "{}{}/providers/Microsoft.Authorization/roleAssignments/{}?api-version={ROLE_ASSIGNMENTS_API_VERSION}",
                        endpoints.arm,
                        encode::arm_path(scope),
                        encode::segment(name)
                    ),
                )
                .with_body(json!({ "properties": properties })),
            );
        }
        Compensation::Requests(requests)
    }
}

/// The assignments the plan recorded (and the step deleted).
fn recorded<'a>(done: &Executed<'a>) -> &'a [Value] {
    done.pre_state["assignments"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The ARM base the step's DELETEs went to: each URL is `{arm}{encoded id}?…`.
fn arm_base(done: &Executed<'_>) -> Option<String> {
    let first = recorded(done).first()?;
    let id = encode::arm_path(first["id"].as_str()?);
    done.requests
        .iter()
        .find_map(|r| r.url.find(&id).map(|at| r.url[..at].to_string()))
}

/// A step value quoted inside the placeholder path of [`unknown_plan`]: an ARM id keeps its
/// slashes (its segments encoded), anything else is one encoded segment, so a value made of
/// `?`, `#` or `&` cannot start a query in the URL the plan shows.
fn quoted_in_path(value: &str) -> String {
    let described = unknown::describe(value);
    let inner = described.as_deref().unwrap_or(value);
    if crate::alert::ArmId::parse(inner).is_some() {
        encode::arm_path(inner)
    } else {
        encode::segment(inner)
    }
}

/// No credentials: the assignments are listed and deleted at run time.
fn unknown_plan(ctx: &PlanContext<'_>, p: &Params) -> ActionPlan {
    let what = unknown::placeholder(&format!(
        "id of each role assignment of {} at, below{} {}",
        quoted_in_path(&p.principal),
        if p.include_inherited { " or above" } else { "" },
        quoted_in_path(&p.resource)
    ));
    let url = format!(
        "{}{what}?api-version={ROLE_ASSIGNMENTS_API_VERSION}",
        ctx.endpoints.arm
    );
    ActionPlan::planned(vec![ApiRequest::new(Method::Delete, Api::Arm, url)])
        .outputs(Value::Null)
        .reason("known at run time: no credentials to list the role assignments")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    const RG: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod";

    fn assignment(scope: &str, guid: &str, principal: &str) -> Value {
        json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}"),
            "name": guid,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"),
                "principalId": principal,
                "principalType": "User",
                "scope": scope,
                "condition": null,
                "conditionVersion": null,
            }
        })
    }

    fn listing_url() -> String {
        format!(
            "{ARM}{VM_ID}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{ALEX_ID}'"
        )
    }

    fn env_with(values: Vec<Value>) -> TestEnv {
        TestEnv::new(FakeLookup::strict().found(listing_url(), json!({ "value": values })))
    }

    #[test]
    fn list_url_encodes_the_filter_exactly() {
        assert_eq!(
            list_url(ARM, VM_ID, ALEX_ID),
            format!(
                "https://management.azure.com/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{ALEX_ID}'"
            )
        );
    }

    #[tokio::test]
    async fn deletes_each_assignment_at_its_own_id_and_records_it() {
        let sub = format!("/subscriptions/{SUB}");
        let env = env_with(vec![
            assignment(VM_ID, "11111111-0000-0000-0000-000000000001", ALEX_ID),
            assignment(RG, "11111111-0000-0000-0000-000000000002", ALEX_ID),
            assignment(&sub, "11111111-0000-0000-0000-000000000003", ALEX_ID),
        ]);
        let plan = env
            .plan(
                &RemoveRoleAssignments,
                json!({ "resource": VM_ID, "principal": ALEX_ID }),
            )
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let urls: Vec<_> = plan
            .requests
            .iter()
            .map(|r| (r.method, r.url.as_str()))
            .collect();
        assert_eq!(
            urls,
            vec![
                (Method::Delete, format!("{ARM}{VM_ID}/providers/Microsoft.Authorization/roleAssignments/11111111-0000-0000-0000-000000000001?api-version=2022-04-01").as_str()),
                (Method::Delete, format!("{ARM}{RG}/providers/Microsoft.Authorization/roleAssignments/11111111-0000-0000-0000-000000000002?api-version=2022-04-01").as_str()),
                (Method::Delete, format!("{ARM}{sub}/providers/Microsoft.Authorization/roleAssignments/11111111-0000-0000-0000-000000000003?api-version=2022-04-01").as_str()),
            ]
        );
        assert!(plan.requests.iter().all(|r| r.body.is_none()));
        let recorded = &plan.pre_state["assignments"];
        assert_eq!(recorded[0]["placement"], "at");
        assert_eq!(recorded[1]["placement"], "above");
        assert_eq!(recorded[1]["scope"], RG);
        assert_eq!(recorded[1]["principalType"], "User");
        assert!(
            recorded[1]["roleDefinitionId"]
                .as_str()
                .unwrap()
                .ends_with("20f7382dd24c")
        );
        assert_eq!(plan.outputs["removed"].as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn verify_lists_again_and_compensation_re_creates_each_assignment() {
        let env = env_with(vec![
            assignment(VM_ID, "11111111-0000-0000-0000-000000000001", ALEX_ID),
            assignment(RG, "11111111-0000-0000-0000-000000000002", ALEX_ID),
        ]);
        let params = json!({ "resource": VM_ID, "principal": ALEX_ID });
        let mut plan = env
            .plan(&RemoveRoleAssignments, params.clone())
            .await
            .unwrap();
        // A conditional assignment keeps its condition when re-created.
        plan.pre_state["assignments"][1]["condition"] = json!("@Resource[x] StringEquals 'y'");
        plan.pre_state["assignments"][1]["conditionVersion"] = json!("2.0");
        let done = executed(&params, &plan, &[]);

        let gone = FakeLookup::strict().found(listing_url(), json!({ "value": [] }));
        assert!(matches!(
            RemoveRoleAssignments.verify(&done, &gone).await.unwrap(),
            Verification::Verified(v) if v["removed"].as_array().unwrap().len() == 2
        ));
        assert_eq!(gone.calls(), vec![listing_url()]);
        let back = FakeLookup::strict().found(
            listing_url(),
            json!({ "value": [assignment(RG, "11111111-0000-0000-0000-000000000002", ALEX_ID)] }),
        );
        assert!(matches!(
            RemoveRoleAssignments.verify(&done, &back).await.unwrap(),
            Verification::Mismatch(why) if why.contains("000000000002")
        ));

        let undo =
            compensation_requests(RemoveRoleAssignments.compensate(&done, &Endpoints::default()));
        let role = |guid: &str| {
            format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        };
        assert_eq!(
            undo,
            vec![
                ApiRequest::new(
                    Method::Put,
                    Api::Arm,
                    format!("{ARM}{VM_ID}/providers/Microsoft.Authorization/roleAssignments/11111111-0000-0000-0000-000000000001?api-version=2022-04-01")
                )
                .with_body(json!({ "properties": {
                    "roleDefinitionId": role("b24988ac-6180-42a0-ab88-20f7382dd24c"),
                    "principalId": ALEX_ID,
                    "principalType": "User",
                } })),
                ApiRequest::new(
                    Method::Put,
                    Api::Arm,
                    format!("{ARM}{RG}/providers/Microsoft.Authorization/roleAssignments/11111111-0000-0000-0000-000000000002?api-version=2022-04-01")
                )
                .with_body(json!({ "properties": {
                    "roleDefinitionId": role("b24988ac-6180-42a0-ab88-20f7382dd24c"),
                    "principalId": ALEX_ID,
                    "principalType": "User",
                    "condition": "@Resource[x] StringEquals 'y'",
                    "conditionVersion": "2.0",
                } })),
            ]
        );
    }

    #[tokio::test]
    async fn without_inherited_only_at_and_below_are_deleted() {
        let env = env_with(vec![
            assignment(RG, "11111111-0000-0000-0000-000000000002", ALEX_ID),
            assignment(
                &format!("{VM_ID}/extensions/x"),
                "11111111-0000-0000-0000-000000000004",
                ALEX_ID,
            ),
        ]);
        let plan = env
            .plan(
                &RemoveRoleAssignments,
                json!({ "resource": VM_ID, "principal": ALEX_ID, "include_inherited": false }),
            )
            .await
            .unwrap();
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.pre_state["assignments"][0]["placement"], "below");
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("1 assignment(s) above"))
        );
    }

    #[tokio::test]
    async fn none_is_already_satisfied() {
        let env = env_with(vec![assignment(
            VM_ID,
            "11111111-0000-0000-0000-000000000009",
            GUEST_ID,
        )]);
        let plan = env
            .plan(
                &RemoveRoleAssignments,
                json!({ "resource": VM_ID, "principal": ALEX_ID }),
            )
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
        assert!(plan.requests.is_empty());
    }

    #[tokio::test]
    async fn offline_plans_a_placeholder_delete() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &RemoveRoleAssignments,
                json!({ "resource": VM_ID, "principal": ALEX_ID }),
            )
            .await
            .unwrap();
        let (method, url, _) = only_request(&plan);
        assert_eq!(method, "DELETE");
        assert_eq!(
            url,
            format!(
                "{ARM}⟨id of each role assignment of {ALEX_ID} at, below or above {VM_ID}⟩?api-version=2022-04-01"
            )
        );
        assert_eq!(plan.outputs, Value::Null);
        assert_eq!(env.lookup.calls(), vec![listing_url()]);
    }

    #[tokio::test]
    async fn a_upn_or_filter_injection_is_not_a_principal() {
        let env = TestEnv::offline();
        for principal in [ALEX_UPN, "x' or principalId ne 'y"] {
            let err = env
                .plan(
                    &RemoveRoleAssignments,
                    json!({ "resource": VM_ID, "principal": principal }),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, ActionError::Params(_)), "{err}");
        }
    }

    #[test]
    fn placement_is_case_insensitive() {
        assert_eq!(placement(&VM_ID.to_lowercase(), VM_ID), Some(Placement::At));
        assert_eq!(placement("/", VM_ID), Some(Placement::Above));
        assert_eq!(placement(RG, VM_ID), Some(Placement::Above));
        assert_eq!(placement(VM_ID, RG), Some(Placement::Below));
        assert_eq!(placement(&format!("{RG}2"), RG), None);
    }
}
