//! One write of a request: planned against its table's schema, its
//! condition evaluated, then applied; and the errors a write answers.

use super::attr::{item_json, normalized_item, Item};
use super::expr::{self, Condition, Placeholders, Update};
use super::requests::*;
use super::{not_found, size, Table, CONDITION_FAILED};
use crate::reply::ApiError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub(super) enum Action {
    Put(Item),
    Update(Option<Update>),
    Delete,
    Check,
}

/// One write of a request, checked against its table's schema.
pub(super) struct Write {
    pub(super) table: String,
    pub(super) key: String,
    pub(super) key_item: Item,
    pub(super) condition: Option<Condition>,
    pub(super) action: Action,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    pub(super) old_on_failure: bool,
}

pub(super) enum Outcome {
    /// The item as it was, and the write units the attempt consumed.
    ConditionFailed(Option<Item>, f64),
    /// `new: None` deletes; `writes: false` for a condition check.
    Done {
        old: Option<Item>,
        new: Option<Item>,
        writes: bool,
        /// Write units: the larger of the item before and after, per KB.
        units: f64,
    },
}

pub(super) fn one_of<'v>(
    value: Option<&'v str>,
    allowed: &[&str],
    member: &str,
) -> Result<&'v str, ApiError> {
    let v = value.unwrap_or("NONE");
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::validation(format!(
            "{member} set to an invalid value: {v}; allowed: {}",
            allowed.join(", ")
        )))
    }
}

/// Parses the condition (and, through `more`, the update expression) of
/// one write, and checks that every placeholder was used.
pub(super) fn conditions<T>(
    c: &Conditional,
    more: impl FnOnce(&mut Placeholders) -> Result<T, ApiError>,
) -> Result<(Option<Condition>, T, bool), ApiError> {
    if c.expected.is_some() {
        return Err(ApiError::validation(
            "the fixed-latency backend does not support the legacy parameter Expected; use ConditionExpression",
        ));
    }
    let mut placeholders = Placeholders::new(
        c.expression_attribute_names.as_ref(),
        c.expression_attribute_values.as_ref(),
    );
    let condition = c
        .condition_expression
        .as_deref()
        .map(|text| expr::condition(text, &mut placeholders))
        .transpose()?;
    let extra = more(&mut placeholders)?;
    placeholders.finish()?;
    let on_failure = one_of(
        c.return_values_on_condition_check_failure.as_deref(),
        &["NONE", "ALL_OLD"],
        "ReturnValuesOnConditionCheckFailure",
    )?;
    Ok((condition, extra, on_failure == "ALL_OLD"))
}

pub(super) fn table<'t>(
    tables: &'t HashMap<String, Table>,
    name: &str,
) -> Result<&'t Table, ApiError> {
    tables.get(name).ok_or_else(|| not_found(name))
}

pub(super) fn plan_put(tables: &HashMap<String, Table>, spec: PutSpec) -> Result<Write, ApiError> {
    let item = normalized_item(spec.item)?;
    let (key, key_item) = table(tables, &spec.table_name)?.key_of(&item, true)?;
    let (condition, (), old_on_failure) = conditions(&spec.conditional, |_| Ok(()))?;
    Ok(Write {
        table: spec.table_name,
        key,
        key_item,
        condition,
        action: Action::Put(item),
        old_on_failure,
    })
}

pub(super) fn plan_update(
    tables: &HashMap<String, Table>,
    spec: UpdateSpec,
) -> Result<Write, ApiError> {
    let (key, key_item) =
        table(tables, &spec.table_name)?.key_of(&normalized_item(spec.key)?, false)?;
    let (condition, update, old_on_failure) = conditions(&spec.conditional, |p| {
        spec.update_expression
            .as_deref()
            .map(|text| expr::update(text, p))
            .transpose()
    })?;
    Ok(Write {
        table: spec.table_name,
        key,
        key_item,
        condition,
        action: Action::Update(update),
        old_on_failure,
    })
}

pub(super) fn plan_key(
    tables: &HashMap<String, Table>,
    spec: KeySpec,
    action: Action,
) -> Result<Write, ApiError> {
    let (key, key_item) =
        table(tables, &spec.table_name)?.key_of(&normalized_item(spec.key)?, false)?;
    let (condition, (), old_on_failure) = conditions(&spec.conditional, |_| Ok(()))?;
    Ok(Write {
        table: spec.table_name,
        key,
        key_item,
        condition,
        action,
        old_on_failure,
    })
}

impl Write {
    pub(super) fn evaluate(&self, tables: &HashMap<String, Table>) -> Result<Outcome, ApiError> {
        let table = table(tables, &self.table)?;
        let old = table.items.get(&self.key);
        let new = || -> Result<(Option<Item>, bool), ApiError> {
            Ok(match &self.action {
                Action::Put(item) => (Some(item.clone()), true),
                Action::Update(update) => {
                    let base = old.cloned().unwrap_or_else(|| self.key_item.clone());
                    let new = match update {
                        Some(u) => u.apply(&base, &table.key)?,
                        None => base,
                    };
                    (Some(new), true)
                }
                Action::Delete => (None, true),
                Action::Check => (old.cloned(), false),
            })
        };
        if let Some(condition) = &self.condition {
            if !condition.holds(old.unwrap_or(&Item::new())) {
                // Billed as the write it would have been.
                let would = new().ok().and_then(|(n, _)| n);
                let units = size::write_units(size::larger(old, would.as_ref()));
                return Ok(Outcome::ConditionFailed(old.cloned(), units));
            }
        }
        let (new, writes) = new()?;
        let units = size::write_units(size::larger(old, new.as_ref()));
        Ok(Outcome::Done {
            old: old.cloned(),
            new,
            writes,
            units,
        })
    }

    pub(super) fn apply(&self, tables: &mut HashMap<String, Table>, new: Option<Item>) {
        if let Some(table) = tables.get_mut(&self.table) {
            match new {
                Some(item) => table.items.insert(self.key.clone(), item),
                None => table.items.remove(&self.key),
            };
        }
    }
}

pub(super) fn condition_failed(old: Option<Item>, with_item: bool) -> ApiError {
    let error = ApiError::new(400, "ConditionalCheckFailedException", CONDITION_FAILED);
    match old {
        Some(item) if with_item => error.with("Item", item_json(&item)),
        _ => error,
    }
}

/// The reason DynamoDB gives an action of a transaction that another
/// transaction in flight on the same item cancelled.
pub(super) fn conflict_reason() -> Value {
    json!({ "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item" })
}

/// A `TransactionCanceledException` with one reason per action.
pub(crate) fn cancelled(reasons: Vec<Value>) -> ApiError {
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r["Code"].as_str()).collect();
    ApiError::new(
        400,
        "TransactionCanceledException",
        format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
    )
    .with("CancellationReasons", Value::Array(reasons))
}

pub(super) fn attributes(json: &mut Map<String, Value>, item: Option<Item>) {
    if let Some(item) = item.filter(|i| !i.is_empty()) {
        json.insert("Attributes".into(), item_json(&item));
    }
}
