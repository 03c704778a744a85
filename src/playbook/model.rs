//! The typed playbook, as the loader produces it. Every string that may hold an expression
//! is already a compiled [`Template`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::expr::Template;
use super::yaml::Pos;
use crate::alert::{Alert, Severity, Source};

#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub stage: Stage,
    /// `on:` — the alerts this playbook answers. Empty: manual invocation only.
    pub triggers: Vec<Trigger>,
    pub inputs: BTreeMap<String, Input>,
    pub steps: Vec<Step>,
    pub outputs: Vec<(String, Template)>,
    /// Where it was loaded from, for messages and for files its steps name.
    pub path: PathBuf,
    /// sha256 of the file's bytes, recorded in every plan.
    pub sha256: String,
    /// The text it was loaded from: a run stores it, so what the run executes never depends
    /// on the file still being there.
    pub text: String,
}

/// `live` playbooks may act; `trial` playbooks only ever plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Live,
    Trial,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub source: Option<Source>,
    pub kind: Option<String>,
    /// Case-insensitive substring of the alert's title.
    pub title: Option<String>,
    pub min_severity: Option<Severity>,
    /// `if:` over the alert.
    pub condition: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Object,
}

impl InputType {
    pub const NAMES: [&'static str; 6] =
        ["string", "integer", "number", "boolean", "list", "object"];

    pub fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "string" => InputType::String,
            "integer" => InputType::Integer,
            "number" => InputType::Number,
            "boolean" => InputType::Boolean,
            "list" => InputType::List,
            "object" => InputType::Object,
            _ => return None,
        })
    }

    pub fn accepts(self, v: &Value) -> bool {
        match self {
            InputType::String => v.is_string(),
            InputType::Integer => v.is_i64() || v.is_u64(),
            InputType::Number => v.is_number(),
            InputType::Boolean => v.is_boolean(),
            InputType::List => v.is_array(),
            InputType::Object => v.is_object(),
        }
    }

    /// Reads a `--input k=v` value as this type.
    pub fn coerce(self, text: &str) -> Result<Value, String> {
        let bad = || format!("`{text}` is not a valid {}", self.name());
        match self {
            InputType::String => Ok(Value::String(text.to_string())),
            InputType::Integer => text.parse::<i64>().map(Value::from).map_err(|_| bad()),
            InputType::Number => text.parse::<f64>().map(Value::from).map_err(|_| bad()),
            InputType::Boolean => text.parse::<bool>().map(Value::from).map_err(|_| bad()),
            InputType::List | InputType::Object => {
                let v: Value = serde_json::from_str(text).map_err(|_| bad())?;
                if self.accepts(&v) { Ok(v) } else { Err(bad()) }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::List => "list",
            InputType::Object => "object",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Input {
    pub kind: InputType,
    pub default: Option<Value>,
    pub description: Option<String>,
    pub required: bool,
}

/// A step's parameters with their templates compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Literal(Value),
    Template(Template),
    List(Vec<Param>),
    Map(Vec<(String, Param)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the run.
    #[default]
    Fail,
    /// Record the failure and go on with steps that do not need this one.
    Continue,
    /// Undo the run's completed steps, newest first, then stop.
    Compensate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// Total attempts, the first included.
    pub attempts: u32,
    #[serde(with = "duration_secs")]
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff: Duration::from_secs(2),
        }
    }
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub uses: String,
    pub with: Vec<(String, Param)>,
    pub condition: Option<Template>,
    pub needs: Vec<String>,
    pub for_each: Option<Template>,
    pub retry: Retry,
    pub timeout: Option<Duration>,
    pub on_error: OnError,
    pub pos: Pos,
}

impl Trigger {
    pub fn matches(&self, alert: &Alert) -> bool {
        self.source.is_none_or(|s| s == alert.source)
            && self.kind.as_ref().is_none_or(|k| *k == alert.kind)
            && self
                .title
                .as_ref()
                .is_none_or(|t| alert.title.to_lowercase().contains(&t.to_lowercase()))
            && self.min_severity.is_none_or(|s| alert.severity >= s)
    }
}

impl Playbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether a trigger fits the alert (its `if:`, when present, is evaluated by the caller
    /// with the alert context; see `plan::select`).
    pub fn triggers_for<'a>(&'a self, alert: &'a Alert) -> impl Iterator<Item = &'a Trigger> {
        self.triggers.iter().filter(move |t| t.matches(alert))
    }

    /// The directory its relative file references resolve against.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}
