//! Predicates of the `condition` and `while` control actions.
//!
//! The rule for absent data (peer fault P4): an operand whose reference selects nothing is
//! *missing*, and a predicate with a missing operand is false for every operator except
//! `is_empty`, which is true. `is_not_empty` is therefore false for a missing field.
//!
//! The rule for mixed types: when one operand is a JSON number and the other a string whose
//! trimmed text parses as a finite number, both compare as numbers. Otherwise values of different
//! JSON types are unequal and unordered; two strings order by code point.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::expr::{Scope, Template};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Contains,
    NotContains,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    IsEmpty,
    IsNotEmpty,
}

impl Operator {
    fn parse(text: &str) -> Option<Self> {
        let op = match text.trim() {
            "contains" => Self::Contains,
            "not_contains" | "not contains" => Self::NotContains,
            "=" | "==" | "eq" => Self::Eq,
            "!=" | "≠" | "ne" => Self::Ne,
            ">" | "gt" => Self::Gt,
            ">=" | "≥" | "ge" => Self::Ge,
            "<" | "lt" => Self::Lt,
            "<=" | "≤" | "le" => Self::Le,
            "is_empty" | "is empty" => Self::IsEmpty,
            "is_not_empty" | "is not empty" => Self::IsNotEmpty,
            _ => return None,
        };
        Some(op)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::NotContains => "not_contains",
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::IsEmpty => "is_empty",
            Self::IsNotEmpty => "is_not_empty",
        }
    }

    fn is_unary(self) -> bool {
        matches!(self, Self::IsEmpty | Self::IsNotEmpty)
    }
}

#[derive(Debug)]
struct Predicate {
    left: Template,
    op: Operator,
    right: Option<Template>,
}

/// A compiled `{combinator, conditions}` input.
#[derive(Debug)]
pub(crate) struct Condition {
    any: bool,
    predicates: Vec<Predicate>,
}

/// The verdict plus what it was computed from, for the run detail.
pub(crate) struct Verdict {
    pub(crate) result: bool,
    /// `{combinator, result, predicates:[{left, left_missing, operator, right, right_missing,
    /// result}]}`.
    pub(crate) detail: Value,
}

impl Condition {
    /// Compiles the `combinator` and `conditions` fields of a step input.
    pub(crate) fn compile(input: &Value, ids: &HashMap<String, usize>) -> Result<Self, String> {
        let any = match input.get("combinator").and_then(Value::as_str).unwrap_or("all") {
            "all" | "and" => false,
            "any" | "or" => true,
            other => return Err(format!("combinator `{other}` is not `all` or `any`")),
        };
        let list = match input.get("conditions") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(list)) => list.as_slice(),
            Some(_) => return Err("`conditions` must be an array".into()),
        };
        let mut predicates = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let op_text = item.get("operator").and_then(Value::as_str).unwrap_or_default();
            let Some(op) = Operator::parse(op_text) else {
                return Err(format!("condition {i} has unknown operator `{op_text}`"));
            };
            let left = Template::compile(item.get("left").unwrap_or(&Value::Null), ids)?;
            let right = match item.get("right") {
                Some(v) if !op.is_unary() => Some(Template::compile(v, ids)?),
                None if !op.is_unary() => {
                    return Err(format!("condition {i} (`{}`) needs a `right` operand", op.name()))
                }
                _ => None,
            };
            predicates.push(Predicate { left, op, right });
        }
        Ok(Self { any, predicates })
    }

    /// Every operand template, for reference checks.
    pub(crate) fn templates(&self) -> impl Iterator<Item = &Template> {
        self.predicates.iter().flat_map(|p| std::iter::once(&p.left).chain(p.right.as_ref()))
    }

    pub(crate) fn eval(&self, scope: Scope<'_>) -> Verdict {
        let mut details = Vec::with_capacity(self.predicates.len());
        let mut result = !self.any;
        for p in &self.predicates {
            let left = p.left.eval(scope).ok();
            let right = p.right.as_ref().map(|t| t.eval(scope).ok());
            let holds = apply(p.op, left.as_ref(), right.as_ref().and_then(Option::as_ref));
            if self.any {
                result |= holds;
            } else {
                result &= holds;
            }
            let mut d = json!({
                "left": left.clone().unwrap_or(Value::Null),
                "left_missing": left.is_none(),
                "operator": p.op.name(),
                "result": holds,
            });
            if let Some(right) = right {
                d["right_missing"] = Value::Bool(right.is_none());
                d["right"] = right.unwrap_or(Value::Null);
            }
            details.push(d);
        }
        let combinator = if self.any { "any" } else { "all" };
        let detail = json!({"combinator": combinator, "result": result, "predicates": details});
        Verdict { result, detail }
    }
}

