//! Contract: every SDK call the functions make is bounded in time. A
//! dependency that accepts the connection and never answers fails the call
//! with a timeout, well before a 10 s function would be cut.

use super::stub::{Reply, Stub};
use eventline_app::ports::UserStore;
use eventline_aws::dynamodb::DynamoUserStore;
use eventline_domain::UserId;
use std::time::Duration;

#[tokio::test]
async fn a_call_that_never_answers_fails_with_a_timeout() {
    let stub = Stub::start(None, |_| Reply::Hang).await;
    // The functions' own settings (eventline_aws::configure), pointed at the stub.
    let sdk = eventline_aws::configure(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&stub.url)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "stub",
            )),
        Some("user-processor"),
    )
    .load()
    .await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), "users");

    // The bound only keeps a broken build from hanging the suite.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        store.get(&UserId::parse("u1").unwrap()),
    )
    .await
    .expect("the call returned on its own");

    assert!(stub.accepted() >= 1, "the stub accepted the connection");
    assert!(
        stub.count("DynamoDB_20120810.GetItem") >= 1,
        "the stub received the call"
    );
    // The IAM check tells functions' calls apart by this app name.
    assert!(
        stub.calls()[0].head.contains("app/user-processor"),
        "{}",
        stub.calls()[0].head
    );
    let err = result.unwrap_err();
    assert_eq!(err.operation, "DynamoDB GetItem users");
    assert!(
        err.message == "timed out" || err.message == "network error (timeout)",
        "{err}"
    );
}

#[tokio::test]
async fn sdk_settings_bound_attempts_and_calls() {
    let timeouts = eventline_aws::timeout_config();
    assert_eq!(
        timeouts.connect_timeout(),
        Some(eventline_aws::CONNECT_TIMEOUT)
    );
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(eventline_aws::ATTEMPT_TIMEOUT)
    );
    assert_eq!(
        timeouts.operation_timeout(),
        Some(eventline_aws::OPERATION_TIMEOUT)
    );
    assert!(eventline_aws::OPERATION_TIMEOUT < Duration::from_secs(10));
    assert_eq!(
        eventline_aws::retry_config().max_attempts(),
        eventline_aws::MAX_ATTEMPTS
    );
}
