//! Guardrails: for every mutating step, a decision — allow, deny or require approval — with
//! the reasons. The planner asks before a step is shown as planned; the engine asks again
//! just before it runs. This module never calls Azure.
//!
//! The policies themselves are Rego in `policies/` ([`RegoGuard`]); this module owns the
//! *input document* they read, so the contract between Rust and Rego lives in one place.
//!
//! # The input document
//!
//! ```json
//! {
//!   "action":  {"name": "entra.disable_user", "effect": "mutate"},
//!   "params":  {"user": "a1e7d1c2-…"},
//!   "target":  {
//!     "principal_type": "user",
//!     "user": {"id": "…", "upn": "grady.archie@contoso.com", "user_type": "Member",
//!              "on_premises_sync_enabled": false, "account_enabled": true,
//!              "roles": [{"display_name": "Global Administrator",
//!                         "role_template_id": "62e90394-69f5-4237-9190-012177145e10"}],
//!              "groups": []},
//!     "resource":  {"id": "/subscriptions/…/virtualMachines/vm-web-01",
//!                   "type": "Microsoft.Compute/virtualMachines", "tags": {"riposte:protected": "true"}},
//!     "resources": [ …every resource the step targets, `resource` included… ],
//!     "service_principal": null,
//!     "destination": null
//!   },
//!   "alert":    { …the normalised alert… },
//!   "playbook": {"name": "first-access-containment", "version": "1.0.0", "stage": "live"},
//!   "mode":     "dry-run",
//!   "counters": {"principals_contained_last_hour": 3,
//!                "actions_last_hour": {"entra.disable_user": 3}}
//! }
//! ```
//!
//! `target.user` is `null` when no `entra.get_user` output is known (no credentials while
//! planning); policies then also look at `params`, so an unknown target is never a way round a
//! rule. `target.service_principal` is set when a step's `principal` is a service principal
//! (`{id, app_id, display_name, service_principal_type, roles}`); `target.destination` is a
//! notification's `scheme://host[:port]`. The planner reads every target's facts itself
//! (`plan::facts`); a target it cannot read is denied before a policy is asked. `policies/README.md` documents the same shape for policy authors.

mod guardrails;
mod rego;

pub use guardrails::Guardrails;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use rego::{
    DECISION_RULE, EVALUATION_TIME_LIMIT, PolicyError, Problem, RegoGuard, TestOutcome,
    check_files, run_tests,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    RequireApproval,
}

/// A structured decision, as plans and the audit trail record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub decision: Verdict,
    pub reasons: Vec<String>,
}

impl Decision {
    /// A denial with one reason: what every failure becomes, so guards fail closed.
    pub fn deny(reason: impl Into<String>) -> Decision {
        Decision {
            decision: Verdict::Deny,
            reasons: vec![reason.into()],
        }
    }
}

/// The action a step uses, as policies see it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRef<'a> {
    /// `provider.verb_object`, e.g. `entra.disable_user`.
    pub name: &'a str,
    /// `read`, `evidence`, `mutate` or `notify` — the catalogue's [`crate::actions::Effect`], so a
    /// policy can allow every read without listing actions.
    pub effect: crate::actions::Effect,
}

/// What kind of principal a step acts on; user actions must never reach the other kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalType {
    User,
    ServicePrincipal,
    ManagedIdentity,
    /// A group whose Azure role assignments are removed (`arm.remove_role_assignments`).
    Group,
}

/// A directory role the target user holds. Policies match on `role_template_id`, which is the
/// same in every tenant; the display name is for reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RoleFacts {
    pub display_name: Option<String>,
    pub role_template_id: Option<String>,
}

/// Facts about the target user, from `entra.get_user` outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct UserFacts {
    pub id: Option<String>,
    pub upn: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    pub on_premises_sync_enabled: Option<bool>,
    pub account_enabled: Option<bool>,
    pub roles: Vec<RoleFacts>,
    /// Group object ids (or objects) when the lookup returned them.
    pub groups: Vec<Value>,
}

/// Facts about a target service principal (or managed identity), read from Graph by the
/// planner when a step's `principal` is one: policies match break-glass entries on its
/// object id or its application (client) id, and privileged rules on its directory roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServicePrincipalFacts {
    /// The service principal's object id (lower case).
    pub id: String,
    /// The application (client) id: how operators usually name an app.
    pub app_id: Option<String>,
    pub display_name: Option<String>,
    /// `Application`, `ManagedIdentity`, `Legacy` or `SocialIdp`.
    pub service_principal_type: Option<String>,
    /// Its active directory roles, transitive ones included.
    pub roles: Vec<RoleFacts>,
}

