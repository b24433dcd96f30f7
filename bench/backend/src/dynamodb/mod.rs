//! DynamoDB (AWS JSON 1.0, `X-Amz-Target: DynamoDB_20120810.<Op>`):
//! `PutItem`, `GetItem`, `UpdateItem`, `DeleteItem`, `BatchWriteItem` and
//! `TransactWriteItems` over an in-memory item map per declared table.
//!
//! Conditions, update expressions, `ReturnValues` and
//! `ReturnValuesOnConditionCheckFailure` behave as DynamoDB's (see
//! [`expr`]); a failed condition answers `ConditionalCheckFailedException`
//! (with `Item` when asked), a cancelled transaction
//! `TransactionCanceledException` with one `CancellationReasons` entry per
//! action. `BatchWriteItem` entries picked by `--fail-entry-rate` are not
//! written and come back in `UnprocessedItems`; transactions picked by
//! `--conflict-rate` are cancelled with one action's reason
//! `TransactionConflict` (as when another transaction holds the item).
//!
//! Every call counts the capacity units it consumes, from item sizes
//! ([`size`]): a write 1 unit per KB of the larger of the item before and
//! after (a failed condition included: the item it would have written), a
//! transactional write 2 per item and KB (a cancelled transaction 1: its
//! prepare phase, an assumption), a read 1 per 4 KB (half when eventually
//! consistent), at least 1 per item.
//!
//! Not emulated: TTL deletion, reporting capacity (`ConsumedCapacity` is
//! never returned, nothing is throttled unless injected), item size limits,
//! the declared type of key attributes (any of S, N, B is taken), indexes,
//! `Query`/`Scan`/reads in batches, transaction idempotency tokens, legacy
//! parameters (`Expected`, `AttributesToGet`).

mod attr;
mod expr;
mod number;
mod size;

use crate::random::EntryFaults;
use crate::reply::{parse, Answer, ApiError};
use crate::units::Units;
use attr::{item_json, normalized_item, Attr, Item};
use expr::{Condition, Placeholders, Update};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

/// A table the backend serves: its name and key attribute names (hash
/// key, then the range key if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name.
    pub name: String,
    /// Its hash key attribute, then its range key attribute if any.
    pub key: Vec<String>,
}

impl std::str::FromStr for TableSpec {
    type Err = String;

