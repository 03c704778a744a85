//! Playbooks: the YAML model, a loader that keeps source positions, validation,
//! expressions and the JSON Schema.

mod checks;
pub mod expr;
pub mod load;
pub mod model;
pub mod schema;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use checks::parse_duration;
pub use load::{Diagnostic, Diagnostics, load_file, load_str};
pub use model::Playbook;

/// Playbook files under `paths` (files as given; directories walked for `*.yaml`/`*.yml`),
/// sorted so output is stable.
pub fn playbook_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}

/// Loads every playbook under `paths`; problems from all files are returned together, plus
/// one for each name used by two files.
pub fn load_all(paths: &[PathBuf]) -> (Vec<Playbook>, Vec<Diagnostic>) {
    let mut playbooks: Vec<Playbook> = Vec::new();
    let mut diags = Vec::new();
    for file in playbook_files(paths) {
        match load_file(&file) {
            Ok(p) => {
                if let Some(first) = playbooks.iter().find(|q| q.name == p.name) {
                    diags.push(Diagnostic {
                        file: file.clone(),
                        pos: yaml::Pos { line: 1, column: 1 },
                        message: format!(
                            "playbook name `{}` is already used by {}",
                            p.name,
                            first.path.display()
                        ),
                    });
                } else {
                    playbooks.push(p);
                }
            }
            Err(Diagnostics(d)) => diags.extend(d),
        }
    }
    (playbooks, diags)
}
