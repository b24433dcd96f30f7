//! [`ItemLock`] on DynamoDB items: the attributes `lock_attempt` (S) and
//! `lock_until` (N, Unix ms) on the item the effects concern, and the
//! single-item conditional writes that take (a create-if-absent [`create`]
//! of the item carrying it), take over, finish and release it (or
//! [`discard`] it with an item that is nothing but the lock and its fact). A fact is
//! "not recorded" while its attribute is absent or `false` (items written
//! with an explicit `document_written: false` included). Every write asks for the item as it was when its condition fails
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`, free of charge), so a
//! failed condition tells whose lock or which fact stopped it, and a write
//! the SDK resent after the first one landed is recognised by its own token
//! ([`eventline_powertools::item_lock::classify`]).

use crate::dynamodb::Item;
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use eventline_app::PortError;
use eventline_powertools::item_lock::ItemLock;
use serde::{Deserialize, Serialize};

/// The lock attributes as an item struct stores them (flattened into it).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LockAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lock_attempt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lock_until: Option<u64>,
}

impl LockAttributes {
    pub(crate) fn new(lock: &ItemLock) -> Self {
        Self {
            lock_attempt: Some(lock.attempt.clone()),
            lock_until: Some(lock.until_ms),
        }
    }

    /// The lock, if the item carries a whole one (a released lock keeps its
    /// attempt but no `lock_until`: no lock).
    pub(crate) fn lock(&self) -> Option<ItemLock> {
        Some(ItemLock {
            attempt: self.lock_attempt.clone()?,
            until_ms: self.lock_until?,
        })
    }
}

/// An item's key: its attribute name and value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) name: &'static str,
    pub(crate) value: &'a str,
}

/// What a conditional write did: `Ok(None)` written, `Ok(Some(item))` its
/// condition failed on `item` as it was (empty if there was none).
pub(crate) type Written = Result<Option<Item>, PortError>;

/// "The fact `#done` is not recorded": absent, or the boolean `false`.
const NOT_DONE: &str = "(attribute_not_exists(#done) OR #done = :not_done)";

/// Creates `item` (carrying its lock) unless an item holds its key
/// (`key_name`): the create-if-absent write that takes the lock and stores
/// the data at once. On a failed condition, the item that was there.
pub(crate) async fn create(
    client: &Client,
    table: &str,
    key_name: &'static str,
    item: Item,
    operation: &'static str,
) -> Written {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#key)")
        .expression_attribute_names("#key", key_name)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(None),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
        {
            match e.into_err() {
                PutItemError::ConditionalCheckFailedException(c) => {
                    Ok(Some(c.item.unwrap_or_default()))
                }
                other => Err(PortError::new(operation, other)),
            }
        }
        Err(e) => Err(sdk_error(operation, &e, Detail::CodeAndMessage)),
    }
}

/// Takes over the lock of an existing item whose fact (`done`, an
/// attribute name) is not recorded and whose lock lapsed at `now_ms`, has
/// none, or is already ours.
pub(crate) async fn take_over(
    client: &Client,
    table: &str,
    key: Key<'_>,
    done: &str,
    lock: &ItemLock,
    now_ms: u64,
    operation: &'static str,
) -> Written {
    let request = client
        .update_item()
        .table_name(table)
        .key(key.name, AttributeValue::S(key.value.to_owned()))
        .update_expression("SET lock_attempt = :attempt, lock_until = :until")
        .condition_expression(format!(
            "attribute_exists(#key) AND {NOT_DONE} AND \
             (attribute_not_exists(lock_until) OR lock_until < :now OR lock_attempt = :attempt)"
        ))
        .expression_attribute_names("#key", key.name)
        .expression_attribute_names("#done", done)
        .expression_attribute_values(":not_done", AttributeValue::Bool(false))
        .expression_attribute_values(":attempt", AttributeValue::S(lock.attempt.clone()))
        .expression_attribute_values(":until", number(lock.until_ms))
        .expression_attribute_values(":now", number(now_ms));
    conditional(request, operation).await
}