    /// `NAME=HASH_KEY[,RANGE_KEY]`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (name, keys) = text
            .split_once('=')
            .ok_or_else(|| format!("table '{text}': expected NAME=HASH_KEY[,RANGE_KEY]"))?;
        let key: Vec<String> = keys.split(',').map(str::to_owned).collect();
        if name.is_empty() || key.len() > 2 || key.iter().any(String::is_empty) {
            return Err(format!(
                "table '{text}': expected NAME=HASH_KEY[,RANGE_KEY]"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }
}

struct Table {
    key: Vec<String>,
    items: HashMap<String, Item>,
}

/// The tables and their items.
pub(crate) struct Store {
    tables: Mutex<HashMap<String, Table>>,
}

const CONDITION_FAILED: &str = "The conditional request failed";

fn not_found(table: &str) -> ApiError {
    ApiError::new(
        400,
        "ResourceNotFoundException",
        format!("Requested resource not found: Table: {table} not found"),
    )
}

impl Table {
    /// The item's key: its text form (the map key) and its attributes.
    fn key_of(&self, attrs: &Item, whole_item: bool) -> Result<(String, Item), ApiError> {
        if !whole_item && attrs.len() != self.key.len() {
            return Err(ApiError::validation(
                "The provided key element does not match the schema",
            ));
        }
        let mut key = Item::new();
        for name in &self.key {
            let value = attrs.get(name).ok_or_else(|| {
                ApiError::validation(if whole_item {
                    format!("One or more parameter values were invalid: Missing the key {name} in the item")
                } else {
                    "The provided key element does not match the schema".to_owned()
                })
            })?;
            match value {
                Attr::S(s) | Attr::B(s) if s.is_empty() => return Err(ApiError::validation(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
                ))),
                Attr::S(_) | Attr::N(_) | Attr::B(_) => {}
                _ => return Err(ApiError::validation(
                    "The provided key element does not match the schema",
                )),
            }
            key.insert(name.clone(), value.clone());
        }
        let text = serde_json::to_string(&key.values().collect::<Vec<_>>())
            .map_err(|e| ApiError::validation(e.to_string()))?;
        Ok((text, key))
    }
}

// ------------------------------------------------------------------------
// requests
// ------------------------------------------------------------------------

/// The condition members every write shares.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Conditional {
    condition_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<HashMap<String, Attr>>,
    return_values_on_condition_check_failure: Option<String>,
    expected: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutSpec {
    table_name: String,
    item: Item,
    #[serde(flatten)]
    conditional: Conditional,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateSpec {
    table_name: String,
    key: Item,
    update_expression: Option<String>,
    #[serde(flatten)]
    conditional: Conditional,
}

/// `DeleteItem`, and a transaction's `Delete` and `ConditionCheck`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeySpec {
    table_name: String,
    key: Item,
    #[serde(flatten)]
    conditional: Conditional,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WithReturnValues<T> {
    #[serde(flatten)]
    spec: T,
    return_values: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetItem {
    table_name: String,
    key: Item,
    projection_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    attributes_to_get: Option<Value>,
    consistent_read: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PutRequest {
    #[serde(rename = "Item")]
    item: Item,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeleteRequest {
    #[serde(rename = "Key")]
    key: Item,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WriteRequest {
    #[serde(rename = "PutRequest", skip_serializing_if = "Option::is_none")]
    put: Option<PutRequest>,
    #[serde(rename = "DeleteRequest", skip_serializing_if = "Option::is_none")]
    delete: Option<DeleteRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchWriteItem {
    request_items: BTreeMap<String, Vec<WriteRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactItem {
    put: Option<PutSpec>,
    update: Option<UpdateSpec>,
    delete: Option<KeySpec>,
    condition_check: Option<KeySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteItems {
    transact_items: Vec<TransactItem>,
}

// ------------------------------------------------------------------------
// one write, planned and evaluated
// ------------------------------------------------------------------------

enum Action {
    Put(Item),
    Update(Option<Update>),
    Delete,
    Check,
}

/// One write of a request, checked against its table's schema.
struct Write {
    table: String,
    key: String,
    key_item: Item,
    condition: Option<Condition>,
    action: Action,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    old_on_failure: bool,
}

enum Outcome {
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

fn one_of<'v>(value: Option<&'v str>, allowed: &[&str], member: &str) -> Result<&'v str, ApiError> {
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
fn conditions<T>(
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

fn table<'t>(tables: &'t HashMap<String, Table>, name: &str) -> Result<&'t Table, ApiError> {
    tables.get(name).ok_or_else(|| not_found(name))
}

fn plan_put(tables: &HashMap<String, Table>, spec: PutSpec) -> Result<Write, ApiError> {
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

fn plan_update(tables: &HashMap<String, Table>, spec: UpdateSpec) -> Result<Write, ApiError> {
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

fn plan_key(
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
    fn evaluate(&self, tables: &HashMap<String, Table>) -> Result<Outcome, ApiError> {
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

    fn apply(&self, tables: &mut HashMap<String, Table>, new: Option<Item>) {
        if let Some(table) = tables.get_mut(&self.table) {
            match new {
                Some(item) => table.items.insert(self.key.clone(), item),
                None => table.items.remove(&self.key),
            };
        }
    }
}

fn condition_failed(old: Option<Item>, with_item: bool) -> ApiError {
    let error = ApiError::new(400, "ConditionalCheckFailedException", CONDITION_FAILED);
    match old {
        Some(item) if with_item => error.with("Item", item_json(&item)),
        _ => error,
    }
}

/// The reason DynamoDB gives an action of a transaction that another
/// transaction in flight on the same item cancelled.
fn conflict_reason() -> Value {
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

fn attributes(json: &mut Map<String, Value>, item: Option<Item>) {
    if let Some(item) = item.filter(|i| !i.is_empty()) {
        json.insert("Attributes".into(), item_json(&item));
    }
}

// ------------------------------------------------------------------------
// operations
// ------------------------------------------------------------------------

impl Store {
    pub fn new(specs: &[TableSpec]) -> Self {
        let tables = specs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    Table {
                        key: s.key.clone(),
                        items: HashMap::new(),
                    },
                )
            })
            .collect();
        Self {
            tables: Mutex::new(tables),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Table>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Items per table.
    pub fn item_counts(&self) -> BTreeMap<String, usize> {
        self.lock()
            .iter()
            .map(|(name, t)| (name.clone(), t.items.len()))
            .collect()
    }

    /// Forgets every item (the tables stay).
    pub fn clear(&self) {
        for table in self.lock().values_mut() {
            table.items.clear();
        }
    }

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
    fn write(
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

    fn put_item(&self, request: WithReturnValues<PutSpec>) -> Result<Answer, ApiError> {
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

    fn delete_item(&self, request: WithReturnValues<KeySpec>) -> Result<Answer, ApiError> {
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

    fn update_item(&self, request: WithReturnValues<UpdateSpec>) -> Result<Answer, ApiError> {
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

    fn get_item(&self, request: GetItem) -> Result<Answer, ApiError> {
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

    fn batch_write_item(
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

    fn transact_write_items(
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
