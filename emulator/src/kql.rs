//! The little KQL the emulator understands, enough for riposte's shipped queries to get
//! realistic answers: leading `let` statements (string literals with KQL's escaping rules,
//! and tabular expressions), `where` comparisons of a column with a string (`==`, `!=`,
//! `=~`, `!~`, `has`, `!has`, `contains`, `!contains`, `startswith`, `endswith`, joined by
//! `and`), `extend A = B` as a column alias, and the seed's anomaly query
//! (`evaluate activity_counts_metrics` joined with `activity_engagement`), computed from
//! the seeded rows. Anything else in a pipeline is ignored, as before; a malformed string
//! literal or `let` is a syntax error, as Log Analytics answers it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::tenant::{Column, Table};

/// Why a query cannot run: the message Log Analytics would put in its error details.
#[derive(Debug, Clone, PartialEq)]
pub enum KqlError {
    Syntax(String),
    Semantic(String),
}

/// A string literal starting at `s[0]`: its value and the bytes it took. Double or single
/// quotes with `\\`, `\"`, `\'`, `\t`, `\n`, `\r` escapes (a raw line break is not allowed),
/// or verbatim `@"…"`/`@'…'` where only the doubled quote escapes.
pub fn string_literal(s: &str) -> Result<(String, usize), KqlError> {
    let bytes = s.as_bytes();
    let verbatim = bytes.first() == Some(&b'@');
    let start = usize::from(verbatim);
    let quote = match bytes.get(start) {
        Some(q @ (b'"' | b'\'')) => *q as char,
        _ => return Err(KqlError::Syntax("expected a string literal".into())),
    };
    let mut out = String::new();
    let mut chars = s[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        let at = start + 1 + i;
        if c == quote {
            if verbatim && s[at + 1..].starts_with(quote) {
                out.push(quote);
                chars.next();
                continue;
            }
            return Ok((out, at + 1));
        }
        if !verbatim && (c == '\n' || c == '\r') {
            return Err(KqlError::Syntax(
                "a line break inside a string literal must be escaped".into(),
            ));
        }
        if c == '\\' && !verbatim {
            match chars.next().map(|(_, e)| e) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(e) => {
                    return Err(KqlError::Syntax(format!(
                        "unrecognized escape sequence '\\{e}' in a string literal"
                    )));
                }
                None => break,
            }
            continue;
        }
        out.push(c);
    }
    Err(KqlError::Syntax("unterminated string literal".into()))
}

/// Splits on `sep` outside string literals and parentheses.
fn split_top(s: &str, sep: char) -> Result<Vec<&str>, KqlError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap_or(' ');
        let verbatim = c == '@' && matches!(s[i + 1..].chars().next(), Some('"' | '\''));
        if c == '"' || c == '\'' || verbatim {
            let (_, used) = string_literal(&s[i..])?;
            i += used;
            continue;
        }
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if c == sep && depth == 0 => {
                parts.push(&s[last..i]);
                last = i + c.len_utf8();
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    parts.push(&s[last..]);
    Ok(parts)
}

fn identifier(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i);
    (&s[..end], &s[end..])
}

/// A parsed query: string bindings, tabular bindings and the final expression.
struct Program<'q> {
    strings: HashMap<String, String>,
    tables: HashMap<String, &'q str>,
    body: &'q str,
}

fn parse(query: &str) -> Result<Program<'_>, KqlError> {
    let mut program = Program {
        strings: HashMap::new(),
        tables: HashMap::new(),
        body: "",
    };
    let statements = split_top(query, ';')?;
    for statement in statements {
        let statement = statement.trim();
        if statement.is_empty() {
            continue;
        }
        let Some(rest) = statement.strip_prefix("let ") else {
            program.body = statement;
            continue;
        };
        let (name, rest) = identifier(rest.trim_start());
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            return Err(KqlError::Syntax(format!("expected '=' after 'let {name}'")));
        };
        if name.is_empty() {
            return Err(KqlError::Syntax("a let statement needs a name".into()));
        }
        let value = value.trim();
        if value.starts_with(['"', '\'']) || value.starts_with("@\"") || value.starts_with("@'") {
            let (text, used) = string_literal(value)?;
            if !value[used..].trim().is_empty() {
                return Err(KqlError::Syntax(format!(
                    "unexpected text after the string bound to '{name}'"
                )));
            }
            program.strings.insert(name.to_string(), text);
        } else {
            program.tables.insert(name.to_string(), value);
        }
    }
    if program.body.is_empty() {
        return Err(KqlError::Syntax(
            "the query has no tabular expression".into(),
        ));
    }
    Ok(program)
}

