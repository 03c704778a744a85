//! YAML → [`Playbook`], collecting every problem in one pass, each with its position.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::checks::{ancestors, parse_duration, schema_mismatch, valid_id, valid_name};
use sha2::{Digest, Sha256};

use super::expr::{Template, TemplateError, referenced_paths};
use super::model::{Input, InputType, OnError, Param, Playbook, Retry, Stage, Step, Trigger};
use super::yaml::{self, Node, NodeKind, Pos};
use crate::actions;
use crate::alert::{Severity, Source};

/// One problem in one file, printed as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.column,
            self.message
        )
    }
}

/// Every problem found in a playbook, in source order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// Loads and checks a playbook file.
pub fn load_file(path: &Path) -> Result<Playbook, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            pos: Pos { line: 1, column: 1 },
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    load_str(&text, path)
}

/// Loads and checks playbook text; `path` names it in messages and anchors relative files.
pub fn load_str(text: &str, path: &Path) -> Result<Playbook, Diagnostics> {
    let mut cx = Loader {
        file: path.to_path_buf(),
        lines: text.lines().collect(),
        diags: Vec::new(),
    };
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            cx.error(e.pos, format!("invalid YAML: {}", e.message));
            return Err(cx.finish());
        }
    };
    let playbook = cx.playbook(&root, text);
    if cx.diags.is_empty()
        && let Some(p) = playbook
    {
        return Ok(p);
    }
    Err(cx.finish())
}

pub const TOP_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "owner",
    "stage",
    "on",
    "inputs",
    "steps",
    "outputs",
];
pub const STEP_KEYS: &[&str] = &[
    "id", "name", "uses", "with", "if", "needs", "for_each", "retry", "timeout", "on_error",
];
pub const TRIGGER_KEYS: &[&str] = &["source", "kind", "title", "min_severity", "if"];
pub const INPUT_KEYS: &[&str] = &["type", "default", "description", "required"];
const RETRY_KEYS: &[&str] = &["attempts", "backoff"];
/// The normalised alert's fields (DESIGN.md §3), as templates may read them.
const ALERT_FIELDS: &[&str] = &[
    "id",
    "source",
    "kind",
    "title",
    "severity",
    "observed_at",
    "principal",
    "resources",
    "operation",
    "source_ip",
    "raw",
    "needs_enrichment",
];
const PRINCIPAL_FIELDS: &[&str] = &["upn", "object_id", "tenant_id", "type"];
const RUN_FIELDS: &[&str] = &["id", "mode", "playbook", "now"];
const STEP_RESULT_FIELDS: &[&str] = &["outputs", "status"];

struct Loader<'t> {
    file: PathBuf,
    lines: Vec<&'t str>,
    diags: Vec<Diagnostic>,
}

/// Where an expression may look: which steps it may read and whether `item` exists.
struct Scope<'a> {
    steps: Option<&'a BTreeSet<String>>,
    all_steps: &'a BTreeSet<String>,
    inputs: &'a BTreeSet<String>,
    has_item: bool,
    /// Who is reading, for messages (`step `suspend``).
    reader: String,
}

