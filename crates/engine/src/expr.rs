//! Data mapping: `{{ <JSONPath> }}` templates inside step inputs.
//!
//! Inputs are compiled once, when the flow is parsed, into a [`Template`] tree whose
//! expressions hold already-parsed paths. Most paths start with a fixed root key (`steps.<id>`,
//! `trigger`, `item`, ...); those are split so that evaluation reads one stored value through
//! the frame chain and applies the remaining path to it. Anything else is answered against a
//! materialized scope object. See `docs/flows.md` for the grammar.

use std::collections::HashMap;

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::model::FlowGraph;
use crate::scope::{loop_object, Frame};

/// Where an expression starts reading.
#[derive(Debug)]
pub(crate) enum Root {
    Trigger,
    Step(usize),
    Item,
    Index,
    Loop(usize),
    Error,
    Run,
    /// Not splittable: the full path runs against the materialized scope.
    Whole(JsonPath),
}

/// One compiled `{{ }}` expression.
#[derive(Debug)]
pub(crate) struct Expr {
    /// The path text as written, for messages.
    pub(crate) text: String,
    pub(crate) root: Root,
    /// The path below the root value, `None` when the expression is the root value itself.
    rest: Option<JsonPath>,
    /// Whether the path can select at most one node (no wildcard, slice, filter, union or
    /// descendant segment). A non-singular path yields an array of every node it selects.
    singular: bool,
}

/// A compiled input value.
#[derive(Debug)]
pub(crate) enum Template {
    Literal(Value),
    /// A string that is exactly one expression: yields the selected value with its type.
    Expr(Box<Expr>),
    /// A string with embedded expressions: yields text.
    Interp(Vec<Piece>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

#[derive(Debug)]
pub(crate) enum Piece {
    Text(String),
    Expr(Expr),
}

/// What expressions are evaluated against.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) graph: &'a FlowGraph,
    pub(crate) frame: &'a Frame,
    /// `{"id", "flow_id", "mode"}` of the run.
    pub(crate) run: &'a Value,
}

/// An expression that selected nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Missing {
    pub(crate) expr: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "expression `{{{{ {} }}}}` selected nothing", self.expr)
    }
}

impl Template {
    /// Compiles `value`; `ids` maps step ids to their index in the graph.
    pub(crate) fn compile(value: &Value, ids: &HashMap<String, usize>) -> Result<Self, String> {
        let template = match value {
            Value::String(text) => compile_string(text, ids)?,
            Value::Array(items) => {
                let items =
                    items.iter().map(|v| Self::compile(v, ids)).collect::<Result<_, _>>()?;
                Template::Array(items)
            }
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    fields.push((key.clone(), Self::compile(v, ids)?));
                }
                Template::Object(fields)
            }
            other => Template::Literal(other.clone()),
        };
        Ok(template.fold_literals())
    }

    /// Turns subtrees without expressions back into literals so they are cloned in one go.
    fn fold_literals(self) -> Self {
        match self {
            Template::Array(items) if items.iter().all(Template::is_literal) => Template::Literal(
                Value::Array(items.into_iter().map(Template::into_literal).collect()),
            ),
            Template::Object(fields) if fields.iter().all(|(_, t)| t.is_literal()) => {
                let map: Map<String, Value> =
                    fields.into_iter().map(|(k, t)| (k, t.into_literal())).collect();
                Template::Literal(Value::Object(map))
            }
            other => other,
        }
    }

    fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }

    fn into_literal(self) -> Value {
        match self {
            Template::Literal(v) => v,
            _ => Value::Null,
        }
    }

    /// Every expression in the template, for reference checks.
    pub(crate) fn exprs<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Template::Literal(_) => {}
            Template::Expr(e) => out.push(e),
            Template::Interp(pieces) => out.extend(pieces.iter().filter_map(|p| match p {
                Piece::Expr(e) => Some(e),
                Piece::Text(_) => None,
            })),
            Template::Array(items) => items.iter().for_each(|t| t.exprs(out)),
            Template::Object(fields) => fields.iter().for_each(|(_, t)| t.exprs(out)),
        }
    }

    /// The field `key` of an object template.
    pub(crate) fn field(&self, key: &str) -> Option<&Template> {
        match self {
            Template::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, t)| t),
            _ => None,
        }
    }

    /// The literal value of the field `key`, when the input is known without a run.
    pub(crate) fn literal_field(&self, key: &str) -> Option<&Value> {
        match self {
            Template::Literal(Value::Object(map)) => map.get(key),
            Template::Object(_) => match self.field(key)? {
                Template::Literal(v) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn eval(&self, scope: Scope<'_>) -> Result<Value, Missing> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Expr(e) => e.eval(scope),
            Template::Interp(pieces) => {
                let mut text = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => text.push_str(t),
                        Piece::Expr(e) => push_text(&mut text, &e.eval(scope)?),
                    }
                }
                Ok(Value::String(text))
            }
            Template::Array(items) => {
                items.iter().map(|t| t.eval(scope)).collect::<Result<_, _>>().map(Value::Array)
            }
            Template::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (key, t) in fields {
                    map.insert(key.clone(), t.eval(scope)?);
                }
                Ok(Value::Object(map))
            }
        }
    }
}