/// Records a fact with `update` (an update expression over `values`) if
/// `lock` is still the item's: the completion owned by its attempt. A resend
/// finds its own lock and writes the same fact again (the caller's update
/// keeps a first value with `if_not_exists`).
pub(crate) async fn finish(
    client: &Client,
    table: &str,
    key: Key<'_>,
    update: &str,
    values: Vec<(&str, AttributeValue)>,
    lock: &ItemLock,
    operation: &'static str,
) -> Written {
    let mut request = client
        .update_item()
        .table_name(table)
        .key(key.name, AttributeValue::S(key.value.to_owned()))
        .update_expression(update)
        .condition_expression("lock_attempt = :attempt")
        .expression_attribute_values(":attempt", AttributeValue::S(lock.attempt.clone()));
    for (name, value) in values {
        request = request.expression_attribute_values(name, value);
    }
    conditional(request, operation).await
}

/// Gives `lock` up after failed work (so a retry need not wait for it to
/// lapse), only while it is this attempt's and the fact `done` is not
/// recorded. The item and its data stay.
pub(crate) async fn release(
    client: &Client,
    table: &str,
    key: Key<'_>,
    done: &str,
    lock: &ItemLock,
    operation: &'static str,
) -> Result<(), PortError> {
    let request = client
        .update_item()
        .table_name(table)
        .key(key.name, AttributeValue::S(key.value.to_owned()))
        .update_expression("REMOVE lock_until")
        .condition_expression(format!("lock_attempt = :attempt AND {NOT_DONE}"))
        .expression_attribute_names("#done", done)
        .expression_attribute_values(":not_done", AttributeValue::Bool(false))
        .expression_attribute_values(":attempt", AttributeValue::S(lock.attempt.clone()));
    // A failed condition means the lock is someone else's now, or done: nothing to give up.
    conditional(request, operation).await.map(|_| ())
}

/// Gives `lock` up with the item it is on, for an item that is only a lock
/// and a fact (a mail's marker): after failed work, while the lock is this
/// attempt's and the fact `done` is not recorded. Nothing is left behind
/// for work that never happened (a mail over its quota, to an unknown user).
pub(crate) async fn discard(
    client: &Client,
    table: &str,
    key: Key<'_>,
    done: &str,
    lock: &ItemLock,
    operation: &'static str,
) -> Result<(), PortError> {
    let result = client
        .delete_item()
        .table_name(table)
        .key(key.name, AttributeValue::S(key.value.to_owned()))
        .condition_expression(format!("lock_attempt = :attempt AND {NOT_DONE}"))
        .expression_attribute_names("#done", done)
        .expression_attribute_values(":not_done", AttributeValue::Bool(false))
        .expression_attribute_values(":attempt", AttributeValue::S(lock.attempt.clone()))
        .send()
        .await;
    match result {
        // A failed condition: someone else's now, or done: nothing to give up.
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error(operation, &e, Detail::CodeAndMessage)),
    }
}

/// Sends a conditional `UpdateItem`, asking for the item as it was when the
/// condition fails.
async fn conditional(
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    operation: &'static str,
) -> Written {
    let result = request
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(None),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
        {
            match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    Ok(Some(c.item.unwrap_or_default()))
                }
                other => Err(PortError::new(operation, other)),
            }
        }
        Err(e) => Err(sdk_error(operation, &e, Detail::CodeAndMessage)),
    }
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_needs_both_attributes() {
        let lock = ItemLock {
            attempt: "a".into(),
            until_ms: 7,
        };
        assert_eq!(LockAttributes::new(&lock).lock(), Some(lock));
        let released = LockAttributes {
            lock_attempt: Some("a".into()),
            lock_until: None,
        };
        assert_eq!(released.lock(), None);
        assert_eq!(LockAttributes::default().lock(), None);
    }
}
