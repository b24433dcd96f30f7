//! The backend's answers are ones the real SDK clients parse and the real
//! adapters (crates/aws) act on as they act on AWS's: every operation the
//! functions call, each per-entry failure form, and the counters.
//!
//! Each test starts its own backend in-process on a free port; the SDK
//! clients have retries off, so each answer is the first one parsed.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, WriteRequest,
};
use eventline_app::ports::{
    Admission, BlobStore, EventPublisher, MailLedger, Mailer, NotificationQueue, ProfileStore,
    UserStore,
};
use eventline_aws::dynamodb::{DynamoProfileStore, DynamoUserStore};
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_aws::mail_ledger::DynamoMailLedger;
use eventline_bench_backend::{Config, Server, TableSpec};
use eventline_domain::{
    Notification, NotificationKind, Profile, Signup, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::batch::{DeadLetter, DeadLetterSink, Rejection};
use eventline_powertools::idempotency::{Acquire, CompleteError, IdempotencyStore, Record, Status};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use md5::{Digest, Md5};
use std::time::Duration;

const USERS: &str = "users";
const PROFILES: &str = "profiles";
const IDEMPOTENCY: &str = "idempotency";
const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/notifications";

async fn backend(latency_ms: u64, fail_entry_rate: f64) -> (Server, aws_config::SdkConfig) {
    backend_with(Config {
        latency: Duration::from_millis(latency_ms),
        fail_entry_rate,
        ..Config::default()
    })
    .await
}

/// A backend with `config`'s latency and faults, the tests' tables and seed.
async fn backend_with(config: Config) -> (Server, aws_config::SdkConfig) {
    let table = |name: &str, key: &str| TableSpec {
        name: name.into(),
        key: vec![key.into()],
    };
    let config = Config {
        seed: 42,
        tables: vec![
            table(USERS, "user_id"),
            table(PROFILES, "user_id"),
            table(IDEMPOTENCY, "id"),
        ],
        ..config
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the backend listens");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .app_name(aws_config::AppName::new("contract-test").unwrap())
        .load()
        .await;
    (server, sdk)
}

fn user(id: &str) -> User {
    let body = serde_json::json!({"user_id": id, "email": format!("{id}@example.com"), "name": "Ada Lovelace"});
    User::from_signup(
        Signup::parse(&body.to_string()).unwrap(),
        Timestamp::from_unix_millis(1_795_771_466_123),
    )
}

fn calls(server: &Server, operation: &str) -> u64 {
    server.stats()["calls"][operation].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn user_and_profile_stores_create_once_and_mark_their_effects() {
    let (server, sdk) = backend(0, 0.0).await;
    let client = eventline_aws::dynamodb::client(&sdk);
    let users = DynamoUserStore::new(client.clone(), USERS);
    let ada = user("u1");

    let lock = ItemLock {
        attempt: "a1".into(),
        until_ms: 5_000,
    };
    assert_eq!(users.create(&ada, &lock).await.unwrap(), Claim::Held);
    // The conflict answer carries the stored item (ALL_OLD), so no read follows.
    assert_eq!(
        users.create(&ada, &lock).await.unwrap(),
        Claim::Found(Locked {
            value: ada.clone(),
            lock: Some(lock.clone())
        })
    );
    assert_eq!(calls(&server, "DynamoDB.GetItem"), 0);
    let at = Timestamp::from_unix_millis(1_795_771_500_000);
    assert_eq!(
        users.announce(&ada.id, &lock, at).await.unwrap(),
        Finish::Recorded
    );
    users
        .announce(
            &ada.id,
            &lock,
            Timestamp::from_unix_millis(1_795_771_900_000),
        )
        .await
        .unwrap();
    assert_eq!(
        users.get(&ada.id).await.unwrap().unwrap().announced_at,
        Some(at)
    );
    let nobody = UserId::parse("nobody").unwrap();
    assert!(users.announce(&nobody, &lock, at).await.is_err());
    assert_eq!(users.get(&nobody).await.unwrap(), None);

    let profiles = DynamoProfileStore::new(client, PROFILES);
    let profile = Profile::default_for(&UserCreated::from_user(&ada));
    assert_eq!(
        profiles.create(&profile, "h", &lock).await.unwrap(),
        Claim::Held
    );
    assert_eq!(
        profiles.record_document(&ada.id, &lock).await.unwrap(),
        Finish::Recorded
    );
    match profiles.create(&profile, "h", &lock).await.unwrap() {
        Claim::Found(stored) => assert!(stored.value.profile.document_written),
        Claim::Held => panic!("the second create must find the profile"),
    }

    let stats = server.stats();
    assert_eq!(stats["items"][USERS], 1);
    assert_eq!(stats["items"][PROFILES], 1);
    assert_eq!(
        stats["errors"]["DynamoDB.PutItem ConditionalCheckFailedException"],
        2
    );
    assert_eq!(stats["by_app"]["contract-test"]["DynamoDB.UpdateItem"], 4);
}

fn lock(attempt: &str, in_progress_until_ms: u64) -> Record {
    Record {
        id: "user-processor#k".into(),
        status: Status::InProgress,
        expiration: 2_000_000_000,
        in_progress_expiration: in_progress_until_ms,
        payload_hash: "h".into(),
        result: None,
        attempt: attempt.into(),
    }
}

#[tokio::test]
async fn the_idempotency_lock_is_owned_by_its_attempt() {
    let (_server, sdk) = backend(0, 0.0).await;
    let store = DynamoIdempotencyStore::new(eventline_aws::dynamodb::client(&sdk), IDEMPOTENCY);
    let ours = lock("a1", 5_000);

    assert_eq!(
        store.acquire(&ours, 1_000).await.unwrap(),
        Acquire::Acquired
    );
    assert_eq!(
        store.acquire(&lock("a2", 9_000), 4_999).await.unwrap(),
        Acquire::Existing(ours.clone())
    );
    // Another attempt can neither complete nor release it.
    let theirs = Record {
        status: Status::Completed,
        result: Some("null".into()),
        ..lock("a2", 9_000)
    };
    assert!(matches!(
        store.complete_all(&[theirs]).await[..],
        [Err(CompleteError::LockLost)]
    ));
    store.release(&lock("a2", 9_000)).await.unwrap();
    assert_eq!(
        store.acquire(&lock("a3", 9_000), 4_999).await.unwrap(),
        Acquire::Existing(ours.clone())
    );
    // Ours completes it; then only its expiration frees it.
    let done = Record {
        status: Status::Completed,
        result: Some("null".into()),
        ..ours.clone()
    };
    assert!(matches!(
        store.complete_all(std::slice::from_ref(&done)).await[..],
        [Ok(())]
    ));
    assert_eq!(
        store.acquire(&lock("a4", 9_000), 6_000).await.unwrap(),
        Acquire::Existing(done.clone())
    );
    assert_eq!(
        store
            .acquire(&lock("a5", 9_000), 2_000_000_001_000)
            .await
            .unwrap(),
        Acquire::Acquired
    );
    // A lapsed in-progress lock is taken over, and the holder releases its own.
    let next = lock("a6", 2_000_000_009_000);
    assert_eq!(
        store.acquire(&next, 2_000_000_005_000).await.unwrap(),
        Acquire::Acquired
    );
    store.release(&next).await.unwrap();
    assert_eq!(
        store.acquire(&lock("a7", 1), 1).await.unwrap(),
        Acquire::Acquired
    );
}

#[tokio::test]
async fn the_mail_ledger_caps_distinct_messages_and_remembers_sent_ones() {
    let (_server, sdk) = backend(0, 0.0).await;
    let ledger = DynamoMailLedger::new(eventline_aws::dynamodb::client(&sdk), IDEMPOTENCY);
    let event = UserCreated::from_user(&user("u2"));
    let first = eventline_domain::email::welcome(&event);
    let second = eventline_domain::OutgoingEmail {
        message_id: "other".into(),
        ..first.clone()
    };
    const DAY: &str = "2026-11-27";

    let mailbox = first.to.mailbox_key();
    let slot = |m: &eventline_domain::OutgoingEmail, cap| {
        let (ledger, mailbox) = (&ledger, &mailbox);
        let id = m.message_id.clone();
        async move { ledger.take_slot(mailbox, &id, DAY, cap).await.unwrap() }
    };
    assert_eq!(slot(&first, 1).await, Admission::Admitted);
    assert_eq!(slot(&second, 1).await, Admission::OverQuota);
    // A retry of the admitted message takes no second slot.
    assert_eq!(slot(&first, 1).await, Admission::Admitted);
    let held = ItemLock {
        attempt: "a1".into(),
        until_ms: 5_000,
    };
    let id = first.message_id.as_str();
    assert_eq!(ledger.lock(id, "h", &held).await.unwrap(), Claim::Held);
    assert_eq!(
        ledger.record_sent(id, &held).await.unwrap(),
        Finish::Recorded
    );
    match ledger.lock(id, "h", &held).await.unwrap() {
        Claim::Found(marker) => assert!(marker.value.sent),
        Claim::Held => panic!("the marker exists"),
    }
    assert_eq!(slot(&second, 0).await, Admission::OverQuota);
}

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
        .map(|i| UserCreated::from_user(&user(&format!("u{i}"))))
        .collect()
}

#[tokio::test]
async fn batch_answers_are_read_entry_by_entry() {
    let (server, sdk) = backend(0, 0.0).await;
    let queue =
        eventline_aws::sqs::SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), QUEUE);
    let bus = eventline_aws::eventbridge::EventBridgePublisher::new(
        eventline_aws::eventbridge::client(&sdk),
        "bus",
    );

    let sent = queue.enqueue_all(&notifications(12)).await;
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let published = bus.publish_all(&events(12)).await;
    assert!(published.iter().all(Result::is_ok), "{published:?}");
    assert_eq!(calls(&server, "SQS.SendMessageBatch"), 2);
    assert_eq!(calls(&server, "EventBridge.PutEvents"), 2);

    // FIFO queues answer sequence numbers; the SDK reads every member.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let out = sqs
        .send_message_batch()
        .queue_url(format!("{QUEUE}.fifo"))
        .entries(
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id("a")
                .message_body("{}")
                .message_group_id("g")
                .message_deduplication_id("d")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ok = &out.successful()[0];
    assert_eq!(ok.md5_of_message_body(), "99914b932bd37a50b983c5e7c90ae93b");
    assert!(ok.sequence_number().is_some_and(|s| s.len() == 20));
    // A FIFO send without a group is refused as SQS refuses it.
    let refused = sqs
        .send_message()
        .queue_url(format!("{QUEUE}.fifo"))
        .message_body("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&refused),
        Some("MissingParameter")
    );
}

#[tokio::test]
async fn injected_entry_failures_fail_only_their_entries() {
    let (server, sdk) = backend(0, 0.5).await;
    let queue =
        eventline_aws::sqs::SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), QUEUE);
    let bus = eventline_aws::eventbridge::EventBridgePublisher::new(
        eventline_aws::eventbridge::client(&sdk),
        "bus",
    );

    let sent = queue.enqueue_all(&notifications(10)).await;
    let published = bus.publish_all(&events(10)).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let puts: Vec<WriteRequest> = (0..10)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .item("id", AttributeValue::S(format!("k{i}")))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    let written = ddb
        .batch_write_item()
        .request_items(IDEMPOTENCY, puts)
        .send()
        .await
        .unwrap();
    let unprocessed = written
        .unprocessed_items()
        .and_then(|u| u.get(IDEMPOTENCY))
        .map_or(0, Vec::len);

    let failed = |results: &[Result<(), eventline_app::PortError>]| {
        results.iter().filter(|r| r.is_err()).count()
    };
    let stats = server.stats();
    // The fault fired, on some entries but not all, and each adapter saw exactly those.
    assert_eq!(
        stats["entries_failed"]["SQS.SendMessageBatch"],
        failed(&sent) as u64
    );
    assert_eq!(
        stats["entries_failed"]["EventBridge.PutEvents"],
        failed(&published) as u64
    );
    assert_eq!(
        stats["entries_failed"]["DynamoDB.BatchWriteItem"],
        unprocessed as u64
    );
    for n in [failed(&sent), failed(&published), unprocessed] {
        assert!((1..10).contains(&n), "{n} of 10 failed");
    }
    // Unprocessed writes were not applied.
    assert_eq!(stats["items"][IDEMPOTENCY], 10 - unprocessed as u64);
    // PutEvents counts its failures.
    let out = aws_sdk_eventbridge::Client::new(&sdk)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("s")
                .detail_type("t")
                .detail("not json")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 1);
    assert_eq!(out.entries()[0].error_code(), Some("MalformedDetail"));
}

