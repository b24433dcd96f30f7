//! Every AWS adapter against a real moto server, through the real SDK
//! clients, checking what was stored with independent SDK reads; and the
//! adapters' contracts for answers moto never gives (short or malformed
//! batch-API answers, a call that never answers) against a local stub.

#[path = "adapters/stub.rs"]
mod stub;

#[path = "adapters/batch_answers.rs"]
mod batch_answers;
#[path = "adapters/dead_letters.rs"]
mod dead_letters;
#[path = "adapters/effects.rs"]
mod effects;
#[path = "adapters/idempotency.rs"]
mod idempotency;
#[path = "adapters/mail_ledger.rs"]
mod mail_ledger;
#[path = "adapters/timeouts.rs"]
mod timeouts;
#[path = "adapters/trace_header.rs"]
mod trace_header;
#[path = "adapters/user_locks.rs"]
mod user_locks;

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::mail::OutboxMailer;
use eventline_app::ports::{
    BlobStore, EventPublisher, Mailer, NotificationQueue, ProfileStore, Put, UserStore,
};
use eventline_aws::dynamodb::{DynamoProfileStore, DynamoUserStore};
use eventline_aws::eventbridge::EventBridgePublisher;
use eventline_aws::s3::S3BlobStore;
use eventline_aws::ses::SesMailer;
use eventline_aws::sqs::SqsNotificationQueue;
use eventline_domain::{
    email, CorrelationId, EmailAddress, Notification, NotificationKind, Profile, Region, RegionSet,
    Signup, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::batch::{BatchReport, RecordOutcome};
use eventline_powertools::item_lock::Claim;
use eventline_tests::*;
use serde_json::Value;

pub(crate) fn user(id: &str, email: &str, name: &str) -> User {
    let body = serde_json::json!({"user_id": id, "email": email, "name": name}).to_string();
    User::from_signup(
        Signup::parse(&body).unwrap(),
        Timestamp::from_unix_millis(1_795_771_466_123),
    )
}

#[tokio::test]
async fn dynamo_user_store_creates_once_and_returns_the_stored_user() {
    let sdk = sdk_config().await;
    let table = unique("users");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    let ada = user("u1", "ada@example.com", "Ada Lovelace");

    let lock = eventline_powertools::item_lock::ItemLock {
        attempt: "a1".into(),
        until_ms: 5_000,
    };
    assert_eq!(store.create(&ada, &lock).await.unwrap(), Claim::Held);
    let impostor = user("u1", "mallory@example.com", "Mallory");
    assert!(matches!(
        store.create(&impostor, &lock).await.unwrap(),
        Claim::Found(stored) if stored.value == ada
    ));
    assert_eq!(store.get(&ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        store.get(&UserId::parse("nobody").unwrap()).await.unwrap(),
        None
    );

    let item = get_item(&sdk, &table, "user_id", "u1").await;
    assert_eq!(item["email"], AttributeValue::S("ada@example.com".into()));
    assert_eq!(item["name"], AttributeValue::S("Ada Lovelace".into()));
    assert_eq!(
        item["created_at"],
        AttributeValue::S("2026-11-27T09:24:26.123Z".into())
    );
}

#[tokio::test]
async fn dynamo_user_store_reports_a_missing_table_as_a_port_error() {
    let sdk = sdk_config().await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), unique("absent"));
    let lock = eventline_powertools::item_lock::ItemLock {
        attempt: "a1".into(),
        until_ms: 5_000,
    };
    let err = store
        .create(&user("u1", "ada@example.com", "Ada"), &lock)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "DynamoDB PutItem users");
    assert!(
        err.message.starts_with("ResourceNotFoundException"),
        "{err}"
    );
    assert!(!err.to_string().contains("ada@example.com"));
}

#[tokio::test]
async fn dynamo_profile_store_creates_once_and_round_trips_every_field() {
    let sdk = sdk_config().await;
    let table = unique("profiles");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoProfileStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    let profile = Profile::default_for(&UserCreated::from_user(&user("u1", "a@b.io", "山田太郎")));
    let lock = eventline_powertools::item_lock::ItemLock {
        attempt: "a1".into(),
        until_ms: 5_000,
    };

    assert_eq!(
        store.create(&profile, "h", &lock).await.unwrap(),
        Claim::Held
    );
    let mut other = profile.clone();
    other.bio = "changed".into();
    other.avatar_url = Some("https://example.com/a.png".into());
    assert!(matches!(
        store.create(&other, "h2", &lock).await.unwrap(),
        Claim::Found(stored) if stored.value.profile == profile
            && stored.value.payload_hash.as_deref() == Some("h")
    ));

    let item = get_item(&sdk, &table, "user_id", "u1").await;
    assert_eq!(item["display_name"], AttributeValue::S("山田太郎".into()));
    assert_eq!(item["marketing_opt_in"], AttributeValue::Bool(false));
    assert_eq!(item["avatar_url"], AttributeValue::Null(true));
}

