//! Logs never contain personal data: every use case runs through its happy
//! and failure paths with a JSON log capture at `TRACE`, the most verbose
//! level Lambda can be set to, and no email address or name from the input
//! may appear in what was logged, nor in the errors the handlers return
//! (`lambda_runtime` logs a handler's `Err` with `{:?}` at `ERROR`).
//!
//! The use cases are composed as the functions compose them, over the
//! in-memory adapters; the dead-letter queue refuses some rejections so that
//! they take the error path as well as the dead-letter one.

use crate::memory::{FixedClock, MemoryAdapters, SETTINGS};
use crate::{
    compose, notification_processor, profile_creator, user_processor, welcome_email, Settings,
};
use eventline_domain::{Notification, NotificationKind, Profile, Timestamp, UserId};
use eventline_powertools::batch::{BatchReport, Message};
use eventline_powertools::env::Env;
use eventline_powertools::logging::{self, Capture, LogConfig};
use serde_json::{json, Value};

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

fn sqs(records: &[(&str, String)]) -> Vec<Message> {
    records
        .iter()
        .map(|(id, body)| Message::new(*id, body.as_str()))
        .collect()
}

/// A function's settings: the in-memory ones, with `extra` on top.
fn settings<C>(extra: &[(&'static str, &'static str)], read: fn(&mut Env) -> C) -> Settings<C> {
    let vars = SETTINGS.iter().chain(extra).copied();
    Settings::from_env(Env::from_map(vars), read).expect("complete settings")
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

/// Changes `user`'s stored profile with `edit`, as the user editing it would.
fn edit_profile(world: &MemoryAdapters, user: &str, edit: impl FnOnce(&mut Profile)) {
    let mut edited = world
        .profiles
        .profiles()
        .into_iter()
        .find(|p| p.user_id.as_str() == user)
        .expect("the profile exists");
    edit(&mut edited);
    world.profiles.overwrite(edited);
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
    let world = MemoryAdapters {
        clock: FixedClock(Timestamp::from_unix_millis(1)),
        ..MemoryAdapters::default()
    };
    let dead_letters = world.dead_letters.clone();
    // The dead-letter queue refuses these (by source message id; "" is the
    // payload that is no event) so that their rejections fail or return
    // their error as well; the d* records and e-u-9 below it accepts.
    for (id, times) in [
        ("m4", 1),
        ("m8", 1),
        ("m9", 1),
        ("m11", 1),
        ("n4", 1),
        ("e-u-3", 2),
        ("", 1),
    ] {
        dead_letters.faults.fail(id, times);
    }

    // user-processor: created, replayed, conflicting, invalid, malformed,
    // bodiless, and failing at each port.
    world.notifications.faults.fail("u-2", 1);
    world.events.faults.fail("u-5", 1);
    world.users.faults.fail("u-7", 1);
    let up_settings = settings(&[], user_processor::Config::from_env);
    let signups = compose::user_processor(world.user_processor_wiring(&up_settings), &up_settings);
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
        ["m2", "m4", "m5", "m7", "m8", "m9"],
        "every fault and refused rejection failed alone (m3 was dead-lettered)"
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
    world
        .bucket
        .faults
        .fail("outbox/signup_confirmation.u-6.json", 1);
    let np_settings = settings(&[], notification_processor::Config::from_env);
    let notifications = compose::notification_processor(
        world.notification_processor_wiring(&np_settings),
        &np_settings,
    );
    let n = |id: &str| {
        Notification::new(
            UserId::parse(id).unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_json()
    };
    let mut batch = sqs(&[
        ("n1", n("u-1")),
        ("n2", n("ghost")),
        ("n3", n("u-6")),
        (
            "n4",
            r#"{"user_id":"ada.lovelace@example.com","kind":"Ada Lovelace"}"#.to_owned(),
        ),
    ]);
    // Personal data where a correlation id belongs.
    batch[1] = batch[1]
        .clone()
        .with_attribute("correlation_id", "ada.lovelace@example.com");
    let response = notifications.handle(batch, 3_000).await.unwrap();
    assert_eq!(failed_ids(&response), ["n2", "n3", "n4"]);
    let response = notifications
        .handle(sqs(&[("n5", n("u-1"))]), 3_000)
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    assert!(
        world
            .bucket
            .get("outbox/signup_confirmation.u-1.json")
            .is_some_and(|mail| mail.contains("ada.lovelace@example.com")),
        "the mail itself carries the address the logs must not"
    );

    // welcome-email: sent, replayed, invalid, and a failing transport.
    world.bucket.faults.fail("outbox/welcome.u-6.json", 1);
    let welcome_settings = settings(&[], welcome_email::Config::from_env);
    let welcome = compose::welcome_email(
        world.welcome_email_wiring(&welcome_settings),
        &welcome_settings,
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
    // Personal data where the detail's correlation id belongs: refused.
    let mut named = user_created("u-7", "mallory@example.com", "Mallory");
    named["detail"]["correlation_id"] = json!("Ada Lovelace");
    if let Err(error) = welcome.handle(named, 3_000).await {
        returned_errors.push(as_logged(&error));
    }

    // profile-creator: created, replayed, already edited, invalid, and
    // failing at each store.
    world.profiles.faults.fail("u-5", 1);
    world.bucket.faults.fail("profiles/u-6.json", 1);
    let pc_settings = settings(&[], profile_creator::Config::from_env);
    let creator =
        compose::profile_creator(world.profile_creator_wiring(&pc_settings), &pc_settings);
    creator.handle(ada_created.clone(), 3_000).await.unwrap();
    creator.handle(ada_created.clone(), 3_000).await.unwrap();
    // The user edits the profile; a late copy of the event, past its
    // idempotency record, must leave it alone.
    edit_profile(&world, "u-1", |p| p.bio = "edited".to_owned());
    compose::profile_creator(world.profile_creator_wiring(&pc_settings), &pc_settings)
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

    // The same use cases with the dead-letter queue accepting: what can
    // never succeed (invalid, conflicting, over the mail cap) is
    // dead-lettered with its reason instead of failing, and that path logs
    // too.
    compose::user_processor(world.user_processor_wiring(&up_settings), &up_settings)
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
    compose::notification_processor(
        world.notification_processor_wiring(&np_settings),
        &np_settings,
    )
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
    let capped_settings = settings(
        &[("MAIL_DAILY_CAP_PER_RECIPIENT", "1")],
        welcome_email::Config::from_env,
    );
    let capped = compose::welcome_email(
        world.welcome_email_wiring(&capped_settings),
        &capped_settings,
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
    // A profile the user edited before the event arrived is left alone.
    compose::profile_creator(world.profile_creator_wiring(&pc_settings), &pc_settings)
        .handle(
            user_created("u-8", "alan.turing@example.com", "Alan Turing"),
            3_000,
        )
        .await
        .unwrap();
    edit_profile(&world, "u-8", |p| {
        p.bio = "edited before the event".to_owned();
        p.document_written = false;
    });
    let late = compose::profile_creator(world.profile_creator_wiring(&pc_settings), &pc_settings);
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