/// Facts about a target Azure resource. `tags` is empty when the plan did not read them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourceFacts {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What the step acts on, as far as planning found out.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Target {
    pub principal_type: Option<PrincipalType>,
    pub user: Option<UserFacts>,
    /// The resource of a single-resource step.
    pub resource: Option<ResourceFacts>,
    /// Every resource the step targets (a `for_each` step has several); policies check all.
    pub resources: Vec<ResourceFacts>,
    /// The service principal a step's `principal` is, when it is one.
    pub service_principal: Option<ServicePrincipalFacts>,
    /// Where a notification goes: scheme, host and port only (a webhook's path is its
    /// secret and never reaches a policy).
    pub destination: Option<String>,
}

/// Recent activity from the store, so policies can cap the blast radius. The planner and the
/// engine fill it; an absent store means zeros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Counters {
    /// Principals contained in the alert's tenant during the last hour.
    pub principals_contained_last_hour: u64,
    /// Steps executed during the last hour in the alert's tenant, per action name.
    pub actions_last_hour: BTreeMap<String, u64>,
}

/// What a guard is asked about one mutating step (the input document above).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInput<'a> {
    pub action: ActionRef<'a>,
    /// The step's rendered parameters (a list of them for a `for_each` step).
    pub params: &'a Value,
    pub target: Target,
    /// The normalised alert.
    pub alert: &'a Value,
    /// `{name, version, stage}`.
    pub playbook: &'a Value,
    /// `dry-run` or `enforce`.
    pub mode: &'a str,
    pub counters: &'a Counters,
}

impl Target {
    /// Gathers the target facts of a step from what planning knows: the outputs of the steps
    /// it needs (an `entra.get_user` output gives the user), its own pre-state and parameters
    /// (a resource id; tags when the action read them), and the alert's principal type when no
    /// user was found.
    pub fn from_step<'v>(
        needed_outputs: impl IntoIterator<Item = &'v Value>,
        params: &Value,
        pre_state: &Value,
        alert: &Value,
    ) -> Target {
        let mut target = Target::default();
        let target_outputs: Vec<&Value> = needed_outputs.into_iter().collect();
        for out in target_outputs.iter().copied() {
            if target.user.is_none() && looks_like_user(out) {
                target.user = serde_json::from_value(out.clone()).ok();
                if let Some(t) = out.get("principal_type") {
                    target.principal_type = serde_json::from_value(t.clone()).ok();
                }
            }
        }
        if target.user.is_some() && target.principal_type.is_none() {
            target.principal_type = Some(PrincipalType::User);
        }
        if target.principal_type.is_none() {
            target.principal_type = alert
                .pointer("/principal/type")
                .and_then(|t| serde_json::from_value(t.clone()).ok());
        }
        let mut resources: Vec<ResourceFacts> = Vec::new();
        // Resources a needed step read (`arm.get_resource`): their tags are facts too. A
        // `for_each` read merges its items' outputs into lists, one entry per resource.
        for out in needed_outputs_resources(&target_outputs) {
            push_resource(&mut resources, out);
        }
        for state in items(pre_state) {
            if let Some(r) = resource_from_state(state) {
                push_resource(&mut resources, r);
            }
        }
        for p in items(params) {
            if let Some(id) = p.get("resource").and_then(Value::as_str) {
                let parsed = crate::alert::Resource::from_id(id);
                push_resource(
                    &mut resources,
                    ResourceFacts {
                        id: parsed.id,
                        kind: parsed.kind,
                        tags: BTreeMap::new(),
                    },
                );
            }
        }
        if resources.len() == 1 {
            target.resource = resources.first().cloned();
        }
        target.resources = resources;
        target
    }
}

/// Resource facts in the outputs of the steps a step needs: `{id, type, tags}` of one
/// resource, or lists of them from a `for_each` read.
fn needed_outputs_resources(outputs: &[&Value]) -> Vec<ResourceFacts> {
    let mut out = Vec::new();
    for o in outputs {
        let ids: Vec<&Value> = match o.get("id") {
            Some(Value::Array(ids)) => ids.iter().collect(),
            Some(id) => vec![id],
            None => continue,
        };
        let tags: Vec<Option<&Value>> = match o.get("tags") {
            Some(Value::Array(t)) if matches!(o.get("id"), Some(Value::Array(_))) => {
                t.iter().map(Some).collect()
            }
            t => vec![t],
        };
        for (i, id) in ids.iter().enumerate() {
            let Some(id) = id.as_str().filter(|s| s.starts_with('/')) else {
                continue;
            };
            let parsed = crate::alert::Resource::from_id(id);
            let tags = tags
                .get(i)
                .copied()
                .flatten()
                .and_then(|t| serde_json::from_value(t.clone()).ok())
                .unwrap_or_default();
            out.push(ResourceFacts {
                id: parsed.id,
                kind: parsed.kind,
                tags,
            });
        }
    }
    out
}