/// One `Column OP string` test.
struct Test {
    column: String,
    op: String,
    value: String,
}

impl Test {
    fn holds(&self, cell: &str) -> bool {
        let (l, r) = (cell.to_lowercase(), self.value.to_lowercase());
        match self.op.as_str() {
            "==" => cell == self.value,
            "!=" => cell != self.value,
            "=~" => l == r,
            "!~" => l != r,
            "contains" => l.contains(&r),
            "!contains" => !l.contains(&r),
            "startswith" => l.starts_with(&r),
            "endswith" => l.ends_with(&r),
            "has" => has_term(&l, &r),
            "!has" => !has_term(&l, &r),
            _ => true,
        }
    }
}

/// `has`: the value occurs with no letter or digit right before or after it.
fn has_term(cell: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    cell.match_indices(term).any(|(i, _)| {
        let before = cell[..i].chars().next_back();
        let after = cell[i + term.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

const OPS: [&str; 10] = [
    "!contains",
    "contains",
    "!has",
    "has",
    "startswith",
    "endswith",
    "==",
    "!=",
    "=~",
    "!~",
];

/// The tests of a `where` clause that compare a column with a string; other conditions
/// (times, numbers) are left to the timespan, as before.
fn where_tests(clause: &str, strings: &HashMap<String, String>) -> Result<Vec<Test>, KqlError> {
    let mut tests = Vec::new();
    for part in clause.split(" and ") {
        let part = part.trim();
        let (column, rest) = identifier(part);
        let rest = rest.trim_start();
        let Some(op) = OPS.iter().find(|op| {
            rest.starts_with(*op)
                && !rest[op.len()..].starts_with(|c: char| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | '~')
                })
        }) else {
            continue;
        };
        let operand = rest[op.len()..].trim();
        let value = if operand.starts_with(['"', '\'', '@']) {
            let (text, used) = string_literal(operand)?;
            if !operand[used..].trim().is_empty() {
                continue;
            }
            text
        } else {
            let (name, tail) = identifier(operand);
            match strings.get(name) {
                Some(v) if tail.trim().is_empty() => v.clone(),
                _ => continue,
            }
        };
        tests.push(Test {
            column: column.to_string(),
            op: op.to_string(),
            value,
        });
    }
    Ok(tests)
}

/// Rows of the expression's source table after its `where` tests, with `extend` aliases,
/// and the pipeline's remaining operators.
struct Source<'t> {
    table: &'t Table,
    aliases: HashMap<String, String>,
    rows: Vec<&'t Vec<Value>>,
}

impl Source<'_> {
    fn column(&self, name: &str) -> Option<usize> {
        let real = self.aliases.get(name).map_or(name, String::as_str);
        self.table
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(real))
    }

    fn text(&self, row: &[Value], name: &str) -> String {
        self.column(name)
            .and_then(|i| row.get(i))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default()
    }
}

fn source<'t>(
    program: &Program<'_>,
    expression: &str,
    tables: &'t [Table],
    rows: &dyn Fn(&'t Table) -> Vec<&'t Vec<Value>>,
    depth: u8,
) -> Result<(Source<'t>, Vec<String>), KqlError> {
    let stages = split_top(expression, '|')?;
    let (name, _) = identifier(stages[0].trim());
    let (mut source, mut ops) = match program.tables.get(name) {
        Some(bound) if depth < 4 => source(program, bound, tables, rows, depth + 1)?,
        _ => {
            let table = tables
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    KqlError::Semantic(format!(
                        "'{name}': Failed to resolve table or column expression named '{name}'"
                    ))
                })?;
            (
                Source {
                    table,
                    aliases: HashMap::new(),
                    rows: rows(table),
                },
                Vec::new(),
            )
        }
    };
    for stage in &stages[1..] {
        let stage = stage.trim();
        if let Some(clause) = stage.strip_prefix("where ") {
            for test in where_tests(clause, &program.strings)? {
                if source.column(&test.column).is_none() {
                    return Err(KqlError::Semantic(format!(
                        "'where' operator: Failed to resolve column or scalar expression named '{}'",
                        test.column
                    )));
                }
                let kept: Vec<_> = source
                    .rows
                    .iter()
                    .copied()
                    .filter(|row| test.holds(&source.text(row, &test.column)))
                    .collect();
                source.rows = kept;
            }
        } else if let Some(assign) = stage.strip_prefix("extend ") {
            if let Some((new, old)) = assign.split_once('=') {
                let (old, tail) = identifier(old.trim());
                if tail.trim().is_empty() && source.column(old).is_some() {
                    source
                        .aliases
                        .insert(new.trim().to_string(), old.to_string());
                }
            }
        } else {
            ops.push(stage.to_string());
        }
    }
    Ok((source, ops))
}

