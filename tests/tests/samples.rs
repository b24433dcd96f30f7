//! The sample events in `events/` are specifications: each one is the exact
//! payload Lambda hands its function, and `events/README.md` states what the
//! function answers and does with it. These tests hold both claims.
//!
//! Fixtures are compiled in next to the types they exercise, the way
//! aws-lambda-events tests its own JSON (`include_bytes!`), and each is run
//! through its use case with the in-memory ports, so no server is needed.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use eventline_app::memory::{FixedClock, MemoryAdapters, SETTINGS};
use eventline_app::{
    compose, notification_processor, profile_creator, user_processor, welcome_email, Settings,
};
use eventline_domain::{Region, RegionSet, Timestamp, UserCreated};
use eventline_powertools::env::Env;
use eventline_powertools::{eventbridge, sqs};
use eventline_tests::invoke;
use md5::{Digest, Md5};
use serde_json::{json, Value};

const USER_PROCESSOR_SQS: &[u8] = include_bytes!("../../events/user-processor.sqs.json");
const NOTIFICATION_PROCESSOR_SQS: &[u8] =
    include_bytes!("../../events/notification-processor.sqs.json");
const WELCOME_EMAIL_EVENTBRIDGE: &[u8] =
    include_bytes!("../../events/welcome-email.eventbridge.json");
const PROFILE_CREATOR_EVENTBRIDGE: &[u8] =
    include_bytes!("../../events/profile-creator.eventbridge.json");

/// The samples' own time: just after the last `SentTimestamp` in them.
const NOW_MS: u64 = 1_795_771_466_100;

fn sqs(sample: &[u8]) -> SqsEvent {
    serde_json::from_slice(sample).expect("an SQS sample is an SqsEvent")
}

fn eventbridge(sample: &[u8]) -> EventBridgeEvent {
    serde_json::from_slice(sample).expect("an EventBridge sample is an EventBridgeEvent")
}

/// The in-memory world the samples run in: one of each store, shared by the
/// functions as the deployed stack shares its tables, queue, bus and bucket,
/// at the samples' time.
struct World(MemoryAdapters);

impl std::ops::Deref for World {
    type Target = MemoryAdapters;

    fn deref(&self) -> &MemoryAdapters {
        &self.0
    }
}

/// A function's settings, as in the template (outbox mail, a 10 s timeout)
/// of a single-region stack in the samples' region, us-east-1.
fn settings<C>(read: fn(&mut Env) -> C) -> Settings<C> {
    let region = [("AWS_REGION", "us-east-1"), ("REGIONS", "us-east-1")];
    eventline_tests::settings(SETTINGS.iter().chain(&region).copied(), read)
}

/// The `MD5OfMessageAttributes` SQS computes: for each attribute by name,
/// the name, the data type (each with its 4-byte big-endian length), 1 for
/// a string value, and the value with its length.
fn md5_of_attributes(record: &aws_lambda_events::sqs::SqsMessage) -> String {
    let mut names: Vec<&String> = record.message_attributes.keys().collect();
    names.sort();
    let mut bytes = Vec::new();
    for name in names {
        let attribute = &record.message_attributes[name];
        let data_type = attribute.data_type.as_deref().unwrap_or_default();
        let value = attribute.string_value.as_deref().unwrap_or_default();
        for part in [name.as_str(), data_type] {
            bytes.extend((part.len() as u32).to_be_bytes());
            bytes.extend(part.as_bytes());
        }
        bytes.push(1);
        bytes.extend((value.len() as u32).to_be_bytes());
        bytes.extend(value.as_bytes());
    }
    hex::encode(Md5::digest(&bytes))
}

/// `payload` in the `User Created` shape of producers that say nothing of
/// regions or correlation (the samples' shape before issue 10).
fn without_provenance(mut payload: Value) -> Value {
    if let Some(detail) = payload["detail"].as_object_mut() {
        for key in [
            "origin_region",
            "home_region",
            "event_key",
            "correlation_id",
        ] {
            detail.remove(key);
        }
    }
    payload
}