#[tokio::test]
async fn transactions_are_all_or_nothing_with_a_reason_per_action() {
    let (_server, sdk) = backend(0, 0.0).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let item = |id: &str| AttributeValue::S(id.into());
    ddb.put_item()
        .table_name(USERS)
        .item("user_id", item("taken"))
        .send()
        .await
        .unwrap();
    let put_if_absent = |id: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(USERS)
                    .item("user_id", item(id))
                    .condition_expression("attribute_not_exists(user_id)")
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    };

    let err = ddb
        .transact_write_items()
        .transact_items(put_if_absent("new"))
        .transact_items(put_if_absent("taken"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled) = err else {
        panic!("expected a cancelled transaction, got {err:?}");
    };
    let reasons = cancelled.cancellation_reasons();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].code(), Some("None"));
    assert_eq!(reasons[1].code(), Some("ConditionalCheckFailed"));
    assert_eq!(reasons[1].item().unwrap()["user_id"], item("taken"));
    // Nothing of a cancelled transaction is written.
    let read = ddb
        .get_item()
        .table_name(USERS)
        .key("user_id", item("new"))
        .send()
        .await
        .unwrap();
    assert!(read.item().is_none());

    // Without the conflict it commits; a condition check writes nothing.
    ddb.transact_write_items()
        .transact_items(put_if_absent("new"))
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(USERS)
                        .key("user_id", item("taken"))
                        .condition_expression("attribute_exists(user_id)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let read = ddb
        .get_item()
        .table_name(USERS)
        .key("user_id", item("new"))
        .send()
        .await
        .unwrap();
    assert!(read.item().is_some());

    // One item twice in a transaction is refused before anything runs.
    let err = ddb
        .transact_write_items()
        .transact_items(put_if_absent("x"))
        .transact_items(put_if_absent("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err),
        Some("ValidationException")
    );
}

#[tokio::test]
async fn writes_return_the_values_asked_for() {
    let (_server, sdk) = backend(0, 0.0).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let key = AttributeValue::S("k".into());
    let updated = ddb
        .update_item()
        .table_name(IDEMPOTENCY)
        .key("id", key.clone())
        .update_expression("SET n = if_not_exists(n, :zero) + :one")
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_eq!(
        updated.attributes().unwrap()["n"],
        AttributeValue::N("1".into())
    );
    let deleted = ddb
        .delete_item()
        .table_name(IDEMPOTENCY)
        .key("id", key.clone())
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.attributes().unwrap()["id"], key);
    // Unknown tables and unused placeholders are refused as DynamoDB refuses them.
    let missing = ddb
        .get_item()
        .table_name("nope")
        .key("id", key.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&missing),
        Some("ResourceNotFoundException")
    );
    let unused = ddb
        .put_item()
        .table_name(IDEMPOTENCY)
        .item("id", key)
        .expression_attribute_values(":x", AttributeValue::S("x".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&unused),
        Some("ValidationException")
    );
}

