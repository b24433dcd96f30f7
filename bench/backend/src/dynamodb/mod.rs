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
mod operations;
mod requests;
mod size;
mod write;

pub(crate) use write::cancelled;

use crate::reply::ApiError;
use attr::{Attr, Item};
use std::collections::{BTreeMap, HashMap};
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
}
