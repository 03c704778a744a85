//! The Rego guard: every `*.rego` of the policy directory (tests excluded), `data.json` beside
//! them, and the `[guardrails]` configuration as `data.riposte.config`, evaluated by regorus.
//!
//! The engine is parsed, analysed and scheduled once at load; each decision clones the
//! prepared engine (shared, reference-counted modules), so a step costs an evaluation, not a
//! compilation, and no evaluation can see another's input. Every failure — a policy error, a
//! missing or malformed decision, the time limit, even a panic inside the engine — becomes a
//! `deny` whose reason is the failure.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::{Value, json};

use super::Guardrails;
use super::{Decision, Guard, PolicyInput, Verdict};

/// The rule riposte asks: `{"decision": "allow" | "deny" | "require_approval", "reasons": [...]}`.
pub const DECISION_RULE: &str = "data.riposte.guardrails.decision";

/// The package that must declare [`DECISION_RULE`].
const DECISION_PACKAGE: &str = "data.riposte.guardrails";

/// How long one evaluation may run before it is cut off and the step denied. Evaluations take
/// tens of microseconds; this bound exists only so a pathological policy cannot stall a run.
pub const EVALUATION_TIME_LIMIT: Duration = Duration::from_millis(250);

/// Why the policies cannot be loaded, with the location to fix.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the policies directory {0} does not exist: in enforce mode riposte does not act without its guardrails (set `policies = \"none\"` to run explicitly unguarded)"
    )]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Data {
        file: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
    #[error("{0} holds no *.rego policy")]
    NoPolicies(PathBuf),
    #[error(
        "no policy in {0} declares `{DECISION_RULE}`, the rule riposte asks; add `decision := {{\"decision\": …, \"reasons\": […]}}` to package riposte.guardrails"
    )]
    NoDecisionRule(PathBuf),
    #[error("the policies in {dir} do not compile: {message}")]
    Invalid { dir: PathBuf, message: String },
}

/// One `test_*` rule's result, as `riposte policy test` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestOutcome {
    pub file: PathBuf,
    /// `data.<package>.<rule>`.
    pub name: String,
    pub passed: bool,
    /// Why a failed test failed (`false`, undefined, or the error).
    pub message: Option<String>,
}

/// Guardrails as Rego. Cheap to ask (one prepared engine, cloned per decision) and `Send + Sync`.
#[derive(Debug, Clone)]
pub struct RegoGuard {
    engine: regorus::Engine,
    files: Vec<PathBuf>,
    principal_cap: u64,
}

impl RegoGuard {
    /// Loads `dir/*.rego` (not `*_test.rego`) and `dir/data.json`, with `guardrails` merged in.
    pub fn load(dir: &Path, guardrails: &Guardrails) -> Result<RegoGuard, PolicyError> {
        let (policies, _tests) = rego_files(dir)?;
        if policies.is_empty() {
            return Err(PolicyError::NoPolicies(dir.to_path_buf()));
        }
        let sources = read_all(&policies)?;
        let data = read_data(dir)?;
        let mut guard = RegoGuard::from_sources(&sources, data, guardrails, dir)?;
        guard.files = policies;
        Ok(guard)
    }

    /// Builds a guard from `(file label, Rego text)` pairs and a data document; `dir` only
    /// names the policies in errors.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        data: Value,
        guardrails: &Guardrails,
        dir: &Path,
    ) -> Result<RegoGuard, PolicyError> {
        let engine = prepared_engine(sources, data, guardrails, dir, true)?;
        Ok(RegoGuard {
            engine,
            files: sources.iter().map(|(p, _)| p.clone()).collect(),
            // The value the policies read as `config.max_principals_per_hour` ([guardrails]
            // always overrides data.json).
            principal_cap: u64::from(guardrails.max_principals_per_hour),
        })
    }

    /// Lowers the evaluation time limit (tests of the limit itself).
    pub fn with_time_limit(mut self, limit: Duration) -> RegoGuard {
        self.engine.set_execution_timer_config(timer(limit));
        self
    }

    /// The policy files loaded.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Decides on a raw input document (what `riposte policy eval --input FILE` reads).
    pub fn decide_document(&self, input: &Value) -> Decision {
        match serde_json::to_string(input) {
            Ok(text) => self.decide_json(&text),
            Err(e) => Decision::deny(format!("guardrail input cannot be encoded: {e}")),
        }
    }

    fn decide_json(&self, input: &str) -> Decision {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let input = regorus::Value::from_json_str(input)
                .map_err(|e| format!("guardrail input cannot be read: {e}"))?;
            let mut engine = self.engine.clone();
            engine.set_input(input);
            engine
                .eval_rule(DECISION_RULE.to_string())
                .map_err(|e| format!("guardrail policy failed closed: {}", one_line(&e)))
        }));
        match outcome {
            Ok(Ok(value)) => decision_from(&value),
            Ok(Err(reason)) => Decision::deny(reason),
            Err(_) => Decision::deny("guardrail policy failed closed: the evaluator panicked"),
        }
    }
}

