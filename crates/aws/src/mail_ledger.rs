//! The mail ledger on DynamoDB: each message's lock and the fact that it was
//! sent, and how many messages each mailbox got per day, in the
//! IdempotencyTable (key `id`).
//!
//! - `mail-sent#<message_id>`: the message's own lock and fact
//!   ([`crate::item_lock`]): created in progress by one conditional
//!   `PutItem` carrying `lock_attempt`, `lock_until` and `payload_hash`
//!   (the item as it was comes back on a failed condition, ALL_OLD), then
//!   `sent = true` recorded under the lock; an attempt that sent nothing
//!   (over quota, unknown user, failed send) deletes its unsent marker
//!   instead of leaving it behind. It has no `expiration`
//!   attribute, so the table's TTL never deletes it: a duplicate of any age
//!   (a DLQ redrive days later) finds it. Markers written before markers
//!   were locks (`{id, sent: true}`) read as sent, for any payload.
//! - `mail-quota#<mailbox key>#<YYYY-MM-DD>`: the string set `ids` of message
//!   ids admitted for that mailbox that day (UTC), with `expiration` two
//!   days after the day starts (TTL). The mailbox key is the domain's hash of
//!   the normalised mailbox (`EmailAddress::mailbox_key`: sub-address tags
//!   dropped; for an untagged address, the hash of the lower-cased address,
//!   as before): no item and no error holds an address.
//!
//! [`MailLedger::take_slot`] adds the message id to the set under the
//! condition that the set is absent, smaller than the cap, or already holds
//! this id (a retry of the same message takes no second slot), so it can run
//! beside the marker's create. The condition is evaluated the same way by
//! DynamoDB and by moto (`size` of a string set is its number of elements; a
//! missing attribute is caught first by `attribute_not_exists`). Single-item
//! writes, no transaction: moto copies every table for each transaction.

use crate::dynamodb::{from_item, to_item, unwritable, Item};
use crate::item_lock::{self, Key, LockAttributes};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{Admission, MailLedger, MailMarker};
use eventline_app::PortError;
use eventline_domain::{MailboxKey, Timestamp};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use serde::{Deserialize, Serialize};

/// How long a day's quota item outlives the start of its day.
const QUOTA_LIFETIME_SECONDS: u64 = 2 * 24 * 3600;

/// The sent marker of one message, as stored.
#[derive(Serialize, Deserialize)]
struct MarkerItem {
    id: String,
    /// Absent until the message is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_hash: Option<String>,
    #[serde(flatten)]
    lock: LockAttributes,
}

impl MarkerItem {
    fn read(item: Item, operation: &'static str) -> Result<Locked<MailMarker>, PortError> {
        if item.is_empty() {
            return Err(PortError::new(
                operation,
                "no marker is stored under this id",
            ));
        }
        let stored: Self = from_item(item)
            .map_err(|e| PortError::new(operation, format!("stored marker is invalid: {e}")))?;
        Ok(Locked {
            lock: stored.lock.lock(),
            value: MailMarker {
                payload_hash: stored.payload_hash,
                sent: stored.sent,
            },
        })
    }
}

/// The mail ledger in one DynamoDB table (key `id`, TTL attribute `expiration`).
#[derive(Debug, Clone)]
pub struct DynamoMailLedger {
    client: Client,
    table: String,
}

impl DynamoMailLedger {
    /// Adapter for `table` (the IdempotencyTable, env `IDEMPOTENCY_TABLE`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Key of the sent marker of `message_id`.
    pub fn sent_key(message_id: &str) -> String {
        format!("mail-sent#{message_id}")
    }

    /// Key of `mailbox`'s quota item for `day` (`YYYY-MM-DD`).
    pub fn quota_key(mailbox: &MailboxKey, day: &str) -> String {
        format!("mail-quota#{mailbox}#{day}")
    }
}

/// The marker's fact attribute.
const SENT: &str = "sent";

