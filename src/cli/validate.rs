use std::path::PathBuf;
use std::process::ExitCode;

use super::Format;
use crate::config::Config;
use crate::playbook;

pub fn run(config: &Config, paths: Vec<PathBuf>, format: Format) -> anyhow::Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![config.playbooks.clone()]
    } else {
        paths
    };
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        anyhow::bail!("{} does not exist", missing.display());
    }
    let files = playbook::playbook_files(&paths);
    let (playbooks, diags) = playbook::load_all(&paths);
    match format {
        Format::Json => {
            let out: Vec<_> = diags
                .iter()
                .map(|d| serde_json::json!({"file": d.file, "line": d.pos.line, "column": d.pos.column, "message": d.message}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"files": files.len(), "playbooks": playbooks.len(), "problems": out})
                )?
            );
        }
        Format::Table => {
            for d in &diags {
                println!("{d}");
            }
            if diags.is_empty() {
                println!(
                    "{} playbook(s) in {} file(s): no problems",
                    playbooks.len(),
                    files.len()
                );
            } else {
                eprintln!("{} problem(s) in {} file(s)", diags.len(), files.len());
            }
        }
    }
    Ok(if diags.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
