//! SQS adapter: the NotificationQueue.

use crate::{sdk_error, Detail};
use aws_sdk_sqs::Client;
use eventline_app::ports::NotificationQueue;
use eventline_app::PortError;
use eventline_domain::Notification;

pub use aws_sdk_sqs::Client as SqsClient;

/// Builds the SQS client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Sends notifications to one queue. On a FIFO queue (`.fifo` URL) the user
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

impl NotificationQueue for SqsNotificationQueue {
    async fn enqueue(&self, notification: &Notification) -> Result<(), PortError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(notification.to_json());
        if self.queue_url.ends_with(".fifo") {
            request = request
                .message_group_id(notification.user_id.as_str())
                .message_deduplication_id(&notification.notification_id);
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error("SQS SendMessage notifications", &e, Detail::CodeAndMessage))?;
        Ok(())
    }
}