impl Template {
    /// An empty object input.
    pub(crate) fn empty() -> Self {
        Template::Literal(Value::Object(Map::new()))
    }
}

fn push_text(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

impl Expr {
    /// Compiles the text between `{{` and `}}`.
    pub(crate) fn compile(raw: &str, ids: &HashMap<String, usize>) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("empty expression `{{ }}`".into());
        }
        // `steps.a.b` and `['a.b']` are accepted as shorthand for `$.steps.a.b` and `$['a.b']`.
        let full = match text.as_bytes()[0] {
            b'$' => text.to_string(),
            b'[' => format!("${text}"),
            _ => format!("$.{text}"),
        };
        let whole =
            JsonPath::parse(&full).map_err(|e| format!("`{text}` is not a valid JSONPath: {e}"))?;
        let Some((names, rest_at)) = leading_names(&full) else {
            return Ok(Self::whole(text, whole, &full));
        };
        let first = names.first().map(String::as_str);
        let (root, used) = match first {
            None => return Ok(Self::whole(text, whole, &full)),
            Some("trigger") => (Root::Trigger, 1),
            Some("item") => (Root::Item, 1),
            Some("index") => (Root::Index, 1),
            Some("error") => (Root::Error, 1),
            Some("run") => (Root::Run, 1),
            Some(key @ ("steps" | "loops")) => {
                let Some(id) = names.get(1) else {
                    return Ok(Self::whole(text, whole, &full));
                };
                let Some(&idx) = ids.get(id) else {
                    return Err(format!("`{text}` refers to unknown step `{id}`"));
                };
                if key == "steps" {
                    (Root::Step(idx), 2)
                } else {
                    (Root::Loop(idx), 2)
                }
            }
            Some(other) => {
                return Err(format!(
                    "`{text}` starts at unknown scope key `{other}` (expected trigger, steps, \
                     item, index, loops, error or run)"
                ))
            }
        };
        let rest_text = &full[rest_at[used - 1]..];
        let rest = if rest_text.trim().is_empty() {
            None
        } else {
            let rest = JsonPath::parse(&format!("${rest_text}"))
                .map_err(|e| format!("`{text}` is not a valid JSONPath: {e}"))?;
            Some(rest)
        };
        Ok(Self { text: text.to_string(), root, rest, singular: is_singular(rest_text) })
    }

    fn whole(text: &str, path: JsonPath, full: &str) -> Self {
        let singular = is_singular(&full[1..]);
        Self { text: text.to_string(), root: Root::Whole(path), rest: None, singular }
    }

    /// Evaluates the expression; `Err(Missing)` when it selects nothing.
    pub(crate) fn eval(&self, scope: Scope<'_>) -> Result<Value, Missing> {
        let frame = scope.frame;
        let found = match &self.root {
            Root::Trigger => frame.with_output(scope.graph.trigger, |v| self.select(v)).flatten(),
            Root::Step(idx) => frame.with_output(*idx, |v| self.select(v)).flatten(),
            Root::Item => frame.innermost_loop().and_then(|l| self.select(&l.item)),
            Root::Index => frame.innermost_loop().and_then(|l| self.select(&Value::from(l.index))),
            Root::Loop(idx) => frame.loop_of(*idx).and_then(|l| self.select(&loop_object(l))),
            Root::Error => frame.error().and_then(|e| self.select(e)),
            Root::Run => self.select(scope.run),
            Root::Whole(path) => {
                let all = frame.materialize(scope.graph, scope.run);
                select_with(path, self.singular, &all)
            }
        };
        found.ok_or_else(|| Missing { expr: self.text.clone() })
    }

    fn select(&self, value: &Value) -> Option<Value> {
        match &self.rest {
            None => Some(value.clone()),
            Some(path) => select_with(path, self.singular, value),
        }
    }
}

