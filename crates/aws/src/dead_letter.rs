//! The dead-letter sink on SQS: a record that can never succeed goes to its
//! queue's DLQ at once, with why in message attributes.
//!
//! Attributes (all `String`): `eventline.error_code`, `eventline.error_fields`
//! (comma-separated JSON field names; omitted when there are none),
//! `eventline.function`, `eventline.first_seen` (RFC 3339: when SQS first
//! delivered the record, or now if unknown) and
//! `eventline.source_message_id`. They hold codes, names and ids, never a
//! value from the body; the body goes unchanged, so it can be redriven.

use crate::{sdk_error, Detail};
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use eventline_domain::Timestamp;
use eventline_powertools::batch::{DeadLetter, DeadLetterSink};
use futures::future::BoxFuture;

/// Sends rejected records to one dead-letter queue.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
    function: String,
}

impl SqsDeadLetters {
    /// Sink for the DLQ at `queue_url`, naming `function` as the rejecter.
    pub fn new(client: Client, queue_url: impl Into<String>, function: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            function: function.into(),
        }
    }

    async fn send_letter(&self, letter: &DeadLetter) -> Result<(), String> {
        const OP: &str = "SQS SendMessage dead letter";
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| format!("{OP} failed: {e}"))
        };
        let first_seen = Timestamp::from_unix_millis(letter.first_seen_ms.unwrap_or_else(now_ms));
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&letter.body)
            .message_attributes("eventline.error_code", attribute(letter.reason.code)?)
            .message_attributes("eventline.function", attribute(&self.function)?)
            .message_attributes("eventline.first_seen", attribute(&first_seen.to_string())?)
            .message_attributes(
                "eventline.source_message_id",
                attribute(&letter.source_message_id)?,
            );
        if !letter.reason.fields.is_empty() {
            request = request.message_attributes(
                "eventline.error_fields",
                attribute(&letter.reason.fields.join(","))?,
            );
        }
        if self.queue_url.ends_with(".fifo") {
            // The source's group keeps the letters of one group in order; the
            // source message id makes a re-sent letter a duplicate SQS drops.
            let group = letter
                .message_group_id
                .as_deref()
                .unwrap_or(&letter.source_message_id);
            request = request
                .message_group_id(group)
                .message_deduplication_id(&letter.source_message_id);
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error(OP, &e, Detail::CodeAndMessage).to_string())?;
        Ok(())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl DeadLetterSink for SqsDeadLetters {
    fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.send_letter(letter))
    }
}
