//! notification-processor: NotificationQueue → mail transport.
//!
//! For each SQS record: parse the notification, read its user (consistent
//! read), render the email for its kind and hand it to the mailer. The email
//! carries the notification's deterministic id and is sent at most once
//! *ever*: its sent marker (`mail-sent#<notification_id>`, crate::mail) is
//! its own lock and fact. Three round trips in the common case: the
//! marker's create-if-absent, the user read and the quota slot of the
//! mailbox key the notification carries, all at once; the send; `sent`
//! recorded under the lock. A notification without a mailbox key (an older
//! producer), or one whose key is not its user's, takes its slot after the
//! read (one more round trip). Each mailbox gets at most
//! `MAIL_DAILY_CAP_PER_RECIPIENT` emails a day. Records that can never
//! succeed (invalid notification, payload conflict, mailbox over quota) are
//! dead-lettered at once with their reason.

use crate::mail::{release, send_held, settle_marker, Delivery, MailConfig, Marker};
use crate::ports::{Clock, MailLedger, Mailer, UserStore};
use crate::{Error, Invocation};
use eventline_domain::{email, Notification};
use eventline_powertools::batch::{BatchError, BatchProcessor, BatchReport, Message};
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{payload_hash, Window};
use eventline_powertools::item_lock::ItemLock;
use std::num::NonZeroUsize;
use std::time::Duration;

/// Settings: `USERS_TABLE`, the mail settings ([`MailConfig`]),
/// `NOTIFICATION_DLQ_URL` and optional `BATCH_CONCURRENCY` (records
/// processed at once, default 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of users.
    pub users_table: String,
    /// How mail is sent.
    pub mail: MailConfig,
    /// Where records that can never succeed go, with their reason.
    pub dead_letter_queue_url: String,
    /// Records processed at once.
    pub concurrency: NonZeroUsize,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            users_table: env.required("USERS_TABLE"),
            mail: MailConfig::from_env(env),
            dead_letter_queue_url: env.required("NOTIFICATION_DLQ_URL"),
            concurrency: env.parsed_or("BATCH_CONCURRENCY", crate::DEFAULT_CONCURRENCY),
        }
    }
}

/// The function's name (its dead letters say it).
pub const FUNCTION: &str = "notification-processor";

/// The ports notification-processor drives.
pub struct Ports<U, M, L, C> {
    /// The UsersTable.
    pub users: U,
    /// The mail transport.
    pub mailer: M,
    /// Sent markers (each mail's lock) and mailbox quotas.
    pub ledger: L,
    /// The time.
    pub clock: C,
}

/// The notification-processor use case.
pub struct NotificationProcessor<U, M, L, C> {
    ports: Ports<U, M, L, C>,
    batch: BatchProcessor,
    daily_cap: u32,
    timeout: Duration,
}

impl<U: UserStore, M: Mailer, L: MailLedger, C: Clock> NotificationProcessor<U, M, L, C> {
    /// Wires the use case to its ports; `daily_cap` emails per mailbox per
    /// day; `timeout` is the function's (used when the deadline is unknown).
    pub fn new(
        ports: Ports<U, M, L, C>,
        batch: BatchProcessor,
        daily_cap: u32,
        timeout: Duration,
    ) -> Self {
        Self {
            ports,
            batch,
            daily_cap,
            timeout,
        }
    }

    /// Handles one batch of notification messages and reports every
    /// record's outcome. `deadline_ms` is the invocation's deadline (Unix ms).
    pub async fn handle(
        &self,
        messages: Vec<Message>,
        deadline_ms: u64,
    ) -> Result<BatchReport, BatchError> {
        let invocation = Invocation::start(&self.ports.clock, deadline_ms, self.timeout);
        self.batch
            .process(messages, invocation.deadline, |record| {
                self.process_record(record, invocation)
            })
            .await
    }

