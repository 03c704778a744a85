//! Facts about a mutating step's target that no earlier step read. A single action (`act`,
//! `POST /v1/actions/{name}`) or a playbook without a lookup step is guarded on the real
//! target too: the planner reads it itself, through the same read-only `Lookup` and the same
//! plans a playbook would use — `entra.get_user` for a user, `arm.get_resource` for a
//! resource, Graph's `directoryObjects/{id}` for a `principal` that may be a service
//! principal. A target whose facts cannot be read is not acted on.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Planner;
use crate::actions::{self, PlanContext, encode, entra, is_guid, unknown};
use crate::alert::Alert;
use crate::connectors::{Api, LookupOutcome};
use crate::policy::{PrincipalType, RoleFacts, ServicePrincipalFacts};

/// What reading a step's targets gave.
pub(super) enum TargetFacts {
    Read(ReadFacts),
    /// No credentials to read with (planning offline): the facts are unknown, and the plan
    /// can only be shown, never executed.
    Offline,
    /// A target the step names could not be read (it does not exist, the read was refused).
    Unreadable(String),
}

/// Facts read for one step, in the shapes the policy input takes them from.
#[derive(Default)]
pub(super) struct ReadFacts {
    /// `entra.get_user` outputs of users, `arm.get_resource` outputs (`{id, type, location,
    /// tags}`) of single resources.
    pub outputs: Vec<Value>,
    /// What the step's `principal` is when the directory says it is no user.
    pub principal: Option<(PrincipalType, Option<ServicePrincipalFacts>)>,
}

/// What the planner already knows about a step, so it reads only what is missing.
pub(super) struct Known<'a> {
    /// Whether an earlier step it depends on read the user it acts on.
    pub user: bool,
    /// Outputs of every `arm.get_resource` step planned so far: facts read at this same
    /// planning, whether or not the step depends on them.
    pub resource_reads: Vec<&'a Value>,
    /// Outputs of the mutating steps it depends on: a resource one of them creates in this
    /// run (a snapshot it will lock) has no facts before the run, and is riposte's own.
    pub created: Vec<&'a Value>,
}

/// The role properties the policies read.
const ROLE_SELECT: &str = "id,displayName,roleTemplateId";

impl Planner<'_> {
    /// Reads the facts of every user (`user`), principal (`principal`) and resource
    /// (`resource`) the step's parameters name that `known` does not cover.
    pub(super) async fn target_facts(
        &self,
        with: &Value,
        known: &Known<'_>,
        alert: &Alert,
        run_id: &str,
        step_id: &str,
        now: DateTime<Utc>,
    ) -> TargetFacts {
        let ctx = PlanContext {
            endpoints: self.endpoints,
            lookup: self.lookup,
            alert,
            run_id,
            step_id,
            settings: self.settings,
            now,
            playbook_dir: Default::default(),
        };
        let mut facts = ReadFacts::default();
        let items: Vec<&Value> = match with {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        if !known.user {
            for user in items.iter().filter_map(|p| named(p, "user")) {
                match read_user(&ctx, user).await {
                    Ok(Some(found)) => facts.outputs.push(found),
                    Ok(None) => return TargetFacts::Offline,
                    Err(why) => return TargetFacts::Unreadable(why),
                }
            }
            for principal in items.iter().filter_map(|p| named(p, "principal")) {
                match read_principal(&ctx, principal).await {
                    Ok(Some(Principal::User(found))) => facts.outputs.push(found),
                    Ok(Some(Principal::Other(kind, sp))) => facts.principal = Some((kind, sp)),
                    Ok(None) => return TargetFacts::Offline,
                    Err(why) => return TargetFacts::Unreadable(why),
                }
            }
        }
        let already_read = single_resources(&known.resource_reads);
        for resource in items.iter().filter_map(|p| named(p, "resource")) {
            if let Some(read) = already_read.iter().find(|r| same_id(r, resource)) {
                facts.outputs.push(read.clone());
                continue;
            }
            if known.created.iter().any(|o| mentions(o, resource)) {
                continue;
            }
            match read_resource(&ctx, resource).await {
                Ok(Some(found)) => facts.outputs.push(found),
                Ok(None) => return TargetFacts::Offline,
                Err(why) => return TargetFacts::Unreadable(why),
            }
        }
        TargetFacts::Read(facts)
    }
}

/// A principal the directory describes.
enum Principal {
    /// A user: its `entra.get_user` outputs.
    User(Value),
    /// A service principal (with its facts), a managed identity or a group.
    Other(PrincipalType, Option<ServicePrincipalFacts>),
}

fn cannot_read(what: &str, why: impl std::fmt::Display) -> String {
    format!(
        "cannot read the facts of `{what}` ({why}); riposte does not act on a target it cannot see"
    )
}

/// `entra.get_user`'s outputs for `user`; `None` offline.
async fn read_user(ctx: &PlanContext<'_>, user: &str) -> Result<Option<Value>, String> {
    let get_user = actions::find("entra.get_user").ok_or("entra.get_user is not registered")?;
    match get_user.plan_value(json!({ "user": user }), ctx).await {
        Ok(plan) if plan.outputs.is_null() => Ok(None),
        Ok(plan) => Ok(Some(plan.outputs)),
        Err(e) => Err(cannot_read(user, e)),
    }
}

/// `arm.get_resource`'s outputs for `resource`; `None` offline.
async fn read_resource(ctx: &PlanContext<'_>, resource: &str) -> Result<Option<Value>, String> {
    let get = actions::find("arm.get_resource").ok_or("arm.get_resource is not registered")?;
    match get.plan_value(json!({ "resource": resource }), ctx).await {
        Ok(plan) if plan.outputs.is_null() => Ok(None),
        Ok(plan) => Ok(Some(plan.outputs)),
        Err(e) => Err(cannot_read(resource, e)),
    }
}

