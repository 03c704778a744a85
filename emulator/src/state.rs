//! The tenant as it is now: the seed plus every effect the clients caused, and counters of those
//! effects so tests can assert "the user was disabled exactly once" without parsing logs.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::tenant::{self, Tenant};

/// Mutable tenant state. Held behind one mutex; handlers never hold it across an `.await`.
#[derive(Debug)]
pub struct State {
    pub tenant_id: String,
    pub domains: Vec<String>,
    pub apps: Vec<tenant::App>,
    pub managed_identity: Option<tenant::ManagedIdentity>,
    pub users: Vec<UserState>,
    pub groups: Vec<tenant::Group>,
    pub directory_roles: Vec<tenant::DirectoryRole>,
    pub ca_policies: Vec<tenant::ConditionalAccessPolicy>,
    pub security_alerts: Vec<Value>,
    pub azure: tenant::Azure,
    pub snapshots: Vec<Snapshot>,
    pub operations: Vec<Operation>,
    pub locks: Vec<Lock>,
    pub workspaces: Vec<tenant::Workspace>,
    pub lacework: Option<tenant::Lacework>,
    /// Lacework API tokens handed out, with their expiry.
    pub lacework_tokens: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    /// Graph password-reset operations: (operation id, user id).
    pub password_resets: Vec<(String, String)>,
    pub behaviour: tenant::Behaviour,
    /// Effects by kind (`user_disabled`, `sessions_revoked`, `snapshots_created`, …).
    pub counters: BTreeMap<String, u64>,
    /// ARM's token buckets, shown in `x-ms-ratelimit-remaining-subscription-*`.
    pub arm_reads_left: u32,
    pub arm_writes_left: u32,
}

/// A user plus the properties the APIs change.
#[derive(Debug, Clone)]
pub struct UserState {
    pub seed: tenant::User,
    pub sign_in_sessions_valid_from: String,
    pub risk_state: String,
    pub force_change_password_next_sign_in: bool,
    pub force_change_password_next_sign_in_with_mfa: bool,
    pub last_password_change: Option<String>,
}

/// A snapshot created through ARM.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// ARM id as created (case preserved).
    pub id: String,
    pub source_id: String,
    /// The ARM body as GET returns it; `properties.provisioningState` follows the operation.
    pub body: Value,
    /// The creating operation, while it is tracked.
    pub operation_id: String,
}

/// A long-running ARM operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub subscription: String,
    pub location: String,
    /// Lower-cased id of the resource it creates.
    pub resource_id: String,
    /// Status polls left before it reports success.
    pub polls_left: u32,
    pub start_time: String,
    pub end_time: Option<String>,
}

impl Operation {
    /// Counts one observation; true once the operation has finished.
    pub fn observe(&mut self) -> bool {
        if self.polls_left == 0 {
            if self.end_time.is_none() {
                self.end_time = Some(super::http::now_rfc3339());
            }
            true
        } else {
            self.polls_left -= 1;
            false
        }
    }
}

/// A management lock.
#[derive(Debug, Clone)]
pub struct Lock {
    pub scope: String,
    pub name: String,
    pub level: String,
    pub notes: Option<String>,
    pub owners: Value,
}

impl Lock {
    pub fn id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Authorization/locks/{}",
            self.scope, self.name
        )
    }

    pub fn to_json(&self) -> Value {
        let mut properties = Map::new();
        properties.insert("level".into(), json!(self.level));
        if let Some(notes) = &self.notes {
            properties.insert("notes".into(), json!(notes));
        }
        if !self.owners.is_null() {
            properties.insert("owners".into(), self.owners.clone());
        }
        json!({
            "id": self.id(),
            "type": "Microsoft.Authorization/locks",
            "name": self.name,
            "properties": properties,
        })
    }
}

impl State {
    pub fn new(tenant: Tenant) -> State {
        let users = tenant
            .users
            .into_iter()
            .map(|seed| UserState {
                sign_in_sessions_valid_from: seed
                    .sign_in_sessions_valid_from
                    .clone()
                    .unwrap_or_else(|| "2025-01-01T00:00:00Z".to_owned()),
                risk_state: if seed.risk_level == "none" {
                    "none".to_owned()
                } else {
                    "atRisk".to_owned()
                },
                force_change_password_next_sign_in: false,
                force_change_password_next_sign_in_with_mfa: false,
                last_password_change: None,
                seed,
            })
            .collect();
        State {
            tenant_id: tenant.tenant.id,
            domains: tenant.tenant.domains,
            apps: tenant.apps,
            managed_identity: tenant.managed_identity,
            users,
            groups: tenant.groups,
            directory_roles: tenant.directory_roles,
            ca_policies: tenant.conditional_access_policies,
            security_alerts: tenant.security_alerts,
            azure: tenant.azure,
            snapshots: Vec::new(),
            operations: Vec::new(),
            locks: Vec::new(),
            workspaces: tenant.log_analytics.workspaces,
            lacework: tenant.lacework,
            lacework_tokens: Vec::new(),
            password_resets: Vec::new(),
            behaviour: tenant.behaviour,
            counters: BTreeMap::new(),
            arm_reads_left: 12000,
            arm_writes_left: 1200,
        }
    }

