//! The dead-letter sink against moto: the body unchanged, the reason in
//! message attributes (codes and names, never values).

use aws_sdk_sqs::types::MessageSystemAttributeName;
use eventline_aws::dead_letter::SqsDeadLetters;
use eventline_powertools::batch::{DeadLetter, DeadLetterSink, Rejection};
use eventline_tests::*;
use std::collections::HashMap;

/// The one message on `url`: its body, string attributes and group id.
async fn receive_one(
    sdk: &aws_config::SdkConfig,
    url: &str,
) -> (String, HashMap<String, String>, Option<String>) {
    let output = aws_sdk_sqs::Client::new(sdk)
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = output.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    let attributes = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_owned()))
        .collect();
    let group = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .cloned();
    (m.body().unwrap_or("").to_owned(), attributes, group)
}

fn letter(fields: Vec<&'static str>, group: Option<&str>) -> DeadLetter {
    DeadLetter {
        source_message_id: "059f36b4-87a3-44ab-83d2-661975830a7d".into(),
        body: r#"{"user_id":"u1","email":"not-an-address","name":"Ada"}"#.into(),
        message_group_id: group.map(str::to_owned),
        first_seen_ms: Some(1_795_771_466_123),
        reason: Rejection {
            code: "InvalidFields",
            fields,
        },
    }
}

#[tokio::test]
async fn a_letter_carries_its_body_and_reason_but_no_value() {
    let sdk = sdk_config().await;
    let url = create_queue(&sdk, &unique("signup-dlq")).await;
    let sink = SqsDeadLetters::new(eventline_aws::sqs::client(&sdk), &url, "user-processor");
    let letter = letter(vec!["email", "name"], None);

    sink.send(&letter).await.unwrap();

    let (body, attributes, _) = receive_one(&sdk, &url).await;
    assert_eq!(body, letter.body);
    assert_eq!(
        attributes,
        HashMap::from([
            (
                "eventline.error_code".to_owned(),
                "InvalidFields".to_owned()
            ),
            ("eventline.error_fields".to_owned(), "email,name".to_owned()),
            ("eventline.function".to_owned(), "user-processor".to_owned()),
            (
                "eventline.first_seen".to_owned(),
                "2026-11-27T09:24:26.123Z".to_owned()
            ),
            (
                "eventline.source_message_id".to_owned(),
                "059f36b4-87a3-44ab-83d2-661975830a7d".to_owned()
            ),
        ])
    );
    assert!(!format!("{attributes:?}").contains("not-an-address"));
}

#[tokio::test]
async fn a_letter_without_fields_has_no_fields_attribute_and_a_fifo_letter_keeps_its_group() {
    let sdk = sdk_config().await;
    let url = create_queue(&sdk, &unique("signup-dlq.fifo")).await;
    let sink = SqsDeadLetters::new(eventline_aws::sqs::client(&sdk), &url, "user-processor");
    let letter = DeadLetter {
        reason: Rejection {
            code: "PayloadConflict",
            fields: vec![],
        },
        ..letter(vec![], Some("u1"))
    };

    sink.send(&letter).await.unwrap();
    // Sent again (the batch was retried): the FIFO queue drops the copy.
    sink.send(&letter).await.unwrap();

    let (body, attributes, group) = receive_one(&sdk, &url).await;
    assert_eq!(body, letter.body);
    assert_eq!(attributes["eventline.error_code"], "PayloadConflict");
    assert!(!attributes.contains_key("eventline.error_fields"));
    assert_eq!(group.as_deref(), Some("u1"));
}