#[tokio::test]
async fn sqs_queue_sends_the_notification_body() {
    let sdk = sdk_config().await;
    let url = create_queue(&sdk, &unique("notifications")).await;
    let queue = SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), &url);
    let n = Notification::new(
        UserId::parse("u1").unwrap(),
        NotificationKind::SignupConfirmation,
    );

    assert_eq!(queue.enqueue_all(std::slice::from_ref(&n)).await, [Ok(())]);

    let bodies = drain_bodies(&sdk, &url).await;
    assert_eq!(bodies.len(), 1);
    assert_eq!(Notification::parse(&bodies[0]).unwrap(), n);
}

#[tokio::test]
async fn sqs_queue_sends_the_correlation_id_as_an_attribute_the_entrypoint_reads() {
    let sdk = sdk_config().await;
    let url = create_queue(&sdk, &unique("notifications")).await;
    let queue = SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), &url);
    let signup_message = "059f36b4-87a3-44ab-83d2-661975830a7d";
    let correlated = Notification::new(
        UserId::parse("u1").unwrap(),
        NotificationKind::SignupConfirmation,
    )
    .correlated(CorrelationId::parse(signup_message).unwrap());
    let uncorrelated = Notification::new(
        UserId::parse("u2").unwrap(),
        NotificationKind::SignupConfirmation,
    );

    assert_eq!(
        queue
            .enqueue_all(&[correlated.clone(), uncorrelated.clone()])
            .await,
        [Ok(()), Ok(())]
    );

    // What Lambda hands notification-processor, through the SQS entrypoint.
    let event = receive_as_lambda(&sdk, &url).await;
    assert_eq!(event.records.len(), 2);
    let seen = std::sync::Mutex::new(Vec::new());
    let service = eventline_powertools::sqs::service(|messages, _| {
        for m in &messages {
            let user = Notification::parse(m.body.as_deref().unwrap_or_default())
                .unwrap()
                .user_id;
            seen.lock().unwrap().push((
                user.to_string(),
                m.id.clone(),
                m.correlation_id().to_owned(),
            ));
        }
        let records = messages
            .iter()
            .map(|m| (m.id.clone(), RecordOutcome::Succeeded))
            .collect();
        std::future::ready(Ok(BatchReport { records }))
    });
    invoke(service, event.clone(), u64::MAX).await.unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    let u2_message = seen[1].1.clone();
    assert_eq!(
        seen,
        [
            (
                "u1".to_owned(),
                seen[0].1.clone(),
                signup_message.to_owned()
            ),
            // No attribute: the message starts its own chain.
            ("u2".to_owned(), u2_message.clone(), u2_message),
        ]
    );
    let attribute = event
        .records
        .iter()
        .find_map(|r| r.message_attributes.get("correlation_id"))
        .expect("the attribute arrived");
    assert_eq!(attribute.data_type.as_deref(), Some("String"));
    assert_eq!(attribute.string_value.as_deref(), Some(signup_message));
    assert_eq!(
        Notification::parse(event.records[0].body.as_deref().unwrap())
            .unwrap()
            .correlation_id,
        None,
        "the body does not carry it"
    );
}

#[tokio::test]
async fn sqs_fifo_queue_drops_a_duplicate_notification() {
    let sdk = sdk_config().await;
    let url = create_queue(&sdk, &unique("notifications.fifo")).await;
    let queue = SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), &url);
    let n = Notification::new(
        UserId::parse("u1").unwrap(),
        NotificationKind::SignupConfirmation,
    );

    queue.enqueue_all(std::slice::from_ref(&n)).await;
    queue.enqueue_all(std::slice::from_ref(&n)).await;

    assert_eq!(drain_bodies(&sdk, &url).await.len(), 1);
}

