use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Format;
use riposte::config::Config;
use riposte::playbook::load::Diagnostic;
use riposte::playbook::yaml::Pos;
use riposte::playbook::{self};
use riposte::policy;

pub fn run(config: &Config, paths: Vec<PathBuf>, format: Format) -> anyhow::Result<ExitCode> {
    let paths = if paths.is_empty() {
        // The policies directory is optional (no directory: riposte runs unguarded and says so).
        let mut default = vec![config.playbooks.clone()];
        if config.policies.is_dir() {
            default.push(config.policies.clone());
        }
        default
    } else {
        paths
    };
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        anyhow::bail!("{} does not exist", missing.display());
    }
    let files = playbook::playbook_files(&paths);
    let (playbooks, mut diags) = playbook::load_all(&paths);
    let policy_files = rego_files(&paths);
    diags.extend(
        policy::check_files(&policy_files)
            .into_iter()
            .map(|p| Diagnostic {
                file: p.file,
                pos: Pos {
                    line: p.line,
                    column: p.column,
                },
                message: p.message,
            }),
    );
    match format {
        Format::Json => {
            let out: Vec<_> = diags
                .iter()
                .map(|d| serde_json::json!({"file": d.file, "line": d.pos.line, "column": d.pos.column, "message": d.message}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"files": files.len(), "playbooks": playbooks.len(), "policy_files": policy_files.len(), "problems": out})
                )?
            );
        }
        Format::Table => {
            for d in &diags {
                println!("{d}");
            }
            let total = files.len() + policy_files.len();
            if diags.is_empty() {
                println!(
                    "{} playbook(s) and {} policy file(s) in {} file(s): no problems",
                    playbooks.len(),
                    policy_files.len(),
                    total
                );
            } else {
                eprintln!("{} problem(s) in {} file(s)", diags.len(), total);
            }
        }
    }
    Ok(if diags.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every `*.rego` under `paths` (files as given, directories walked), sorted.
fn rego_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rego") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else if p.extension().is_some_and(|e| e == "rego") {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}