impl Guard for RegoGuard {
    fn decide(&self, input: &PolicyInput<'_>) -> Decision {
        match serde_json::to_string(input) {
            Ok(text) => self.decide_json(&text),
            Err(e) => Decision::deny(format!("guardrail input cannot be encoded: {e}")),
        }
    }

    fn principal_cap(&self) -> Option<u64> {
        Some(self.principal_cap)
    }
}

/// Reads the decision rule's value; anything but the documented shape is a denial.
fn decision_from(value: &regorus::Value) -> Decision {
    if *value == regorus::Value::Undefined {
        return Decision::deny(format!(
            "guardrail policy failed closed: `{DECISION_RULE}` is undefined for this input"
        ));
    }
    let json = match serde_json::to_value(value) {
        Ok(j) => j,
        Err(e) => return Decision::deny(format!("guardrail policy failed closed: {e}")),
    };
    let verdict = match json.get("decision").and_then(Value::as_str) {
        Some("allow") => Verdict::Allow,
        Some("deny") => Verdict::Deny,
        Some("require_approval") => Verdict::RequireApproval,
        _ => {
            return Decision::deny(format!(
                "guardrail policy failed closed: `{DECISION_RULE}` must be {{\"decision\": \"allow\" | \"deny\" | \"require_approval\", \"reasons\": [...]}}, got {json}"
            ));
        }
    };
    let reasons = match json.get("reasons") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|r| match r {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    Decision {
        decision: verdict,
        reasons,
    }
}

fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(32).expect("non-zero"),
    }
}

/// Parses, loads data and prepares (analyses and schedules) the engine once.
fn prepared_engine(
    sources: &[(PathBuf, String)],
    data: Value,
    guardrails: &Guardrails,
    dir: &Path,
    require_decision: bool,
) -> Result<regorus::Engine, PolicyError> {
    let mut engine = regorus::Engine::new();
    engine.set_execution_timer_config(timer(EVALUATION_TIME_LIMIT));
    let mut declares_decision = false;
    for (path, text) in sources {
        let label = path.display().to_string();
        let package = engine
            .add_policy(label.clone(), text.clone())
            .map_err(|e| syntax_error(path, &e))?;
        if package == DECISION_PACKAGE {
            declares_decision |= engine
                .has_declared_rule_rooted_at(&label, "decision")
                .unwrap_or(false);
        }
    }
    if require_decision && !declares_decision {
        return Err(PolicyError::NoDecisionRule(dir.to_path_buf()));
    }
    let data = merged_data(data, guardrails);
    let data =
        regorus::Value::from_json_str(&data.to_string()).map_err(|e| PolicyError::Invalid {
            dir: dir.to_path_buf(),
            message: one_line(&e),
        })?;
    engine.add_data(data).map_err(|e| PolicyError::Invalid {
        dir: dir.to_path_buf(),
        message: one_line(&e),
    })?;
    if require_decision {
        // Analysis and scheduling happen here, once, instead of on the first decision; errors
        // found now (unsafe variables, recursion) are load errors, not per-step denials.
        engine
            .compile_with_entrypoint(&regorus::Rc::from(DECISION_RULE))
            .map_err(|e| located_or_invalid(dir, &e))?;
    }
    Ok(engine)
}

