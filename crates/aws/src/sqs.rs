//! SQS adapter: the NotificationQueue.

use crate::{sdk_error, Detail};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use eventline_app::ports::NotificationQueue;
use eventline_app::PortError;
use eventline_domain::Notification;

pub use aws_sdk_sqs::Client as SqsClient;

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

impl SqsNotificationQueue {
    /// One `SendMessageBatch` of at most 10 notifications.
    async fn send_chunk(&self, chunk: &[Notification]) -> Vec<Result<(), PortError>> {
        const OP: &str = "SQS SendMessageBatch notifications";
        let fifo = self.queue_url.ends_with(".fifo");
        let entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(n.to_json());
                if fifo {
                    entry = entry
                        .message_group_id(n.user_id.as_str())
                        .message_deduplication_id(&n.notification_id);
                }
                entry.build().ok()
            })
            .collect();
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
        // The call succeeds even when entries fail: map each failure back by its Id.
        let mut results: Vec<Result<(), PortError>> = chunk.iter().map(|_| Ok(())).collect();
        for failed in output.failed() {
            if let Some(result) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *result = Err(PortError::new(
                    OP,
                    format!("{}: {}", failed.code(), failed.message().unwrap_or("")),
                ));
            }
        }
        results
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
