//! ARCHITECTURE.md's invariants, held by walking the sources. Each test names the invariant
//! it holds; ARCHITECTURE.md names the test. Behavioural invariants (a failed journal write
//! sends nothing, the planner cannot mutate) have their tests beside the behaviour.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file of the core crate, its production part only: comments and the
/// `#[cfg(test)]` module at its end are left out.
struct Source {
    /// Path under `src/`, e.g. `engine/lifecycle.rs`.
    rel: String,
    code: String,
}

impl Source {
    /// The top-level part the file belongs to: `engine`, `config`, `lib`, …
    fn part(&self) -> &str {
        let first = self.rel.split('/').next().unwrap_or_default();
        first.strip_suffix(".rs").unwrap_or(first)
    }

    fn mentions(&self, word: &str) -> bool {
        self.code.match_indices(word).any(|(i, _)| {
            let before = self.code[..i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    }
}

fn sources_in(dir: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push(Source {
                    rel: path
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                    code: production_code(&text),
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

fn sources() -> Vec<Source> {
    sources_in(&root().join("src"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text before a file's `#[cfg(test)]` module, without `//` comment lines.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn offenders(allowed: &[&str], word: &str) -> Vec<String> {
    sources()
        .iter()
        .filter(|s| !allowed.iter().any(|a| s.rel.starts_with(a)))
        .filter(|s| s.mentions(word))
        .map(|s| s.rel.clone())
        .collect()
}

/// Invariant: the engine never builds a request; it sends the plan's.
#[test]
fn the_engine_builds_no_requests() {
    let built: Vec<String> = sources()
        .iter()
        .filter(|s| s.part() == "engine")
        .filter(|s| {
            s.code.contains("ApiRequest {")
                || s.code.contains("ApiRequest::get")
                || s.code.contains("ApiRequest::new")
                || s.code.contains("ApiRequest::with")
        })
        .map(|s| s.rel.clone())
        .collect();
    assert!(built.is_empty(), "the engine builds requests in {built:?}");
}

/// Invariant: every outbound HTTP call goes through `connectors/`.
#[test]
fn reqwest_only_in_connectors() {
    let found = offenders(&["connectors/"], "reqwest");
    assert!(found.is_empty(), "reqwest outside connectors/: {found:?}");
}

/// Invariant: charts are drawn in `report/` only (the review page calls `report::chart_svg`).
#[test]
fn plotters_only_in_the_report() {
    let found = offenders(&["report/"], "plotters");
    assert!(found.is_empty(), "plotters outside report/: {found:?}");
}

/// Invariant: no SQL and no database driver outside `store/`.
#[test]
fn sqlx_and_sql_only_in_the_store() {
    let found = offenders(&["store/"], "sqlx");
    assert!(found.is_empty(), "sqlx outside store/: {found:?}");
    let sql: Vec<String> = sources()
        .iter()
        .filter(|s| s.part() != "store")
        .filter(|s| {
            [
                "SELECT ",
                "INSERT INTO",
                "UPDATE runs",
                "DELETE FROM",
                "CREATE TABLE",
            ]
            .iter()
            .any(|k| s.code.contains(k))
        })
        .map(|s| s.rel.clone())
        .collect();
    assert!(sql.is_empty(), "SQL outside store/: {sql:?}");
}

/// Invariant: only `server/` knows the HTTP server framework.
#[test]
fn axum_and_hyper_only_in_the_server() {
    for word in ["axum", "hyper"] {
        let found = offenders(&["server/"], word);
        assert!(found.is_empty(), "{word} outside server/: {found:?}");
    }
}

/// Invariant: the emulator is never on a production code path. It is its own crate; the
/// library does not depend on it (only as a dev-dependency, for tests), so no code in `src/`
/// can name it. Only the binary (`cli/`) links it, for `riposte demo` and `riposte emulator`.
#[test]
fn the_library_does_not_depend_on_the_emulator() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap();
    assert!(
        !deps.contains("riposte-emulator"),
        "the library depends on the emulator:\n{deps}"
    );
    let found = offenders(&[], "riposte_emulator");
    assert!(found.is_empty(), "src/ names the emulator: {found:?}");
}

/// The dependencies between the top-level parts of `src/`, as `crate::part` paths show them.
fn part_graph() -> BTreeMap<String, BTreeSet<String>> {
    let all = sources();
    let parts: BTreeSet<String> = all.iter().map(|s| s.part().to_string()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &all {
        let from = s.part().to_string();
        let deps = graph.entry(from.clone()).or_default();
        for (i, _) in s.code.match_indices("crate::") {
            let rest = &s.code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != from && parts.contains(&name) {
                deps.insert(name);
            }
        }
    }
    graph
}

/// Invariant: no circle between parts (`lib` only declares them).
#[test]
fn no_circle_between_parts() {
    let graph = part_graph();
    // Depth-first search with colours; a grey node reached again closes a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        colour.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match colour.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == next).unwrap();
                    let mut circle = path[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, colour, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        colour.insert(node.to_string(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for node in graph.keys().filter(|n| n.as_str() != "lib") {
        if colour.get(node.as_str()).copied().unwrap_or(0) == 0
            && let Some(circle) = visit(node, &graph, &mut colour, &mut Vec::new())
        {
            panic!("a circle between parts: {}", circle.join(" → "));
        }
    }
}

/// The flow of the design, in the graph: nothing below reaches back up to what wires it.
#[test]
fn configuration_and_wiring_sit_on_top() {
    let graph = part_graph();
    for (part, deps) in &graph {
        if ["cli", "app", "lib", "main"].contains(&part.as_str()) {
            continue;
        }
        for top in ["cli", "app"] {
            assert!(!deps.contains(top), "{part} depends on {top}");
        }
        if part != "config" {
            assert!(
                !deps.contains("config"),
                "{part} depends on config: take the settings of your own section instead"
            );
        }
    }
    for leaf in ["digest", "mode", "text"] {
        assert!(
            graph.get(leaf).is_none_or(|d| d.is_empty()),
            "{leaf} must stay a leaf: {:?}",
            graph.get(leaf)
        );
    }
}

/// Invariant: the flow points one way. `connectors` knows nothing of riposte's own parts,
/// `alert` only the connectors it enriches with, `playbook` no planning, engine or store,
/// `plan` no engine, store or server, and the store no engine or playbooks.
#[test]
fn the_flow_points_one_way() {
    let graph = part_graph();
    let may: &[(&str, &[&str])] = &[
        ("connectors", &[]),
        ("alert", &["connectors"]),
        ("actions", &["alert", "connectors", "text"]),
        ("playbook", &["actions", "alert", "text"]),
        ("policy", &["actions", "alert"]),
        ("store", &["digest", "mode", "text"]),
        (
            "plan",
            &[
                "actions",
                "alert",
                "connectors",
                "mode",
                "playbook",
                "policy",
                "text",
            ],
        ),
        // The incident report reads engine and store records (and the plan and alert they
        // hold); the server and the CLI call it.
        ("report", &["actions", "alert", "engine", "plan", "store"]),
        // `connectors` only for the review page's sign-in (see the test below).
        (
            "server",
            &["connectors", "digest", "engine", "report", "store"],
        ),
    ];
    for (part, allowed) in may {
        let extra: Vec<&String> = graph
            .get(*part)
            .into_iter()
            .flatten()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "{part} depends on {extra:?}");
    }
}

/// Invariant: in `server`, only the sign-in client (`server/oidc.rs`) uses `connectors`: it
/// reads the identity platform's documents and redeems codes, and an outbound call goes
/// through the one HTTP client like every other. The rest of `server` only maps HTTP.
#[test]
fn only_the_sign_in_client_of_the_server_uses_connectors() {
    let found: Vec<String> = sources()
        .iter()
        .filter(|s| s.part() == "server" && s.rel != "server/oidc.rs")
        .filter(|s| s.code.contains("crate::connectors"))
        .map(|s| s.rel.clone())
        .collect();
    assert!(found.is_empty(), "server files using connectors: {found:?}");
}

/// Invariant: no source file over 1,000 lines of production code.
#[test]
fn no_file_over_a_thousand_lines() {
    let long: Vec<(String, usize)> = sources()
        .iter()
        .map(|s| (s.rel.clone(), s.code.lines().count()))
        .filter(|(_, n)| *n > 1000)
        .collect();
    assert!(long.is_empty(), "files over 1,000 lines: {long:?}");
}

/// Invariant: an action is one type behind one trait, registered in one list. Every action
/// file is named in `actions::registry`.
#[test]
fn every_action_file_is_registered_in_the_one_list() {
    let registry = std::fs::read_to_string(root().join("src/actions/mod.rs")).unwrap();
    let mut missing = Vec::new();
    for group in ["entra", "arm", "evidence", "notify"] {
        let dir = root().join("src/actions").join(group);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            let Some(module) = name.strip_suffix(".rs") else {
                continue;
            };
            if module == "mod" {
                continue;
            }
            if !registry.contains(&format!("{group}::{module}::")) {
                missing.push(format!("{group}/{name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "action files not in the registry: {missing:?}"
    );
}

/// The walker itself: a mention inside a comment or a test module does not count, and a
/// word inside another word does not either.
#[test]
fn the_walker_reads_production_code_only() {
    let code = production_code(
        "use a;\n// reqwest here\nfn f() {}\n#[cfg(test)]\nmod tests { use reqwest; }\n",
    );
    let s = Source {
        rel: "engine/x.rs".into(),
        code,
    };
    assert!(!s.mentions("reqwest"));
    assert!(s.mentions("fn"));
    let s = Source {
        rel: "engine/x.rs".into(),
        code: "let my_reqwest = 1;".into(),
    };
    assert!(!s.mentions("reqwest"));
    assert_eq!(s.part(), "engine");
}