fn looks_like_user(v: &Value) -> bool {
    v.get("upn").is_some() || (v.get("id").is_some() && v.get("roles").is_some())
}

/// A `for_each` step carries a list of parameter objects and pre-states; a single step one.
fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(list) => list.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn resource_from_state(state: &Value) -> Option<ResourceFacts> {
    let id = state.get("id")?.as_str()?;
    if !id.to_ascii_lowercase().starts_with("/subscriptions/") {
        return None;
    }
    let parsed = crate::alert::Resource::from_id(id);
    let tags = state
        .get("tags")
        .and_then(Value::as_object)
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Some(ResourceFacts {
        id: parsed.id,
        kind: state
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(parsed.kind),
        tags,
    })
}

/// Adds a resource once; a later mention of the same id only adds tags it lacked.
fn push_resource(list: &mut Vec<ResourceFacts>, r: ResourceFacts) {
    match list.iter_mut().find(|x| x.id.eq_ignore_ascii_case(&r.id)) {
        Some(existing) => {
            for (k, v) in r.tags {
                existing.tags.entry(k).or_insert(v);
            }
            if existing.kind.is_none() {
                existing.kind = r.kind;
            }
        }
        None => list.push(r),
    }
}

/// Decides on one step. Implementations must fail closed: an error is a `Deny` whose reason
/// is the error.
pub trait Guard: Send + Sync {
    fn decide(&self, input: &PolicyInput<'_>) -> Decision;

    /// The blast-radius cap the policies enforce (distinct principals contained per hour), so
    /// the engine can reserve a place under it atomically before the policy reads the count.
    /// `None`: the guard has no such cap.
    fn principal_cap(&self) -> Option<u64> {
        None
    }
}

/// The guard used when no policy directory is configured: it allows, and says so, so a
/// reviewer never mistakes "unguarded" for "checked".
pub struct Unguarded;

impl Guard for Unguarded {
    fn decide(&self, _input: &PolicyInput<'_>) -> Decision {
        Decision {
            decision: Verdict::Allow,
            reasons: vec!["no guardrail policy is loaded".into()],
        }
    }
}

/// The guard for a deployment: the Rego policies in `dir` with the configured guardrails as
/// data. A directory that exists but cannot be loaded is an error, never a silent
/// [`Unguarded`] — callers choose `Unguarded` only when there is no directory at all.
pub fn load_guard(dir: &Path, guardrails: &Guardrails) -> Result<Box<dyn Guard>, PolicyError> {
    Ok(Box::new(RegoGuard::load(dir, guardrails)?))
}

/// What `policies = "none"` says: run explicitly unguarded.
pub const NO_POLICIES: &str = "none";

/// The guard configuration asks for. `policies = "none"` is explicitly [`Unguarded`] (which
/// says so in every decision). Otherwise the directory's Rego policies; a directory that is
/// missing is unguarded only when `may_act` is false (planning, dry-run) — a riposte that may
/// act refuses to start without its guardrails.
pub fn guard_for(
    dir: &Path,
    guardrails: &Guardrails,
    may_act: bool,
) -> Result<Box<dyn Guard>, PolicyError> {
    if dir == Path::new(NO_POLICIES) {
        return Ok(Box::new(Unguarded));
    }
    if dir.is_dir() {
        return load_guard(dir, guardrails);
    }
    if may_act {
        return Err(PolicyError::Missing(dir.to_path_buf()));
    }
    Ok(Box::new(Unguarded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn target_takes_the_user_from_get_user_outputs_and_resources_from_state_and_params() {
        let user = json!({"id": "u1", "upn": "a@b.c", "roles": [], "user_type": "Member"});
        let params = json!([{"resource": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"},
                            {"resource": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm2"}]);
        let pre = json!([{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
                          "tags": {"riposte:protected": "true"}}]);
        let t = Target::from_step([&user], &params, &pre, &json!({}));
        assert_eq!(t.principal_type, Some(PrincipalType::User));
        assert_eq!(t.user.unwrap().upn.as_deref(), Some("a@b.c"));
        assert_eq!(t.resources.len(), 2);
        assert!(t.resource.is_none(), "two resources: no single `resource`");
        assert_eq!(t.resources[0].tags["riposte:protected"], "true");
        assert_eq!(
            t.resources[0].kind.as_deref(),
            Some("Microsoft.Compute/virtualMachines")
        );
    }

    #[test]
    fn without_user_facts_the_alert_says_what_the_principal_is() {
        let alert = json!({"principal": {"type": "service_principal"}});
        let t = Target::from_step([], &json!({"user": "x"}), &Value::Null, &alert);
        assert_eq!(t.principal_type, Some(PrincipalType::ServicePrincipal));
        assert!(t.user.is_none());
    }
}