#[tokio::test]
async fn objects_mail_and_dead_letters_are_accepted() {
    let (server, sdk) = backend(0, 0.0).await;
    let blobs = eventline_aws::s3::S3BlobStore::new(eventline_aws::s3::client(&sdk), "bucket");
    blobs
        .put_new(
            "profiles/u 1.json",
            "{\"a\":1}".to_owned(),
            "application/json",
        )
        .await
        .unwrap();
    let s3 = eventline_aws::s3::client(&sdk);
    let object = s3
        .get_object()
        .bucket("bucket")
        .key("profiles/u 1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_type(), Some("application/json"));
    assert_eq!(
        object.body.collect().await.unwrap().into_bytes().as_ref(),
        b"{\"a\":1}"
    );
    let missing = s3
        .get_object()
        .bucket("bucket")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert!(missing.into_service_error().is_no_such_key());

    let mailer = eventline_aws::ses::SesMailer::new(
        eventline_aws::ses::client(&sdk),
        eventline_domain::EmailAddress::parse("no-reply@example.com").unwrap(),
    );
    mailer
        .send(&eventline_domain::email::welcome(&UserCreated::from_user(
            &user("u3"),
        )))
        .await
        .unwrap();

    let letters = eventline_aws::dead_letter::SqsDeadLetters::new(
        eventline_aws::sqs::client(&sdk),
        format!("{QUEUE}-dlq"),
        "user-processor",
    );
    let letter = DeadLetter {
        body: "{}".into(),
        reason: Rejection {
            code: "INVALID_SIGNUP",
            fields: vec!["email"],
        },
        source_message_id: "m1".into(),
        first_seen_ms: Some(1),
        message_group_id: None,
    };
    letters.send(&letter).await.unwrap();

    let stats = server.stats();
    assert_eq!(stats["calls"]["S3.PutObject"], 1);
    assert_eq!(stats["calls"]["SESv2.SendEmail"], 1);
    assert_eq!(stats["calls"]["SQS.SendMessage"], 1);
    assert_eq!(stats["objects"], 1);
    for (query, expected) in [
        ("prefix=profiles/", 1),
        ("prefix=profiles/&bucket=bucket", 1),
        ("prefix=outbox/", 0),
        ("prefix=&bucket=other", 0),
    ] {
        let (_, counted) = http(
            &server,
            "GET",
            &format!("/__backend/objects?{query}"),
            &[],
            "",
        )
        .await;
        assert_eq!(counted["objects"], expected, "{query}");
    }
}

#[tokio::test]
async fn concurrent_calls_count_as_one_round_trip() {
    // A latency far above the time the client needs to send five calls at once.
    let (server, sdk) = backend(200, 0.0).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let get = |id: String| {
        ddb.get_item()
            .table_name(USERS)
            .key("user_id", AttributeValue::S(id))
            .send()
    };
    let wave = futures::future::join_all((0..5).map(|i| get(format!("u{i}")))).await;
    assert!(wave.iter().all(Result::is_ok));
    get("after".into()).await.unwrap();

    let stats = server.stats();
    assert_eq!(stats["total"], 6);
    assert_eq!(stats["round_trips"], 2);
}

/// One plain HTTP/1.1 request to the backend: the status and the JSON body.
async fn http(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let addr = server.addr();
    let headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or_default())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn what_was_sent_is_kept_per_queue_and_bus_until_drained() {
    // Half the entries fail: only the accepted ones are kept.
    let (server, sdk) = backend(0, 0.5).await;
    let queue =
        eventline_aws::sqs::SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), QUEUE);
    let bus = eventline_aws::eventbridge::EventBridgePublisher::new(
        eventline_aws::eventbridge::client(&sdk),
        "bus",
    );
    let sent = queue.enqueue_all(&notifications(12)).await;
    let published = bus.publish_all(&events(12)).await;
    let accepted = |results: &[Result<(), _>]| results.iter().filter(|r| r.is_ok()).count();
    let (sent_ok, published_ok) = (accepted(&sent), accepted(&published));
    assert!(0 < sent_ok && sent_ok < 12, "{sent_ok} of 12 accepted");
    assert_eq!(
        server.stats()["pending"]["queues"]["notifications"],
        sent_ok
    );
    assert_eq!(server.stats()["pending"]["buses"]["bus"], published_ok);
    assert_eq!(server.stats()["entries"]["SQS.SendMessageBatch"], 12);

    // By URL or by name; in ReceiveMessage's shape, with the MD5 SQS answered.
    let (status, drained) = http(
        &server,
        "GET",
        "/__backend/drain?queue=https%3A%2F%2Fsqs.us-east-1.amazonaws.com%2F123456789012%2Fnotifications",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let messages = drained["messages"].as_array().unwrap();
    assert_eq!(messages.len(), sent_ok);
    for m in messages {
        let body = m["Body"].as_str().unwrap();
        Notification::parse(body).unwrap();
        assert_eq!(m["MD5OfBody"], hex::encode(Md5::digest(body)));
        assert!(m["Attributes"]["SentTimestamp"].is_string());
    }
    let (_, again) = http(
        &server,
        "GET",
        "/__backend/drain?queue=notifications",
        &[],
        "",
    )
    .await;
    assert_eq!(again["messages"], serde_json::json!([]));

    let (_, drained) = http(&server, "GET", "/__backend/drain?bus=bus", &[], "").await;
    let events = drained["events"].as_array().unwrap();
    assert_eq!(events.len(), published_ok);
    for e in events {
        assert_eq!(e["DetailType"], "User Created");
        assert_eq!(e["Source"], "user.service");
        assert_eq!(e["EventBusName"], "bus");
        assert!(e["EventId"].is_string());
        let detail: serde_json::Value =
            serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
        assert!(detail["user_id"].is_string());
    }
    assert_eq!(server.stats()["pending"]["buses"], serde_json::json!({}));
    let (status, _) = http(&server, "GET", "/__backend/drain", &[], "").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn calls_are_folded_per_invocation_by_their_trace_header() {
    // Two invocations of one function at once: A makes two waves, B one
    // wave inside A's first. Together one round trip, then one more.
    let (server, _sdk) = backend(100, 0.0).await;
    let get = |trace: &'static str| {
        let server = &server;
        async move {
            let trace = format!("Root=1-6750a1b2-{trace};Parent=53995c3f42cd8ad8;Sampled=0");
            let headers = [
                ("x-amz-target", "DynamoDB_20120810.GetItem"),
                ("content-type", "application/x-amz-json-1.0"),
                ("user-agent", "aws-sdk-rust/1 app/fn-x"),
                ("x-amzn-trace-id", trace.as_str()),
            ];
            let body = r#"{"TableName":"users","Key":{"user_id":{"S":"u1"}}}"#;
            let (status, _) = http(server, "POST", "/", &headers, body).await;
            assert_eq!(status, 200);
        }
    };
    futures::join!(
        get("aaaaaaaaaaaaaaaaaaaaaaaa"),
        get("aaaaaaaaaaaaaaaaaaaaaaaa"),
        get("bbbbbbbbbbbbbbbbbbbbbbbb")
    );
    get("aaaaaaaaaaaaaaaaaaaaaaaa").await;

    let stats = server.stats();
    assert_eq!(stats["round_trips"], 2);
    let invocations = &stats["invocations"]["fn-x"];
    assert_eq!(invocations["count"], 2);
    assert_eq!(invocations["calls"], serde_json::json!({"1": 1, "3": 1}));
    assert_eq!(
        invocations["round_trips"],
        serde_json::json!({"1": 1, "2": 1})
    );
}