    /// Counts one effect.
    pub fn bump(&mut self, kind: &str) {
        *self.counters.entry(kind.to_owned()).or_default() += 1;
    }

    /// Finds a user by object id or UPN, case-insensitively as the directory does.
    pub fn user_index(&self, key: &str) -> Option<usize> {
        self.users.iter().position(|u| {
            u.seed.id.eq_ignore_ascii_case(key)
                || u.seed.user_principal_name.eq_ignore_ascii_case(key)
        })
    }

    /// Directory roles a principal holds directly or through role-assignable groups.
    pub fn roles_of(&self, object_id: &str) -> Vec<&tenant::DirectoryRole> {
        let groups: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| {
                g.is_assignable_to_role
                    && g.members.iter().any(|m| m.eq_ignore_ascii_case(object_id))
            })
            .map(|g| g.id.as_str())
            .collect();
        self.directory_roles
            .iter()
            .filter(|r| {
                r.members.iter().any(|m| {
                    m.eq_ignore_ascii_case(object_id)
                        || groups.iter().any(|g| g.eq_ignore_ascii_case(m))
                })
            })
            .collect()
    }

    /// The current state as `GET /_emulator/state` shows it.
    pub fn view(&self) -> Value {
        json!({
            "tenant_id": self.tenant_id,
            "users": self.users.iter().map(|u| json!({
                "id": u.seed.id,
                "userPrincipalName": u.seed.user_principal_name,
                "displayName": u.seed.display_name,
                "accountEnabled": u.seed.account_enabled,
                "userType": u.seed.user_type,
                "onPremisesSyncEnabled": u.seed.on_premises_sync_enabled,
                "signInSessionsValidFromDateTime": u.sign_in_sessions_valid_from,
                "perUserMfaState": u.seed.per_user_mfa_state,
                "riskLevel": u.seed.risk_level,
                "riskState": u.risk_state,
                "forceChangePasswordNextSignIn": u.force_change_password_next_sign_in,
                "lastPasswordChangeDateTime": u.last_password_change,
            })).collect::<Vec<_>>(),
            "groups": self.groups.iter().map(|g| json!({
                "id": g.id, "displayName": g.display_name, "members": g.members,
            })).collect::<Vec<_>>(),
            "directory_roles": self.directory_roles.iter().map(|r| json!({
                "id": r.id, "displayName": r.display_name,
                "roleTemplateId": r.role_template_id, "members": r.members,
            })).collect::<Vec<_>>(),
            "conditional_access_policies": self.ca_policies.iter().map(|p| json!({
                "id": p.id, "displayName": p.display_name, "state": p.state,
                "includeGroups": p.include_groups, "excludeUsers": p.exclude_users,
                "grantControls": p.grant_controls,
            })).collect::<Vec<_>>(),
            "snapshots": self.snapshots.iter().map(|s| s.body.clone()).collect::<Vec<_>>(),
            "locks": self.locks.iter().map(Lock::to_json).collect::<Vec<_>>(),
            "role_assignments": self.azure.role_assignments.iter()
                .map(role_assignment_json).collect::<Vec<_>>(),
            "counters": self.counters,
        })
    }
}

/// A role assignment as ARM returns it.
pub fn role_assignment_json(ra: &tenant::RoleAssignment) -> Value {
    let subscription = ra.scope.split('/').nth(2).unwrap_or_default().to_owned();
    let created = ra
        .created_on
        .clone()
        .unwrap_or_else(|| "2025-01-01T00:00:00.0000000Z".to_owned());
    json!({
        "id": format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", ra.scope, ra.name),
        "name": ra.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!(
                "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}",
                ra.role_definition
            ),
            "principalId": ra.principal_id,
            "principalType": ra.principal_type,
            "scope": ra.scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": created,
            "updatedOn": created,
            "createdBy": null,
            "updatedBy": null,
            "delegatedManagedIdentityResourceId": null,
            "description": null,
        }
    })
}