/// `data.json` with `[guardrails]` under `riposte.config`: the configured limit replaces the
/// file's; break-glass lists are united, so configuration can protect more accounts but never
/// un-protect one the reviewed policy data protects.
pub(crate) fn merged_data(mut data: Value, guardrails: &Guardrails) -> Value {
    if !data.is_object() {
        data = json!({});
    }
    let riposte = data
        .as_object_mut()
        .expect("object")
        .entry("riposte")
        .or_insert_with(|| json!({}));
    if !riposte.is_object() {
        *riposte = json!({});
    }
    let config = riposte
        .as_object_mut()
        .expect("object")
        .entry("config")
        .or_insert_with(|| json!({}));
    if !config.is_object() {
        *config = json!({});
    }
    let config = config.as_object_mut().expect("object");
    let mut break_glass: Vec<Value> = config
        .get("break_glass")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for id in &guardrails.break_glass {
        if !break_glass.iter().any(|b| b.as_str() == Some(id)) {
            break_glass.push(Value::String(id.clone()));
        }
    }
    config.insert("break_glass".into(), Value::Array(break_glass));
    config.insert(
        "max_principals_per_hour".into(),
        json!(guardrails.max_principals_per_hour),
    );
    data
}

/// `(policies, tests)` in `dir`, sorted so loading and reports are stable.
pub(crate) fn rego_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut all: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "rego"))
        .collect();
    all.sort();
    Ok(all.into_iter().partition(|p| !is_test_file(p)))
}

pub(crate) fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_test.rego"))
}

fn read_all(files: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, PolicyError> {
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|t| (p.clone(), t))
                .map_err(|source| PolicyError::Io {
                    path: p.clone(),
                    source,
                })
        })
        .collect()
}

/// `dir/data.json`, or an empty document when there is none.
pub(crate) fn read_data(dir: &Path) -> Result<Value, PolicyError> {
    let path = dir.join("data.json");
    if !path.exists() {
        return Ok(json!({}));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
        path: path.clone(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| PolicyError::Data {
        file: path.clone(),
        line: e.line() as u32,
        column: e.column() as u32,
        message: format!("invalid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(PolicyError::Data {
            file: path,
            line: 1,
            column: 1,
            message: "the data document must be a JSON object".into(),
        });
    }
    Ok(value)
}

/// regorus reports `--> file:line:col`, the source line, a caret and `error: message`; this
/// keeps the location and the message.
fn located(e: &anyhow::Error) -> Option<(PathBuf, u32, u32, String)> {
    let text = e.to_string();
    let loc_line = text.lines().find_map(|l| l.trim().strip_prefix("--> "))?;
    let mut parts = loc_line.rsplitn(3, ':');
    let column = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    let file = PathBuf::from(parts.next()?);
    let message = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .strip_prefix("error: ")
                .unwrap_or(l.trim())
                .to_string()
        })
        .unwrap_or_default();
    Some((file, line, column, message))
}

fn syntax_error(path: &Path, e: &anyhow::Error) -> PolicyError {
    match located(e) {
        Some((_, line, column, message)) => PolicyError::Syntax {
            file: path.to_path_buf(),
            line,
            column,
            message,
        },
        None => PolicyError::Syntax {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: one_line(e),
        },
    }
}

fn located_or_invalid(dir: &Path, e: &anyhow::Error) -> PolicyError {
    match located(e) {
        Some((file, line, column, message)) => PolicyError::Syntax {
            file,
            line,
            column,
            message,
        },
        None => PolicyError::Invalid {
            dir: dir.to_path_buf(),
            message: one_line(e),
        },
    }
}