impl World {
    fn new() -> Self {
        Self(MemoryAdapters {
            clock: FixedClock(Timestamp::from_unix_millis(NOW_MS)),
            ..MemoryAdapters::default()
        })
    }

    /// user-processor's answer as the runtime serialises it.
    async fn user_processor(&self, event: SqsEvent) -> Value {
        let settings = settings(user_processor::Config::from_env);
        let handler = compose::user_processor(self.user_processor_wiring(&settings), &settings);
        let service = sqs::service(|messages, deadline_ms| handler.handle(messages, deadline_ms));
        let response = invoke(service, event, NOW_MS + 3_000)
            .await
            .expect("user-processor answers the batch");
        serde_json::to_value(&response).expect("JSON answer")
    }

    /// notification-processor's answer as the runtime serialises it.
    async fn notification_processor(&self, event: SqsEvent) -> Value {
        let settings = settings(notification_processor::Config::from_env);
        let wiring = self.notification_processor_wiring(&settings);
        let handler = compose::notification_processor(wiring, &settings);
        let service = sqs::service(|messages, deadline_ms| handler.handle(messages, deadline_ms));
        let response = invoke(service, event, NOW_MS + 3_000)
            .await
            .expect("notification-processor answers the batch");
        serde_json::to_value(&response).expect("JSON answer")
    }

    /// welcome-email's answer as the runtime serialises it.
    async fn welcome_email(&self, payload: Value) -> Value {
        let settings = settings(welcome_email::Config::from_env);
        let handler = compose::welcome_email(self.welcome_email_wiring(&settings), &settings);
        let service =
            eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
        let result = invoke(service, payload, NOW_MS + 3_000).await;
        serde_json::to_value(result.as_ref().expect("welcome-email succeeds")).expect("JSON answer")
    }

    /// profile-creator's answer as the runtime serialises it.
    async fn profile_creator(&self, payload: Value) -> Value {
        let settings = settings(profile_creator::Config::from_env);
        let handler = compose::profile_creator(self.profile_creator_wiring(&settings), &settings);
        let service =
            eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
        let result = invoke(service, payload, NOW_MS + 3_000).await;
        serde_json::to_value(result.as_ref().expect("profile-creator succeeds"))
            .expect("JSON answer")
    }

    fn object(&self, key: &str) -> Value {
        let text = self
            .bucket
            .get(key)
            .unwrap_or_else(|| panic!("no object {key}"));
        serde_json::from_str(&text).expect("a JSON object")
    }
}

#[test]
fn sqs_samples_are_lambda_sqs_events_with_real_md5s_and_recognisable_ids() {
    let mut digit = 0;
    for sample in [USER_PROCESSOR_SQS, NOTIFICATION_PROCESSOR_SQS] {
        let event = sqs(sample);
        assert!(!event.records.is_empty());
        for record in &event.records {
            let body = record
                .body
                .as_deref()
                .expect("every sample record has a body");
            assert_eq!(
                record.md5_of_body.as_deref(),
                Some(hex::encode(Md5::digest(body.as_bytes())).as_str()),
                "md5OfBody of {body}"
            );
            if !record.message_attributes.is_empty() {
                assert_eq!(
                    record.md5_of_message_attributes.as_deref(),
                    Some(md5_of_attributes(record).as_str()),
                    "md5OfMessageAttributes of {body}"
                );
            }
            // `1111…`, `2222…`, … across the samples, in order.
            digit += 1;
            let id = record.message_id.as_deref().expect("a message id");
            assert!(id.starts_with(&digit.to_string().repeat(8)), "{id}");
            assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        }
    }
}

