//! notification-processor: NotificationQueue → mail transport.
//!
//! For each SQS record: parse the notification, read its user (consistent
//! read), render the email for its kind and hand it to the mailer. The email
//! carries the notification's deterministic id, so a re-delivered
//! notification produces the same message id and the transport dedupes it.

use crate::mail::MailConfig;
use crate::ports::{Mailer, UserStore};
use crate::Error;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use eventline_domain::{email, Notification};
use eventline_powertools::batch::{BatchError, BatchProcessor};
use eventline_powertools::env::Env;
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

/// The notification-processor use case.
pub struct NotificationProcessor<U, M> {
    users: U,
    mailer: M,
    batch: BatchProcessor,
}

impl<U: UserStore, M: Mailer> NotificationProcessor<U, M> {
    /// Wires the use case to its ports.
    pub fn new(users: U, mailer: M, batch: BatchProcessor) -> Self {
        Self {
            users,
            mailer,
            batch,
        }
    }

    /// Handles one SQS event; failed records are listed in the response.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, BatchError> {
        self.batch
            .process(event, |record| self.process(record))
            .await
    }

    /// Handles one record.
    pub async fn process(&self, record: SqsMessage) -> Result<(), Error> {
        let body = record.body.as_deref().ok_or(Error::NoBody)?;
        let notification = Notification::parse(body)?;
        let user = self
            .users
            .get(&notification.user_id)
            .await?
            .ok_or_else(|| Error::UnknownUser(notification.user_id.clone()))?;
        self.mailer
            .send(&email::notification(&notification, &user))
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
    use crate::memory::{MemoryMailer, MemoryUserStore};
    use eventline_domain::{NotificationKind, Signup, Timestamp, User, UserId};
    use std::sync::Arc;

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

    #[tokio::test]
    async fn delivers_known_users_and_fails_unknown_ones_alone() {
        let users = Arc::new(MemoryUserStore::default());
        let signup = Signup::parse(r#"{"user_id":"u1","email":"a@b.io","name":"Ada"}"#).unwrap();
        users
            .insert(&User::from_signup(signup, Timestamp::from_unix_millis(0)))
            .await
            .unwrap();
        let mailer = Arc::new(MemoryMailer::default());
        let processor = NotificationProcessor::new(users, mailer.clone(), BatchProcessor::new());
        let mut e = SqsEvent::default();
        e.records = vec![
            record("m1", &notification("u1")),
            record("m2", &notification("ghost")),
            record("m3", r#"{"kind":"signup_confirmation"}"#),
        ];
        let response = processor.handle(e).await.unwrap();
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
}