fn units(server: &Server, operation: &str, unit: &str) -> f64 {
    server.stats()["units_by_operation"][operation][unit]
        .as_f64()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn write_and_read_units_are_counted_from_item_sizes() {
    let (server, sdk) = backend(0, 0.0).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let s = |v: &str| AttributeValue::S(v.into());
    // "user_id" + "u1" = 9 bytes; "bio" + 1,500 bytes: 2 KB
    let big = "x".repeat(1500);
    ddb.put_item()
        .table_name(USERS)
        .item("user_id", s("u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(units(&server, "DynamoDB.PutItem", "wru"), 1.0);
    ddb.update_item()
        .table_name(USERS)
        .key("user_id", s("u1"))
        .update_expression("SET bio = :b")
        .expression_attribute_values(":b", s(&big))
        .send()
        .await
        .unwrap();
    // UpdateItem: the larger of before (9 bytes) and after (1,512 bytes)
    assert_eq!(units(&server, "DynamoDB.UpdateItem", "wru"), 2.0);
    // A failed condition is billed as the write it would have been: the 2 KB item it would replace.
    let refused = ddb
        .put_item()
        .table_name(USERS)
        .item("user_id", s("u1"))
        .condition_expression("attribute_not_exists(user_id)")
        .send()
        .await
        .unwrap_err();
    assert!(refused
        .into_service_error()
        .is_conditional_check_failed_exception());
    assert_eq!(units(&server, "DynamoDB.PutItem", "wru"), 1.0 + 2.0);
    // Reads: 4 KB per unit, strongly consistent 1, eventually consistent half.
    for consistent in [true, false] {
        ddb.get_item()
            .table_name(USERS)
            .key("user_id", s("u1"))
            .consistent_read(consistent)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(units(&server, "DynamoDB.GetItem", "rru"), 1.5);
    // A transaction: 2 units per item and KB (two small puts: 4).
    let put = |id: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(USERS)
                    .item("user_id", s(id))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    ddb.transact_write_items()
        .transact_items(put("t1"))
        .transact_items(put("t2"))
        .send()
        .await
        .unwrap();
    assert_eq!(units(&server, "DynamoDB.TransactWriteItems", "wru"), 4.0);
    // SQS: one request per call of small messages; EventBridge: one event per entry.
    let queue =
        eventline_aws::sqs::SqsNotificationQueue::new(eventline_aws::sqs::client(&sdk), QUEUE);
    queue.enqueue_all(&notifications(10)).await;
    let bus = eventline_aws::eventbridge::EventBridgePublisher::new(
        eventline_aws::eventbridge::client(&sdk),
        "bus",
    );
    bus.publish_all(&events(3)).await;
    let stats = server.stats();
    assert_eq!(stats["units"]["wru"], 1 + 2 + 2 + 4);
    assert_eq!(stats["units"]["sqs_requests"], 1);
    assert_eq!(stats["units"]["events"], 3);
    assert_eq!(stats["units_by_app"]["contract-test"]["rru"], 1.5);
}

#[tokio::test]
async fn conditional_writes_answer_the_old_item_when_asked() {
    let (_server, sdk) = backend(0, 0.0).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let s = |v: &str| AttributeValue::S(v.into());
    ddb.put_item()
        .table_name(USERS)
        .item("user_id", s("u1"))
        .item("attempt", s("a1"))
        .send()
        .await
        .unwrap();
    let put = ddb
        .put_item()
        .table_name(USERS)
        .item("user_id", s("u1"))
        .item("attempt", s("a2"))
        .condition_expression("attribute_not_exists(user_id)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) =
        put
    else {
        panic!("expected a failed condition, got {put:?}");
    };
    assert_eq!(e.item().unwrap()["attempt"], s("a1"));
    let update = ddb
        .update_item()
        .table_name(USERS)
        .key("user_id", s("u1"))
        .update_expression("SET attempt = :mine")
        .condition_expression("attempt = :mine")
        .expression_attribute_values(":mine", s("a2"))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
        e,
    ) = update
    else {
        panic!("expected a failed condition, got {update:?}");
    };
    assert_eq!(e.item().unwrap()["attempt"], s("a1"));
    // Without ALL_OLD the failure carries no item.
    let bare = ddb
        .put_item()
        .table_name(USERS)
        .item("user_id", s("u1"))
        .condition_expression("attribute_not_exists(user_id)")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) =
        bare
    else {
        panic!("expected a failed condition, got {bare:?}");
    };
    assert!(e.item().is_none());
}

#[tokio::test]
async fn an_object_put_if_none_match_is_created_once() {
    let (server, sdk) = backend(0, 0.0).await;
    let s3 = eventline_aws::s3::client(&sdk);
    let put = |body: &'static str| {
        s3.put_object()
            .bucket("bucket")
            .key("profiles/u1.json")
            .if_none_match("*")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                body.as_bytes(),
            ))
            .send()
    };
    put("first").await.unwrap();
    let second = put("second").await.unwrap_err();
    let raw = second.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw, Some(412));
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&second),
        Some("PreconditionFailed")
    );
    let kept = s3
        .get_object()
        .bucket("bucket")
        .key("profiles/u1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.body.collect().await.unwrap().into_bytes().as_ref(),
        b"first"
    );
    // An unconditional put still replaces it; every request is billed.
    s3.put_object()
        .bucket("bucket")
        .key("profiles/u1.json")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"third"))
        .send()
        .await
        .unwrap();
    let stats = server.stats();
    assert_eq!(stats["units"]["s3_put"], 3);
    assert_eq!(stats["units"]["s3_get"], 1);
}