#[tokio::test]
async fn eventbridge_publisher_delivers_user_created_to_rule_targets() {
    let sdk = sdk_config().await;
    let bus = unique("bus");
    let tap = create_bus_with_tap(&sdk, &bus).await;
    let publisher = EventBridgePublisher::new(eventline_aws::eventbridge::client(&sdk), &bus);
    let regions = RegionSet::parse(
        Region::parse("us-east-1").unwrap(),
        "us-west-2,us-east-1,eu-west-1",
    )
    .unwrap();
    let event = UserCreated::from_user(&user("u1", "ada@example.com", "Ada"))
        .published_in(&regions)
        .correlated(CorrelationId::parse("m-1").unwrap());

    assert_eq!(
        publisher.publish_all(std::slice::from_ref(&event)).await,
        [Ok(())]
    );

    let bodies = drain_bodies(&sdk, &tap).await;
    assert_eq!(bodies.len(), 1);
    let delivered: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(delivered["source"], "user.service");
    assert_eq!(delivered["detail-type"], "User Created");
    assert_eq!(
        UserCreated::from_detail(&delivered["detail"]).unwrap(),
        event
    );
    assert_eq!(delivered["detail"]["origin_region"], "us-east-1");
    assert_eq!(delivered["detail"]["event_key"], "user-created/u1");
    assert_eq!(delivered["detail"]["correlation_id"], "m-1");
}

#[tokio::test]
async fn eventbridge_publisher_reports_a_missing_bus() {
    let sdk = sdk_config().await;
    let publisher =
        EventBridgePublisher::new(eventline_aws::eventbridge::client(&sdk), unique("no-bus"));
    let events = [
        UserCreated::from_user(&user("u1", "ada@example.com", "Ada")),
        UserCreated::from_user(&user("u2", "b@example.com", "B")),
    ];
    let results = publisher.publish_all(&events).await;
    assert_eq!(results.len(), 2, "a failed call fails every entry of it");
    let err = results[0].clone().unwrap_err();
    assert_eq!(err.operation, "EventBridge PutEvents");
    assert!(!err.to_string().contains("ada@example.com"), "{err}");
}

