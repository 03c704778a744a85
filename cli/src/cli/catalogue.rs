use std::process::ExitCode;

use serde_json::json;

use super::Format;
use riposte::actions;
use riposte::playbook::schema::playbook_schema;

pub fn actions(format: Format) -> anyhow::Result<ExitCode> {
    match format {
        Format::Json => {
            let list: Vec<_> = actions::registry()
                .iter()
                .map(|a| {
                    let info = a.info();
                    json!({
                        "name": info.name,
                        "description": info.description,
                        "effect": info.effect,
                        "permissions": info.permissions,
                        "compensation": info.compensation,
                        "example": info.example,
                        "params": a.params_schema(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Table => {
            for a in actions::registry() {
                let info = a.info();
                println!("{}  ({:?})", info.name, info.effect);
                println!("    {}", info.description);
                let p = info.permissions;
                if !p.graph.is_empty() {
                    println!("    Graph application permissions: {}", p.graph.join(", "));
                }
                if !p.entra_roles.is_empty() {
                    println!("    Entra roles: {}", p.entra_roles.join(", "));
                }
                if !p.azure_rbac.is_empty() {
                    println!("    Azure RBAC: {}", p.azure_rbac.join(", "));
                }
                println!("    undo: {}", info.compensation);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn schema() -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&playbook_schema())?);
    Ok(ExitCode::SUCCESS)
}