impl MailLedger for DynamoMailLedger {
    async fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<MailMarker>, PortError> {
        const OP: &str = "DynamoDB PutItem mail-sent marker";
        // No `expiration`: the table's TTL must never delete this fact.
        let marker = to_item(&MarkerItem {
            id: Self::sent_key(message_id),
            sent: false,
            payload_hash: Some(payload_hash.to_owned()),
            lock: LockAttributes::new(lock),
        })
        .map_err(|e| unwritable(OP, e))?;
        match item_lock::create(&self.client, &self.table, "id", marker, OP).await? {
            None => Ok(Claim::Held),
            Some(item) => Ok(Claim::Found(MarkerItem::read(item, OP)?)),
        }
    }

    async fn take_over(
        &self,
        message_id: &str,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<MailMarker>, PortError> {
        const OP: &str = "DynamoDB UpdateItem mail-sent lock";
        let id = Self::sent_key(message_id);
        let key = Key {
            name: "id",
            value: &id,
        };
        let taken = item_lock::take_over(&self.client, &self.table, key, SENT, lock, now_ms, OP);
        match taken.await? {
            None => Ok(Claim::Held),
            Some(item) => Ok(Claim::Found(MarkerItem::read(item, OP)?)),
        }
    }

    async fn record_sent(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> Result<Finish<MailMarker>, PortError> {
        const OP: &str = "DynamoDB UpdateItem mail-sent marker";
        let id = Self::sent_key(message_id);
        let key = Key {
            name: "id",
            value: &id,
        };
        let sent = vec![(":sent", AttributeValue::Bool(true))];
        let written = item_lock::finish(
            &self.client,
            &self.table,
            key,
            "SET sent = :sent",
            sent,
            lock,
            OP,
        );
        match written.await? {
            None => Ok(Finish::Recorded),
            Some(item) => Ok(Finish::NotHeld(MarkerItem::read(item, OP)?)),
        }
    }

    async fn release(&self, message_id: &str, lock: &ItemLock) -> Result<(), PortError> {
        let id = Self::sent_key(message_id);
        let key = Key {
            name: "id",
            value: &id,
        };
        // An unsent marker is nothing but its lock: it goes with it.
        let op = "DynamoDB DeleteItem mail-sent marker";
        item_lock::discard(&self.client, &self.table, key, SENT, lock, op).await
    }

    async fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        const OP: &str = "DynamoDB UpdateItem mail quota";
        let day_start = Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z"))
            .filter(|_| day.len() == 10)
            .ok_or_else(|| PortError::new(OP, "day is not a YYYY-MM-DD date"))?;
        let expiration = day_start.unix_seconds() + QUOTA_LIFETIME_SECONDS;
        // With a cap of 0 nothing new is admitted (only a message already in
        // the set, which cannot exist then).
        let room = if cap == 0 {
            "contains(#ids, :msg_id)"
        } else {
            "attribute_not_exists(#ids) OR size(#ids) < :cap OR contains(#ids, :msg_id)"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(Self::quota_key(mailbox, day)))
            .update_expression("ADD #ids :msg SET #expiration = :expiration")
            .condition_expression(room)
            .expression_attribute_names("#ids", "ids")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_values(":msg", AttributeValue::Ss(vec![message_id.to_owned()]))
            .expression_attribute_values(":msg_id", AttributeValue::S(message_id.to_owned()))
            .expression_attribute_values(":expiration", AttributeValue::N(expiration.to_string()));
        if cap > 0 {
            update = update.expression_attribute_values(":cap", AttributeValue::N(cap.to_string()));
        }
        match update.send().await {
            Ok(_) => Ok(Admission::Admitted),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(Admission::OverQuota)
            }
            // Codes only: a message could quote the key (a hash, but still).
            Err(e) => Err(sdk_error(OP, &e, Detail::CodeOnly)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_of_the_old_layout_reads_as_sent_without_hash_or_lock() {
        let item: Item = [
            ("id".to_owned(), AttributeValue::S("mail-sent#m1".into())),
            ("sent".to_owned(), AttributeValue::Bool(true)),
        ]
        .into();
        let marker = MarkerItem::read(item, "test").unwrap();
        assert_eq!(
            marker,
            Locked {
                value: MailMarker {
                    payload_hash: None,
                    sent: true
                },
                lock: None
            }
        );
    }
}
