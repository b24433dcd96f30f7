//! notification-processor: NotificationQueue → mail transport.
//!
//! For each SQS record: parse the notification, read its user (consistent
//! read), render the email for its kind and hand it to the mailer. The email
//! carries the notification's deterministic id, so a re-delivered
//! notification produces the same message id and the transport dedupes it.

use crate::mail::MailConfig;
use crate::ports::{Clock, Mailer, UserStore};
use crate::{window, Error};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use eventline_domain::{email, Notification};
use eventline_powertools::batch::{BatchError, BatchProcessor};
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{payload_hash, Idempotency, IdempotencyStore};
use std::num::NonZeroUsize;

/// Settings: `USERS_TABLE`, the mail settings ([`MailConfig`]) and optional
/// `BATCH_CONCURRENCY` (records processed at once, default 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of users.
    pub users_table: String,
    /// How mail is sent (`None` when the settings are invalid; see [`Env::finish`]).
    pub mail: Option<MailConfig>,
    /// Records processed at once.
    pub concurrency: NonZeroUsize,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            users_table: env.required("USERS_TABLE"),
            mail: MailConfig::from_env(env),
            concurrency: env.parsed_or("BATCH_CONCURRENCY", crate::DEFAULT_CONCURRENCY),
        }
    }
}

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "notification-processor";

/// The ports notification-processor drives.
pub struct Ports<U, M, C, I> {
    /// The UsersTable.
    pub users: U,
    /// The mail transport.
    pub mailer: M,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
}

/// The notification-processor use case.
pub struct NotificationProcessor<U, M, C, I> {
    ports: Ports<U, M, C, I>,
    batch: BatchProcessor,
}

impl<U: UserStore, M: Mailer, C: Clock, I: IdempotencyStore> NotificationProcessor<U, M, C, I> {
    /// Wires the use case to its ports.
    pub fn new(ports: Ports<U, M, C, I>, batch: BatchProcessor) -> Self {
        Self { ports, batch }
    }

    /// Handles one SQS event; failed records are listed in the response.
    /// `deadline_ms` is the invocation's deadline (Lambda context).
    pub async fn handle(
        &self,
        event: SqsEvent,
        deadline_ms: u64,
    ) -> Result<SqsBatchResponse, BatchError> {
        self.batch
            .process(event, |record| self.process(record, deadline_ms))
            .await
    }

    /// Handles one record, delivering each notification at most once.
    pub async fn process(&self, record: SqsMessage, deadline_ms: u64) -> Result<(), Error> {
        let body = record.body.as_deref().ok_or(Error::NoBody)?;
        let notification = Notification::parse(body)?;
        let hash = payload_hash([
            notification.notification_id.as_str(),
            notification.user_id.as_str(),
            notification.kind.as_str(),
        ]);
        let run = self
            .ports
            .idempotency
            .once(
                &notification.notification_id,
                hash,
                window(&self.ports.clock, deadline_ms),
                || self.deliver(&notification),
            )
            .await?;
        if run.is_replay() {
            tracing::info!(notification_id = %notification.notification_id, "duplicate notification; already delivered");
        }
        Ok(())
    }

    async fn deliver(&self, notification: &Notification) -> Result<(), Error> {
        let user = self
            .ports
            .users
            .get(&notification.user_id)
            .await?
            .ok_or_else(|| Error::UnknownUser(notification.user_id.clone()))?;
        self.ports
            .mailer
            .send(&email::notification(notification, &user))
            .await?;
        tracing::info!(
            user_id = %notification.user_id,
            notification_id = %notification.notification_id,
            "notification delivered"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryMailer, MemoryUserStore};
    use eventline_domain::{NotificationKind, Signup, Timestamp, User, UserId};
    use eventline_powertools::idempotency::MemoryStore;
    use std::sync::Arc;
    use std::time::Duration;

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.to_owned());
        r.body = Some(body.to_owned());
        r
    }

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
        FixedClock,
        Arc<MemoryStore>,
    >;

    async fn fixture() -> (Arc<MemoryMailer>, Processor) {
        let users = Arc::new(MemoryUserStore::default());
        let signup = Signup::parse(r#"{"user_id":"u1","email":"a@b.io","name":"Ada"}"#).unwrap();
        users
            .insert(&User::from_signup(signup, Timestamp::from_unix_millis(0)))
            .await
            .unwrap();
        let mailer = Arc::new(MemoryMailer::default());
        let processor = NotificationProcessor::new(
            Ports {
                users,
                mailer: mailer.clone(),
                clock: FixedClock(Timestamp::from_unix_millis(1)),
                idempotency: Idempotency::new(
                    Arc::new(MemoryStore::default()),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
            },
            BatchProcessor::new(),
        );
        (mailer, processor)
    }

    fn batch(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    #[tokio::test]
    async fn delivers_known_users_and_fails_unknown_ones_alone() {
        let (mailer, processor) = fixture().await;
        let response = processor
            .handle(
                batch(vec![
                    record("m1", &notification("u1")),
                    record("m2", &notification("ghost")),
                    record("m3", r#"{"kind":"signup_confirmation"}"#),
                ]),
                3_000,
            )
            .await
            .unwrap();
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m2", "m3"]);
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
                .handle(batch(vec![record(message_id, &notification("u1"))]), 3_000)
                .await
                .unwrap();
            assert!(response.batch_item_failures.is_empty());
        }
        assert_eq!(mailer.sent().len(), 1);
    }
}
