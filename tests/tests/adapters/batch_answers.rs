//! Contract: a batch API's answer that does not account for an entry
//! exactly fails that entry. moto always answers well, so the real SDK
//! clients talk to a stub that returns crafted answers; every test first
//! checks that the stub really answered its call.

use super::stub::{Reply, Stub, EVENTS_JSON, SQS_JSON};
use eventline_app::ports::{EventPublisher, NotificationQueue};
use eventline_aws::eventbridge::EventBridgePublisher;
use eventline_aws::sqs::SqsNotificationQueue;
use eventline_domain::{Notification, NotificationKind, UserCreated, UserId};
use eventline_tests::sdk_config_for;
use serde_json::json;

const SEND_BATCH: &str = "AmazonSQS.SendMessageBatch";
const PUT_EVENTS: &str = "AWSEvents.PutEvents";

fn notifications(n: usize) -> Vec<Notification> {
    (0..n)
        .map(|i| {
            Notification::new(
                UserId::parse(&format!("u{i}")).unwrap(),
                NotificationKind::SignupConfirmation,
            )
        })
        .collect()
}

fn events(n: usize) -> Vec<UserCreated> {
    (0..n)
        .map(|i| UserCreated::from_user(&super::user(&format!("u{i}"), "a@example.com", "A")))
        .collect()
}

fn sent(id: &str) -> serde_json::Value {
    json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": "0"})
}

/// Sends `n` notifications through a stub answering `answer` to the one
/// `SendMessageBatch` call, and returns the results.
async fn enqueue_against(n: usize, answer: serde_json::Value) -> Vec<Result<(), String>> {
    let body = answer.to_string();
    let stub = Stub::start(None, move |_| Reply::Json(SQS_JSON, body.clone())).await;
    let sdk = sdk_config_for(&stub.url).await;
    let queue = SqsNotificationQueue::new(
        eventline_aws::sqs::client(&sdk),
        format!("{}/123456789012/notifications", stub.url),
    );

    let results = queue.enqueue_all(&notifications(n)).await;

    assert_eq!(stub.count(SEND_BATCH), 1, "the stub answered the call");
    results
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

#[tokio::test]
async fn sqs_entry_missing_from_both_lists_fails_and_only_it() {
    let results = enqueue_against(
        3,
        json!({"Successful": [sent("0"), sent("2")], "Failed": []}),
    )
    .await;

    assert_eq!(results[0], Ok(()));
    assert!(
        results[1]
            .as_ref()
            .unwrap_err()
            .contains("no result for this entry"),
        "{results:?}"
    );
    assert_eq!(results[2], Ok(()));
}

#[tokio::test]
async fn sqs_entries_named_twice_in_both_lists_or_without_message_id_fail() {
    let results = enqueue_against(
        5,
        json!({
            "Successful": [
                sent("0"), sent("0"),                         // 0: named twice
                sent("1"),                                    // 1: also failed below
                {"Id": "2", "MessageId": "", "MD5OfMessageBody": "0"}, // 2: no message id
                sent("not-an-id"), sent("99"),                // unknown ids: 3 stays unaccounted for
                sent("4"),                                    // 4: the only good one
            ],
            "Failed": [{"Id": "1", "SenderFault": false, "Code": "InternalError"}],
        }),
    )
    .await;

    assert_eq!(results.len(), 5, "one result per entry");
    for (i, result) in results.iter().enumerate().take(4) {
        assert!(result.is_err(), "entry {i}: {results:?}");
    }
    assert_eq!(results[4], Ok(()));
}

#[tokio::test]
async fn sqs_entry_named_only_in_failed_fails_with_its_code() {
    let results = enqueue_against(
        2,
        json!({"Successful": [sent("0")], "Failed": [{"Id": "1", "SenderFault": true, "Code": "InvalidParameterValue", "Message": "bad"}]}),
    )
    .await;

    assert_eq!(results[0], Ok(()));
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .contains("InvalidParameterValue"));
}

#[tokio::test]
async fn sqs_unreadable_answer_fails_every_entry() {
    let stub = Stub::start(None, |_| Reply::Json(SQS_JSON, "{\"Successful\": [".into())).await;
    let sdk = sdk_config_for(&stub.url).await;
    let queue = SqsNotificationQueue::new(
        eventline_aws::sqs::client(&sdk),
        format!("{}/123456789012/notifications", stub.url),
    );

    let results = queue.enqueue_all(&notifications(2)).await;

    assert!(stub.count(SEND_BATCH) >= 1, "the stub answered the call");
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_err), "{results:?}");
}

/// Publishes `n` events through a stub answering `answer` to `PutEvents`.
async fn publish_against(n: usize, answer: serde_json::Value) -> Vec<Result<(), String>> {
    let body = answer.to_string();
    let stub = Stub::start(None, move |_| Reply::Json(EVENTS_JSON, body.clone())).await;
    let sdk = sdk_config_for(&stub.url).await;
    let publisher = EventBridgePublisher::new(eventline_aws::eventbridge::client(&sdk), "bus");

    let results = publisher.publish_all(&events(n)).await;

    assert_eq!(stub.count(PUT_EVENTS), 1, "the stub answered the call");
    results
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

#[tokio::test]
async fn put_events_short_answer_fails_the_entries_it_leaves_out_even_with_no_failed_count() {
    let results = publish_against(
        3,
        json!({"FailedEntryCount": 0, "Entries": [{"EventId": "e0"}]}),
    )
    .await;

    assert_eq!(results[0], Ok(()));
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .contains("no result for this entry"));
    assert!(results[2].is_err());
}

#[tokio::test]
async fn put_events_entry_without_event_id_or_error_code_fails() {
    let results = publish_against(
        3,
        json!({"FailedEntryCount": 0, "Entries": [
            {"EventId": "e0"},
            {},
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"},
        ]}),
    )
    .await;

    assert_eq!(results[0], Ok(()));
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .contains("neither an event id nor an error code"));
    assert!(results[2].as_ref().unwrap_err().contains("InternalFailure"));
}

#[tokio::test]
async fn put_events_answer_with_more_results_than_entries_fails_them_all() {
    let results = publish_against(
        2,
        json!({"FailedEntryCount": 0, "Entries": [{"EventId": "e0"}, {"EventId": "e1"}, {"EventId": "e2"}]}),
    )
    .await;

    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_err), "{results:?}");
}