fn transaction(ids: &[&str]) -> Vec<TransactWriteItem> {
    ids.iter()
        .map(|id| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(USERS)
                        .item("user_id", AttributeValue::S((*id).into()))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect()
}

fn cancellation_codes(
    err: aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Vec<String> {
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled) = err else {
        panic!("expected a cancelled transaction, got {err:?}");
    };
    cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn injected_conflicts_cancel_a_seeded_share_of_transactions() {
    let (server, sdk) = backend_with(Config {
        latency: Duration::ZERO,
        conflict_rate: 0.5,
        ..Config::default()
    })
    .await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let mut conflicted = 0;
    for i in 0..20 {
        let (a, b) = (format!("a{i}"), format!("b{i}"));
        match ddb
            .transact_write_items()
            .set_transact_items(Some(transaction(&[&a, &b])))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let codes = cancellation_codes(e.into_service_error());
                assert_eq!(codes.len(), 2);
                assert_eq!(
                    codes.iter().filter(|c| *c == "TransactionConflict").count(),
                    1
                );
                assert_eq!(codes.iter().filter(|c| *c == "None").count(), 1);
                conflicted += 1;
            }
        }
    }
    let stats = server.stats();
    // The fault fired, on some transactions and not all, and nothing of a cancelled one was written.
    assert_eq!(
        stats["conflicts"]["DynamoDB.TransactWriteItems"],
        conflicted
    );
    assert!(
        (1..20).contains(&conflicted),
        "{conflicted} of 20 conflicted"
    );
    assert_eq!(stats["items"][USERS], 2 * (20 - conflicted));
    // Single-item writes are never picked.
    ddb.put_item()
        .table_name(USERS)
        .item("user_id", AttributeValue::S("single".into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn throttled_calls_answer_each_service_throttling_error_and_change_nothing() {
    let (server, sdk) = backend_with(Config {
        latency: Duration::ZERO,
        throttle_rate: 1.0,
        ..Config::default()
    })
    .await;
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let put = ddb
        .put_item()
        .table_name(USERS)
        .item("user_id", AttributeValue::S("u1".into()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        put.is_provisioned_throughput_exceeded_exception(),
        "{put:?}"
    );
    let tx = ddb
        .transact_write_items()
        .set_transact_items(Some(transaction(&["t1", "t2", "t3"])))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let codes = cancellation_codes(tx);
    assert_eq!(codes.iter().filter(|c| *c == "ThrottlingError").count(), 1);
    assert_eq!(codes.len(), 3);

    let sqs = eventline_aws::sqs::client(&sdk);
    let sent = sqs
        .send_message()
        .queue_url(QUEUE)
        .message_body("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sent.code(), Some("RequestThrottled"));
    let put_events = aws_sdk_eventbridge::Client::new(&sdk)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("s")
                .detail_type("t")
                .detail("{}")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(put_events.code(), Some("ThrottlingException"));
    let object = eventline_aws::s3::client(&sdk)
        .put_object()
        .bucket("bucket")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(object.code(), Some("SlowDown"));
    let mailer = eventline_aws::ses::SesMailer::new(
        eventline_aws::ses::client(&sdk),
        eventline_domain::EmailAddress::parse("no-reply@example.com").unwrap(),
    );
    let mail = mailer
        .send(&eventline_domain::email::welcome(&UserCreated::from_user(
            &user("u3"),
        )))
        .await;
    assert!(mail.is_err());

    let stats = server.stats();
    for op in [
        "DynamoDB.PutItem",
        "DynamoDB.TransactWriteItems",
        "SQS.SendMessage",
        "EventBridge.PutEvents",
        "S3.PutObject",
        "SESv2.SendEmail",
    ] {
        assert_eq!(stats["throttled"][op], 1, "{op}");
    }
    assert_eq!(
        stats["errors"]["SESv2.SendEmail TooManyRequestsException"],
        1
    );
    // Nothing happened, and nothing was billed.
    assert_eq!(stats["items"][USERS], 0);
    assert_eq!(stats["objects"], 0);
    assert_eq!(stats["units"]["wru"], 0);
    assert_eq!(stats["pending"]["queues"], serde_json::json!({}));
}

#[tokio::test]
async fn each_operation_takes_its_latency_from_the_table() {
    let (server, sdk) = backend(10, 0.0).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    ddb.put_item()
        .table_name(USERS)
        .item("user_id", AttributeValue::S("u1".into()))
        .send()
        .await
        .unwrap();
    ddb.transact_write_items()
        .set_transact_items(Some(transaction(&["t1", "t2"])))
        .send()
        .await
        .unwrap();
    let stats = server.stats();
    // The modelled latency, not a measured time: a 2-item transaction is 2.1x a single write.
    assert_eq!(stats["latency_model"], "aws");
    assert_eq!(stats["latency_ms_by_operation"]["DynamoDB.PutItem"], 10);
    assert_eq!(
        stats["latency_ms_by_operation"]["DynamoDB.TransactWriteItems"],
        21
    );

    // The uniform model, switched while serving, gives every call the base.
    let (status, _) = http(
        &server,
        "POST",
        "/__backend/latency?ms=10&model=uniform",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(&server, "POST", "/__backend/reset", &[], "").await;
    assert_eq!(status, 200);
    ddb.transact_write_items()
        .set_transact_items(Some(transaction(&["t3", "t4"])))
        .send()
        .await
        .unwrap();
    let stats = server.stats();
    assert_eq!(stats["latency_model"], "uniform");
    assert_eq!(
        stats["latency_ms_by_operation"]["DynamoDB.TransactWriteItems"],
        10
    );
}

#[tokio::test]
async fn fault_rates_can_be_set_while_serving() {
    let (server, sdk) = backend(0, 0.0).await;
    let (status, _) = http(
        &server,
        "POST",
        "/__backend/faults?throttles=1&conflicts=0.25",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let stats = server.stats();
    assert_eq!(stats["throttle_rate"], 1.0);
    assert_eq!(stats["conflict_rate"], 0.25);
    assert_eq!(stats["fail_entry_rate"], 0.0);
    let refused = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(USERS)
        .key("user_id", AttributeValue::S("u1".into()))
        .send()
        .await;
    assert!(refused.is_err());
    assert_eq!(server.stats()["throttled"]["DynamoDB.GetItem"], 1);
    let (status, _) = http(&server, "POST", "/__backend/faults?throttles=2", &[], "").await;
    assert_eq!(status, 400);
}
