//! DynamoDB adapters: the UsersTable and the ProfilesTable.
//!
//! Both tables are keyed by `user_id` (S). Each item is its own lock
//! ([`crate::item_lock`]): creation is one conditional `PutItem`
//! (`attribute_not_exists(user_id)`) of the item carrying its attempt's lock,
//! which asks DynamoDB to return the existing item when the condition fails,
//! so "create and lock, or tell me what is there" is a single round trip
//! with no read-then-write race.
//!
//! Effects are recorded on the items they concern (`announced_at` on the
//! user, `document_written` on the profile) with a conditional `UpdateItem`
//! owned by the lock's attempt, so the fact that an effect happened outlives
//! every replay window and a duplicate of any age causes no second effect.
//!
//! [`users`] and [`profiles`] hold the two stores; this module the client
//! and the item conversions they share.

mod profiles;
mod users;

pub use profiles::DynamoProfileStore;
pub use users::DynamoUserStore;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use eventline_app::PortError;
use eventline_domain::Timestamp;
use eventline_powertools::item_lock::{Claim, Locked};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Records a user's announcement; the first one's time (`:value`) stays.
pub(crate) const ANNOUNCE: &str = "SET announced_at = if_not_exists(announced_at, :value)";

/// Builds the DynamoDB client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An item struct as a DynamoDB item.
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, serde_dynamo::Error> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value)
}

/// A stored item as its item struct. serde_dynamo panics on an attribute
/// type this SDK does not know (`AttributeValue::Unknown`, a newer wire
/// type), so such an item is refused before it gets there.
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, serde_dynamo::Error> {
    fn unknown(value: &AttributeValue) -> bool {
        match value {
            AttributeValue::L(list) => list.iter().any(unknown),
            AttributeValue::M(map) => map.values().any(unknown),
            other => other.is_unknown(),
        }
    }
    if item.values().any(unknown) {
        return Err(serde::de::Error::custom(
            "an attribute has a type this SDK does not know",
        ));
    }
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
}

pub(crate) fn timestamp(
    value: &str,
    name: &str,
    operation: &'static str,
) -> Result<Timestamp, PortError> {
    Timestamp::parse_rfc3339(value)
        .ok_or_else(|| invalid(operation, format!("{name}: not an RFC 3339 timestamp")))
}

pub(crate) fn invalid(operation: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::new(operation, format!("stored item is invalid: {e}"))
}

pub(crate) fn unwritable(operation: &'static str, e: serde_dynamo::Error) -> PortError {
    PortError::new(operation, format!("item could not be built: {e}"))
}

/// What a create-if-absent write did, as a claim: held, or the item that
/// was there. Some emulators return no item on a failed condition; it is
/// read back (`read`) then.
pub(crate) async fn claimed<T, Fut>(
    written: Option<Item>,
    operation: &'static str,
    read: impl FnOnce() -> Fut,
    parse: impl FnOnce(Item) -> Result<Locked<T>, PortError>,
) -> Result<Claim<T>, PortError>
where
    Fut: std::future::Future<Output = Result<Option<Locked<T>>, PortError>>,
{
    match written {
        None => Ok(Claim::Held),
        Some(item) if item.is_empty() => match read().await? {
            Some(existing) => Ok(Claim::Found(existing)),
            None => Err(PortError::new(
                operation,
                "condition failed but no item is stored",
            )),
        },
        Some(item) => Ok(Claim::Found(parse(item)?)),
    }
}

/// An item of string attributes (a test's stored item).
#[cfg(test)]
pub(crate) fn strings(pairs: &[(&str, &str)]) -> Item {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), s(*value)))
        .collect()
}
