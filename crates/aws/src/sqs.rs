//! SQS adapter: the NotificationQueue.
//!
//! A notification's correlation id goes with it as the String message
//! attribute `correlation_id` ([`CORRELATION_ATTRIBUTE`]), which the SQS
//! entrypoint hands notification-processor's record span.
//!
//! `SendMessageBatch` answers one call for many entries; this adapter fails
//! closed on that answer: an entry counts as sent only when exactly one
//! `Successful` result names its Id (with a message id) and no `Failed`
//! result does. An entry the answer leaves out, names twice or names in both
//! lists fails, so a short or malformed answer can never delete a record
//! whose notification was not queued.

use crate::{sdk_error, Detail};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use eventline_app::ports::NotificationQueue;
use eventline_app::PortError;
use eventline_domain::Notification;
use eventline_powertools::batch::CORRELATION_ATTRIBUTE;

/// Builds the SQS client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Sends notifications to one queue, ten per `SendMessageBatch` call. On a
/// FIFO queue (`.fifo` URL) the user
/// id is the message group (one user's notifications stay in order) and the
/// notification id is the deduplication id (SQS drops a duplicate sent
/// within 5 minutes).
#[derive(Debug, Clone)]
pub struct SqsNotificationQueue {
    client: Client,
    queue_url: String,
}

impl SqsNotificationQueue {
    /// Adapter for `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

const OP: &str = "SQS SendMessageBatch notifications";

/// What one `SendMessageBatch` answer says about one requested entry.
#[derive(Default)]
struct Seen {
    /// `Successful` results naming it with a message id.
    sent: u32,
    /// `Successful` results naming it without a message id.
    malformed: u32,
    /// The first `Failed` result naming it, as a port error.
    failed: Option<PortError>,
    /// `Failed` results naming it.
    failures: u32,
}

impl Seen {
    fn outcome(self) -> Result<(), PortError> {
        match self {
            Seen {
                sent: 1,
                malformed: 0,
                failures: 0,
                ..
            } => Ok(()),
            Seen {
                failed: Some(error),
                failures: 1,
                sent: 0,
                malformed: 0,
            } => Err(error),
            Seen {
                sent: 0,
                malformed: 0,
                failures: 0,
                ..
            } => Err(PortError::new(OP, "no result for this entry in the answer")),
            _ => Err(PortError::new(
                OP,
                "ambiguous or malformed result for this entry in the answer",
            )),
        }
    }
}

/// Pairs a `SendMessageBatch` answer with the `len` requested entries (Ids
/// `0..len`), failing every entry the answer does not account for exactly.
fn outcomes(
    output: &aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput,
    len: usize,
) -> Vec<Result<(), PortError>> {
    let mut seen: Vec<Seen> = (0..len).map(|_| Seen::default()).collect();
    // An Id that is not one we sent cannot be paired with any entry; the
    // entry it should have named stays unaccounted for and fails below.
    let index = |id: &str| id.parse::<usize>().ok().filter(|i| *i < len);
    for ok in output.successful() {
        if let Some(i) = index(ok.id()) {
            if ok.message_id().is_empty() {
                seen[i].malformed += 1;
            } else {
                seen[i].sent += 1;
            }
        }
    }
    for failed in output.failed() {
        if let Some(i) = index(failed.id()) {
            seen[i].failures += 1;
            // SQS codes and messages name the problem, never the body.
            seen[i].failed.get_or_insert_with(|| {
                PortError::new(
                    OP,
                    format!("{}: {}", failed.code(), failed.message().unwrap_or("")),
                )
            });
        }
    }
    seen.into_iter().map(Seen::outcome).collect()
}

impl SqsNotificationQueue {
    /// One `SendMessageBatch` of at most 10 notifications.
    async fn send_chunk(&self, chunk: &[Notification]) -> Vec<Result<(), PortError>> {
        let fifo = self.queue_url.ends_with(".fifo");
        let mut results: Vec<Option<Result<(), PortError>>> = vec![None; chunk.len()];
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, n) in chunk.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(n.to_json());
            if fifo {
                entry = entry
                    .message_group_id(n.user_id.as_str())
                    .message_deduplication_id(&n.notification_id);
            }
            let correlation = n.correlation_id.as_ref().map(|id| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(id.as_str())
                    .build()
            });
            let built = match correlation {
                Some(Ok(attribute)) => {
                    Ok(entry.message_attributes(CORRELATION_ATTRIBUTE, attribute))
                }
                Some(Err(e)) => Err(e),
                None => Ok(entry),
            };
            match built.and_then(|entry| entry.build()) {
                Ok(entry) => entries.push(entry),
                Err(e) => results[i] = Some(Err(PortError::new(OP, e))),
            }
        }
        if entries.is_empty() {
            return results.into_iter().flatten().collect();
        }
        let output = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let error = sdk_error(OP, &e, Detail::CodeAndMessage);
                return chunk.iter().map(|_| Err(error.clone())).collect();
            }
        };
        // The call succeeds even when entries fail: pair each entry with its result.
        results
            .into_iter()
            .zip(outcomes(&output, chunk.len()))
            .map(|(built, answered)| built.unwrap_or(answered))
            .collect()
    }
}

impl NotificationQueue for SqsNotificationQueue {
    async fn enqueue_all(&self, notifications: &[Notification]) -> Vec<Result<(), PortError>> {
        let chunks = notifications.chunks(10).map(|chunk| self.send_chunk(chunk));
        futures::future::join_all(chunks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}
