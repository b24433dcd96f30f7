//! Logs never contain personal data: every use case runs through its happy
//! and failure paths with a JSON log capture, and no email address or name
//! from the input may appear in what was logged.

use crate::memory::{
    FixedClock, MemoryBlobStore, MemoryEventBus, MemoryMailer, MemoryProfileStore, MemoryQueue,
    MemoryUserStore,
};
use crate::{notification_processor, profile_creator, user_processor, welcome_email};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use eventline_domain::{Notification, NotificationKind, Timestamp, UserId};
use eventline_powertools::batch::BatchProcessor;
use eventline_powertools::idempotency::{Idempotency, MemoryStore};
use eventline_powertools::logging::{self, Capture, LogConfig};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const PERSONAL: [&str; 6] = [
    "ada.lovelace@example.com",
    "Ada Lovelace",
    "mallory@example.com",
    "Mallory",
    "not-an-email",
    "Bad Input Name",
];

fn sqs(records: &[(&str, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, body) in records {
        let mut r = SqsMessage::default();
        r.message_id = Some((*id).to_owned());
        r.body = Some(body.clone());
        event.records.push(r);
    }
    event
}

fn guard(scope: &str) -> Idempotency<Arc<MemoryStore>> {
    Idempotency::new(
        Arc::new(MemoryStore::default()),
        scope,
        Duration::from_secs(3600),
    )
}

#[tokio::test]
async fn no_use_case_logs_emails_or_names() {
    let logs = Capture::new();
    // Global, not per-thread: tracing caches per-callsite interest, and other
    // tests of this binary hitting the same callsites on threads without a
    // subscriber would otherwise switch them off. Their lines land here too,
    // which only widens the check.
    tracing::subscriber::set_global_default(logging::subscriber(
        &LogConfig::json("test").with_filter("debug"),
        logs.clone(),
    ))
    .expect("no other test installs a global subscriber");
    let clock = FixedClock(Timestamp::from_unix_millis(1));
    let users = Arc::new(MemoryUserStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let mailer = Arc::new(MemoryMailer::default());
    queue.faults.fail("u-2", 1);

    let signups = user_processor::UserProcessor::new(
        user_processor::Ports {
            users: users.clone(),
            notifications: queue.clone(),
            events: Arc::new(MemoryEventBus::default()),
            clock,
            idempotency: guard(user_processor::IDEMPOTENCY_SCOPE),
        },
        BatchProcessor::new(),
    );
    let good = json!({"user_id":"u-1","email":"ada.lovelace@example.com","name":"Ada Lovelace"})
        .to_string();
    let conflict =
        json!({"user_id":"u-1","email":"mallory@example.com","name":"Mallory"}).to_string();
    let failing = json!({"user_id":"u-2","email":"ada.lovelace@example.com","name":"Ada Lovelace"})
        .to_string();
    let invalid =
        json!({"user_id":"u-3","email":"not-an-email","name":"Bad Input Name"}).to_string();
    let broken = r#"{"user_id":"u-4","email":"mallory@example.com","name":["Mallory"]}"#.to_owned();
    let batch = [
        ("m1", good.clone()),
        ("m2", failing),
        ("m3", invalid),
        ("m4", broken),
    ];
    signups.handle(sqs(&batch), 3_000).await.unwrap();
    signups
        .handle(sqs(&[("m5", good), ("m6", conflict)]), 3_000)
        .await
        .unwrap();

    let notifications = notification_processor::NotificationProcessor::new(
        notification_processor::Ports {
            users: users.clone(),
            mailer: mailer.clone(),
            clock,
            idempotency: guard(notification_processor::IDEMPOTENCY_SCOPE),
        },
        BatchProcessor::new(),
    );
    let n = |id: &str| {
        Notification::new(
            UserId::parse(id).unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_json()
    };
    notifications
        .handle(sqs(&[("n1", n("u-1")), ("n2", n("ghost"))]), 3_000)
        .await
        .unwrap();

    let event = |email: &str, name: &str| {
        json!({"version":"0","id":"e-1","detail-type":"User Created","source":"user.service","account":"1",
               "time":"2026-11-27T09:24:26Z","region":"us-east-1","resources":[],
               "detail":{"user_id":"u-1","email":email,"name":name,"created_at":"2026-11-27T09:24:26.123Z"}})
    };
    let welcome = welcome_email::WelcomeEmail::new(welcome_email::Ports {
        mailer: mailer.clone(),
        clock,
        idempotency: guard(welcome_email::IDEMPOTENCY_SCOPE),
    });
    welcome
        .handle(event("ada.lovelace@example.com", "Ada Lovelace"), 3_000)
        .await
        .unwrap();
    welcome
        .handle(event("ada.lovelace@example.com", "Ada Lovelace"), 3_000)
        .await
        .unwrap();
    assert!(welcome
        .handle(event("not-an-email", "Bad Input Name"), 3_000)
        .await
        .is_err());
    let profiles = profile_creator::ProfileCreator::new(profile_creator::Ports {
        profiles: Arc::new(MemoryProfileStore::default()),
        documents: Arc::new(MemoryBlobStore::default()),
        clock,
        idempotency: guard(profile_creator::IDEMPOTENCY_SCOPE),
    });
    profiles
        .handle(event("ada.lovelace@example.com", "Ada Lovelace"), 3_000)
        .await
        .unwrap();

    let text = logs.text();
    for value in PERSONAL {
        assert!(!text.contains(value), "logs contain {value:?}:\n{text}");
    }
    // The capture really saw the runs: ids and errors are there.
    let lines = logs.json_lines();
    assert!(
        lines
            .iter()
            .any(|l| l["user_id"] == "u-1" && l["message"] == "user created"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["correlation_id"] == "m3" && l["error"] == "email: not a valid address"),
        "{text}"
    );
    assert!(lines.iter().any(|l| l["correlation_id"] == "e-1"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "signup processed" && l["correlation_id"] == "m1"),
        "{text}"
    );
    assert!(lines.len() >= 10, "{text}");
}