/// An engine error on one line, for a reason string: location and message, no source excerpt.
fn one_line(e: &anyhow::Error) -> String {
    match located(e) {
        Some((file, line, column, message)) => {
            format!("{}:{line}:{column}: {message}", file.display())
        }
        None => e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A problem `riposte validate` reports for a policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl From<PolicyError> for Problem {
    fn from(e: PolicyError) -> Problem {
        match e {
            PolicyError::Syntax {
                file,
                line,
                column,
                message,
            }
            | PolicyError::Data {
                file,
                line,
                column,
                message,
            } => Problem {
                file,
                line,
                column,
                message,
            },
            PolicyError::Io { ref path, .. } => Problem {
                file: path.clone(),
                line: 1,
                column: 1,
                message: e.to_string(),
            },
            PolicyError::NoPolicies(ref dir)
            | PolicyError::Missing(ref dir)
            | PolicyError::NoDecisionRule(ref dir)
            | PolicyError::Invalid { ref dir, .. } => Problem {
                file: dir.clone(),
                line: 1,
                column: 1,
                message: e.to_string(),
            },
        }
    }
}

/// Checks policy files for `riposte validate`: each file's syntax on its own (so every broken
/// file is reported), then, per directory, that the policies compile together with their
/// data and declare the decision rule.
pub fn check_files(files: &[PathBuf]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut dirs: std::collections::BTreeMap<PathBuf, Vec<(PathBuf, String)>> =
        std::collections::BTreeMap::new();
    let mut broken_dirs = std::collections::BTreeSet::new();
    for file in files {
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(source) => {
                problems.push(
                    PolicyError::Io {
                        path: file.clone(),
                        source,
                    }
                    .into(),
                );
                broken_dirs.insert(dir);
                continue;
            }
        };
        let mut engine = regorus::Engine::new();
        if let Err(e) = engine.add_policy(file.display().to_string(), text.clone()) {
            problems.push(syntax_error(file, &e).into());
            broken_dirs.insert(dir);
            continue;
        }
        if !is_test_file(file) {
            dirs.entry(dir).or_default().push((file.clone(), text));
        }
    }
    for (dir, sources) in dirs {
        let data = match read_data(&dir) {
            Ok(d) => d,
            Err(e) => {
                problems.push(e.into());
                continue;
            }
        };
        if broken_dirs.contains(&dir) {
            continue;
        }
        if let Err(e) = prepared_engine(&sources, data, &Guardrails::default(), &dir, true) {
            let mut p: Problem = e.into();
            if p.file == dir {
                // Name a file, so the location is one an editor can open.
                p.file = sources[0].0.clone();
            }
            problems.push(p);
        }
    }
    problems
}

/// Runs every `test_*` rule of the `*_test.rego` files in `dir` against the policies and data
/// there (with `guardrails` merged, as in production).
pub fn run_tests(dir: &Path, guardrails: &Guardrails) -> Result<Vec<TestOutcome>, PolicyError> {
    let (policies, tests) = rego_files(dir)?;
    let all: Vec<PathBuf> = policies.iter().chain(tests.iter()).cloned().collect();
    let sources = read_all(&all)?;
    let data = read_data(dir)?;
    let mut engine = prepared_engine(&sources, data, guardrails, dir, false)?;
    let mut outcomes = Vec::new();
    for (path, text) in sources.iter().filter(|(p, _)| is_test_file(p)) {
        let Some(package) = package_of(text) else {
            continue;
        };
        for rule in test_rule_names(text) {
            let name = format!("data.{package}.{rule}");
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.eval_rule(name.clone())
            }));
            let (passed, message) = match result {
                Ok(Ok(regorus::Value::Bool(true))) => (true, None),
                Ok(Ok(regorus::Value::Undefined)) => (false, Some("undefined".to_string())),
                Ok(Ok(v)) => (false, Some(format!("gave {v}"))),
                Ok(Err(e)) => (false, Some(one_line(&e))),
                Err(_) => (false, Some("the evaluator panicked".to_string())),
            };
            outcomes.push(TestOutcome {
                file: path.clone(),
                name,
                passed,
                message,
            });
        }
    }
    Ok(outcomes)
}

/// `riposte.guardrails_test` from `package riposte.guardrails_test`.
fn package_of(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("package ")
            .map(|p| p.trim().to_string())
    })
}