#[test]
fn eventbridge_samples_are_one_user_created_event_as_aws_delivers_it() {
    let welcome = eventbridge(WELCOME_EMAIL_EVENTBRIDGE);
    let profile = eventbridge(PROFILE_CREATOR_EVENTBRIDGE);
    // One event matches both rules, so both targets receive the same one.
    assert_eq!(welcome, profile);
    assert_eq!(welcome.source, UserCreated::SOURCE);
    assert_eq!(welcome.detail_type, UserCreated::DETAIL_TYPE);
    // AWS includes `account` (moto's deliveries do not).
    assert_eq!(welcome.account.as_deref(), Some("123456789012"));
    let detail = UserCreated::from_detail(&welcome.detail).expect("a valid detail");
    assert_eq!(detail.user_id.as_str(), "u-1001");
    // Published by a single-region stack in us-east-1: every user's home.
    let stack = RegionSet::single(Region::parse("us-east-1").unwrap());
    assert_eq!(detail.origin_region.as_ref(), Some(stack.own()));
    assert_eq!(
        detail.home_region.as_ref(),
        Some(stack.home_region(&detail.user_id))
    );
    assert_eq!(welcome.detail["event_key"], "user-created/u-1001");
}

#[tokio::test]
async fn the_samples_follow_one_signup_by_its_correlation_id() {
    let world = World::new();
    world.user_processor(sqs(USER_PROCESSOR_SQS)).await;

    // user-processor: each signup's message id goes with its confirmation
    // and its event.
    let signups: Vec<(String, String)> = sqs(USER_PROCESSOR_SQS)
        .records
        .into_iter()
        .filter_map(|r| {
            let body: Value = serde_json::from_str(r.body.as_deref()?).ok()?;
            Some((body["user_id"].as_str()?.to_owned(), r.message_id?))
        })
        .filter(|(user, _)| user != "u-1002")
        .collect();
    let mut queued: Vec<(String, String)> = world
        .notifications
        .sent()
        .into_iter()
        .map(|n| (n.user_id.to_string(), n.correlation_id.unwrap().to_string()))
        .collect();
    queued.sort();
    assert_eq!(queued, signups);
    let mut published: Vec<UserCreated> = world.events.published();
    published.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let correlated: Vec<(String, String)> = published
        .iter()
        .map(|e| {
            (
                e.user_id.to_string(),
                e.correlation_id.clone().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(correlated, signups);

    // The notification sample is what SQS delivers for those confirmations.
    let mut delivered: Vec<(String, String)> = sqs(NOTIFICATION_PROCESSOR_SQS)
        .records
        .into_iter()
        .map(|r| {
            let user = eventline_domain::Notification::parse(r.body.as_deref().unwrap())
                .unwrap()
                .user_id
                .to_string();
            let correlation = r.message_attributes["correlation_id"]
                .string_value
                .clone()
                .unwrap();
            (user, correlation)
        })
        .collect();
    delivered.sort();
    assert_eq!(delivered, signups);

    // And the EventBridge sample is u-1001's event as the bus delivers it
    // (its created_at is that of the run that stored the user).
    let sample = UserCreated::from_detail(&eventbridge(WELCOME_EMAIL_EVENTBRIDGE).detail).unwrap();
    let ours = &published[0];
    assert_eq!(
        (
            &sample.user_id,
            &sample.origin_region,
            &sample.home_region,
            &sample.correlation_id
        ),
        (
            &ours.user_id,
            &ours.origin_region,
            &ours.home_region,
            &ours.correlation_id
        )
    );
    assert_eq!(sample.event_key(), ours.event_key());
}

#[tokio::test]
async fn the_samples_without_region_and_correlation_fields_do_the_same() {
    // Other producers of `User Created`, and the samples before issue 10.
    let old = World::new();
    let new = World::new();
    for sample in [WELCOME_EMAIL_EVENTBRIDGE, PROFILE_CREATOR_EVENTBRIDGE] {
        let payload: Value = serde_json::from_slice(sample).unwrap();
        assert_eq!(
            old.welcome_email(without_provenance(payload.clone())).await,
            Value::Null
        );
        assert_eq!(
            old.profile_creator(without_provenance(payload.clone()))
                .await,
            Value::Null
        );
        assert_eq!(new.welcome_email(payload.clone()).await, Value::Null);
        assert_eq!(new.profile_creator(payload).await, Value::Null);
    }
    assert_eq!(old.bucket.keys(), new.bucket.keys());
    for key in old.bucket.keys() {
        assert_eq!(old.object(&key), new.object(&key), "{key}");
    }
    assert_eq!(old.profiles.profiles(), new.profiles.profiles());
    assert_eq!(old.dead_letters.letters(), []);
    // An old-shape notification (no attribute) is delivered too.
    let mut bare = sqs(NOTIFICATION_PROCESSOR_SQS);
    for record in &mut bare.records {
        record.message_attributes.clear();
        record.md5_of_message_attributes = None;
    }
    old.user_processor(sqs(USER_PROCESSOR_SQS)).await;
    assert_eq!(
        old.notification_processor(bare).await,
        json!({"batchItemFailures": []})
    );
}

#[tokio::test]
async fn user_processor_sample_dead_letters_record_2_and_stores_and_announces_the_others() {
    let world = World::new();
    let response = world.user_processor(sqs(USER_PROCESSOR_SQS)).await;

    assert_eq!(response, json!({"batchItemFailures": []}));
    // Record 2 (`not-an-email`) can never succeed: it is dead-lettered at
    // once, unchanged, with its reason as codes and field names.
    let letters = world.dead_letters.letters();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        letter.source_message_id,
        "22222222-2222-4222-8222-222222222222"
    );
    assert_eq!(letter.reason.code, "InvalidFields");
    assert_eq!(letter.reason.fields, ["email"]);
    assert_eq!(letter.first_seen_ms, Some(1_795_771_466_026));
    assert_eq!(
        letter.body,
        r#"{"user_id":"u-1002","email":"not-an-email","name":"Grace Hopper"}"#
    );
    // u-1001 and u-1003 are stored, queued for notification, published as
    // `User Created` and marked announced.
    let mut users = world.users.users();
    users.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let ids: Vec<_> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["u-1001", "u-1003"]);
    assert!(users.iter().all(|u| u.is_announced()));
    let mut queued: Vec<_> = world
        .notifications
        .sent()
        .into_iter()
        .map(|n| n.notification_id)
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        ["signup_confirmation.u-1001", "signup_confirmation.u-1003"]
    );
    let mut published: Vec<_> = world
        .events
        .published()
        .into_iter()
        .map(|e| e.user_id.to_string())
        .collect();
    published.sort();
    assert_eq!(published, ["u-1001", "u-1003"]);
}