    /// Handles one record, delivering its notification at most once.
    async fn process_record(&self, record: Message, invocation: Invocation) -> Result<(), Error> {
        let body = record.body.as_deref().ok_or(Error::NoBody)?;
        let notification = Notification::parse(body)?;
        let delivery = self.deliver(&notification, invocation.window).await?;
        let id = &notification.notification_id;
        match delivery {
            Delivery::AlreadySent => {
                tracing::info!(notification_id = %id, "duplicate notification; already delivered");
            }
            Delivery::Sent => tracing::info!(
                user_id = %notification.user_id,
                notification_id = %id,
                "notification delivered"
            ),
        }
        Ok(())
    }

    async fn deliver(&self, n: &Notification, window: Window) -> Result<Delivery, Error> {
        let (ports, id) = (&self.ports, n.notification_id.as_str());
        // The mailbox key is a hint, not part of the notification's identity.
        let hash = payload_hash([id, n.user_id.as_str(), n.kind.as_str()]);
        let lock = ItemLock::new(window);
        let now = ports.clock.now();
        let day = now.utc_date();
        let hinted_slot = async {
            match &n.mailbox {
                Some(mailbox) => Some(
                    ports
                        .ledger
                        .take_slot(mailbox, id, &day, self.daily_cap)
                        .await,
                ),
                None => None,
            }
        };
        // One round trip: the marker, the user and (with a key) the slot.
        let (claim, user, hinted_slot) = futures::join!(
            ports.ledger.lock(id, &hash, &lock),
            ports.users.get(&n.user_id),
            hinted_slot,
        );
        let lock =
            match settle_marker(&ports.ledger, id, &hash, lock, claim, now.unix_millis()).await? {
                Marker::AlreadySent => return Ok(Delivery::AlreadySent),
                Marker::Held(lock) => lock,
            };
        let user = match user {
            Ok(Some(user)) => user,
            failed => {
                release(&ports.ledger, id, &lock).await;
                return Err(match failed {
                    Err(e) => e.into(),
                    _ => Error::UnknownUser(n.user_id.clone()),
                });
            }
        };
        let mailbox = user.email.mailbox_key();
        let slot = match hinted_slot {
            Some(slot) if n.mailbox.as_ref() == Some(&mailbox) => slot,
            hinted => {
                if hinted.is_some() {
                    // Its slot went to another key: that key's loss, not the cap's.
                    tracing::warn!(notification_id = %id, "the notification's mailbox key is not its user's; counting the user's");
                }
                ports
                    .ledger
                    .take_slot(&mailbox, id, &day, self.daily_cap)
                    .await
            }
        };
        send_held(
            &ports.mailer,
            &ports.ledger,
            &email::notification(n, &user),
            lock,
            slot,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{
        FixedClock, MemoryDeadLetters, MemoryMailLedger, MemoryMailer, MemoryUserStore,
    };
    use crate::ports::MailMarker;
    use crate::round_trips::{Trace, Traced};
    use eventline_domain::{EmailAddress, NotificationKind, Signup, Timestamp, User, UserId};
    use eventline_powertools::batch::RecordOutcome;
    use std::sync::Arc;
    use std::time::Duration;

    /// The notification for `user`, as a producer without mailbox keys sends it.
    fn notification(user: &str) -> String {
        Notification::new(
            UserId::parse(user).unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_json()
    }

    /// The notification for `user`, carrying the key of `address`'s mailbox
    /// (as user-processor sends it, for the user's own address).
    fn notification_to(user: &str, address: &str) -> String {
        Notification::new(
            UserId::parse(user).unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_mailbox(EmailAddress::parse(address).unwrap().mailbox_key())
        .to_json()
    }

    type Processor = NotificationProcessor<
        Traced<Arc<MemoryUserStore>>,
        Traced<Arc<MemoryMailer>>,
        Traced<Arc<MemoryMailLedger>>,
        FixedClock,
    >;

    /// What every processor of a test shares: users u1, u2, u3 at `a@b.io`
    /// (the daily cap counts per mailbox), mail, and the call log.
    struct World {
        users: Arc<MemoryUserStore>,
        mailer: Arc<MemoryMailer>,
        ledger: Arc<MemoryMailLedger>,
        dead_letters: Arc<MemoryDeadLetters>,
        trace: Trace,
    }

    impl World {
        fn new() -> Self {
            let world = Self {
                users: Arc::default(),
                mailer: Arc::default(),
                ledger: Arc::default(),
                dead_letters: Arc::default(),
                trace: Trace::default(),
            };
            for id in ["u1", "u2", "u3"] {
                world.add_user(id, "a@b.io");
            }
            world
        }

        fn add_user(&self, id: &str, email: &str) {
            let body = format!(r#"{{"user_id":"{id}","email":"{email}","name":"Ada"}}"#);
            let signup = Signup::parse(&body).unwrap();
            self.users.seed(
                User::from_signup(signup, Timestamp::from_unix_millis(0)),
                None,
            );
        }

        /// A processor at `now` (cap 2), dead-lettering into the world.
        fn processor(&self, now: u64) -> Processor {
            NotificationProcessor::new(
                Ports {
                    users: self.trace.wrap(self.users.clone()),
                    mailer: self.trace.wrap(self.mailer.clone()),
                    ledger: self.trace.wrap(self.ledger.clone()),
                    clock: FixedClock(Timestamp::from_unix_millis(now)),
                },
                BatchProcessor::new().with_dead_letters(self.dead_letters.clone()),
                2,
                Duration::from_secs(3),
            )
        }

        async fn handle(&self, now: u64, messages: Vec<Message>) -> BatchReport {
            self.processor(now)
                .handle(messages, now + 3_000)
                .await
                .unwrap()
        }

        fn dead_letter_codes(&self) -> Vec<(String, &'static str)> {
            self.dead_letters
                .letters()
                .iter()
                .map(|l| (l.source_message_id.clone(), l.reason.code))
                .collect()
        }
    }

    fn hash_of(user: &str) -> String {
        let id = format!("signup_confirmation.{user}");
        payload_hash([id.as_str(), user, "signup_confirmation"])
    }

    #[tokio::test]
    async fn delivers_known_users_and_fails_unknown_ones_alone() {
        let world = World::new();
        let response = world
            .handle(
                1,
                vec![
                    Message::new("m1", notification("u1")),
                    Message::new("m2", notification("ghost")),
                    Message::new("m3", r#"{"kind":"signup_confirmation"}"#),
                ],
            )
            .await;
        assert_eq!(response.unhandled(), ["m2"]);
        assert_eq!(
            world.dead_letter_codes(),
            [("m3".to_owned(), "InvalidFields")]
        );
        let sent = world.mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].message_id, "signup_confirmation.u1");
        assert_eq!(sent[0].to.as_str(), "a@b.io");
        // The unknown user's mail lock was given up for its retry, and no
        // marker is left behind for a user that may never exist.
        assert_eq!(world.ledger.marker("signup_confirmation.ghost"), None);
    }

    #[tokio::test]
    async fn with_a_mailbox_key_the_common_case_is_three_round_trips() {
        let world = World::new();
        let report = world
            .handle(1, vec![Message::new("m1", notification_to("u1", "a@b.io"))])
            .await;
        assert!(report.unhandled().is_empty());
        assert_eq!(
            world.trace.round_trips(),
            [
                vec!["ledger.lock", "ledger.take_slot", "users.get"],
                vec!["mailer.send"],
                vec!["ledger.record_sent"],
            ]
        );
        assert_eq!(world.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn without_a_mailbox_key_the_slot_waits_for_the_user() {
        let world = World::new();
        world
            .handle(1, vec![Message::new("m1", notification("u1"))])
            .await;
        assert_eq!(
            world.trace.round_trips(),
            [
                vec!["ledger.lock", "users.get"],
                vec!["ledger.take_slot"],
                vec!["mailer.send"],
                vec!["ledger.record_sent"],
            ]
        );
    }

    #[tokio::test]
    async fn a_mailbox_key_that_is_not_the_users_never_escapes_the_cap() {
        let world = World::new();
        let mut messages = Vec::new();
        for (i, user) in ["u1", "u2", "u3"].into_iter().enumerate() {
            // Each forged to another mailbox than the users' shared one.
            let forged = notification_to(user, &format!("someone{i}@else.io"));
            messages.push(Message::new(format!("m-{user}"), forged));
        }
        world.handle(1, messages).await;
        assert_eq!(world.mailer.sent().len(), 2, "the cap is 2 per mailbox");
        let codes = world.dead_letter_codes();
        assert_eq!(codes.len(), 1, "{codes:?}");
        assert_eq!(codes[0].1, "RecipientQuotaExceeded");
        let mailbox = EmailAddress::parse("a@b.io").unwrap().mailbox_key();
        assert_eq!(world.ledger.slots(&mailbox, "1970-01-01").len(), 2);
    }

    #[tokio::test]
    async fn a_notification_delivered_twice_is_sent_once() {
        let world = World::new();
        for message_id in ["m1", "m1-redelivered"] {
            let response = world
                .handle(1, vec![Message::new(message_id, notification("u1"))])
                .await;
            assert!(response.unhandled().is_empty());
        }
        assert_eq!(world.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_redrive_days_later_sends_nothing_again() {
        let world = World::new();
        world
            .handle(1, vec![Message::new("m1", notification("u1"))])
            .await;
        // Three days later the DLQ is redriven.
        let later = 3 * 86_400_000;
        let response = world
            .handle(later, vec![Message::new("m1-redriven", notification("u1"))])
            .await;
        assert!(response.unhandled().is_empty());
        assert_eq!(world.mailer.sent().len(), 1);
        assert!(world.ledger.is_sent("signup_confirmation.u1"));
    }

    #[tokio::test]
    async fn a_copy_in_progress_elsewhere_is_deferred_and_a_conflict_dead_lettered() {
        let world = World::new();
        let theirs = ItemLock {
            attempt: "another-attempt".into(),
            until_ms: 60_000,
        };
        world.ledger.seed(
            "signup_confirmation.u1",
            MailMarker {
                payload_hash: Some(hash_of("u1")),
                sent: false,
            },
            Some(theirs.clone()),
        );
        world.ledger.seed(
            "signup_confirmation.u2",
            MailMarker {
                payload_hash: Some("another payload".into()),
                sent: false,
            },
            None,
        );
        let report = world
            .handle(
                1,
                vec![
                    Message::new("m1", notification("u1")),
                    Message::new("m2", notification("u2")),
                ],
            )
            .await;
        assert!(
            matches!(&report.records[0].1, RecordOutcome::Deferred(_)),
            "{report:?}"
        );
        assert_eq!(
            report.records[1].1,
            RecordOutcome::DeadLettered("PayloadConflict")
        );
        assert!(world.mailer.sent().is_empty());
        let u1 = world.ledger.marker("signup_confirmation.u1").unwrap();
        assert_eq!(u1.lock, Some(theirs));
    }

    #[tokio::test]
    async fn invalid_records_and_mailboxes_over_quota_are_dead_lettered_not_retried() {
        let world = World::new();
        world.add_user("u4", "victim+1@x.io");
        world.add_user("u5", "victim+2@x.io");
        world.add_user("u6", "VICTIM+3@x.io");
        let response = world
            .handle(
                1,
                vec![
                    Message::new("m1", notification_to("u4", "victim+1@x.io")),
                    Message::new("m2", notification("u5")),
                    Message::new("m3", r#"{"kind":"signup_confirmation"}"#),
                    Message::new("m4", notification_to("u6", "VICTIM+3@x.io")),
                ],
            )
            .await;
        let codes = world.dead_letter_codes();
        assert_eq!(world.mailer.sent().len(), 2, "the cap is 2 emails a day");
        assert!(
            codes.contains(&("m3".to_owned(), "InvalidFields")),
            "{codes:?}"
        );
        assert_eq!(
            codes
                .iter()
                .filter(|(_, c)| *c == "RecipientQuotaExceeded")
                .count(),
            1,
            "{codes:?}"
        );
        assert!(
            response.unhandled().is_empty(),
            "all handled: sent or dead-lettered"
        );
    }
}
