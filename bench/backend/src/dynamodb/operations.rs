//! The operations: each request checked, planned, evaluated and answered,
//! with the capacity units it consumed.

use super::attr::{item_json, normalized_item, Item};
use super::expr::{self, Placeholders};
use super::requests::*;
use super::write::*;
use super::{size, Store, Table, CONDITION_FAILED};
use crate::random::EntryFaults;
use crate::reply::{parse, Answer, ApiError};
use crate::units::Units;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

impl Store {
    /// `conflicts` picks the transactions cancelled with
    /// `TransactionConflict`.
    pub fn handle(
        &self,
        entry_faults: &EntryFaults,
        conflicts: &EntryFaults,
        operation: &str,
        body: &[u8],
    ) -> Result<Answer, ApiError> {
        match operation {
            "PutItem" => self.put_item(parse(body)?),
            "GetItem" => self.get_item(parse(body)?),
            "UpdateItem" => self.update_item(parse(body)?),
            "DeleteItem" => self.delete_item(parse(body)?),
            "BatchWriteItem" => self.batch_write_item(entry_faults, parse(body)?),
            "TransactWriteItems" => {
                let request: TransactWriteItems = parse(body)?;
                let entries = request.transact_items.len() as u64;
                self.transact_write_items(conflicts, request)
                    .map(|answer| Answer { entries, ..answer })
            }
            other => Err(ApiError::new(
                400,
                "UnknownOperationException",
                format!("the fixed-latency backend does not implement DynamoDB {other}"),
            )),
        }
    }

    /// Runs one conditional write; the old and new item and the write
    /// units on success.
    pub(super) fn write(
        &self,
        plan: impl FnOnce(&HashMap<String, Table>) -> Result<Write, ApiError>,
    ) -> Result<(Option<Item>, Option<Item>, Write, Units), ApiError> {
        let mut tables = self.lock();
        let write = plan(&tables)?;
        match write.evaluate(&tables)? {
            Outcome::ConditionFailed(old, units) => {
                Err(condition_failed(old, write.old_on_failure).consumed(Units::wru(units)))
            }
            Outcome::Done {
                old, new, units, ..
            } => {
                write.apply(&mut tables, new.clone());
                Ok((old, new, write, Units::wru(units)))
            }
        }
    }

    pub(super) fn put_item(&self, request: WithReturnValues<PutSpec>) -> Result<Answer, ApiError> {
        let returns = one_of(
            request.return_values.as_deref(),
            &["NONE", "ALL_OLD"],
            "ReturnValues",
        )?;
        let (old, _, _, units) = self.write(|tables| plan_put(tables, request.spec))?;
        let mut out = Map::new();
        if returns == "ALL_OLD" {
            attributes(&mut out, old);
        }
        Ok(Answer::from(Value::Object(out)).consumed(units))
    }

    pub(super) fn delete_item(
        &self,
        request: WithReturnValues<KeySpec>,
    ) -> Result<Answer, ApiError> {
        let returns = one_of(
            request.return_values.as_deref(),
            &["NONE", "ALL_OLD"],
            "ReturnValues",
        )?;
        let (old, _, _, units) =
            self.write(|tables| plan_key(tables, request.spec, Action::Delete))?;
        let mut out = Map::new();
        if returns == "ALL_OLD" {
            attributes(&mut out, old);
        }
        Ok(Answer::from(Value::Object(out)).consumed(units))
    }

    pub(super) fn update_item(
        &self,
        request: WithReturnValues<UpdateSpec>,
    ) -> Result<Answer, ApiError> {
        let returns = one_of(
            request.return_values.as_deref(),
            &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
            "ReturnValues",
        )?;
        let (old, new, write, units) = self.write(|tables| plan_update(tables, request.spec))?;
        let touched: HashSet<String> = match &write.action {
            Action::Update(Some(u)) => u.touched().cloned().collect(),
            _ => HashSet::new(),
        };
        let only_touched = |item: Option<Item>| {
            item.map(|i| {
                i.into_iter()
                    .filter(|(k, _)| touched.contains(k))
                    .collect::<Item>()
            })
        };
        let mut out = Map::new();
        match returns {
            "ALL_OLD" => attributes(&mut out, old),
            "ALL_NEW" => attributes(&mut out, new),
            "UPDATED_OLD" => attributes(&mut out, only_touched(old)),
            "UPDATED_NEW" => attributes(&mut out, only_touched(new)),
            _ => {}
        }
        Ok(Answer::from(Value::Object(out)).consumed(units))
    }

