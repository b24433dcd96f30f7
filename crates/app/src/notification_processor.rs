//! notification-processor: NotificationQueue → mail transport.
//!
//! For each SQS record: parse the notification, read its user (consistent
//! read), render the email for its kind and hand it to the mailer. The email
//! carries the notification's deterministic id, and is sent at most once
//! *ever*: the idempotency record settles concurrent duplicates, and the mail
//! ledger's durable sent marker settles duplicates of any age (a DLQ redrive
//! days later). Each recipient gets at most `MAIL_DAILY_CAP_PER_RECIPIENT`
//! emails a day. Records that can never succeed (invalid notification,
//! recipient over quota) are dead-lettered at once with their reason.

use crate::mail::{deliver_once, Delivery, MailConfig};
use crate::ports::{Clock, MailLedger, Mailer, UserStore};
use crate::{Error, Invocation};
use eventline_domain::{email, Notification};
use eventline_powertools::batch::{BatchError, BatchProcessor, BatchReport, Message};
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{payload_hash, Idempotency, IdempotencyStore};
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

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "notification-processor";

/// The ports notification-processor drives.
pub struct Ports<U, M, L, C, I> {
    /// The UsersTable.
    pub users: U,
    /// The mail transport.
    pub mailer: M,
    /// Sent markers and recipient quotas.
    pub ledger: L,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
}

/// The notification-processor use case.
pub struct NotificationProcessor<U, M, L, C, I> {
    ports: Ports<U, M, L, C, I>,
    batch: BatchProcessor,
    daily_cap: u32,
    timeout: Duration,
}

