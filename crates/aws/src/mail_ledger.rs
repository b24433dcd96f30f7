//! The mail ledger on DynamoDB: which emails were sent, and how many each
//! recipient got per day, in the IdempotencyTable (key `id`).
//!
//! - `mail-sent#<message_id>`: the durable fact that a message was sent. It
//!   has no `expiration` attribute, so the table's TTL never deletes it: a
//!   duplicate of any age (a DLQ redrive days later) finds it.
//! - `mail-quota#<sha256 of the lower-cased recipient>#<YYYY-MM-DD>`: the
//!   string set `ids` of message ids admitted for that recipient that day
//!   (UTC), with `expiration` two days after the day starts (TTL). The
//!   recipient appears only as a hash: no item and no error holds an address.
//!
//! [`DynamoMailLedger::admit`] reads the sent marker (consistent `GetItem`),
//! then updates the quota item, adding the message id under the condition
//! that the set is absent, smaller than the cap, or already holds this id (a
//! retry of the same message takes no second slot). The condition is
//! evaluated the same way by DynamoDB and by moto (`size` of a string set is
//! its number of elements; a missing attribute is caught first by
//! `attribute_not_exists`). Two calls, not one transaction: the caller holds
//! the idempotency lock of the message id, so no other attempt of the same
//! message can write its marker between the read and the update; and moto
//! copies every table for each transaction, which would make local runs
//! quadratic in the data.

use crate::dynamodb::{to_item, unwritable};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{Admission, MailLedger};
use eventline_app::PortError;
use eventline_domain::{OutgoingEmail, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How long a day's quota item outlives the start of its day.
const QUOTA_LIFETIME_SECONDS: u64 = 2 * 24 * 3600;

/// The sent marker of one message, as stored.
#[derive(Serialize)]
struct SentMarker {
    id: String,
    sent: bool,
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

    /// Key of `recipient`'s quota item for `day` (`YYYY-MM-DD`).
    pub fn quota_key(recipient: &str, day: &str) -> String {
        let digest = Sha256::digest(recipient.to_lowercase().as_bytes());
        format!("mail-quota#{digest:x}#{day}")
    }

    /// Whether the sent marker of `message_id` exists (consistent read).
    async fn was_sent(&self, message_id: &str) -> Result<bool, PortError> {
        const OP: &str = "DynamoDB GetItem mail-sent marker";
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(Self::sent_key(message_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &e, Detail::CodeOnly))?;
        Ok(output.item.is_some_and(|item| !item.is_empty()))
    }

    /// Takes a slot of `email.to`'s quota for `day`, unless `cap` distinct
    /// messages have one already; `false` when over the cap.
    async fn take_slot(
        &self,
        email: &OutgoingEmail,
        day: &str,
        cap: u32,
        expiration: u64,
    ) -> Result<bool, PortError> {
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
            .key(
                "id",
                AttributeValue::S(Self::quota_key(email.to.as_str(), day)),
            )
            .update_expression("ADD #ids :msg SET #expiration = :expiration")
            .condition_expression(room)
            .expression_attribute_names("#ids", "ids")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_values(":msg", AttributeValue::Ss(vec![email.message_id.clone()]))
            .expression_attribute_values(":msg_id", AttributeValue::S(email.message_id.clone()))
            .expression_attribute_values(":expiration", AttributeValue::N(expiration.to_string()));
        if cap > 0 {
            update = update.expression_attribute_values(":cap", AttributeValue::N(cap.to_string()));
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            // Codes only: a message could quote the key (a hash, but still).
            Err(e) => Err(sdk_error(ADMIT, &e, Detail::CodeOnly)),
        }
    }
}

const ADMIT: &str = "DynamoDB UpdateItem mail quota";

impl MailLedger for DynamoMailLedger {
    async fn admit(
        &self,
        email: &OutgoingEmail,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        let day_start = Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z"))
            .filter(|_| day.len() == 10)
            .ok_or_else(|| PortError::new(ADMIT, "day is not a YYYY-MM-DD date"))?;
        let expiration = day_start.unix_seconds() + QUOTA_LIFETIME_SECONDS;
        if self.was_sent(&email.message_id).await? {
            // A sent message is skipped whatever its quota says.
            return Ok(Admission::AlreadySent);
        }
        if self.take_slot(email, day, cap, expiration).await? {
            Ok(Admission::Admitted)
        } else {
            Ok(Admission::OverQuota)
        }
    }

    async fn record_sent(&self, message_id: &str) -> Result<(), PortError> {
        const OP: &str = "DynamoDB PutItem mail-sent marker";
        // No `expiration`: the table's TTL must never delete this fact.
        let marker = to_item(&SentMarker {
            id: Self::sent_key(message_id),
            sent: true,
        })
        .map_err(|e| unwritable(OP, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(marker))
            .send()
            .await
            .map_err(|e| sdk_error(OP, &e, Detail::CodeOnly))?;
        Ok(())
    }
}
