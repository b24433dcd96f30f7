//! Contract: every SQS message and `PutEvents` entry the adapters send
//! carries the invocation's X-Ray trace header (`AWSTraceHeader` system
//! attribute, `TraceHeader`), so X-Ray can join the hops of one signup.
//!
//! moto 5.2 stores the messages and delivers the events but keeps neither
//! header from these two calls (its `SendMessageBatch` drops
//! `MessageSystemAttributes`, its `PutEvents` ignores `TraceHeader`), so the
//! calls go through the recording stub, forwarded to moto: the test reads
//! the header back from the requests as sent, and the effects from moto.

use super::stub::{Reply, Stub};
use eventline_app::ports::{EventPublisher, NotificationQueue};
use eventline_aws::eventbridge::EventBridgePublisher;
use eventline_aws::sqs::{SqsNotificationQueue, TraceHeader};
use eventline_domain::{Notification, NotificationKind, UserCreated, UserId};
use eventline_tests::*;

const HEADER: &str = "Root=1-6754f2a1-3c9d0e5b7a1f2e4d6c8b0a92;Parent=53995c3f42cd8ad8;Sampled=1";

#[tokio::test]
async fn every_notification_sent_carries_the_trace_header() {
    let proxy = Stub::start(Some(endpoint()), |_| Reply::Forward).await;
    let sdk = sdk_config_for(&proxy.url).await;
    let url = create_queue(&sdk, &unique("traced")).await;
    let queue = SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), &url)
        .with_trace_header(TraceHeader::fixed(HEADER));
    let notifications: Vec<Notification> = ["u1", "u2"]
        .iter()
        .map(|id| {
            Notification::new(
                UserId::parse(id).unwrap(),
                NotificationKind::SignupConfirmation,
            )
        })
        .collect();

    assert_eq!(queue.enqueue_all(&notifications).await, [Ok(()), Ok(())]);

    let sends: Vec<_> = proxy
        .calls()
        .into_iter()
        .filter(|c| c.target == "AmazonSQS.SendMessageBatch")
        .collect();
    assert_eq!(sends.len(), 1, "the batch went through the stub");
    let entries = sends[0].body["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        let attribute = &entry["MessageSystemAttributes"]["AWSTraceHeader"];
        assert_eq!(attribute["DataType"], "String", "{entry}");
        assert_eq!(attribute["StringValue"], HEADER, "{entry}");
    }
    assert_eq!(drain_bodies(&sdk, &url).await.len(), 2, "moto stored both");
}

#[tokio::test]
async fn every_event_published_carries_the_trace_header() {
    let proxy = Stub::start(Some(endpoint()), |_| Reply::Forward).await;
    let sdk = sdk_config_for(&proxy.url).await;
    let bus = unique("traced-bus");
    let tap = create_bus_with_tap(&sdk, &bus).await;
    let publisher = EventBridgePublisher::new(eventline_aws::eventbridge::client(&sdk), &bus)
        .with_trace_header(TraceHeader::fixed(HEADER));
    let events: Vec<UserCreated> = ["u1", "u2", "u3"]
        .iter()
        .map(|id| UserCreated::from_user(&super::user(id, "a@example.com", "A")))
        .collect();

    assert_eq!(
        publisher.publish_all(&events).await,
        [Ok(()), Ok(()), Ok(())]
    );

    let puts: Vec<_> = proxy
        .calls()
        .into_iter()
        .filter(|c| c.target == "AWSEvents.PutEvents")
        .collect();
    assert_eq!(puts.len(), 1, "the events went through the stub");
    let entries = puts[0].body["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        assert_eq!(entry["TraceHeader"], HEADER, "{entry}");
    }
    assert_eq!(
        drain_bodies(&sdk, &tap).await.len(),
        3,
        "moto delivered all three"
    );
}

#[tokio::test]
async fn without_a_trace_header_nothing_is_added() {
    let proxy = Stub::start(Some(endpoint()), |_| Reply::Forward).await;
    let sdk = sdk_config_for(&proxy.url).await;
    let url = create_queue(&sdk, &unique("untraced")).await;
    // Outside Lambda, _X_AMZN_TRACE_ID is unset (the test runner never sets it).
    assert!(TraceHeader::from_lambda_env().current().is_none());
    let queue = SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), &url);
    let n = Notification::new(
        UserId::parse("u1").unwrap(),
        NotificationKind::SignupConfirmation,
    );

    assert_eq!(queue.enqueue_all(std::slice::from_ref(&n)).await, [Ok(())]);

    let send = proxy
        .calls()
        .into_iter()
        .find(|c| c.target == "AmazonSQS.SendMessageBatch")
        .expect("the batch went through the stub");
    assert!(
        send.body["Entries"][0]
            .get("MessageSystemAttributes")
            .is_none(),
        "{}",
        send.body
    );
}