/// Runs `query` over `tables`; `rows` gives each table's rows inside the request's window.
pub fn run<'t>(
    query: &str,
    tables: &'t [Table],
    rows: &dyn Fn(&'t Table) -> Vec<&'t Vec<Value>>,
) -> Result<Value, KqlError> {
    // KQL allows `//` comment lines, as a saved query file usually has.
    let query: String = query
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let query = query.as_str();
    let program = parse(query)?;
    let (source, ops) = source(&program, program.body, tables, rows, 0)?;
    let seed = ops
        .iter()
        .any(|op| op.starts_with("evaluate activity_counts_metrics"))
        && query.contains("activity_engagement");
    if seed {
        return Ok(anomalies(&source));
    }
    Ok(json!({
        "name": "PrimaryResult",
        "columns": source.table.columns,
        "rows": source.rows,
    }))
}

/// The seed's result: per day, each (Process, Computer, Account) seen for the first time
/// (`activity_counts_metrics`' `new_dcount` = 1), with that day's distinct processes against
/// the 7 days up to it (`activity_engagement`), kept when the ratio is below 100.
fn anomalies(source: &Source<'_>) -> Value {
    let mut by_day: BTreeMap<NaiveDate, BTreeSet<(String, String, String)>> = BTreeMap::new();
    for row in &source.rows {
        let Some(day) = DateTime::parse_from_rfc3339(&source.text(row, "TimeGenerated"))
            .ok()
            .map(|t| t.with_timezone(&Utc).date_naive())
        else {
            continue;
        };
        let process = source.text(row, "Process");
        if process.is_empty() || process == "-" {
            continue;
        }
        by_day.entry(day).or_default().insert((
            process,
            source.text(row, "Computer"),
            source.text(row, "Account"),
        ));
    }
    let processes = |day: &NaiveDate| -> BTreeSet<&str> {
        by_day
            .get(day)
            .map(|s| s.iter().map(|(p, _, _)| p.as_str()).collect())
            .unwrap_or_default()
    };
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for (day, activities) in &by_day {
        let inner = processes(day).len();
        let outer: BTreeSet<&str> = (0..7)
            .flat_map(|back| processes(&(*day - Duration::days(back))))
            .collect();
        let ratio = inner as f64 / outer.len().max(1) as f64 * 100.0;
        let week = *day - Duration::days(i64::from(day.weekday().num_days_from_sunday()));
        for activity in activities {
            if !seen.insert(activity.clone()) || ratio >= 100.0 {
                continue;
            }
            let (process, computer, account) = activity;
            rows.push(json!([
                format!("{week}T00:00:00Z"),
                format!("{day}T00:00:00Z"),
                process,
                account,
                computer,
                1,
                inner,
                outer.len(),
                ratio,
            ]));
        }
    }
    let column = |name: &str, kind: &str| Column {
        name: name.into(),
        kind: kind.into(),
    };
    json!({
        "name": "PrimaryResult",
        "columns": [
            column("WeekDate", "datetime"),
            column("Date", "datetime"),
            column("Process", "string"),
            column("Account", "string"),
            column("Computer", "string"),
            column("PotentialAnomalyCount", "long"),
            column("Distribution1day", "long"),
            column("Distribution7days", "long"),
            column("Ratio", "real"),
        ],
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_follow_kql_rules() {
        assert_eq!(string_literal(r#""a\"b\\c""#).unwrap().0, "a\"b\\c");
        assert_eq!(string_literal(r"'it\'s'").unwrap().0, "it's");
        assert_eq!(string_literal(r#"@"C:\x""y""#).unwrap().0, "C:\\x\"y");
        assert_eq!(string_literal(r#""a\nb""#).unwrap().0, "a\nb");
        assert!(string_literal("\"open").is_err());
        assert!(string_literal("\"line\nbreak\"").is_err());
        assert!(string_literal(r#""bad\q""#).is_err());
    }

    #[test]
    fn let_strings_bind_and_a_malformed_let_is_a_syntax_error() {
        let p = parse("let a = \"x\\\"y\";\nlet T = SecurityEvent | where A == a;\nT").unwrap();
        assert_eq!(p.strings["a"], "x\"y");
        assert!(p.tables.contains_key("T"));
        assert!(matches!(parse("let a \"x\"; T"), Err(KqlError::Syntax(_))));
        assert!(matches!(parse("let a = \"x; T"), Err(KqlError::Syntax(_))));
    }

    fn security_events() -> Table {
        let column = |name: &str, kind: &str| Column {
            name: name.into(),
            kind: kind.into(),
        };
        let row = |t: &str, computer: &str, account: &str, process: &str| {
            vec![json!(t), json!(computer), json!(account), json!(process)]
        };
        Table {
            name: "SecurityEvent".into(),
            columns: vec![
                column("TimeGenerated", "datetime"),
                column("Computer", "string"),
                column("Account", "string"),
                column("Process", "string"),
            ],
            rows: vec![
                row("2026-11-18T08:00:00Z", "vm1", "C\\alex", "explorer.exe"),
                row("2026-11-19T08:00:00Z", "vm1", "C\\alex", "explorer.exe"),
                row("2026-11-20T08:00:00Z", "vm1", "C\\alex", "-"),
                row("2026-11-20T09:00:00Z", "vm1", "C\\alex", "whoami.exe"),
                row("2026-11-20T09:30:00Z", "vm2", "C\\bob", "x.exe"),
            ],
        }
    }

    fn all(t: &Table) -> Vec<&Vec<Value>> {
        t.rows.iter().collect()
    }

    #[test]
    fn the_seed_query_answers_its_anomalies() {
        let tables = [security_events()];
        let seed = include_str!("../../playbooks/first-access-anomalies.kql");
        let table = run(seed, &tables, &all).unwrap();
        assert_eq!(table["columns"][8]["name"], "Ratio");
        let rows = table["rows"].as_array().unwrap();
        // 11-20: whoami.exe and x.exe are new; 2 of the 3 processes of the week.
        let processes: Vec<&str> = rows.iter().map(|r| r[2].as_str().unwrap()).collect();
        assert_eq!(processes, ["whoami.exe", "x.exe"], "{table:#}");
        assert_eq!(rows[0][0], "2026-11-15T00:00:00Z", "weeks start on Sunday");
        assert_eq!(rows[0][1], "2026-11-20T00:00:00Z");
        assert_eq!(rows[0][6], 2);
        assert_eq!(rows[0][7], 3);
    }

    #[test]
    fn bound_strings_filter_and_an_escaped_quote_stays_data() {
        let tables = [security_events()];
        let follow_up = include_str!("../../playbooks/first-access-account-computer.kql");
        let q = format!("let account = \"alex\";\nlet computer = \"VM1\";\n{follow_up}");
        let table = run(&q, &tables, &all).unwrap();
        assert_eq!(table["rows"].as_array().unwrap().len(), 4, "{table:#}");
        let hostile =
            format!("let account = \"x\\\" or 1==1 //\";\nlet computer = \"vm1\";\n{follow_up}");
        let table = run(&hostile, &tables, &all).unwrap();
        assert_eq!(table["rows"].as_array().unwrap().len(), 0, "{table:#}");
        // Spliced raw, the same text is a syntax error, not a wider query.
        let spliced = follow_up.replace("has account", "has \"x\" or 1==1 //\"");
        assert!(run(&spliced, &tables, &all).is_err());
    }

    #[test]
    fn has_matches_whole_terms() {
        assert!(has_term("contoso\\alex.wilber", "alex"));
        assert!(has_term("contoso\\alex.wilber", "alex.wilber"));
        assert!(!has_term("contoso\\alexander", "alex"));
    }
}
