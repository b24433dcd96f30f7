//! The IdempotencyTable: [`IdempotencyStore`] on DynamoDB, with the record
//! layout of Powertools for AWS Lambda (`id`, `status`, `expiration` as the
//! table's TTL attribute, `in_progress_expiration`, `validation`, `data`)
//! plus `attempt`, the token of the attempt that took the lock.
//!
//! - The lock is one conditional `PutItem` ([`FREE`]): a completed record
//!   frees at its `expiration`, an in-progress one only at its own
//!   `in_progress_expiration`, never by the TTL attribute.
//! - Releasing and completing are conditional on the lock still being the
//!   caller's (`attempt` and status), so a stale attempt can clear or
//!   overwrite nothing of a newer one. `BatchWriteItem` cannot carry
//!   conditions, so each completion is its own conditional `PutItem`, all
//!   sent at once: one round trip, and each record's result stands alone
//!   (in a `TransactWriteItems` one lost lock would cancel every other
//!   completion, and moto copies every table for each transaction, which
//!   makes local runs quadratic in the data). No function keeps its
//!   records here any more (each locks the item its effect concerns); the
//!   store stays for `eventline_powertools::idempotency` users.

use crate::dynamodb::{from_item, to_item, Item};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use eventline_powertools::idempotency::{
    Acquire, CompleteError, IdempotencyStore, Record, Status, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The lock condition of `eventline_powertools::idempotency::is_free`, as a
/// DynamoDB condition expression.
pub(crate) const FREE: &str = "attribute_not_exists(id) OR (#status = :completed AND expiration < :now) OR (#status = :in_progress AND in_progress_expiration < :now_ms)";

/// The ownership condition of `eventline_powertools::idempotency::is_held_by`.
pub(crate) const HELD: &str = "attempt = :attempt AND #status = :in_progress";

/// The names [`FREE`] and [`HELD`] refer to.
pub(crate) fn held_names() -> HashMap<String, String> {
    HashMap::from([("#status".to_owned(), "status".to_owned())])
}

/// The values [`FREE`] compares a record with at `now_ms`.
pub(crate) fn free_values(now_ms: u64) -> Item {
    HashMap::from([
        (
            ":now".to_owned(),
            AttributeValue::N((now_ms / 1000).to_string()),
        ),
        (":now_ms".to_owned(), AttributeValue::N(now_ms.to_string())),
        (
            ":completed".to_owned(),
            AttributeValue::S(Status::Completed.as_str().to_owned()),
        ),
        (
            ":in_progress".to_owned(),
            AttributeValue::S(Status::InProgress.as_str().to_owned()),
        ),
    ])
}

/// The values [`HELD`] compares `record` with.
pub(crate) fn held_values(record: &Record) -> Item {
    HashMap::from([
        (
            ":attempt".to_owned(),
            AttributeValue::S(record.attempt.clone()),
        ),
        (
            ":in_progress".to_owned(),
            AttributeValue::S(Status::InProgress.as_str().to_owned()),
        ),
    ])
}

/// An idempotency record as stored, in Powertools' layout.
#[derive(Serialize, Deserialize)]
pub(crate) struct RecordItem {
    id: String,
    status: String,
    expiration: u64,
    in_progress_expiration: u64,
    validation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    /// Records written before attempts were stored own no lock anyone holds.
    #[serde(default)]
    attempt: String,
}

impl RecordItem {
    pub(crate) fn item(r: &Record) -> Result<Item, StoreError> {
        to_item(&Self {
            id: r.id.clone(),
            status: r.status.as_str().to_owned(),
            expiration: r.expiration,
            in_progress_expiration: r.in_progress_expiration,
            validation: r.payload_hash.clone(),
            data: r.result.clone(),
            attempt: r.attempt.clone(),
        })
        .map_err(|e| StoreError(format!("record could not be built: {e}")))
    }

    pub(crate) fn read(item: Item) -> Result<Record, StoreError> {
        let stored: Self =
            from_item(item).map_err(|e| StoreError(format!("stored record is invalid: {e}")))?;
        Ok(Record {
            status: Status::parse(&stored.status)
                .ok_or_else(|| StoreError("record has an unknown status".to_owned()))?,
            id: stored.id,
            expiration: stored.expiration,
            in_progress_expiration: stored.in_progress_expiration,
            payload_hash: stored.validation,
            result: stored.data,
            attempt: stored.attempt,
        })
    }
}

/// Idempotency records in one DynamoDB table (key `id`).
#[derive(Debug, Clone)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    /// Adapter for `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The record `id`, read consistently.
    pub(crate) async fn read(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                StoreError(
                    sdk_error("DynamoDB GetItem idempotency", &e, Detail::CodeAndMessage)
                        .to_string(),
                )
            })?;
        output.item.map(RecordItem::read).transpose()
    }

    /// Writes `record`'s completed form with one `PutItem`, kept only if
    /// the stored lock is still `record.attempt`'s.
    async fn complete(&self, record: &Record) -> Result<(), CompleteError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(RecordItem::item(record)?))
            .condition_expression(HELD)
            .set_expression_attribute_names(Some(held_names()))
            .set_expression_attribute_values(Some(held_values(record)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Err(CompleteError::LockLost)
            }
            Err(e) => Err(CompleteError::Store(StoreError(
                sdk_error(
                    "DynamoDB PutItem idempotency completion",
                    &e,
                    Detail::CodeAndMessage,
                )
                .to_string(),
            ))),
        }
    }
}