impl<U: UserStore, M: Mailer, L: MailLedger, C: Clock, I: IdempotencyStore>
    NotificationProcessor<U, M, L, C, I>
{
    /// Wires the use case to its ports; `daily_cap` emails per recipient per
    /// day; `timeout` is the function's (used when the deadline is unknown).
    pub fn new(
        ports: Ports<U, M, L, C, I>,
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
        let hash = payload_hash([
            notification.notification_id.as_str(),
            notification.user_id.as_str(),
            notification.kind.as_str(),
        ]);
        let delivery = self
            .ports
            .idempotency
            .once(
                &notification.notification_id,
                hash,
                invocation.window,
                invocation.deadline,
                || self.deliver(&notification),
            )
            .await?;
        if delivery.is_replay() || delivery.into_inner() == Delivery::AlreadySent {
            tracing::info!(notification_id = %notification.notification_id, "duplicate notification; already delivered");
        }
        Ok(())
    }

    async fn deliver(&self, notification: &Notification) -> Result<Delivery, Error> {
        let user = self
            .ports
            .users
            .get(&notification.user_id)
            .await?
            .ok_or_else(|| Error::UnknownUser(notification.user_id.clone()))?;
        let delivery = deliver_once(
            &self.ports.mailer,
            &self.ports.ledger,
            &email::notification(notification, &user),
            self.ports.clock.now(),
            self.daily_cap,
        )
        .await?;
        if delivery == Delivery::Sent {
            tracing::info!(
                user_id = %notification.user_id,
                notification_id = %notification.notification_id,
                "notification delivered"
            );
        }
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{
        FixedClock, MemoryDeadLetters, MemoryMailLedger, MemoryMailer, MemoryUserStore,
    };
    use eventline_domain::{NotificationKind, Signup, Timestamp, User, UserId};
    use eventline_powertools::idempotency::MemoryStore;
    use std::sync::Arc;
    use std::time::Duration;

    fn notification(user: &str) -> String {
        Notification::new(
            UserId::parse(user).unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_json()
    }

    type Processor = NotificationProcessor<
        Arc<MemoryUserStore>,
        Arc<MemoryMailer>,
        Arc<MemoryMailLedger>,
        FixedClock,
        Arc<MemoryStore>,
    >;

    async fn fixture() -> (Arc<MemoryMailer>, Processor) {
        fixture_with(BatchProcessor::new(), Arc::default(), 0).await
    }

    async fn fixture_with(
        batch: BatchProcessor,
        ledger: Arc<MemoryMailLedger>,
        now: u64,
    ) -> (Arc<MemoryMailer>, Processor) {
        let users = Arc::new(MemoryUserStore::default());
        // Three users sharing one address: the daily cap counts per recipient.
        for id in ["u1", "u2", "u3"] {
            let body = format!(r#"{{"user_id":"{id}","email":"a@b.io","name":"Ada"}}"#);
            let signup = Signup::parse(&body).unwrap();
            users.seed(
                User::from_signup(signup, Timestamp::from_unix_millis(0)),
                None,
            );
        }
        let mailer = Arc::new(MemoryMailer::default());
        let processor = NotificationProcessor::new(
            Ports {
                users,
                mailer: mailer.clone(),
                ledger,
                clock: FixedClock(Timestamp::from_unix_millis(now + 1)),
                // A fresh store per fixture: as if earlier records had expired.
                idempotency: Idempotency::new(
                    Arc::new(MemoryStore::default()),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
            },
            batch,
            2,
            Duration::from_secs(3),
        );
        (mailer, processor)
    }

    #[tokio::test]
    async fn delivers_known_users_and_fails_unknown_ones_alone() {
        let (mailer, processor) = fixture().await;
        let response = processor
            .handle(
                vec![
                    Message::new("m1", notification("u1")),
                    Message::new("m2", notification("ghost")),
                    Message::new("m3", r#"{"kind":"signup_confirmation"}"#),
                ],
                3_000,
            )
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["m2", "m3"]);
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].message_id, "signup_confirmation.u1");
        assert_eq!(sent[0].to.as_str(), "a@b.io");
    }

    #[tokio::test]
    async fn a_notification_delivered_twice_is_sent_once() {
        let (mailer, processor) = fixture().await;
        for message_id in ["m1", "m1-redelivered"] {
            let response = processor
                .handle(vec![Message::new(message_id, notification("u1"))], 3_000)
                .await
                .unwrap();
            assert!(response.unhandled().is_empty());
        }
        assert_eq!(mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_redrive_days_later_sends_nothing_again() {
        let ledger = Arc::new(MemoryMailLedger::default());
        let (mailer, processor) = fixture_with(BatchProcessor::new(), ledger.clone(), 0).await;
        processor
            .handle(vec![Message::new("m1", notification("u1"))], 3_000)
            .await
            .unwrap();
        // Three days later, every idempotency record gone, the DLQ is redriven.
        let later = 3 * 86_400_000;
        let (late_mailer, late) = fixture_with(BatchProcessor::new(), ledger.clone(), later).await;
        let response = late
            .handle(
                vec![Message::new("m1-redriven", notification("u1"))],
                later + 3_000,
            )
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
        assert_eq!((mailer.sent().len(), late_mailer.sent().len()), (1, 0));
        assert!(ledger.is_sent("signup_confirmation.u1"));
    }

    #[tokio::test]
    async fn invalid_records_and_recipients_over_quota_are_dead_lettered_not_retried() {
        let sink = Arc::new(MemoryDeadLetters::default());
        let (mailer, processor) = fixture_with(
            BatchProcessor::new().with_dead_letters(sink.clone()),
            Arc::default(),
            0,
        )
        .await;
        let response = processor
            .handle(
                vec![
                    Message::new("m1", notification("u1")),
                    Message::new("m2", notification("u2")),
                    Message::new("m3", r#"{"kind":"signup_confirmation"}"#),
                    Message::new("m4", notification("u3")),
                ],
                3_000,
            )
            .await
            .unwrap();
        let codes: Vec<_> = sink
            .letters()
            .iter()
            .map(|l| (l.source_message_id.clone(), l.reason.code))
            .collect();
        assert_eq!(mailer.sent().len(), 2, "the cap is 2 emails a day");
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