/// Applies `op`; `None` operands are missing.
pub(crate) fn apply(op: Operator, left: Option<&Value>, right: Option<&Value>) -> bool {
    if op == Operator::IsEmpty {
        return left.is_none_or(is_empty);
    }
    let Some(left) = left else { return false };
    if op == Operator::IsNotEmpty {
        return !is_empty(left);
    }
    let Some(right) = right else { return false };
    match op {
        Operator::Eq => equal(left, right),
        Operator::Ne => !equal(left, right),
        Operator::Gt => order(left, right) == Some(Ordering::Greater),
        Operator::Ge => matches!(order(left, right), Some(Ordering::Greater | Ordering::Equal)),
        Operator::Lt => order(left, right) == Some(Ordering::Less),
        Operator::Le => matches!(order(left, right), Some(Ordering::Less | Ordering::Equal)),
        Operator::Contains => contains(left, right).unwrap_or(false),
        Operator::NotContains => contains(left, right).is_some_and(|c| !c),
        Operator::IsEmpty | Operator::IsNotEmpty => unreachable!("handled above"),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Both operands as numbers when the mixed-type rule applies.
fn numbers(left: &Value, right: &Value) -> Option<(f64, f64)> {
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    let one_is_number = left.is_number() || right.is_number();
    if !one_is_number {
        return None;
    }
    Some((num(left)?, num(right)?))
}

fn equal(left: &Value, right: &Value) -> bool {
    if let Some((a, b)) = numbers(left, right) {
        return a == b;
    }
    left == right
}

fn order(left: &Value, right: &Value) -> Option<Ordering> {
    if let Some((a, b)) = numbers(left, right) {
        return a.partial_cmp(&b);
    }
    match (left, right) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// `None` when `contains` does not apply to the operand types.
fn contains(left: &Value, right: &Value) -> Option<bool> {
    match (left, right) {
        (Value::String(hay), Value::String(needle)) => Some(hay.contains(needle.as_str())),
        (Value::String(hay), Value::Number(n)) => Some(hay.contains(&n.to_string())),
        (Value::Array(items), needle) => Some(items.iter().any(|i| equal(i, needle))),
        (Value::Object(map), Value::String(key)) => Some(map.contains_key(key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_operand_is_false_except_is_empty() {
        let one = json!(1);
        for op in [
            Operator::Gt,
            Operator::Ge,
            Operator::Lt,
            Operator::Le,
            Operator::Eq,
            Operator::Ne,
            Operator::Contains,
            Operator::NotContains,
            Operator::IsNotEmpty,
        ] {
            assert!(!apply(op, None, Some(&one)), "{op:?} on a missing left");
            assert!(!apply(op, Some(&one), None) || op.is_unary(), "{op:?} on a missing right");
        }
        assert!(apply(Operator::IsEmpty, None, None));
    }

    #[test]
    fn number_and_numeric_string_compare_as_numbers() {
        assert!(apply(Operator::Eq, Some(&json!(5)), Some(&json!(" 5.0 "))));
        assert!(apply(Operator::Gt, Some(&json!("10")), Some(&json!(9))));
        // Two strings stay strings.
        assert!(!apply(Operator::Eq, Some(&json!("5")), Some(&json!("5.0"))));
        assert!(apply(Operator::Lt, Some(&json!("10")), Some(&json!("9"))));
        assert!(!apply(Operator::Eq, Some(&json!(5)), Some(&json!("five"))));
    }

    #[test]
    fn contains_and_empty() {
        assert!(apply(Operator::Contains, Some(&json!("hello")), Some(&json!("ell"))));
        assert!(apply(Operator::Contains, Some(&json!([1, "2"])), Some(&json!(2))));
        assert!(apply(Operator::NotContains, Some(&json!({"a": 1})), Some(&json!("b"))));
        assert!(!apply(Operator::NotContains, Some(&json!(3)), Some(&json!("b"))));
        assert!(apply(Operator::IsEmpty, Some(&json!("")), None));
        assert!(apply(Operator::IsNotEmpty, Some(&json!(0)), None));
    }
}