impl IdempotencyStore for DynamoIdempotencyStore {
    async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(RecordItem::item(record)?))
            .condition_expression(FREE)
            .set_expression_attribute_names(Some(held_names()))
            .set_expression_attribute_values(Some(free_values(now_ms)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Acquire::Acquired),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let returned = match e.into_err() {
                    PutItemError::ConditionalCheckFailedException(c) => {
                        c.item.filter(|i| !i.is_empty())
                    }
                    _ => None,
                };
                let existing = match returned {
                    Some(item) => Some(RecordItem::read(item)?),
                    None => self.read(&record.id).await?,
                };
                // It may have lapsed or been released between the two calls: try again later.
                existing
                    .map(Acquire::Existing)
                    .ok_or_else(|| StoreError("record changed during acquire; retry".to_owned()))
            }
            Err(e) => Err(StoreError(
                sdk_error("DynamoDB PutItem idempotency", &e, Detail::CodeAndMessage).to_string(),
            )),
        }
    }

    /// One result per record, in order, each completion conditional on the
    /// lock still being its attempt's. One `PutItem` per record, all at once (one round trip):
    /// each record's completion stands alone, so one lost lock costs
    /// nothing to the others.
    async fn complete_all(&self, records: &[Record]) -> Vec<Result<(), CompleteError>> {
        futures::future::join_all(records.iter().map(|record| self.complete(record))).await
    }

    /// Deletes the lock only if `record.attempt` still holds it; a record
    /// held by another attempt, completed or gone is left alone.
    async fn release(&self, record: &Record) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(record.id.clone()))
            .condition_expression(HELD)
            .set_expression_attribute_names(Some(held_names()))
            .set_expression_attribute_values(Some(held_values(record)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError(
                sdk_error(
                    "DynamoDB DeleteItem idempotency",
                    &e,
                    Detail::CodeAndMessage,
                )
                .to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_powertools_layout_and_old_records_read_without_attempt() {
        let record = Record {
            id: "fn#k".into(),
            status: Status::InProgress,
            expiration: 2_000_000_000,
            in_progress_expiration: 1_999_999_000_123,
            payload_hash: "h".into(),
            result: None,
            attempt: "a1".into(),
        };
        let mut item = RecordItem::item(&record).unwrap();
        assert_eq!(
            item,
            HashMap::from([
                ("id".to_owned(), AttributeValue::S("fn#k".into())),
                ("status".to_owned(), AttributeValue::S("INPROGRESS".into())),
                (
                    "expiration".to_owned(),
                    AttributeValue::N("2000000000".into())
                ),
                (
                    "in_progress_expiration".to_owned(),
                    AttributeValue::N("1999999000123".into())
                ),
                ("validation".to_owned(), AttributeValue::S("h".into())),
                ("attempt".to_owned(), AttributeValue::S("a1".into())),
            ])
        );

        item.remove("attempt");
        item.insert("data".into(), AttributeValue::S("null".into()));
        let old = RecordItem::read(item).unwrap();
        assert_eq!(old.attempt, "");
        assert_eq!(old.result.as_deref(), Some("null"));
    }

    #[test]
    fn a_record_with_an_unknown_status_is_refused() {
        let mut item = RecordItem::item(&Record {
            id: "fn#k".into(),
            status: Status::Completed,
            expiration: 1,
            in_progress_expiration: 1,
            payload_hash: "h".into(),
            result: None,
            attempt: String::new(),
        })
        .unwrap();
        item.insert("status".into(), AttributeValue::S("DONE".into()));
        assert_eq!(
            RecordItem::read(item),
            Err(StoreError("record has an unknown status".into()))
        );
    }
}
