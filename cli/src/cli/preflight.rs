//! `riposte preflight`: before any incident needs it, compare the permissions the playbooks'
//! actions need with what riposte's identity holds — the Graph application permissions in its
//! token's `roles` claim, and the directory roles of its service principal.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use super::Format;
use riposte::actions;
use riposte::config::Config;
use riposte::connectors::{Api, LookupOutcome};

#[derive(Debug, Serialize)]
struct Check {
    kind: &'static str,
    permission: String,
    /// Actions that need it.
    needed_by: BTreeSet<String>,
    status: &'static str,
    note: Option<String>,
}

pub async fn run(config: &Config, format: Format) -> anyhow::Result<ExitCode> {
    let app = riposte::app::App::new(config.clone())?;
    let playbooks = app.playbooks()?;
    // What the playbooks' actions need, and which actions need it.
    let mut needed: BTreeMap<(&'static str, String), BTreeSet<String>> = BTreeMap::new();
    for p in playbooks {
        for step in &p.steps {
            let Some(action) = actions::find(&step.uses) else {
                continue;
            };
            let perms = action.info().permissions;
            for g in perms.graph {
                needed
                    .entry(("graph", g.to_string()))
                    .or_default()
                    .insert(step.uses.clone());
            }
            for r in perms.entra_roles {
                needed
                    .entry(("entra_role", r.to_string()))
                    .or_default()
                    .insert(step.uses.clone());
            }
            for r in perms.azure_rbac {
                needed
                    .entry(("azure_rbac", r.to_string()))
                    .or_default()
                    .insert(step.uses.clone());
            }
        }
    }

    let connectors = &app.connectors;
    let (granted, roles, identity_note) = if connectors.has_azure_credentials() {
        let claims = connectors.token_claims(Api::Graph).await?;
        let granted: BTreeSet<String> = claims["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let roles = own_directory_roles(connectors, config)
            .await
            .unwrap_or_default();
        (Some(granted), Some(roles), None)
    } else {
        (
            None,
            None,
            Some("no Azure credentials configured: showing what is needed only".to_string()),
        )
    };

    let mut checks = Vec::new();
    for ((kind, permission), needed_by) in needed {
        let (status, note) = match kind {
            "graph" => {
                // "X (only when …)": the permission, and when it is needed.
                let (name, condition) = split_condition(&permission);
                match &granted {
                    Some(g) if satisfied(&name, g) => ("ok", None),
                    Some(_) if condition.is_some() => (
                        "conditional",
                        condition.map(|c| format!("needed for {c}; not granted")),
                    ),
                    Some(_) => (
                        "missing",
                        Some(
                            "grant it as an application permission and give admin consent"
                                .to_string(),
                        ),
                    ),
                    None => ("unknown", condition),
                }
            }
            "entra_role" => {
                let (name, condition) = split_condition(&permission);
                match &roles {
                    Some(held)
                        if held
                            .iter()
                            .any(|r| r == &name || r == "Global Administrator") =>
                    {
                        ("ok", None)
                    }
                    Some(_) if condition.is_some() => {
                        ("conditional", condition.map(|c| format!("needed {c}")))
                    }
                    Some(_) => (
                        "missing",
                        Some(format!(
                            "assign the {name} role to riposte's service principal"
                        )),
                    ),
                    None => ("unknown", condition),
                }
            }
            _ => (
                "check",
                Some(
                    "grant on the scopes riposte acts on (Azure RBAC is not read by preflight)"
                        .to_string(),
                ),
            ),
        };
        checks.push(Check {
            kind,
            permission,
            needed_by,
            status,
            note,
        });
    }
    let missing = checks.iter().filter(|c| c.status == "missing").count();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "granted_graph_permissions": granted,
                "directory_roles": roles,
                "checks": checks,
                "missing": missing,
            }))?
        ),
        Format::Table => {
            if let Some(note) = identity_note {
                println!("note: {note}");
            }
            if let Some(r) = &roles {
                println!(
                    "riposte's directory roles: {}",
                    if r.is_empty() {
                        "none".to_string()
                    } else {
                        r.join(", ")
                    }
                );
            }
            for c in &checks {
                println!(
                    "{:11} {:10} {}  (for {}){}",
                    c.status.to_uppercase(),
                    c.kind,
                    c.permission,
                    c.needed_by.iter().cloned().collect::<Vec<_>>().join(", "),
                    c.note
                        .as_ref()
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                );
            }
            println!("\n{missing} missing");
        }
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `"Name (condition)"` → the name and the condition.
fn split_condition(permission: &str) -> (String, Option<String>) {
    match permission.split_once(" (") {
        Some((n, c)) => (n.to_string(), Some(c.trim_end_matches(')').to_string())),
        None => (permission.to_string(), None),
    }
}

/// Whether a granted permission set covers `needed` (a broader grant covers a narrower need).
fn satisfied(needed: &str, granted: &BTreeSet<String>) -> bool {
    if granted.contains(needed) {
        return true;
    }
    let broader: &[&str] = match needed {
        n if n.starts_with("User.") || n.starts_with("User-") => {
            &["User.ReadWrite.All", "Directory.ReadWrite.All"]
        }
        n if n.starts_with("GroupMember.") => &["Group.ReadWrite.All", "Directory.ReadWrite.All"],
        n if n.ends_with(".Read.All") || n.ends_with(".Read.Directory") => {
            &["Directory.Read.All", "Directory.ReadWrite.All"]
        }
        _ => &["Directory.ReadWrite.All"],
    };
    broader.iter().any(|b| granted.contains(*b))
        || (needed.ends_with(".Read.All")
            && granted.contains(&needed.replace(".Read.All", ".ReadWrite.All")))
}

/// The display names of the directory roles riposte's own service principal holds.
async fn own_directory_roles(
    connectors: &riposte::connectors::Connectors,
    config: &Config,
) -> anyhow::Result<Vec<String>> {
    let Some(client_id) = &config.azure.client_id else {
        return Ok(Vec::new());
    };
    let base = connectors.endpoints().graph_v1();
    let lookup = connectors.read_only();
    let sp = match riposte::connectors::Lookup::get(
        &lookup,
        Api::Graph,
        &format!(
            "{base}/servicePrincipals(appId='{}')?$select=id",
            actions::encode::segment(client_id)
        ),
    )
    .await?
    {
        LookupOutcome::Found(v) => v,
        _ => return Ok(Vec::new()),
    };
    let id = sp["id"].as_str().unwrap_or_default();
    let roles = connectors
        .send(&actions::entra::directory_roles_request(
            &format!("{base}/servicePrincipals/{}", actions::encode::segment(id)),
            "displayName,roleTemplateId",
        ))
        .await?;
    Ok(roles.body["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["displayName"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broader_grants_cover_narrower_needs() {
        let g: BTreeSet<String> = [
            "Directory.Read.All".to_string(),
            "User.ReadWrite.All".to_string(),
        ]
        .into();
        assert!(satisfied("User.Read.All", &g));
        assert!(satisfied("User.EnableDisableAccount.All", &g));
        assert!(satisfied("RoleManagement.Read.Directory", &g));
        assert!(!satisfied("GroupMember.ReadWrite.All", &g));
    }
}
