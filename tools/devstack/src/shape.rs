//! Lambda-shaped events built from what the SQS API returns.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::Message;

/// The record Lambda's SQS event source mapping would pass for `message`.
pub fn sqs_record(message: Message, queue_arn: &str, region: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id;
    record.receipt_handle = message.receipt_handle;
    record.body = message.body;
    record.md5_of_body = message.md5_of_body;
    record.md5_of_message_attributes = message.md5_of_message_attributes;
    record.attributes = message
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    record.message_attributes = message
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = v.string_value;
            attribute.data_type = Some(v.data_type);
            (k, attribute)
        })
        .collect();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(queue_arn.to_owned());
    record.aws_region = Some(region.to_owned());
    record
}

/// An SQS event of `messages`.
pub fn sqs_event(messages: Vec<Message>, queue_arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|m| sqs_record(m, queue_arn, region))
        .collect();
    event
}

/// How many times SQS has handed out the record (1 on first delivery).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    #[test]
    fn record_has_the_shape_lambda_sends() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body(r#"{"a":1}"#)
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let event = sqs_event(
            vec![message],
            "arn:aws:sqs:us-east-1:123456789012:q",
            "us-east-1",
        );
        let json = serde_json::to_value(&event).unwrap();
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["receiptHandle"], "rh");
        assert_eq!(record["body"], r#"{"a":1}"#);
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(
            record["eventSourceARN"],
            "arn:aws:sqs:us-east-1:123456789012:q"
        );
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(receive_count(&event.records[0]), 2);
    }
}
