//! The IdempotencyTable: [`IdempotencyStore`] on DynamoDB, with the record
//! layout of Powertools for AWS Lambda (`id`, `status`, `expiration` as the
//! table's TTL attribute, `in_progress_expiration`, `validation`, `data`).

use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use eventline_powertools::idempotency::{Acquire, IdempotencyStore, Record, Status, StoreError};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The lock condition of `eventline_powertools::idempotency::is_free`, as a
/// DynamoDB condition expression.
const FREE: &str = "attribute_not_exists(id) OR expiration < :now OR (#status = :in_progress AND in_progress_expiration < :now_ms)";

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

    async fn complete(&self, record: &Record) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::to_item(record)))
            .send()
            .await
            .map_err(|e| {
                StoreError(
                    sdk_error("DynamoDB PutItem idempotency", &e, Detail::CodeAndMessage)
                        .to_string(),
                )
            })?;
        Ok(())
    }

    /// One `BatchWriteItem` per 25 records; unprocessed items are retried
    /// (up to three rounds) and then reported.
    async fn complete_all(&self, records: &[Record]) -> Result<(), StoreError> {
        for chunk in records.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .filter_map(|r| {
                    let put = PutRequest::builder()
                        .set_item(Some(Self::to_item(r)))
                        .build()
                        .ok()?;
                    Some(WriteRequest::builder().put_request(put).build())
                })
                .collect();
            for _ in 0..3 {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| {
                        StoreError(
                            sdk_error(
                                "DynamoDB BatchWriteItem idempotency",
                                &e,
                                Detail::CodeAndMessage,
                            )
                            .to_string(),
                        )
                    })?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut items| items.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError(format!(
                    "{} records left unprocessed by BatchWriteItem",
                    requests.len()
                )));
            }
        }
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .send()
            .await
            .map_err(|e| {
                StoreError(
                    sdk_error(
                        "DynamoDB DeleteItem idempotency",
                        &e,
                        Detail::CodeAndMessage,
                    )
                    .to_string(),
                )
            })?;
        Ok(())
    }
}

/// The idempotency guard a function builds at cold start: records in the
/// table of `config`, keys scoped by `scope`, replays counted in `metrics`.
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
    .with_metrics(metrics.clone())
}