#[tokio::test]
async fn notification_processor_sample_sends_both_confirmations_once_the_users_exist() {
    let world = World::new();
    world.user_processor(sqs(USER_PROCESSOR_SQS)).await;

    let response = world
        .notification_processor(sqs(NOTIFICATION_PROCESSOR_SQS))
        .await;

    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(
        world.bucket.keys(),
        [
            "outbox/signup_confirmation.u-1001.json",
            "outbox/signup_confirmation.u-1003.json",
        ]
    );
    assert_eq!(
        world.object("outbox/signup_confirmation.u-1001.json")["to"],
        "ada@example.com"
    );
    assert_eq!(
        world.object("outbox/signup_confirmation.u-1003.json")["to"],
        "alan@example.com"
    );
}

#[tokio::test]
async fn welcome_email_sample_succeeds_and_writes_the_welcome_email() {
    let world = World::new();
    let payload: Value = serde_json::from_slice(WELCOME_EMAIL_EVENTBRIDGE).unwrap();

    assert_eq!(world.welcome_email(payload).await, Value::Null);

    assert_eq!(world.bucket.keys(), ["outbox/welcome.u-1001.json"]);
    let email = world.object("outbox/welcome.u-1001.json");
    assert_eq!(email["to"], "ada@example.com");
    assert!(email["text"]
        .as_str()
        .expect("a text part")
        .starts_with("Hello Ada Lovelace,"));
}

#[tokio::test]
async fn profile_creator_sample_succeeds_and_writes_the_default_profile() {
    let world = World::new();
    let payload: Value = serde_json::from_slice(PROFILE_CREATOR_EVENTBRIDGE).unwrap();

    assert_eq!(world.profile_creator(payload).await, Value::Null);

    let profiles = world.profiles.profiles();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].user_id.as_str(), "u-1001");
    assert_eq!(world.bucket.keys(), ["profiles/u-1001.json"]);
    let document = world.object("profiles/u-1001.json");
    assert_eq!(document["user_id"], "u-1001");
    assert_eq!(document["display_name"], "Ada Lovelace");
}