/// What kind of directory object `id` is (`GET /directoryObjects/{id}` answers with its
/// `@odata.type`), with the facts the guardrails need for that kind; `None` offline.
async fn read_principal(ctx: &PlanContext<'_>, id: &str) -> Result<Option<Principal>, String> {
    if !is_guid(id) {
        return Err(cannot_read(id, "a principal is named by its object id"));
    }
    let base = ctx.endpoints.graph_v1();
    let url = format!("{base}/directoryObjects/{}", encode::segment(id));
    let object = match ctx.lookup.get(Api::Graph, &url).await {
        Ok(LookupOutcome::Found(object)) => object,
        Ok(LookupOutcome::Unavailable) => return Ok(None),
        Ok(LookupOutcome::NotFound) => return Err(cannot_read(id, "no such directory object")),
        Err(e) => return Err(cannot_read(id, e)),
    };
    // The id the directory answered for must be the one asked about: facts of another
    // object are no facts about this one.
    if !object["id"]
        .as_str()
        .is_some_and(|o| o.eq_ignore_ascii_case(id))
    {
        return Err(cannot_read(id, "the directory answered for another object"));
    }
    let kind = object["@odata.type"].as_str().unwrap_or_default();
    match kind {
        "#microsoft.graph.user" => read_user(ctx, id)
            .await
            .map(|found| found.map(Principal::User)),
        "#microsoft.graph.group" => Ok(Some(Principal::Other(PrincipalType::Group, None))),
        "#microsoft.graph.servicePrincipal" => {
            let owner = format!("{base}/servicePrincipals/{}", encode::segment(id));
            let roles = match ctx
                .lookup
                .read(&entra::directory_roles_request(&owner, ROLE_SELECT))
                .await
            {
                Ok(LookupOutcome::Found(v)) => v["value"].as_array().cloned().unwrap_or_default(),
                Ok(_) => return Err(cannot_read(id, "its directory roles cannot be read")),
                Err(e) => return Err(cannot_read(id, e)),
            };
            let text = |v: &Value| v.as_str().map(str::to_string);
            let sp_type = text(&object["servicePrincipalType"]);
            let facts = ServicePrincipalFacts {
                id: id.to_ascii_lowercase(),
                app_id: text(&object["appId"]),
                display_name: text(&object["displayName"]),
                service_principal_type: sp_type.clone(),
                roles: roles
                    .iter()
                    .map(|r| RoleFacts {
                        display_name: text(&r["displayName"]),
                        role_template_id: text(&r["roleTemplateId"]),
                    })
                    .collect(),
            };
            let kind = if sp_type.as_deref() == Some("ManagedIdentity") {
                PrincipalType::ManagedIdentity
            } else {
                PrincipalType::ServicePrincipal
            };
            Ok(Some(Principal::Other(kind, Some(facts))))
        }
        // Devices, contacts, applications…: nothing riposte takes access away from.
        other => Err(cannot_read(
            id,
            format!(
                "it is a `{}`, not a user, group or service principal",
                other
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .take(64)
                    .collect::<String>()
            ),
        )),
    }
}

/// The value a parameter object holds under `key`, when it is a value (not one known only
/// at run time).
fn named<'v>(params: &'v Value, key: &str) -> Option<&'v str> {
    params
        .get(key)
        .and_then(Value::as_str)
        .filter(|u| !unknown::is_placeholder(u))
}

/// `arm.get_resource` outputs, one object per resource: a `for_each` read merges its items'
/// outputs key by key into lists, which are split back here.
fn single_resources(outputs: &[&Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for o in outputs {
        match o.get("id") {
            Some(Value::Array(ids)) => {
                for (i, id) in ids.iter().enumerate() {
                    let field = |k: &str| o.get(k).and_then(|v| v.get(i)).cloned();
                    out.push(json!({
                        "id": id,
                        "type": field("type").unwrap_or(Value::Null),
                        "location": field("location").unwrap_or(Value::Null),
                        "tags": field("tags").unwrap_or_else(|| json!({})),
                    }));
                }
            }
            Some(Value::String(_)) => out.push((*o).clone()),
            _ => {}
        }
    }
    out
}

fn same_id(read: &Value, id: &str) -> bool {
    read["id"]
        .as_str()
        .is_some_and(|r| r.eq_ignore_ascii_case(id))
}

/// Whether `id` appears anywhere in `v` (a created resource's id in its step's outputs).
fn mentions(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s.eq_ignore_ascii_case(id),
        Value::Array(items) => items.iter().any(|i| mentions(i, id)),
        Value::Object(map) => map.values().any(|i| mentions(i, id)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_reads_split_into_one_object_per_resource() {
        let merged = json!({"id": ["/a", "/b"], "type": ["t1", "t2"], "location": ["x", "y"],
                            "tags": [{}, {"riposte:protected": "true"}]});
        let one = json!({"id": "/c", "tags": {}});
        let split = single_resources(&[&merged, &one]);
        assert_eq!(split.len(), 3);
        assert_eq!(split[1]["tags"]["riposte:protected"], "true");
        assert!(same_id(&split[2], "/C"));
    }

    #[test]
    fn a_created_resource_is_recognised_in_its_steps_outputs() {
        let outputs = json!({"snapshot_ids": ["/subscriptions/s/snap-1"]});
        assert!(mentions(&outputs, "/subscriptions/S/snap-1"));
        assert!(!mentions(&outputs, "/subscriptions/s/snap-2"));
    }
}
