//! The README's reference sections and the shipped schema are checked against the code, so
//! they cannot drift.

use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("README.md"))
        .unwrap()
}

/// The text of the README section under `## {title}`.
fn section(title: &str) -> String {
    let text = readme();
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has no `## {title}` section"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map(|e| e + 3).unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The fenced code blocks of a section with the given info string.
fn code_blocks(section: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn configuration_reference_parses_as_configuration() {
    let blocks = code_blocks(&section("Configuration"), "toml");
    assert_eq!(blocks.len(), 1, "one TOML block documents every key");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riposte.toml");
    std::fs::write(&file, &blocks[0]).unwrap();
    riposte::config::Config::load(Some(&file)).expect("the README's configuration must load");
}

#[test]
fn every_command_is_documented_and_every_documented_command_exists() {
    let cli = section("Command line");
    // The commands as the binary itself lists them (`riposte --help`).
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() > 10, "{help}");
    for name in &names {
        assert!(
            cli.contains(&format!("`riposte {name}")),
            "README's command line section does not document `riposte {name}`"
        );
    }
    for documented in cli.split("`riposte ").skip(1) {
        let word: String = documented
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(
            names.contains(&word),
            "README documents `riposte {word}`, which does not exist"
        );
    }
}

#[test]
fn every_playbook_key_is_documented() {
    use riposte::playbook::load::{INPUT_KEYS, STEP_KEYS, TOP_KEYS, TRIGGER_KEYS};
    let lang = section("Playbook language");
    for key in TOP_KEYS
        .iter()
        .chain(STEP_KEYS)
        .chain(TRIGGER_KEYS)
        .chain(INPUT_KEYS)
    {
        assert!(
            lang.contains(&format!("`{key}`")) || lang.contains(key),
            "README does not document playbook key `{key}`"
        );
    }
}

#[test]
fn the_readme_example_playbook_is_valid() {
    let blocks = code_blocks(&section("Playbook language"), "yaml");
    assert!(!blocks.is_empty());
    for b in blocks {
        riposte::playbook::load_str(&b, Path::new("README.md")).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_shipped_schema_is_current() {
    let shipped = std::fs::read_to_string(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("schema/playbook.schema.json"),
    )
    .unwrap();
    let current =
        serde_json::to_string_pretty(&riposte::playbook::schema::playbook_schema()).unwrap();
    assert!(
        shipped.trim_end() == current,
        "schema/playbook.schema.json is stale: run `cargo run -- schema > schema/playbook.schema.json`"
    );
}

#[test]
fn the_quickstart_runs_the_same_tests_as_ci() {
    let quick = code_blocks(&section("Quickstart"), "sh");
    assert_eq!(quick.len(), 1);
    let lines: Vec<&str> = quick[0].lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "the quickstart is exactly two commands");
    let ci = std::fs::read_to_string(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(".ci/run"),
    )
    .unwrap();
    assert!(
        ci.lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("echo"))
            .any(|l| l.trim() == lines[1].trim()
                || l.trim().ends_with(&format!(" {}", lines[1].trim()))),
        ".ci/run must call `{}`",
        lines[1]
    );
}

#[test]
fn every_schema_reference_resolves() {
    let schema = riposte::playbook::schema::playbook_schema();
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, c) in m {
                    if k == "$ref" {
                        out.push(c.as_str().unwrap().to_string());
                    } else {
                        refs(c, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&schema, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap().to_string();
        assert!(schema.pointer(&pointer).is_some(), "{r} does not resolve");
    }
}