fn select_with(path: &JsonPath, singular: bool, value: &Value) -> Option<Value> {
    let nodes = path.query(value);
    if singular {
        return nodes.first().cloned();
    }
    Some(Value::Array(nodes.all().into_iter().cloned().collect()))
}

/// Compiles a string that may hold `{{ }}` expressions.
fn compile_string(text: &str, ids: &HashMap<String, usize>) -> Result<Template, String> {
    if !text.contains("{{") {
        return Ok(Template::Literal(Value::String(text.to_string())));
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let body = &rest[open + 2..];
        let Some(close) = find_close(body) else {
            return Err(format!("unclosed `{{{{` in `{text}`"));
        };
        pieces.push(Piece::Expr(Expr::compile(&body[..close], ids)?));
        rest = &body[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    if let [Piece::Expr(_)] = pieces.as_slice() {
        let Some(Piece::Expr(e)) = pieces.pop() else { unreachable!("checked above") };
        return Ok(Template::Expr(Box::new(e)));
    }
    Ok(Template::Interp(pieces))
}

/// Finds the `}}` that closes an expression, skipping quoted names.
fn find_close(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// Reads up to two leading name segments of a path that starts with `$`. Returns the names and,
/// for each, the byte offset just after it. `None` when the path does not start with a plain
/// name segment (the caller then evaluates the whole path).
fn leading_names(path: &str) -> Option<(Vec<String>, Vec<usize>)> {
    let bytes = path.as_bytes();
    let mut at = 1;
    let mut names = Vec::new();
    let mut ends = Vec::new();
    while names.len() < 2 {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let (name, next) = match bytes.get(at) {
            Some(b'.') if bytes.get(at + 1) != Some(&b'.') => shorthand_name(path, at + 1)?,
            Some(b'[') => bracket_name(path, at + 1)?,
            _ => break,
        };
        names.push(name);
        ends.push(next);
        at = next;
    }
    Some((names, ends))
}

fn shorthand_name(path: &str, start: usize) -> Option<(String, usize)> {
    let tail = &path[start..];
    let len = tail
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || !c.is_ascii()))
        .map_or(tail.len(), |(i, _)| i);
    if len == 0 || tail.as_bytes()[0] == b'*' {
        return None;
    }
    Some((tail[..len].to_string(), start + len))
}

fn bracket_name(path: &str, start: usize) -> Option<(String, usize)> {
    let tail = &path[start..];
    let trimmed = tail.trim_start();
    let skipped = tail.len() - trimmed.len();
    let quote = *trimmed.as_bytes().first()?;
    if quote != b'\'' && quote != b'"' {
        return None;
    }
    let inner = &trimmed[1..];
    let close = inner.find(quote as char)?;
    let name = &inner[..close];
    // Escapes are rare in step ids; leave them to the full evaluator.
    if name.contains('\\') {
        return None;
    }
    let after = &inner[close + 1..];
    let after_trim = after.trim_start();
    if !after_trim.starts_with(']') {
        return None;
    }
    let end = start + skipped + 1 + close + 1 + (after.len() - after_trim.len()) + 1;
    Some((name.to_string(), end))
}

/// Whether a path (without its `$`) selects at most one node.
fn is_singular(path: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let mut escaped = false;
    for c in path.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '*' | '?' | ':' | ',' => return false,
            '.' if prev == '.' => return false,
            _ => {}
        }
        prev = c;
    }
    true
}
