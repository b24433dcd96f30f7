//! Logs never contain personal data: every use case runs through its happy
//! and failure paths with a JSON log capture at `TRACE`, the most verbose
//! level Lambda can be set to, and no email address or name from the input
//! may appear in what was logged, nor in the errors the handlers return
//! (`lambda_runtime` logs a handler's `Err` with `{:?}` at `ERROR`).

use crate::mail::OutboxMailer;
use crate::memory::{
    FixedClock, MemoryBlobStore, MemoryDeadLetters, MemoryEventBus, MemoryMailLedger,
    MemoryProfileStore, MemoryQueue, MemoryUserStore,
};
use crate::{notification_processor, profile_creator, user_processor, welcome_email};
use eventline_domain::{EmailAddress, Notification, NotificationKind, Timestamp, UserId};
use eventline_powertools::batch::{BatchProcessor, BatchReport, Message};
use eventline_powertools::idempotency::{Idempotency, MemoryStore};
use eventline_powertools::logging::{self, Capture, LogConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Every email address and name the inputs below carry.
const PERSONAL: [&str; 10] = [
    "ada.lovelace@example.com",
    "Ada Lovelace",
    "mallory@example.com",
    "Mallory",
    "not-an-email",
    "Bad Input Name",
    "grace.hopper@example.com",
    "Grace Hopper",
    "alan.turing@example.com",
    "Alan Turing",
];

/// The function timeout the use cases fall back on.
const TIMEOUT: Duration = Duration::from_secs(3);

fn sqs(records: &[(&str, String)]) -> Vec<Message> {
    records
        .iter()
        .map(|(id, body)| Message::new(*id, body.as_str()))
        .collect()
}

fn guard(scope: &str) -> Idempotency<Arc<MemoryStore>> {
    Idempotency::new(
        Arc::new(MemoryStore::default()),
        scope,
        Duration::from_secs(3600),
    )
}

fn signup(id: &str, email: &str, name: &str) -> String {
    json!({"user_id": id, "email": email, "name": name}).to_string()
}

fn user_created(id: &str, email: &str, name: &str) -> Value {
    json!({"version":"0","id":format!("e-{id}"),"detail-type":"User Created","source":"user.service",
           "account":"1","time":"2026-11-27T09:24:26Z","region":"us-east-1","resources":[],
           "detail":{"user_id":id,"email":email,"name":name,"created_at":"2026-11-27T09:24:26.123Z"}})
}

fn failed_ids(report: &BatchReport) -> Vec<&str> {
    let mut ids = report.unhandled();
    ids.sort_unstable();
    ids
}

/// What `lambda_runtime` would log for a handler's `Err`, and its message.
fn as_logged(error: &impl std::fmt::Debug) -> String {
    format!("{error:?}")
}

#[tokio::test]
async fn no_use_case_logs_emails_or_names() {
    let logs = Capture::new();
    // Global, not per-thread: tracing caches per-callsite interest, and other
    // tests of this binary hitting the same callsites on threads without a
    // subscriber would otherwise switch them off. Their lines land here too,
    // which only widens the check.
    tracing::subscriber::set_global_default(logging::subscriber(
        &LogConfig::json("test").with_filter("trace"),
        logs.clone(),
    ))
    .expect("no other test installs a global subscriber");
    let mut returned_errors = Vec::new();
    let clock = FixedClock(Timestamp::from_unix_millis(1));
    let from = EmailAddress::parse("noreply@eventline.example").unwrap();

    // user-processor: created, replayed, conflicting, invalid, malformed,
    // bodiless, and failing at each port.
    let users = Arc::new(MemoryUserStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let bus = Arc::new(MemoryEventBus::default());
    queue.faults.fail("u-2", 1);
    bus.faults.fail("u-5", 1);
    users.faults.fail("u-7", 1);
    let signups = user_processor::UserProcessor::new(
        user_processor::Ports {
            users: users.clone(),
            notifications: queue.clone(),
            events: bus.clone(),
            clock,
            idempotency: guard(user_processor::IDEMPOTENCY_SCOPE),
        },
        BatchProcessor::new(),
        TIMEOUT,
    );
    let ada = signup("u-1", "ada.lovelace@example.com", "Ada Lovelace");
    let mut no_body = Message::new("m9", "");
    no_body.body = None;
    let mut first = sqs(&[
        ("m1", ada.clone()),
        (
            "m2",
            signup("u-2", "grace.hopper@example.com", "Grace Hopper"),
        ),
        ("m3", signup("u-3", "not-an-email", "Bad Input Name")),
        (
            "m4",
            r#"{"user_id":"u-4","email":"mallory@example.com","name":["Mallory"]}"#.to_owned(),
        ),
        (
            "m5",
            signup("u-5", "alan.turing@example.com", "Alan Turing"),
        ),
        (
            "m6",
            signup("u-6", "grace.hopper@example.com", "Grace Hopper"),
        ),
        ("m7", signup("u-7", "mallory@example.com", "Mallory")),
        // Personal data where an id belongs.
        (
            "m8",
            signup("ada.lovelace@example.com", "mallory@example.com", "Mallory"),
        ),
    ]);
    first.push(no_body);
    let response = signups.handle(first, 3_000).await.unwrap();
    assert_eq!(
        failed_ids(&response),
        ["m2", "m3", "m4", "m5", "m7", "m8", "m9"],
        "every fault and invalid record failed alone"
    );
    let response = signups
        .handle(
            sqs(&[
                ("m10", ada.clone()),
                ("m11", signup("u-1", "mallory@example.com", "Mallory")),
            ]),
            3_000,
        )
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["m11"], "the conflict failed");

    // notification-processor: delivered, replayed, unknown user, invalid
    // body, and a failing mail transport.
    let blobs = Arc::new(MemoryBlobStore::default());
    blobs.faults.fail("outbox/signup_confirmation.u-6.json", 1);
    let notifications = notification_processor::NotificationProcessor::new(
        notification_processor::Ports {
            users: users.clone(),
            mailer: OutboxMailer::new(blobs.clone(), from.clone()),
            ledger: Arc::new(MemoryMailLedger::default()),
            clock,
            idempotency: guard(notification_processor::IDEMPOTENCY_SCOPE),
        },
        BatchProcessor::new(),
        crate::mail::DEFAULT_DAILY_CAP,
        TIMEOUT,
    );
    let n = |id: &str| {
        Notification::new(
            UserId::parse(id).unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_json()
    };
    let response = notifications
        .handle(
            sqs(&[
                ("n1", n("u-1")),
                ("n2", n("ghost")),
                ("n3", n("u-6")),
                (
                    "n4",
                    r#"{"user_id":"ada.lovelace@example.com","kind":"Ada Lovelace"}"#.to_owned(),
                ),
            ]),
            3_000,
        )
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["n2", "n3", "n4"]);
    let response = notifications
        .handle(sqs(&[("n5", n("u-1"))]), 3_000)
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    assert!(
        blobs
            .get("outbox/signup_confirmation.u-1.json")
            .is_some_and(|mail| mail.contains("ada.lovelace@example.com")),
        "the mail itself carries the address the logs must not"
    );

    // welcome-email: sent, replayed, invalid, and a failing transport.
    blobs.faults.fail("outbox/welcome.u-6.json", 1);
    let welcome = welcome_email::WelcomeEmail::new(
        welcome_email::Ports {
            mailer: OutboxMailer::new(blobs.clone(), from.clone()),
            ledger: Arc::new(MemoryMailLedger::default()),
            clock,
            idempotency: guard(welcome_email::IDEMPOTENCY_SCOPE),
            dead_letters: None,
        },
        crate::mail::DEFAULT_DAILY_CAP,
        TIMEOUT,
    );
    let ada_created = user_created("u-1", "ada.lovelace@example.com", "Ada Lovelace");
    welcome.handle(ada_created.clone(), 3_000).await.unwrap();
    welcome.handle(ada_created.clone(), 3_000).await.unwrap();
    for event in [
        user_created("u-3", "not-an-email", "Bad Input Name"),
        user_created("u-6", "grace.hopper@example.com", "Grace Hopper"),
    ] {
        let error = welcome.handle(event, 3_000).await.unwrap_err();
        returned_errors.push(as_logged(&error));
    }

    // profile-creator: created, replayed, already edited, invalid, and
    // failing at each store.
    let profiles = Arc::new(MemoryProfileStore::default());
    let documents = Arc::new(MemoryBlobStore::default());
    profiles.faults.fail("u-5", 1);
    documents.faults.fail("profiles/u-6.json", 1);
    let creator = profile_creator::ProfileCreator::new(
        profile_creator::Ports {
            profiles: profiles.clone(),
            documents: documents.clone(),
            clock,
            idempotency: guard(profile_creator::IDEMPOTENCY_SCOPE),
            dead_letters: None,
        },
        TIMEOUT,
    );
    creator.handle(ada_created.clone(), 3_000).await.unwrap();
    creator.handle(ada_created.clone(), 3_000).await.unwrap();
    // The user edits the profile; a late copy of the event, past its
    // idempotency record, must leave it alone.
    let mut edited = profiles.profiles()[0].clone();
    edited.bio = "edited".to_owned();
    profiles.overwrite(edited);
    profile_creator::ProfileCreator::new(
        profile_creator::Ports {
            profiles: profiles.clone(),
            documents: documents.clone(),
            clock,
            idempotency: guard(profile_creator::IDEMPOTENCY_SCOPE),
            dead_letters: None,
        },
        TIMEOUT,
    )
    .handle(ada_created, 3_000)
    .await
    .unwrap();
    for event in [
        user_created("u-3", "not-an-email", "Bad Input Name"),
        user_created("u-5", "alan.turing@example.com", "Alan Turing"),
        user_created("u-6", "grace.hopper@example.com", "Grace Hopper"),
        json!({"detail-type":"User Created","detail":"Ada Lovelace <ada.lovelace@example.com>"}),
    ] {
        let error = creator.handle(event, 3_000).await.unwrap_err();
        returned_errors.push(as_logged(&error));
    }

    // The same use cases with a dead-letter queue: what can never succeed
    // (invalid, conflicting, over the mail cap) is dead-lettered with its
    // reason instead of failing, and that path logs too.
    let dead_letters = Arc::new(MemoryDeadLetters::default());
    let signups = user_processor::UserProcessor::new(
        user_processor::Ports {
            users: users.clone(),
            notifications: queue.clone(),
            events: bus.clone(),
            clock,
            idempotency: guard(user_processor::IDEMPOTENCY_SCOPE),
        },
        BatchProcessor::new().with_dead_letters(dead_letters.clone()),
        TIMEOUT,
    );
    signups
        .handle(
            sqs(&[
                ("d1", signup("u-3", "not-an-email", "Bad Input Name")),
                ("d2", signup("u-1", "mallory@example.com", "Mallory")),
                (
                    "d3",
                    signup("ada.lovelace@example.com", "mallory@example.com", "Mallory"),
                ),
            ]),
            3_000,
        )
        .await
        .unwrap();
    let notifications = notification_processor::NotificationProcessor::new(
        notification_processor::Ports {
            users: users.clone(),
            mailer: OutboxMailer::new(blobs.clone(), from.clone()),
            ledger: Arc::new(MemoryMailLedger::default()),
            clock,
            idempotency: guard(notification_processor::IDEMPOTENCY_SCOPE),
        },
        BatchProcessor::new().with_dead_letters(dead_letters.clone()),
        crate::mail::DEFAULT_DAILY_CAP,
        TIMEOUT,
    );
    notifications
        .handle(
            sqs(&[(
                "d4",
                r#"{"user_id":"ada.lovelace@example.com","kind":"Ada Lovelace"}"#.to_owned(),
            )]),
            3_000,
        )
        .await
        .unwrap();
    // A cap of one mail per recipient: the second address owner is refused.
    let capped = welcome_email::WelcomeEmail::new(
        welcome_email::Ports {
            mailer: OutboxMailer::new(Arc::new(MemoryBlobStore::default()), from.clone()),
            ledger: Arc::new(MemoryMailLedger::default()),
            clock,
            idempotency: guard(welcome_email::IDEMPOTENCY_SCOPE),
            dead_letters: Some(dead_letters.clone()),
        },
        1,
        TIMEOUT,
    );
    for event in [
        user_created("u-1", "ada.lovelace@example.com", "Ada Lovelace"),
        user_created("u-9", "ada.lovelace@example.com", "Ada Lovelace"),
        user_created("u-3", "not-an-email", "Bad Input Name"),
    ] {
        if let Err(error) = capped.handle(event, 3_000).await {
            returned_errors.push(as_logged(&error));
        }
    }
    let profiles_with_dlq = Arc::new(MemoryProfileStore::default());
    let creator = profile_creator::ProfileCreator::new(
        profile_creator::Ports {
            profiles: profiles_with_dlq.clone(),
            documents: Arc::new(MemoryBlobStore::default()),
            clock,
            idempotency: guard(profile_creator::IDEMPOTENCY_SCOPE),
            dead_letters: Some(dead_letters.clone()),
        },
        TIMEOUT,
    );
    // A profile the user edited before the event arrived is left alone.
    creator
        .handle(
            user_created("u-8", "alan.turing@example.com", "Alan Turing"),
            3_000,
        )
        .await
        .unwrap();
    let mut edited = profiles_with_dlq.profiles()[0].clone();
    edited.bio = "edited before the event".to_owned();
    edited.document_written = false;
    profiles_with_dlq.overwrite(edited);
    let late = profile_creator::ProfileCreator::new(
        profile_creator::Ports {
            profiles: profiles_with_dlq.clone(),
            documents: Arc::new(MemoryBlobStore::default()),
            clock,
            idempotency: guard(profile_creator::IDEMPOTENCY_SCOPE),
            dead_letters: Some(dead_letters.clone()),
        },
        TIMEOUT,
    );
    for event in [
        user_created("u-8", "alan.turing@example.com", "Alan Turing"),
        user_created("u-3", "not-an-email", "Bad Input Name"),
    ] {
        if let Err(error) = late.handle(event, 3_000).await {
            returned_errors.push(as_logged(&error));
        }
    }
    let letters = dead_letters.letters();
    let lettered: Vec<&str> = letters
        .iter()
        .map(|l| l.source_message_id.as_str())
        .collect();
    for id in ["d1", "d2", "d3", "d4", "e-u-9", "e-u-3"] {
        assert!(
            lettered.contains(&id),
            "{id} not dead-lettered: {letters:?}"
        );
    }
    // The letter keeps the body for a redrive; its reason names no value.
    let reasons: Vec<String> = letters.iter().map(|l| format!("{:?}", l.reason)).collect();

    let text = logs.text();
    for value in PERSONAL {
        for reason in &reasons {
            assert!(
                !reason.contains(value),
                "a dead letter's reason contains {value:?}: {reason}"
            );
        }
        assert!(!text.contains(value), "logs contain {value:?}:\n{text}");
        for error in &returned_errors {
            assert!(
                !error.contains(value),
                "a returned error contains {value:?}: {error}"
            );
        }
    }
    // The capture really saw the runs, at every level: ids and errors are there.
    let lines = logs.json_lines();
    let has = |check: &dyn Fn(&Value) -> bool| lines.iter().any(check);
    assert!(
        has(&|l| l["user_id"] == "u-1" && l["message"] == "user created"),
        "{text}"
    );
    assert!(
        has(&|l| l["correlation_id"] == "m3" && l["level"] == "WARN"),
        "{text}"
    );
    assert!(
        has(&|l| l["message"] == "signup processed" && l["correlation_id"] == "m1"),
        "{text}"
    );
    assert!(
        has(&|l| l["correlation_id"] == "e-u-1" && l["message"] == "welcome email sent"),
        "{text}"
    );
    assert!(
        has(&|l| l["message"] == "profile and document already written"),
        "{text}"
    );
    assert!(
        has(&|l| l["message"] == "profile already edited; leaving it alone"),
        "{text}"
    );
    assert!(
        has(&|l| l["correlation_id"] == "e-u-9" && l["code"] == "RecipientQuotaExceeded"),
        "the capped mail's rejection was logged: {text}"
    );
    assert!(returned_errors.len() >= 6);
    assert!(lines.len() >= 20, "{text}");
}
