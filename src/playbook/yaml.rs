//! A YAML document as a tree of nodes that remember where they were written, so every
//! problem found later can be reported as `file:line:column`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A 1-based position in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (keys, ids); numbers and booleans are written as YAML shows them.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The node as JSON, positions dropped.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Size budget: a playbook is small; anything larger is a mistake or an attack.
const MAX_PLAYBOOK_BYTES: usize = 1 << 20;

/// Parses one YAML document into a located tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.len() > MAX_PLAYBOOK_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: format!("file is larger than {MAX_PLAYBOOK_BYTES} bytes"),
        });
    }
    match serde_saphyr::from_str::<Spanned<Located>>(text) {
        Ok(root) => {
            let lines: Vec<&str> = text.lines().collect();
            Ok(into_node(root, &lines, false))
        }
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line() as u32,
                    column: l.column() as u32,
                })
                .unwrap_or(Pos { line: 1, column: 1 });
            // The error's Display carries a source snippet; the first line is the message.
            let message = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .to_string();
            Err(SyntaxError { pos, message })
        }
    }
}

/// The deserialisation target: a tree whose children keep their spans.
enum Located {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Located>>),
    Map(Vec<(Spanned<Located>, Spanned<Located>)>),
}

/// `lines` recovers a key's spelling: YAML 1.1 reads a bare `on:` key as `true`, and a
/// playbook's `on:` must stay the string it looks like.
fn into_node(s: Spanned<Located>, lines: &[&str], is_key: bool) -> Node {
    let pos = Pos {
        line: s.referenced.line() as u32,
        column: s.referenced.column() as u32,
    };
    let kind = match s.value {
        Located::Null => NodeKind::Null,
        Located::Bool(b) if is_key => {
            let line = lines
                .get(pos.line.saturating_sub(1) as usize)
                .copied()
                .unwrap_or("");
            let word: String = line
                .chars()
                .skip(pos.column.saturating_sub(1) as usize)
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            if word.is_empty() {
                NodeKind::Bool(b)
            } else {
                NodeKind::Str(word)
            }
        }
        Located::Bool(b) => NodeKind::Bool(b),
        Located::Int(i) => NodeKind::Int(i),
        Located::Float(f) => NodeKind::Float(f),
        Located::Str(s) => NodeKind::Str(s),
        Located::Seq(items) => NodeKind::Seq(
            items
                .into_iter()
                .map(|i| into_node(i, lines, false))
                .collect(),
        ),
        Located::Map(entries) => NodeKind::Map(
            entries
                .into_iter()
                .map(|(k, v)| (into_node(k, lines, true), into_node(v, lines, false)))
                .collect(),
        ),
    };
    Node { pos, kind }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LocatedVisitor)
    }
}

struct LocatedVisitor;

impl<'de> Visitor<'de> for LocatedVisitor {
    type Value = Located;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Located, E> {
        Ok(Located::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Located, E> {
        Ok(Located::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
        Located::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Located, E> {
        Ok(Located::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Located, E> {
        Ok(Located::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Located, E> {
        Ok(i64::try_from(v)
            .map(Located::Int)
            .unwrap_or(Located::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Located, E> {
        Ok(Located::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Located, E> {
        Ok(Located::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Located, E> {
        Ok(Located::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Located>>()? {
            items.push(item);
        }
        Ok(Located::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Located>>()? {
            let value = map.next_value::<Spanned<Located>>()?;
            entries.push((key, value));
        }
        Ok(Located::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_positions() {
        let root = parse("name: x\nsteps:\n  - id: a\n    uses: b.c\n").unwrap();
        let steps = root.get("steps").unwrap();
        let first = &steps.items().unwrap()[0];
        let (k, v) = &first.entries().unwrap()[1];
        assert_eq!(k.as_str(), Some("uses"));
        assert_eq!(k.pos, Pos { line: 4, column: 5 });
        assert_eq!(
            v.pos,
            Pos {
                line: 4,
                column: 11
            }
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }

    #[test]
    fn an_on_key_stays_a_string() {
        let root = parse("on:\n  - source: lacework\nyes: 1\n").unwrap();
        assert!(root.get("on").is_some());
        assert!(root.get("yes").is_some());
    }

    #[test]
    fn scalars_are_typed() {
        let root = parse("a: 1\nb: true\nc: 1.5\nd: ~\ne: '1'\n").unwrap();
        assert_eq!(root.get("a").unwrap().kind, NodeKind::Int(1));
        assert_eq!(root.get("b").unwrap().kind, NodeKind::Bool(true));
        assert_eq!(root.get("c").unwrap().kind, NodeKind::Float(1.5));
        assert_eq!(root.get("d").unwrap().kind, NodeKind::Null);
        assert_eq!(root.get("e").unwrap().kind, NodeKind::Str("1".into()));
    }
}