    pub(super) fn get_item(&self, request: GetItem) -> Result<Answer, ApiError> {
        if request.attributes_to_get.is_some() {
            return Err(ApiError::validation(
                "the fixed-latency backend does not support the legacy parameter AttributesToGet; use ProjectionExpression",
            ));
        }
        let mut placeholders = Placeholders::new(request.expression_attribute_names.as_ref(), None);
        let projection = request
            .projection_expression
            .as_deref()
            .map(|text| expr::projection(text, &mut placeholders))
            .transpose()?;
        placeholders.finish()?;
        let tables = self.lock();
        let table = table(&tables, &request.table_name)?;
        let (key, _) = table.key_of(&normalized_item(request.key)?, false)?;
        let consistent = request.consistent_read.unwrap_or(false);
        // The whole item is read (and billed) whatever the projection.
        let units = Units {
            rru: size::read_units(table.items.get(&key).map_or(0, size::item_size), consistent),
            ..Units::default()
        };
        let Some(item) = table.items.get(&key) else {
            return Ok(Answer::from(json!({})).consumed(units));
        };
        let item: Item = match projection {
            Some(names) => item
                .iter()
                .filter(|(k, _)| names.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => item.clone(),
        };
        Ok(Answer::from(json!({ "Item": item_json(&item) })).consumed(units))
    }

    pub(super) fn batch_write_item(
        &self,
        faults: &EntryFaults,
        request: BatchWriteItem,
    ) -> Result<Answer, ApiError> {
        let total: usize = request.request_items.values().map(Vec::len).sum();
        if total == 0 || total > 25 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have between 1 and 25 write requests, has {total}"
            )));
        }
        let mut tables = self.lock();
        // Everything is checked before anything is written.
        let mut planned = Vec::with_capacity(total);
        for (name, requests) in &request.request_items {
            let table = table(&tables, name)?;
            let mut keys = HashSet::new();
            for request in requests {
                let (key, new) = match (&request.put, &request.delete) {
                    (Some(put), None) => {
                        let item = normalized_item(put.item.clone())?;
                        (table.key_of(&item, true)?.0, Some(item))
                    }
                    (None, Some(delete)) => (table.key_of(&normalized_item(delete.key.clone())?, false)?.0, None),
                    _ => {
                        return Err(ApiError::validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ))
                    }
                };
                if !keys.insert(key.clone()) {
                    return Err(ApiError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                planned.push((name.clone(), key, new, request.clone()));
            }
        }
        let mut unprocessed: BTreeMap<String, Vec<WriteRequest>> = BTreeMap::new();
        let mut failed = 0;
        let mut wru = 0.0;
        for (name, key, new, request) in planned {
            if faults.next_fails() {
                failed += 1;
                unprocessed.entry(name).or_default().push(request);
                continue;
            }
            if let Some(table) = tables.get_mut(&name) {
                wru += size::write_units(size::larger(table.items.get(&key), new.as_ref()));
                match new {
                    Some(item) => table.items.insert(key, item),
                    None => table.items.remove(&key),
                };
            }
        }
        let unprocessed =
            serde_json::to_value(unprocessed).map_err(|e| ApiError::validation(e.to_string()))?;
        Ok(Answer {
            json: json!({ "UnprocessedItems": unprocessed }),
            entries_failed: failed,
            entries: total as u64,
            units: Units::wru(wru),
        })
    }

    pub(super) fn transact_write_items(
        &self,
        conflicts: &EntryFaults,
        request: TransactWriteItems,
    ) -> Result<Answer, ApiError> {
        let n = request.transact_items.len();
        if n == 0 || n > 100 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length between 1 and 100, has {n}"
            )));
        }
        let mut tables = self.lock();
        let mut writes = Vec::with_capacity(n);
        let mut items = HashSet::new();
        for item in request.transact_items {
            let write = match (item.put, item.update, item.delete, item.condition_check) {
                (Some(put), None, None, None) => plan_put(&tables, put)?,
                (None, Some(update), None, None) => plan_update(&tables, update)?,
                (None, None, Some(delete), None) => plan_key(&tables, delete, Action::Delete)?,
                (None, None, None, Some(check)) => {
                    if check.conditional.condition_expression.is_none() {
                        return Err(ApiError::validation(
                            "1 validation error detected: Value null at 'transactItems.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
                        ));
                    }
                    plan_key(&tables, check, Action::Check)?
                }
                _ => {
                    return Err(ApiError::validation(
                        "TransactItems can only contain one of Check, Put, Update or Delete",
                    ))
                }
            };
            if !items.insert((write.table.clone(), write.key.clone())) {
                return Err(ApiError::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            writes.push(write);
        }
        // All conditions against the state before the transaction; all or nothing.
        let mut reasons = Vec::with_capacity(n);
        let mut results = Vec::with_capacity(n);
        let mut wru = 0.0;
        for write in &writes {
            match write.evaluate(&tables) {
                Ok(Outcome::Done {
                    new, writes, units, ..
                }) => {
                    wru += units;
                    reasons.push(json!({ "Code": "None" }));
                    results.push(writes.then_some(new));
                }
                Ok(Outcome::ConditionFailed(old, units)) => {
                    wru += units;
                    let mut reason =
                        json!({ "Code": "ConditionalCheckFailed", "Message": CONDITION_FAILED });
                    if let (Some(item), true) = (old, write.old_on_failure) {
                        reason["Item"] = item_json(&item);
                    }
                    reasons.push(reason);
                    results.push(None);
                }
                Err(e) => {
                    reasons.push(json!({ "Code": "ValidationError", "Message": e.message }));
                    results.push(None);
                }
            }
        }
        // Injected: another transaction holds one of the items.
        if reasons.iter().all(|r| r["Code"] == "None") && conflicts.next_fails() {
            reasons[conflicts.pick(n)] = conflict_reason();
        }
        if reasons.iter().any(|r| r["Code"] != "None") {
            // Assumption: a cancelled transaction is billed its prepare phase, 1 unit per item and KB.
            return Err(cancelled(reasons).consumed(Units::wru(wru)));
        }
        for (write, result) in writes.iter().zip(results) {
            if let Some(new) = result {
                write.apply(&mut tables, new);
            }
        }
        // Two underlying writes per item: prepare and commit.
        Ok(Answer::from(json!({})).consumed(Units::wru(2.0 * wru)))
    }
}
