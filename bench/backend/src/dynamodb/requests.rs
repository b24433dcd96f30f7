//! The request bodies of the operations, as DynamoDB's JSON protocol sends them.

use super::attr::{Attr, Item};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The condition members every write shares.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Conditional {
    pub(super) condition_expression: Option<String>,
    pub(super) expression_attribute_names: Option<HashMap<String, String>>,
    pub(super) expression_attribute_values: Option<HashMap<String, Attr>>,
    pub(super) return_values_on_condition_check_failure: Option<String>,
    pub(super) expected: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PutSpec {
    pub(super) table_name: String,
    pub(super) item: Item,
    #[serde(flatten)]
    pub(super) conditional: Conditional,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateSpec {
    pub(super) table_name: String,
    pub(super) key: Item,
    pub(super) update_expression: Option<String>,
    #[serde(flatten)]
    pub(super) conditional: Conditional,
}

/// `DeleteItem`, and a transaction's `Delete` and `ConditionCheck`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeySpec {
    pub(super) table_name: String,
    pub(super) key: Item,
    #[serde(flatten)]
    pub(super) conditional: Conditional,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WithReturnValues<T> {
    #[serde(flatten)]
    pub(super) spec: T,
    pub(super) return_values: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetItem {
    pub(super) table_name: String,
    pub(super) key: Item,
    pub(super) projection_expression: Option<String>,
    pub(super) expression_attribute_names: Option<HashMap<String, String>>,
    pub(super) attributes_to_get: Option<Value>,
    pub(super) consistent_read: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PutRequest {
    #[serde(rename = "Item")]
    pub(super) item: Item,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DeleteRequest {
    #[serde(rename = "Key")]
    pub(super) key: Item,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WriteRequest {
    #[serde(rename = "PutRequest", skip_serializing_if = "Option::is_none")]
    pub(super) put: Option<PutRequest>,
    #[serde(rename = "DeleteRequest", skip_serializing_if = "Option::is_none")]
    pub(super) delete: Option<DeleteRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BatchWriteItem {
    pub(super) request_items: BTreeMap<String, Vec<WriteRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactItem {
    pub(super) put: Option<PutSpec>,
    pub(super) update: Option<UpdateSpec>,
    pub(super) delete: Option<KeySpec>,
    pub(super) condition_check: Option<KeySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactWriteItems {
    pub(super) transact_items: Vec<TransactItem>,
}