/// Rule heads at the start of a line named `test_…`, once each (a test may have several bodies).
fn test_rule_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"package riposte.guardrails
import rego.v1
deny contains "nope" if input.x == 1
decision := {"decision": "deny", "reasons": sort(deny)} if count(deny) > 0
decision := {"decision": "allow", "reasons": []} if count(deny) == 0
"#;

    fn guard(text: &str) -> Result<RegoGuard, PolicyError> {
        RegoGuard::from_sources(
            &[(PathBuf::from("p.rego"), text.to_string())],
            json!({}),
            &Guardrails::default(),
            Path::new("policies"),
        )
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_guard_is_shareable_between_tasks() {
        assert_send_sync::<RegoGuard>();
    }

    #[test]
    fn a_working_policy_decides() {
        let g = guard(OK).unwrap();
        assert_eq!(g.decide_document(&json!({"x": 1})), Decision::deny("nope"));
        assert_eq!(g.decide_document(&json!({"x": 2})).decision, Verdict::Allow);
    }

    #[test]
    fn a_syntax_error_is_located() {
        let e = guard("package riposte.guardrails\n\ndecision := {\n").unwrap_err();
        match e {
            PolicyError::Syntax { file, line, .. } => {
                assert_eq!(file, PathBuf::from("p.rego"));
                assert!(line >= 3, "{line}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_missing_decision_rule_is_a_load_error() {
        let e = guard("package riposte.guardrails\nallow := true\n").unwrap_err();
        assert!(matches!(e, PolicyError::NoDecisionRule(_)), "{e}");
        let e = guard("package other\ndecision := {}\n").unwrap_err();
        assert!(matches!(e, PolicyError::NoDecisionRule(_)), "{e}");
    }

    #[test]
    fn an_undefined_decision_fails_closed() {
        let g = guard(
            "package riposte.guardrails\ndecision := {\"decision\": \"allow\", \"reasons\": []} if input.ok\n",
        )
        .unwrap();
        let d = g.decide_document(&json!({}));
        assert_eq!(d.decision, Verdict::Deny);
        assert!(d.reasons[0].contains("undefined"), "{d:?}");
    }

    #[test]
    fn a_malformed_decision_fails_closed() {
        let g =
            guard("package riposte.guardrails\ndecision := {\"decision\": \"maybe\"}\n").unwrap();
        let d = g.decide_document(&json!({}));
        assert_eq!(d.decision, Verdict::Deny);
        assert!(d.reasons[0].contains("maybe"), "{d:?}");
    }

    #[test]
    fn a_runtime_error_fails_closed() {
        // Two complete definitions giving different values: a conflict at evaluation time.
        let g = guard(
            "package riposte.guardrails\ndecision := {\"decision\": \"allow\", \"reasons\": []} if input.a\ndecision := {\"decision\": \"deny\", \"reasons\": []} if input.b\n",
        )
        .unwrap();
        assert_eq!(
            g.decide_document(&json!({"a": true})).decision,
            Verdict::Allow
        );
        let d = g.decide_document(&json!({"a": true, "b": true}));
        assert_eq!(d.decision, Verdict::Deny);
        assert!(
            d.reasons[0].starts_with("guardrail policy failed closed"),
            "{d:?}"
        );
    }

    #[test]
    fn an_evaluation_past_the_time_limit_fails_closed() {
        let g = guard(
            "package riposte.guardrails\nn := count([1 | some x in numbers.range(1, 5000); some y in numbers.range(1, 5000)])\ndecision := {\"decision\": \"allow\", \"reasons\": [n]}\n",
        )
        .unwrap()
        .with_time_limit(Duration::from_millis(5));
        let d = g.decide_document(&json!({}));
        assert_eq!(d.decision, Verdict::Deny, "{d:?}");
        assert!(d.reasons[0].contains("time limit"), "{d:?}");
    }

    #[test]
    fn configuration_extends_break_glass_and_sets_the_limit() {
        let data =
            json!({"riposte": {"config": {"break_glass": ["a"], "max_principals_per_hour": 3}}});
        let g = Guardrails {
            break_glass: vec!["b".into(), "a".into()],
            max_principals_per_hour: 7,
        };
        let merged = merged_data(data, &g);
        assert_eq!(
            merged["riposte"]["config"]["break_glass"],
            json!(["a", "b"])
        );
        assert_eq!(merged["riposte"]["config"]["max_principals_per_hour"], 7);
    }

    #[test]
    fn test_rules_are_found_once_each() {
        let text = "package x_test\ntest_a if true\ntest_a if false\n  test_not_top if true\ntest_b := true\n";
        assert_eq!(test_rule_names(text), vec!["test_a", "test_b"]);
        assert_eq!(package_of(text).as_deref(), Some("x_test"));
    }
}