#[tokio::test]
async fn s3_blob_store_writes_an_object_once_and_never_replaces_it() {
    let sdk = sdk_config().await;
    let bucket = unique("bucket");
    create_bucket(&sdk, &bucket).await;
    let blobs = S3BlobStore::new(eventline_aws::s3::client(&sdk), &bucket);

    assert_eq!(
        blobs
            .put_new("profiles/u1.json", r#"{"a":1}"#.into(), "application/json")
            .await
            .unwrap(),
        Put::Created
    );
    // If-None-Match: * — the second write finds the first (412) and succeeds.
    assert_eq!(
        blobs
            .put_new("profiles/u1.json", r#"{"a":2}"#.into(), "application/json")
            .await
            .unwrap(),
        Put::Exists
    );

    assert_eq!(
        get_object(&sdk, &bucket, "profiles/u1.json")
            .await
            .as_deref(),
        Some(r#"{"a":1}"#)
    );
    let head = eventline_aws::s3::client(&sdk)
        .head_object()
        .bucket(&bucket)
        .key("profiles/u1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    // Any other failure stays an error.
    let missing = S3BlobStore::new(eventline_aws::s3::client(&sdk), unique("no-bucket"));
    let err = missing
        .put_new("k", "b".into(), "text/plain")
        .await
        .unwrap_err();
    assert_eq!(err.operation, "S3 PutObject");
    assert!(err.message.starts_with("NoSuchBucket"), "{err}");
}

#[tokio::test]
async fn outbox_mailer_writes_one_object_per_message_id() {
    let sdk = sdk_config().await;
    let bucket = unique("bucket");
    create_bucket(&sdk, &bucket).await;
    let mailer = OutboxMailer::new(
        S3BlobStore::new(eventline_aws::s3::client(&sdk), &bucket),
        EmailAddress::parse("no-reply@example.com").unwrap(),
    );
    let welcome = email::welcome(&UserCreated::from_user(&user(
        "u1",
        "ada@example.com",
        "Ada <3",
    )));

    mailer.send(&welcome).await.unwrap();
    // A duplicate send finds the object and writes nothing.
    let mut changed = welcome.clone();
    changed.subject = "changed".into();
    mailer.send(&changed).await.unwrap();

    assert_eq!(
        list_keys(&sdk, &bucket, "outbox/").await,
        ["outbox/welcome.u1.json"]
    );
    let stored: Value = serde_json::from_str(
        &get_object(&sdk, &bucket, "outbox/welcome.u1.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["from"], "no-reply@example.com");
    assert_eq!(stored["to"], "ada@example.com");
    assert_eq!(stored["subject"], "Welcome to eventline");
    assert!(stored["html"].as_str().unwrap().contains("Ada &lt;3"));
}

#[tokio::test]
async fn ses_mailer_sends_from_a_verified_identity() {
    let sdk = sdk_config().await;
    let domain = format!("{}.example.com", unique("ses"));
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    let from = EmailAddress::parse(&format!("no-reply@{domain}")).unwrap();
    let mailer = SesMailer::new(eventline_aws::ses::client(&sdk), from);
    let recipient = format!("ada@{domain}");
    let welcome = email::welcome(&UserCreated::from_user(&user("u1", &recipient, "Ada")));

    mailer.send(&welcome).await.unwrap();

    let data = moto_api_json("/moto-api/data.json").await;
    let sent: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.to_string().contains(&recipient))
        .collect();
    assert_eq!(sent.len(), 1, "{data}");
    assert!(sent[0].to_string().contains("Welcome to eventline"));
}

#[tokio::test]
async fn ses_rejection_is_reported_without_the_address() {
    let sdk = sdk_config().await;
    let from =
        EmailAddress::parse(&format!("no-reply@{}.example.org", unique("unverified"))).unwrap();
    let mailer = SesMailer::new(eventline_aws::ses::client(&sdk), from.clone());
    let welcome = email::welcome(&UserCreated::from_user(&user(
        "u1",
        "ada@example.com",
        "Ada",
    )));

    let err = mailer.send(&welcome).await.unwrap_err();

    assert_eq!(err.to_string(), "SES SendEmail failed: MessageRejected");
    assert!(!err.to_string().contains(from.as_str()));
}

#[tokio::test]
async fn sqs_queue_sends_more_than_ten_notifications_in_batches_of_ten() {
    let sdk = sdk_config().await;
    let url = create_queue(&sdk, &unique("notifications")).await;
    // Through a recording proxy, so the test sees how the adapter sent.
    let proxy = stub::Stub::start(Some(endpoint()), |_| stub::Reply::Forward).await;
    let queue = SqsNotificationQueue::new(
        eventline_aws::sqs::client(&sdk_config_for(&proxy.url).await),
        &url,
    );
    let all: Vec<Notification> = (0..23)
        .map(|i| {
            Notification::new(
                UserId::parse(&format!("u{i}")).unwrap(),
                NotificationKind::SignupConfirmation,
            )
        })
        .collect();

    let results = queue.enqueue_all(&all).await;

    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        batch_sizes(&proxy, "AmazonSQS.SendMessageBatch"),
        [3, 10, 10],
        "three SendMessageBatch calls of at most ten, nothing else"
    );
    let mut ids: Vec<String> = drain_bodies(&sdk, &url)
        .await
        .iter()
        .map(|b| Notification::parse(b).unwrap().notification_id)
        .collect();
    ids.sort();
    let mut expected: Vec<String> = all.iter().map(|n| n.notification_id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn eventbridge_publisher_publishes_more_than_ten_events_in_batches_of_ten() {
    let sdk = sdk_config().await;
    let bus = unique("bus");
    let tap = create_bus_with_tap(&sdk, &bus).await;
    let proxy = stub::Stub::start(Some(endpoint()), |_| stub::Reply::Forward).await;
    let publisher = EventBridgePublisher::new(
        eventline_aws::eventbridge::client(&sdk_config_for(&proxy.url).await),
        &bus,
    );
    let events: Vec<UserCreated> = (0..12)
        .map(|i| UserCreated::from_user(&user(&format!("u{i}"), "a@example.com", "A")))
        .collect();

    let results = publisher.publish_all(&events).await;

    assert_eq!(results.len(), 12);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        batch_sizes(&proxy, "AWSEvents.PutEvents"),
        [2, 10],
        "two PutEvents calls of at most ten, nothing else"
    );
    assert_eq!(drain_bodies(&sdk, &tap).await.len(), 12);
}

/// The number of entries of each call the proxy saw, smallest first;
/// every call must be `target`.
fn batch_sizes(proxy: &stub::Stub, target: &str) -> Vec<usize> {
    let mut sizes: Vec<usize> = proxy
        .calls()
        .iter()
        .map(|call| {
            assert_eq!(call.target, target);
            call.body["Entries"].as_array().map_or(0, Vec::len)
        })
        .collect();
    sizes.sort_unstable();
    sizes
}
