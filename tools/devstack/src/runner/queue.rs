//! The SQS calls the runner makes on a trigger queue or a rule's tap:
//! receive, delete, and how many messages are left.

use super::Shared;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use std::time::Duration;

/// Visible + in-flight + delayed messages of a queue.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<u64> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .ok()?;
    let attributes = output.attributes?;
    let get = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            + get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    )
}

pub(super) async fn receive<I>(
    shared: &Shared<I>,
    url: &str,
    max: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    let result = shared
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await;
    match result {
        Ok(output) => output.messages.unwrap_or_default(),
        Err(e) => {
            shared.say(format!("receive from {url} failed: {e}"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            Vec::new()
        }
    }
}

pub(super) async fn delete<I>(shared: &Shared<I>, url: &str, receipt_handles: Vec<String>) {
    for chunk in receipt_handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = shared
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            shared.say(format!("delete from {url} failed: {e}"));
        }
    }
}
