//! welcome-email: EventBridge `User Created` → welcome email.
//!
//! The email's id is `welcome.<user_id>`. It is sent at most once *ever*:
//! its sent marker (`mail-sent#welcome.<user_id>`, crate::mail) is its own
//! lock and fact. Three round trips in the common case: the marker's
//! create-if-absent beside the mailbox's quota slot, the send, then `sent`
//! recorded under the lock. A duplicate of any age finds the marker sent
//! and sends nothing; one whose first copy is still being sent is in
//! progress; a different payload is a conflict. Each mailbox gets at most
//! `MAIL_DAILY_CAP_PER_RECIPIENT` emails a day. Anything that can never
//! succeed (wrong event, invalid detail, payload conflict, mailbox over
//! quota) is dead-lettered with its reason; transient failures are errors,
//! so Lambda's async-invoke retries take over.

use crate::mail::{send_held, settle_marker, Delivery, MailConfig, Marker};
use crate::ports::{Clock, MailLedger, Mailer};
use crate::user_created::{detail_hash, on_user_created};
use crate::{Error, Invocation};
use eventline_domain::{email, UserCreated};
use eventline_powertools::batch::DeadLetterSink;
use eventline_powertools::env::Env;
use eventline_powertools::item_lock::ItemLock;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Settings: the mail settings ([`MailConfig`]) and `WELCOME_EMAIL_DLQ_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How mail is sent.
    pub mail: MailConfig,
    /// Where events that can never succeed go, with their reason.
    pub dead_letter_queue_url: String,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            mail: MailConfig::from_env(env),
            dead_letter_queue_url: env.required("WELCOME_EMAIL_DLQ_URL"),
        }
    }
}

/// The function's name (its dead letters say it).
pub const FUNCTION: &str = "welcome-email";

/// The ports welcome-email drives.
pub struct Ports<M, L, C> {
    /// The mail transport.
    pub mailer: M,
    /// Sent markers (each mail's lock) and mailbox quotas.
    pub ledger: L,
    /// The time.
    pub clock: C,
}

/// The welcome-email use case.
pub struct WelcomeEmail<M, L, C> {
    ports: Ports<M, L, C>,
    /// Where events that can never succeed go (none: they are errors).
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    daily_cap: u32,
    timeout: Duration,
}

impl<M: Mailer, L: MailLedger, C: Clock> WelcomeEmail<M, L, C> {
    /// Wires the use case to its ports and its failure queue (none: events
    /// that can never succeed are errors); `daily_cap` emails per mailbox
    /// per day; `timeout` is the function's (used when the deadline is
    /// unknown).
    pub fn new(
        ports: Ports<M, L, C>,
        dead_letters: Option<Arc<dyn DeadLetterSink>>,
        daily_cap: u32,
        timeout: Duration,
    ) -> Self {
        Self {
            ports,
            dead_letters,
            daily_cap,
            timeout,
        }
    }

    /// Handles one EventBridge event (raw payload).
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<(), Error> {
        let invocation = Invocation::start(&self.ports.clock, deadline_ms, self.timeout);
        on_user_created(payload, invocation, self.dead_letters.as_deref(), |event| {
            self.send_welcome(event, invocation)
        })
        .await
    }

    async fn send_welcome(&self, event: UserCreated, invocation: Invocation) -> Result<(), Error> {
        let welcome = email::welcome(&event);
        let (ports, id) = (&self.ports, welcome.message_id.as_str());
        let hash = detail_hash(&event);
        let lock = ItemLock::new(invocation.window);
        let (now, mailbox) = (ports.clock.now(), event.email.mailbox_key());
        let day = now.utc_date();
        // One round trip: the marker and the slot. A slot taken for a mail
        // that turns out sent or in progress is this id's anyway.
        let (claim, slot) = futures::join!(
            ports.ledger.lock(id, &hash, &lock),
            ports.ledger.take_slot(&mailbox, id, &day, self.daily_cap),
        );
        let delivery =
            match settle_marker(&ports.ledger, id, &hash, lock, claim, now.unix_millis()).await? {
                Marker::AlreadySent => Delivery::AlreadySent,
                Marker::Held(lock) => {
                    send_held(&ports.mailer, &ports.ledger, &welcome, lock, slot).await?
                }
            };
        match delivery {
            Delivery::AlreadySent => {
                tracing::info!(user_id = %event.user_id, "duplicate event; welcome email already sent");
            }
            Delivery::Sent => tracing::info!(user_id = %event.user_id, "welcome email sent"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryDeadLetters, MemoryMailLedger, MemoryMailer};
    use crate::ports::MailMarker;
    use crate::round_trips::{Trace, Traced};
    use eventline_domain::{EmailAddress, Timestamp};
    use eventline_powertools::batch::{Disposition, RecordError};
    use serde_json::json;

    type Handler =
        WelcomeEmail<Traced<Arc<MemoryMailer>>, Traced<Arc<MemoryMailLedger>>, FixedClock>;

    /// The mail world: what every handler of a test shares.
    #[derive(Default)]
    struct World {
        mailer: Arc<MemoryMailer>,
        ledger: Arc<MemoryMailLedger>,
        dead_letters: Arc<MemoryDeadLetters>,
        trace: Trace,
    }

    impl World {
        /// A handler at `now` (cap 2), without a dead-letter queue.
        fn handler(&self, now: u64) -> Handler {
            WelcomeEmail::new(
                Ports {
                    mailer: self.trace.wrap(self.mailer.clone()),
                    ledger: self.trace.wrap(self.ledger.clone()),
                    clock: FixedClock(Timestamp::from_unix_millis(now)),
                },
                None,
                2,
                Duration::from_secs(3),
            )
        }

        fn handler_with_dead_letters(&self, now: u64) -> Handler {
            let mut handler = self.handler(now);
            handler.dead_letters = Some(self.dead_letters.clone());
            handler
        }
    }

    fn event(id: &str, detail_type: &str, detail: Value) -> Value {
        json!({"version":"0","id":id,"detail-type":detail_type,"source":"user.service",
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1",
               "resources":[],"detail":detail})
    }

    fn detail() -> Value {
        json!({"user_id":"u1","email":"a@b.io","name":"Ada <3","created_at":"2026-11-27T09:24:26.123Z"})
    }

    /// The payload hash welcome-email gives [`detail`].
    fn hash_of(detail: &Value) -> String {
        detail_hash(&UserCreated::from_detail(detail).unwrap())
    }

    fn foreign_lock(until_ms: u64) -> ItemLock {
        ItemLock {
            attempt: "another-attempt".into(),
            until_ms,
        }
    }

    #[tokio::test]
    async fn sends_one_welcome_email_per_user_however_often_the_event_comes() {
        let world = World::default();
        let handler = world.handler(1);
        handler
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        handler
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        handler
            .handle(event("e-2-republished", "User Created", detail()), 3_000)
            .await
            .unwrap();
        let sent = world.mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].message_id, "welcome.u1");
        assert!(sent[0].html.contains("Ada &lt;3"));
        assert!(world.ledger.is_sent("welcome.u1"));
    }

    #[tokio::test]
    async fn the_common_case_is_three_round_trips_with_the_marker_and_the_slot_together() {
        let world = World::default();
        world
            .handler(1)
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        assert_eq!(
            world.trace.round_trips(),
            [
                vec!["ledger.lock", "ledger.take_slot"],
                vec!["mailer.send"],
                vec!["ledger.record_sent"],
            ]
        );
        // A duplicate: one round trip, nothing sent.
        world.trace.clear();
        world
            .handler(2)
            .handle(event("e-2", "User Created", detail()), 3_000)
            .await
            .unwrap();
        assert_eq!(
            world.trace.round_trips(),
            [vec!["ledger.lock", "ledger.take_slot"]]
        );
        assert_eq!(world.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn wrong_detail_type_and_bad_detail_are_errors() {
        let world = World::default();
        let handler = world.handler(1);
        let err = handler
            .handle(event("e-1", "User Deleted", detail()), 3_000)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Envelope(_)), "{err}");
        let bad =
            json!({"user_id":"u1","email":"x","name":"A","created_at":"2026-11-27T09:24:26Z"});
        let err = handler
            .handle(event("e-2", "User Created", bad), 3_000)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "email: not a valid address");
        assert!(world.mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn transport_failure_is_an_error_and_the_retry_sends_at_once() {
        let world = World::default();
        world.mailer.faults.fail("welcome.u1", 1);
        let handler = world.handler(1);
        let first = handler
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await;
        assert!(matches!(first, Err(Error::Port(_))), "{first:?}");
        // Nothing was sent, so the lock was given up with its unsent marker:
        // no wait for it to lapse.
        assert_eq!(world.ledger.marker("welcome.u1"), None);
        handler
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        assert_eq!(world.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_duplicate_long_after_the_first_sends_no_second_email() {
        let world = World::default();
        world
            .handler(1)
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        // Two days later the event is redriven.
        let later = 2 * 86_400_000;
        world
            .handler(later)
            .handle(event("e-1", "User Created", detail()), later + 3_000)
            .await
            .unwrap();
        assert_eq!(world.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_marker_of_the_old_layout_says_sent() {
        let world = World::default();
        // `{id, sent: true}`: no payload hash, no lock.
        world.ledger.seed(
            "welcome.u1",
            MailMarker {
                payload_hash: None,
                sent: true,
            },
            None,
        );
        world
            .handler(1)
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        assert!(world.mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn a_copy_whose_first_is_still_being_sent_is_in_progress_and_sends_nothing() {
        let world = World::default();
        world.ledger.seed(
            "welcome.u1",
            MailMarker {
                payload_hash: Some(hash_of(&detail())),
                sent: false,
            },
            Some(foreign_lock(5_000)),
        );
        let err = world
            .handler_with_dead_letters(1_000)
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "InProgress");
        assert_eq!(err.disposition(), Disposition::Expected);
        assert!(world.mailer.sent().is_empty());
        assert!(world.dead_letters.letters().is_empty());
        assert_eq!(
            world.ledger.marker("welcome.u1").unwrap().lock,
            Some(foreign_lock(5_000)),
            "a live lock is someone else's"
        );
    }

    #[tokio::test]
    async fn a_lapsed_attempt_is_taken_over_and_its_email_sent_once() {
        let world = World::default();
        world.ledger.seed(
            "welcome.u1",
            MailMarker {
                payload_hash: Some(hash_of(&detail())),
                sent: false,
            },
            Some(foreign_lock(500)),
        );
        world
            .handler(1_000)
            .handle(event("e-1", "User Created", detail()), 4_000)
            .await
            .unwrap();
        assert_eq!(world.mailer.sent().len(), 1);
        assert!(world.ledger.is_sent("welcome.u1"));
        assert_eq!(
            world.trace.round_trips(),
            [
                vec!["ledger.lock", "ledger.take_slot"],
                vec!["ledger.take_over"],
                vec!["mailer.send"],
                vec!["ledger.record_sent"],
            ]
        );
    }

    #[tokio::test]
    async fn another_payload_under_a_used_message_id_is_dead_lettered_as_a_conflict() {
        let world = World::default();
        world.ledger.seed(
            "welcome.u1",
            MailMarker {
                payload_hash: Some("another payload".into()),
                sent: true,
            },
            None,
        );
        world
            .handler_with_dead_letters(1)
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        let letters = world.dead_letters.letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].reason.code, "PayloadConflict");
        assert!(world.mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn a_mailbox_over_its_daily_cap_gets_no_more_mail_whatever_its_tags() {
        let world = World::default();
        let handler = world.handler(1);
        let mut errors = Vec::new();
        for (user, email) in [
            ("u1", "victim+1@b.io"),
            ("u2", "victim+2@b.io"),
            ("u3", "Victim+3@B.io"),
        ] {
            let detail = json!({"user_id":user,"email":email,"name":"Ada"});
            if let Err(e) = handler
                .handle(event(user, "User Created", detail), 3_000)
                .await
            {
                errors.push(e.kind());
            }
        }
        let sent = world.mailer.sent();
        assert_eq!(sent.len(), 2, "the cap in this fixture is 2");
        assert_eq!(
            sent.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(),
            ["victim+1@b.io", "victim+2@b.io"],
            "delivery goes to the address as given"
        );
        assert_eq!(errors, ["RecipientQuotaExceeded"]);
        // The refused mail left no marker; only the mailbox's key is stored.
        assert_eq!(world.ledger.marker("welcome.u3"), None);
        let mailbox = EmailAddress::parse("victim@b.io").unwrap().mailbox_key();
        assert_eq!(
            world.ledger.slots(&mailbox, "1970-01-01"),
            ["welcome.u1", "welcome.u2"]
        );
    }
}
