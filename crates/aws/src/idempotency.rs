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
//!   makes local runs quadratic in the data).

use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use eventline_powertools::idempotency::{
    Acquire, CompleteError, IdempotencyStore, Record, Status, StoreError,
};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The lock condition of `eventline_powertools::idempotency::is_free`, as a
/// DynamoDB condition expression.
const FREE: &str = "attribute_not_exists(id) OR (#status = :completed AND expiration < :now) OR (#status = :in_progress AND in_progress_expiration < :now_ms)";

/// The ownership condition of `eventline_powertools::idempotency::is_held_by`.
const HELD: &str = "attempt = :attempt AND #status = :in_progress";

/// The names [`HELD`] refers to.
fn held_names() -> HashMap<String, String> {
    HashMap::from([("#status".to_owned(), "status".to_owned())])
}

/// The values [`HELD`] compares `record` with.
fn held_values(record: &Record) -> Item {
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

    fn to_item(r: &Record) -> Item {
        let mut item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(r.id.clone())),
            (
                "status".to_owned(),
                AttributeValue::S(r.status.as_str().to_owned()),
            ),
            (
                "expiration".to_owned(),
                AttributeValue::N(r.expiration.to_string()),
            ),
            (
                "in_progress_expiration".to_owned(),
                AttributeValue::N(r.in_progress_expiration.to_string()),
            ),
            (
                "validation".to_owned(),
                AttributeValue::S(r.payload_hash.clone()),
            ),
            ("attempt".to_owned(), AttributeValue::S(r.attempt.clone())),
        ]);
        if let Some(result) = &r.result {
            item.insert("data".to_owned(), AttributeValue::S(result.clone()));
        }
        item
    }

    fn from_item(item: &Item) -> Result<Record, StoreError> {
        let s = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(StoreError(format!(
                "record has no string attribute '{name}'"
            ))),
        };
        let n = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse::<u64>()
                .map_err(|e| StoreError(format!("{name}: {e}"))),
            _ => Err(StoreError(format!(
                "record has no number attribute '{name}'"
            ))),
        };
        Ok(Record {
            id: s("id")?,
            status: Status::parse(&s("status")?)
                .ok_or_else(|| StoreError("record has an unknown status".to_owned()))?,
            expiration: n("expiration")?,
            in_progress_expiration: n("in_progress_expiration")?,
            payload_hash: s("validation")?,
            result: s("data").ok(),
            // Records written before attempts were stored own no lock anyone holds.
            attempt: s("attempt").unwrap_or_default(),
        })
    }

    async fn read(&self, id: &str) -> Result<Option<Record>, StoreError> {
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
        output.item.as_ref().map(Self::from_item).transpose()
    }

    /// Writes `record`'s completed form with one `PutItem`, kept only if
    /// the stored lock is still `record.attempt`'s.
    async fn complete(&self, record: &Record) -> Result<(), CompleteError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::to_item(record)))
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
            .set_item(Some(Self::to_item(record)))
            .condition_expression(FREE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", AttributeValue::N((now_ms / 1000).to_string()))
            .expression_attribute_values(
                ":completed",
                AttributeValue::S(Status::Completed.as_str().to_owned()),
            )
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(
                ":in_progress",
                AttributeValue::S(Status::InProgress.as_str().to_owned()),
            )
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
                    Some(item) => Some(Self::from_item(&item)?),
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

    /// One `TransactWriteItems` per 100 records, each completion conditional
    /// on the lock still being its attempt's. One result per record, in order.
    /// One conditional `PutItem` per record, all at once (one round trip):
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

/// The idempotency guard a function builds at start-up: records in the
/// table of `config`, keys scoped by `scope`, replays and lost completions
/// counted in `metrics` (the guard reports events; the layer's observer
/// names the metrics).
pub fn guard(
    client: Client,
    config: eventline_app::IdempotencyConfig,
    scope: &str,
    metrics: &std::sync::Arc<eventline_powertools::metrics::Metrics>,
) -> eventline_powertools::idempotency::Idempotency<DynamoIdempotencyStore> {
    eventline_powertools::idempotency::Idempotency::new(
        DynamoIdempotencyStore::new(client, config.table),
        scope,
        config.expires_after,
    )
    .observed_by(eventline_powertools::layer::idempotency_metrics(
        metrics.clone(),
    ))
}
