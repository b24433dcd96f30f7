//! DynamoDB expressions: condition, update and projection expressions,
//! parsed with their `#name` / `:value` placeholders and evaluated on an
//! item.
//!
//! Supported: the whole condition grammar (`OR`, `AND`, `NOT`,
//! parentheses, `= <> < <= > >=`, `BETWEEN`, `IN`, `attribute_exists`,
//! `attribute_not_exists`, `attribute_type`, `begins_with`, `contains`,
//! `size`) on nested paths; update expressions (`SET` with `+`, `-`,
//! `if_not_exists`, `list_append`; `REMOVE`; `ADD`; `DELETE`) on top-level
//! attributes; projections of top-level attributes. Refused as DynamoDB
//! does: undefined or unused placeholders, overlapping update paths,
//! updates of key attributes, a clause given twice. Not checked: reserved
//! words used without a placeholder.

mod eval;
mod parser;
mod tokens;

pub(crate) use parser::{condition, projection, update};
pub(crate) use tokens::Cmp;

use super::attr::Attr;
use crate::reply::ApiError;
use std::collections::{BTreeSet, HashMap};

/// The placeholders of one request, and which of them its expressions use.
pub(crate) struct Placeholders<'a> {
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, Attr>>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl<'a> Placeholders<'a> {
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, Attr>>,
    ) -> Self {
        Self {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        }
    }

    fn name(&mut self, placeholder: &str) -> Result<String, String> {
        let name = self
            .names
            .and_then(|n| n.get(placeholder))
            .ok_or_else(|| {
                format!("An expression attribute name used in the document path is not defined; attribute name: {placeholder}")
            })?;
        self.used_names.insert(placeholder.to_owned());
        Ok(name.clone())
    }

    fn value(&mut self, placeholder: &str) -> Result<Attr, String> {
        let value = self
            .values
            .and_then(|v| v.get(placeholder))
            .ok_or_else(|| {
                format!("An expression attribute value used in expression is not defined; attribute value: {placeholder}")
            })?;
        self.used_values.insert(placeholder.to_owned());
        value.clone().normalized().map_err(|e| e.message)
    }

    /// Refuses placeholders no expression used, as DynamoDB does.
    pub fn finish(self) -> Result<(), ApiError> {
        fn unused<'k>(given: Option<Vec<&'k String>>, used: &BTreeSet<String>) -> Vec<&'k String> {
            let mut left: Vec<&String> = given
                .unwrap_or_default()
                .into_iter()
                .filter(|k| !used.contains(*k))
                .collect();
            left.sort();
            left
        }
        let names = unused(self.names.map(|n| n.keys().collect()), &self.used_names);
        if !names.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                join(&names)
            )));
        }
        let values = unused(self.values.map(|v| v.keys().collect()), &self.used_values);
        if !values.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                join(&values)
            )));
        }
        Ok(())
    }
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One step of a document path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Name(String),
    Index(usize),
}

pub(crate) type Path = Vec<Step>;

/// A value in an expression.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Path(Path),
    Value(Attr),
    Size(Path),
    IfNotExists(Path, Box<Operand>),
    ListAppend(Box<Operand>, Box<Operand>),
    Plus(Box<Operand>, Box<Operand>),
    Minus(Box<Operand>, Box<Operand>),
}

/// A parsed condition expression.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    Or(Box<Condition>, Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, &'static str),
    BeginsWith(Path, Operand),
    Contains(Path, Operand),
}

/// A parsed update expression, on top-level attributes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Update {
    set: Vec<(String, Operand)>,
    remove: Vec<String>,
    add: Vec<(String, Attr)>,
    delete: Vec<(String, Attr)>,
}

#[cfg(test)]
mod tests;