impl<'t> Loader<'t> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            pos,
            message: message.into(),
        });
    }

    fn finish(mut self) -> Diagnostics {
        self.diags.sort();
        self.diags.dedup();
        Diagnostics(self.diags)
    }

    fn check_keys(&mut self, node: &Node, allowed: &[&str], what: &str) {
        let Some(entries) = node.entries() else {
            return;
        };
        let mut seen = HashMap::new();
        for (k, _) in entries {
            let Some(key) = k.scalar_text() else {
                self.error(k.pos, format!("{what} keys must be strings"));
                continue;
            };
            if let Some(first) = seen.insert(key.clone(), k.pos) {
                self.error(
                    k.pos,
                    format!("duplicate key `{key}` (first at line {})", first.line),
                );
            }
            if !allowed.contains(&key.as_str()) {
                let hint = crate::text::closest(&key, allowed.iter().copied())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("; expected one of {}", allowed.join(", ")));
                self.error(k.pos, format!("unknown key `{key}` in {what}{hint}"));
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(_) | NodeKind::Float(_) => node.scalar_text(),
            _ => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn playbook(&mut self, root: &Node, text: &str) -> Option<Playbook> {
        if root.entries().is_none() {
            self.error(
                root.pos,
                format!("a playbook must be a mapping, found {}", root.type_name()),
            );
            return None;
        }
        self.check_keys(root, TOP_KEYS, "the playbook");
        let name = match root.get("name") {
            Some(n) => self.string(n, "name"),
            None => {
                self.error(root.pos, "missing required key `name`");
                None
            }
        };
        if let (Some(n), Some(node)) = (&name, root.get("name"))
            && !valid_name(n)
        {
            self.error(
                node.pos,
                format!("name `{n}` must be lower-case letters, digits and `-`"),
            );
        }
        let version = root
            .get("version")
            .and_then(|v| self.string(v, "version"))
            .unwrap_or_else(|| "0".into());
        let description = root
            .get("description")
            .and_then(|v| self.string(v, "description"));
        let owner = root.get("owner").and_then(|v| self.string(v, "owner"));
        let stage = match root.get("stage") {
            None => Stage::Live,
            Some(n) => match n.as_str() {
                Some("live") => Stage::Live,
                Some("trial") => Stage::Trial,
                _ => {
                    self.error(n.pos, "`stage` must be `live` or `trial`");
                    Stage::Live
                }
            },
        };
        let inputs = root
            .get("inputs")
            .map(|n| self.inputs(n))
            .unwrap_or_default();
        let input_names: BTreeSet<String> = inputs.keys().cloned().collect();
        let triggers = root
            .get("on")
            .map(|n| self.triggers(n, &input_names))
            .unwrap_or_default();
        let steps = match root.get("steps") {
            Some(n) => self.steps(n, &input_names),
            None => {
                self.error(root.pos, "missing required key `steps`");
                Vec::new()
            }
        };
        let all_steps: BTreeSet<String> = steps.iter().map(|s| s.id.clone()).collect();
        let outputs = match root.get("outputs") {
            None => Vec::new(),
            Some(n) => self.outputs(n, &all_steps, &input_names),
        };
        Some(Playbook {
            name: name?,
            version,
            description,
            owner,
            stage,
            triggers,
            inputs,
            steps,
            outputs,
            path: self.file.clone(),
            text: text.to_string(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    fn inputs(&mut self, node: &Node) -> BTreeMap<String, Input> {
        let mut out = BTreeMap::new();
        let Some(entries) = node.entries() else {
            self.error(
                node.pos,
                "`inputs` must be a mapping of input name to its type",
            );
            return out;
        };
        for (k, v) in entries {
            let Some(name) = k.scalar_text() else {
                continue;
            };
            if !valid_id(&name) {
                self.error(k.pos, format!("input name `{name}` must be snake_case"));
            }
            // `name: string` is shorthand for `name: {type: string}`.
            let (type_node, spec) = match &v.kind {
                NodeKind::Str(_) => (Some(v), None),
                NodeKind::Map(_) => {
                    self.check_keys(v, INPUT_KEYS, "an input");
                    (v.get("type"), Some(v))
                }
                _ => {
                    self.error(v.pos, "an input is a type name or a mapping with `type`");
                    continue;
                }
            };
            let kind = match type_node.and_then(|t| t.as_str().map(|s| (t, s))) {
                Some((t, s)) => InputType::parse(s).unwrap_or_else(|| {
                    self.error(
                        t.pos,
                        format!(
                            "unknown input type `{s}`; expected one of {}",
                            InputType::NAMES.join(", ")
                        ),
                    );
                    InputType::String
                }),
                None => {
                    self.error(v.pos, format!("input `{name}` needs a `type`"));
                    InputType::String
                }
            };
            let default = spec.and_then(|s| s.get("default")).map(|d| {
                let value = d.to_json();
                if !kind.accepts(&value) {
                    self.error(
                        d.pos,
                        format!("default of `{name}` must be a {}", kind.name()),
                    );
                }
                value
            });
            let description = spec
                .and_then(|s| s.get("description"))
                .and_then(|d| self.string(d, "description"));
            let required = match spec.and_then(|s| s.get("required")) {
                Some(r) => match r.kind {
                    NodeKind::Bool(b) => b,
                    _ => {
                        self.error(r.pos, "`required` must be true or false");
                        false
                    }
                },
                None => default.is_none(),
            };
            out.insert(
                name,
                Input {
                    kind,
                    default,
                    description,
                    required,
                },
            );
        }
        out
    }

    fn triggers(&mut self, node: &Node, inputs: &BTreeSet<String>) -> Vec<Trigger> {
        let items: Vec<&Node> = match &node.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Map(_) => vec![node],
            _ => {
                self.error(node.pos, "`on` must be a trigger or a list of triggers");
                return Vec::new();
            }
        };
        let no_steps = BTreeSet::new();
        let mut out = Vec::new();
        for t in items {
            if t.entries().is_none() {
                self.error(t.pos, "a trigger must be a mapping");
                continue;
            }
            self.check_keys(t, TRIGGER_KEYS, "a trigger");
            let source = t.get("source").and_then(|s| {
                let name = s.as_str().unwrap_or_default();
                let parsed = Source::parse(name);
                if parsed.is_none() {
                    let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
                    self.error(
                        s.pos,
                        format!(
                            "unknown source `{name}`; expected one of {}",
                            names.join(", ")
                        ),
                    );
                }
                parsed
            });
            let min_severity = t.get("min_severity").and_then(|s| {
                let name = s.as_str().unwrap_or_default();
                let parsed = Severity::NAMES
                    .contains(&name)
                    .then(|| Severity::parse_loose(name))
                    .flatten();
                if parsed.is_none() {
                    self.error(
                        s.pos,
                        format!(
                            "unknown severity `{name}`; expected one of {}",
                            Severity::NAMES.join(", ")
                        ),
                    );
                }
                parsed
            });
            let kind = t.get("kind").and_then(|k| self.string(k, "kind"));
            let title = t.get("title").and_then(|k| self.string(k, "title"));
            let scope = Scope {
                steps: Some(&no_steps),
                all_steps: &no_steps,
                inputs,
                has_item: false,
                reader: "a trigger".into(),
            };
            let condition = t.get("if").and_then(|c| self.condition(c, &scope));
            out.push(Trigger {
                source,
                kind,
                title,
                min_severity,
                condition,
            });
        }
        out
    }

    fn steps(&mut self, node: &Node, inputs: &BTreeSet<String>) -> Vec<Step> {
        let Some(items) = node.items() else {
            self.error(node.pos, "`steps` must be a list");
            return Vec::new();
        };
        if items.is_empty() {
            self.error(node.pos, "`steps` is empty");
        }
        // First pass: ids and needs, so references can be checked against the whole graph.
        let mut ids: HashMap<String, Pos> = HashMap::new();
        for item in items {
            if let Some(idn) = item.get("id")
                && let Some(id) = idn.scalar_text()
            {
                if let Some(first) = ids.get(&id) {
                    let line = first.line;
                    self.error(
                        idn.pos,
                        format!("duplicate step id `{id}` (first at line {line})"),
                    );
                } else {
                    ids.insert(id, idn.pos);
                }
            }
        }
        let all: BTreeSet<String> = ids.keys().cloned().collect();
        let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in items {
            let Some(id) = item.get("id").and_then(Node::scalar_text) else {
                continue;
            };
            let list = item
                .get("needs")
                .map(|n| self.needs(n, &id, &all))
                .unwrap_or_default();
            needs.entry(id).or_insert(list);
        }
        self.check_cycles(&needs, &ids);
        let ancestors = ancestors(&needs);

        let mut steps = Vec::new();
        for item in items {
            if item.entries().is_none() {
                self.error(
                    item.pos,
                    format!("a step must be a mapping, found {}", item.type_name()),
                );
                continue;
            }
            self.check_keys(item, STEP_KEYS, "a step");
            let id = match item.get("id") {
                Some(n) => self.string(n, "id"),
                None => {
                    self.error(item.pos, "step is missing `id`");
                    None
                }
            };
            if let (Some(id), Some(n)) = (&id, item.get("id"))
                && !valid_id(id)
            {
                self.error(
                    n.pos,
                    format!(
                        "step id `{id}` must be snake_case (a-z, 0-9, _), starting with a letter"
                    ),
                );
            }
            let uses_node = item.get("uses");
            let uses = match uses_node {
                Some(n) => self.string(n, "uses"),
                None => {
                    self.error(item.pos, "step is missing `uses`");
                    None
                }
            };
            let action = uses.as_deref().and_then(|u| {
                let found = actions::find(u);
                if found.is_none() {
                    let hint = actions::closest_name(u)
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_else(|| "; `riposte actions` lists them".into());
                    self.error(
                        uses_node.map(|n| n.pos).unwrap_or(item.pos),
                        format!("unknown action `{u}`{hint}"),
                    );
                }
                found
            });
            let id_s = id.clone().unwrap_or_default();
            let empty = BTreeSet::new();
            let step_ancestors = ancestors.get(&id_s).unwrap_or(&empty);
            let has_item = item.get("for_each").is_some();
            let scope = Scope {
                steps: Some(step_ancestors),
                all_steps: &all,
                inputs,
                has_item,
                reader: format!("step `{id_s}`"),
            };
            let with = match item.get("with") {
                None => Vec::new(),
                Some(w) => self.with(w, &scope),
            };
            if let Some(action) = action {
                let with_node = item.get("with");
                self.check_params(action, with_node, item.pos, &with);
            }
            let condition = item.get("if").and_then(|c| self.condition(c, &scope));
            let for_each = item.get("for_each").and_then(|f| {
                // `item` is what for_each defines; it cannot be read in its own list.
                let list_scope = Scope {
                    has_item: false,
                    ..scope_clone(&scope)
                };
                self.template(f, &list_scope)
            });
            let retry = item.get("retry").map(|r| self.retry(r)).unwrap_or_default();
            let timeout = item
                .get("timeout")
                .and_then(|t| self.duration(t, "timeout"));
            let on_error = match item.get("on_error") {
                None => OnError::Fail,
                Some(n) => match n.as_str() {
                    Some("fail") => OnError::Fail,
                    Some("continue") => OnError::Continue,
                    Some("compensate") => OnError::Compensate,
                    _ => {
                        self.error(
                            n.pos,
                            "`on_error` must be one of fail, continue, compensate",
                        );
                        OnError::Fail
                    }
                },
            };
            if let (Some(id), Some(uses)) = (id, uses) {
                steps.push(Step {
                    needs: needs.get(&id).cloned().unwrap_or_default(),
                    id,
                    uses,
                    with,
                    condition,
                    for_each,
                    retry,
                    timeout,
                    on_error,
                    pos: item.pos,
                });
            }
        }
        steps
    }

    fn needs(&mut self, node: &Node, id: &str, all: &BTreeSet<String>) -> Vec<String> {
        let items: Vec<&Node> = match &node.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Str(_) => vec![node],
            _ => {
                self.error(node.pos, "`needs` must be a step id or a list of step ids");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for n in items {
            let Some(dep) = n.scalar_text() else {
                self.error(n.pos, "`needs` entries must be step ids");
                continue;
            };
            if dep == id {
                self.error(n.pos, format!("step `{id}` cannot need itself"));
            } else if !all.contains(&dep) {
                let hint = crate::text::closest(&dep, all.iter().map(String::as_str))
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                self.error(
                    n.pos,
                    format!("`needs` names step `{dep}`, which does not exist{hint}"),
                );
            } else {
                out.push(dep);
            }
        }
        out
    }

    fn check_cycles(&mut self, needs: &BTreeMap<String, Vec<String>>, pos: &HashMap<String, Pos>) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit(
            id: &str,
            needs: &BTreeMap<String, Vec<String>>,
            marks: &mut HashMap<String, Mark>,
            path: &mut Vec<String>,
            cycles: &mut Vec<Vec<String>>,
        ) {
            match marks.get(id) {
                Some(Mark::Done) => return,
                Some(Mark::Visiting) => {
                    let start = path.iter().position(|p| p == id).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(id.to_string());
                    cycles.push(cycle);
                    return;
                }
                None => {}
            }
            marks.insert(id.to_string(), Mark::Visiting);
            path.push(id.to_string());
            for dep in needs.get(id).into_iter().flatten() {
                visit(dep, needs, marks, path, cycles);
            }
            path.pop();
            marks.insert(id.to_string(), Mark::Done);
        }
        let mut marks = HashMap::new();
        let mut cycles = Vec::new();
        for id in needs.keys() {
            visit(id, needs, &mut marks, &mut Vec::new(), &mut cycles);
        }
        for cycle in cycles {
            let at = pos.get(&cycle[0]).copied().unwrap_or_default();
            self.error(at, format!("`needs` forms a cycle: {}", cycle.join(" → ")));
        }
    }

    fn with(&mut self, node: &Node, scope: &Scope<'_>) -> Vec<(String, Param)> {
        let Some(entries) = node.entries() else {
            self.error(
                node.pos,
                format!("`with` must be a mapping, found {}", node.type_name()),
            );
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| Some((k.scalar_text()?, self.param(v, scope))))
            .collect()
    }

    fn param(&mut self, node: &Node, scope: &Scope<'_>) -> Param {
        match &node.kind {
            NodeKind::Str(s) if s.contains("${{") => match self.template(node, scope) {
                Some(t) => Param::Template(t),
                None => Param::Literal(Value::String(s.clone())),
            },
            NodeKind::Seq(items) => {
                Param::List(items.iter().map(|i| self.param(i, scope)).collect())
            }
            NodeKind::Map(entries) => Param::Map(
                entries
                    .iter()
                    .filter_map(|(k, v)| Some((k.scalar_text()?, self.param(v, scope))))
                    .collect(),
            ),
            _ => Param::Literal(node.to_json()),
        }
    }

    /// Checks literal parameters against the action's JSON Schema; templated values are
    /// checked when they are rendered.
    fn check_params(
        &mut self,
        action: &dyn actions::RegisteredAction,
        with_node: Option<&Node>,
        step_pos: Pos,
        with: &[(String, Param)],
    ) {
        let schema = action.params_schema();
        let schema = schema.as_value();
        let props = schema.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let name = action.info().name;
        let given: BTreeSet<&str> = with.iter().map(|(k, _)| k.as_str()).collect();
        for req in &required {
            if !given.contains(req) {
                self.error(
                    with_node.map(|n| n.pos).unwrap_or(step_pos),
                    format!("`{name}` needs parameter `{req}`"),
                );
            }
        }
        let Some(entries) = with_node.and_then(Node::entries) else {
            return;
        };
        for ((key_node, value_node), (key, param)) in entries.iter().zip(with) {
            let Some(prop) = props.and_then(|p| p.get(key)) else {
                let known: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let hint = crate::text::closest(key, known.iter().copied())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("; it takes {}", known.join(", ")));
                self.error(
                    key_node.pos,
                    format!("`{name}` has no parameter `{key}`{hint}"),
                );
                continue;
            };
            // Where a notification goes is the playbook author's choice, never a value an
            // alert or an API response fills in.
            if action.info().effect == actions::Effect::Notify
                && key == "url"
                && !matches!(param, Param::Literal(_))
            {
                self.error(
                    value_node.pos,
                    format!(
                        "parameter `url` of `{name}` must be written out (or left to [actions] notify_webhook_url): a templated target would let alert data choose where riposte posts"
                    ),
                );
            }
            if let Param::Literal(v) = param
                && let Some(problem) = schema_mismatch(schema, prop, v)
            {
                self.error(
                    value_node.pos,
                    format!("parameter `{key}` of `{name}`: {problem}"),
                );
            }
        }
    }

    fn condition(&mut self, node: &Node, scope: &Scope<'_>) -> Option<Template> {
        let text = match &node.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Bool(b) => b.to_string(),
            _ => {
                self.error(
                    node.pos,
                    format!("`if` must be an expression, found {}", node.type_name()),
                );
                return None;
            }
        };
        match Template::parse_condition(&text) {
            Ok(t) => {
                self.check_refs(&t, node, scope);
                Some(t)
            }
            Err(e) => {
                self.template_error(node, e);
                None
            }
        }
    }

    fn template(&mut self, node: &Node, scope: &Scope<'_>) -> Option<Template> {
        let Some(text) = node.as_str() else {
            self.error(
                node.pos,
                format!("expected an expression string, found {}", node.type_name()),
            );
            return None;
        };
        match Template::parse(text) {
            Ok(t) => {
                self.check_refs(&t, node, scope);
                Some(t)
            }
            Err(e) => {
                self.template_error(node, e);
                None
            }
        }
    }

    fn template_error(&mut self, node: &Node, e: TemplateError) {
        let pos = self.offset_pos(node, e.offset);
        self.error(pos, format!("invalid expression: {}", e.message));
    }

    /// The position of byte `offset` inside a one-line scalar (after its opening quote).
    fn offset_pos(&self, node: &Node, offset: usize) -> Pos {
        let line = self
            .lines
            .get(node.pos.line.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("");
        let col0 = node.pos.column.saturating_sub(1) as usize;
        let rest = line.get(col0..).unwrap_or("");
        let quoted = rest.starts_with('"') || rest.starts_with('\'');
        let block = rest.starts_with('|') || rest.starts_with('>');
        if block {
            return node.pos;
        }
        let text = node.as_str().unwrap_or("");
        let prefix_chars = text.get(..offset).map(|p| p.chars().count()).unwrap_or(0);
        Pos {
            line: node.pos.line,
            column: node.pos.column + u32::from(quoted) + prefix_chars as u32,
        }
    }

    fn check_refs(&mut self, t: &Template, node: &Node, scope: &Scope<'_>) {
        for (source, offset) in t.expressions() {
            let pos = self.offset_pos(node, offset);
            for path in referenced_paths(source) {
                if let Some(problem) = reference_problem(&path, scope) {
                    self.error(pos, problem);
                }
            }
        }
    }

    fn retry(&mut self, node: &Node) -> Retry {
        match &node.kind {
            NodeKind::Int(n) if *n >= 1 && *n <= 20 => Retry {
                attempts: *n as u32,
                ..Retry::default()
            },
            NodeKind::Map(_) => {
                self.check_keys(node, RETRY_KEYS, "`retry`");
                let mut r = Retry::default();
                if let Some(a) = node.get("attempts") {
                    match a.kind {
                        NodeKind::Int(n) if (1..=20).contains(&n) => r.attempts = n as u32,
                        _ => self.error(a.pos, "`attempts` must be an integer from 1 to 20"),
                    }
                }
                if let Some(b) = node.get("backoff")
                    && let Some(d) = self.duration(b, "backoff")
                {
                    r.backoff = d;
                }
                r
            }
            _ => {
                self.error(
                    node.pos,
                    "`retry` must be a number of attempts (1–20) or {attempts, backoff}",
                );
                Retry::default()
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let parsed = match &node.kind {
            NodeKind::Int(n) if *n > 0 => Some(Duration::from_secs(*n as u64)),
            NodeKind::Str(s) => parse_duration(s),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                node.pos,
                format!("`{what}` must be a duration such as 30s, 5m or 1h"),
            );
        }
        parsed
    }

    fn outputs(
        &mut self,
        node: &Node,
        all: &BTreeSet<String>,
        inputs: &BTreeSet<String>,
    ) -> Vec<(String, Template)> {
        let Some(entries) = node.entries() else {
            self.error(
                node.pos,
                "`outputs` must be a mapping of name to expression",
            );
            return Vec::new();
        };
        let scope = Scope {
            steps: None,
            all_steps: all,
            inputs,
            has_item: false,
            reader: "`outputs`".into(),
        };
        entries
            .iter()
            .filter_map(|(k, v)| {
                let name = k.scalar_text()?;
                let t = if v.as_str().is_some() {
                    self.template(v, &scope)?
                } else {
                    self.error(v.pos, "an output must be a string or `${{ expression }}`");
                    return None;
                };
                Some((name, t))
            })
            .collect()
    }
}

fn scope_clone<'a>(s: &Scope<'a>) -> Scope<'a> {
    Scope {
        steps: s.steps,
        all_steps: s.all_steps,
        inputs: s.inputs,
        has_item: s.has_item,
        reader: s.reader.clone(),
    }
}

/// Why a dotted path read by an expression cannot be satisfied, if it cannot.
fn reference_problem(path: &str, scope: &Scope<'_>) -> Option<String> {
    let mut segs = path.split('.');
    let root = segs.next().unwrap_or_default();
    let second = segs.next();
    match root {
        "alert" => match second {
            Some(f) if !ALERT_FIELDS.contains(&f) => Some(format!(
                "`alert.{f}` is not an alert field; alerts have {}",
                ALERT_FIELDS.join(", ")
            )),
            Some("principal") => match segs.next() {
                Some(p) if !PRINCIPAL_FIELDS.contains(&p) => Some(format!(
                    "`alert.principal.{p}` is not a principal field; principals have {}",
                    PRINCIPAL_FIELDS.join(", ")
                )),
                _ => None,
            },
            _ => None,
        },
        "inputs" => match second {
            Some(name) if !scope.inputs.contains(name) => Some(format!(
                "undefined variable `inputs.{name}`: the playbook declares no such input"
            )),
            _ => None,
        },
        "run" => match second {
            Some(f) if !RUN_FIELDS.contains(&f) => Some(format!(
                "`run.{f}` is not defined; `run` has {}",
                RUN_FIELDS.join(", ")
            )),
            _ => None,
        },
        "item" if scope.has_item => None,
        "item" => Some(format!(
            "undefined variable `item`: {} has no `for_each`",
            scope.reader
        )),
        "steps" => {
            let Some(id) = second else {
                return Some(
                    "`steps` must be followed by a step id (`steps.<id>.outputs…`)".into(),
                );
            };
            if !scope.all_steps.contains(id) {
                return Some(format!("`steps.{id}` refers to a step that does not exist"));
            }
            if let Some(allowed) = scope.steps
                && !allowed.contains(id)
            {
                return Some(format!(
                    "{} reads `steps.{id}` but does not depend on it; add `{id}` to its `needs`",
                    scope.reader
                ));
            }
            match segs.next() {
                Some(f) if !STEP_RESULT_FIELDS.contains(&f) => Some(format!(
                    "`steps.{id}.{f}` is not defined; a step has `outputs` and `status`"
                )),
                _ => None,
            }
        }
        other => Some(format!(
            "undefined variable `{other}`; expressions can read alert, inputs, steps, run (and item inside for_each)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";

    fn load(condition: &str, needs: &str) -> Result<Playbook, Diagnostics> {
        let text = format!(
            "name: p\nsteps:\n  - id: suspend\n    uses: entra.disable_user\n    with: {{ user: {ID} }}\n  - id: revoke\n    uses: entra.revoke_sessions\n{needs}    if: {condition}\n    with: {{ user: {ID} }}\n"
        );
        load_str(&text, Path::new("p.yaml"))
    }

    /// The condition is evaluated once the steps it names have finished, so it may only name
    /// steps it waits for.
    #[test]
    fn a_run_time_condition_may_only_read_the_status_of_steps_it_needs() {
        let e = load("steps.suspend.status == 'failed'", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.yaml:8:9: step `revoke` reads `steps.suspend` but does not depend on it; add `suspend` to its `needs`"
        );
        let p = load("steps.suspend.status == 'failed'", "    needs: [suspend]\n").unwrap();
        assert!(p.step("revoke").unwrap().condition.is_some());
        let e = load("steps.suspend.state == 'failed'", "    needs: [suspend]\n").unwrap_err();
        assert!(
            e.to_string().contains(
                "`steps.suspend.state` is not defined; a step has `outputs` and `status`"
            ),
            "{e}"
        );
    }
}
