//! Expressions: `${{ … }}` inside playbook strings and bare `if:` conditions, evaluated with
//! minijinja (strict undefined, a fuel limit). Only the playbook's own text is ever compiled;
//! values from alerts and APIs enter as data in the context and are never parsed.

use std::fmt;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde_json::Value;

use crate::actions::unknown;

/// Work an expression may do before it is stopped: enough for any real condition, small
/// enough that a runaway loop in a playbook cannot stall planning.
const FUEL: u64 = 20_000;

/// The one expression environment. No templates are ever added to it.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        env
    })
}

/// A string from the playbook: literal text and `${{ expression }}` parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// The expression's source and its byte offset in the string (for error columns).
    Expr {
        source: String,
        offset: usize,
    },
}

/// A template that could not be parsed: the byte offset in the string and the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Splits `text` into literal and expression parts and compiles each expression.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut consumed = 0;
        while let Some(start) = rest.find("${{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 3..];
            let end = after.find("}}").ok_or_else(|| TemplateError {
                offset: consumed + start,
                message: "`${{` is not closed by `}}`".into(),
            })?;
            let source = after[..end].trim().to_string();
            let offset = consumed + start;
            if source.is_empty() {
                return Err(TemplateError {
                    offset,
                    message: "empty expression `${{ }}`".into(),
                });
            }
            compile_check(&source).map_err(|message| TemplateError { offset, message })?;
            parts.push(Part::Expr { source, offset });
            let next = start + 3 + end + 2;
            consumed += next;
            rest = &rest[next..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// A condition: a bare expression, or one wrapped in `${{ }}`.
    pub fn parse_condition(text: &str) -> Result<Template, TemplateError> {
        let trimmed = text.trim();
        if trimmed.starts_with("${{") && trimmed.ends_with("}}") {
            return Template::parse(trimmed);
        }
        compile_check(trimmed).map_err(|message| TemplateError { offset: 0, message })?;
        Ok(Template {
            parts: vec![Part::Expr {
                source: trimmed.to_string(),
                offset: 0,
            }],
        })
    }

    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    pub fn expressions(&self) -> impl Iterator<Item = (&str, usize)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr { source, offset } => Some((source.as_str(), *offset)),
            Part::Text(_) => None,
        })
    }

    /// Evaluates the template. A template that is exactly one expression keeps the value's
    /// type (a list stays a list); anything else is rendered to a string.
    pub fn eval(&self, ctx: &JValue) -> Result<Value, String> {
        match self.parts.as_slice() {
            [] => Ok(Value::String(String::new())),
            [Part::Expr { source, .. }] => Ok(to_json(&eval_expr(source, ctx)?)),
            parts => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Expr { source, .. } => {
                            let v = eval_expr(source, ctx)?;
                            match to_json(&v) {
                                Value::String(s) => out.push_str(&s),
                                Value::Null => {}
                                other => out.push_str(&other.to_string()),
                            }
                        }
                    }
                }
                Ok(Value::String(out))
            }
        }
    }

    /// Evaluates a condition to a boolean, or `None` when it depends on a value known only
    /// at run time.
    pub fn eval_condition(&self, ctx: &JValue) -> Result<Option<bool>, String> {
        let source = match self.parts.as_slice() {
            [Part::Expr { source, .. }] => source,
            _ => return Err("a condition must be a single expression".into()),
        };
        let expr = environment()
            .compile_expression(source)
            .map_err(|e| describe(&e))?;
        if expr
            .undeclared_variables(true)
            .iter()
            .any(|path| path_is_unknown(ctx, path))
        {
            return Ok(None);
        }
        let v = expr.eval(ctx.clone()).map_err(|e| describe(&e))?;
        Ok(Some(v.is_true()))
    }
}

fn compile_check(source: &str) -> Result<(), String> {
    environment()
        .compile_expression(source)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

fn eval_expr(source: &str, ctx: &JValue) -> Result<JValue, String> {
    let expr = environment()
        .compile_expression(source)
        .map_err(|e| describe(&e))?;
    let v = expr.eval(ctx.clone()).map_err(|e| describe(&e))?;
    if v.is_undefined() {
        return Err(format!("`{source}` is undefined"));
    }
    Ok(v)
}

/// minijinja's message without its template-name decoration.
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Variables an expression reads, as dotted paths (`steps.user.outputs.id`).
pub fn referenced_paths(source: &str) -> Vec<String> {
    match environment().compile_expression(source) {
        Ok(expr) => {
            let mut v: Vec<String> = expr.undeclared_variables(true).into_iter().collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

/// Whether following `path` through the context reaches a value known only at run time.
fn path_is_unknown(ctx: &JValue, path: &str) -> bool {
    let mut cur = ctx.clone();
    for seg in path.split('.') {
        if cur.downcast_object_ref::<Unknown>().is_some() {
            return true;
        }
        match cur.get_attr(seg) {
            Ok(next) if !next.is_undefined() => cur = next,
            _ => return false,
        }
    }
    cur.downcast_object_ref::<Unknown>().is_some()
}

/// A value that a lookup would provide at run time. Any attribute of it is unknown too, and
/// it renders as its placeholder, `⟨steps.user.outputs.id⟩`.
#[derive(Debug)]
pub struct Unknown {
    pub path: String,
}

impl Unknown {
    pub fn value(path: impl Into<String>) -> JValue {
        JValue::from_object(Unknown { path: path.into() })
    }
}

impl Object for Unknown {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        Some(Unknown::value(format!("{}.{}", self.path, key)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&unknown::placeholder(&self.path))
    }
}

/// Data (an alert, API results) as a context value. It is never parsed as a template.
pub fn from_data<T: serde::Serialize>(v: &T) -> JValue {
    JValue::from(minijinja::value::Serde(v))
}

/// Converts an evaluated value to JSON; unknowns become their placeholder string.
pub fn to_json(v: &JValue) -> Value {
    if let Some(u) = v.downcast_object_ref::<Unknown>() {
        return Value::String(unknown::placeholder(&u.path));
    }
    if let Ok(iter) = v.try_iter() {
        if v.as_object()
            .is_some_and(|o| matches!(o.repr(), ObjectRepr::Map))
            || v.kind() == minijinja::value::ValueKind::Map
        {
            let mut map = serde_json::Map::new();
            for key in iter {
                let val = v.get_item(&key).unwrap_or_default();
                map.insert(key.to_string(), to_json(&val));
            }
            return Value::Object(map);
        }
        if v.kind() == minijinja::value::ValueKind::Seq
            || v.kind() == minijinja::value::ValueKind::Iterable
        {
            return Value::Array(iter.map(|item| to_json(&item)).collect());
        }
    }
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> JValue {
        from_data(&v)
    }

    #[test]
    fn splits_text_and_expressions() {
        let t = Template::parse("user ${{ alert.principal.upn }} on ${{ alert.kind }}!").unwrap();
        assert_eq!(t.parts.len(), 5);
        let out = t
            .eval(&ctx(
                json!({"alert": {"principal": {"upn": "a@b"}, "kind": "k"}}),
            ))
            .unwrap();
        assert_eq!(out, json!("user a@b on k!"));
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        let t = Template::parse("${{ xs }}").unwrap();
        assert_eq!(t.eval(&ctx(json!({"xs": [1, 2]}))).unwrap(), json!([1, 2]));
    }

    #[test]
    fn data_is_never_evaluated() {
        let t = Template::parse("${{ alert.title }}").unwrap();
        let out = t
            .eval(&ctx(json!({"alert": {"title": "{{ 7*7 }} ${{ 7*7 }}"}})))
            .unwrap();
        assert_eq!(out, json!("{{ 7*7 }} ${{ 7*7 }}"));
    }

    #[test]
    fn undefined_is_an_error() {
        let t = Template::parse("${{ alert.nope }}").unwrap();
        assert!(t.eval(&ctx(json!({"alert": {}}))).is_err());
    }

    #[test]
    fn syntax_errors_carry_offsets() {
        let e = Template::parse("abc ${{ 1 + }}").unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(Template::parse("x ${{ a").is_err());
    }

    #[test]
    fn unknowns_propagate_and_conditions_defer() {
        let c = minijinja::context! { steps => minijinja::context! { user => minijinja::context! { outputs => Unknown::value("steps.user.outputs") } } };
        let t = Template::parse("${{ steps.user.outputs.id }}").unwrap();
        assert_eq!(
            t.eval(&c).unwrap(),
            json!(unknown::placeholder("steps.user.outputs.id"))
        );
        let cond = Template::parse_condition("steps.user.outputs.account_enabled").unwrap();
        assert_eq!(cond.eval_condition(&c).unwrap(), None);
    }

    #[test]
    fn fuel_stops_runaway_expressions() {
        let t = Template::parse("${{ range(100000) | list | length }}").unwrap();
        assert!(t.eval(&ctx(json!({}))).is_err());
    }
}
