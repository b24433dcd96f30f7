//! welcome-email: EventBridge `User Created` → welcome email.
//!
//! The email's id is `welcome.<user_id>`. It is sent at most once *ever*:
//! the idempotency record settles concurrent duplicates, and the mail
//! ledger's durable sent marker under that id settles duplicates of any age
//! (a replay long after the idempotency window, a redriven event). Each
//! recipient gets at most `MAIL_DAILY_CAP_PER_RECIPIENT` emails a day.
//! Anything that can never succeed (wrong event, invalid detail, recipient
//! over quota) is dead-lettered with its reason; transient failures are
//! errors, so Lambda's async-invoke retries take over.

use crate::mail::{deliver_once, Delivery, MailConfig};
use crate::ports::{Clock, MailLedger, Mailer};
use crate::user_created::{detail_hash, on_user_created};
use crate::{Error, Invocation};
use eventline_domain::{email, UserCreated};
use eventline_powertools::batch::DeadLetterSink;
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{Idempotency, IdempotencyStore};
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

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "welcome-email";

/// The ports welcome-email drives.
pub struct Ports<M, L, C, I> {
    /// The mail transport.
    pub mailer: M,
    /// Sent markers and recipient quotas.
    pub ledger: L,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
    /// Where events that can never succeed go (none: they are errors).
    pub dead_letters: Option<Arc<dyn DeadLetterSink>>,
}

/// The welcome-email use case.
pub struct WelcomeEmail<M, L, C, I> {
    ports: Ports<M, L, C, I>,
    daily_cap: u32,
    timeout: Duration,
}

impl<M: Mailer, L: MailLedger, C: Clock, I: IdempotencyStore> WelcomeEmail<M, L, C, I> {
    /// Wires the use case to its ports; `daily_cap` emails per recipient per
    /// day; `timeout` is the function's (used when the deadline is unknown).
    pub fn new(ports: Ports<M, L, C, I>, daily_cap: u32, timeout: Duration) -> Self {
        Self {
            ports,
            daily_cap,
            timeout,
        }
    }

    /// Handles one EventBridge event (raw payload).
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<(), Error> {
        let invocation = Invocation::start(&self.ports.clock, deadline_ms, self.timeout);
        on_user_created(
            payload,
            invocation,
            self.ports.dead_letters.as_deref(),
            |event| self.send_welcome(event, invocation),
        )
        .await
    }

    async fn send_welcome(&self, event: UserCreated, invocation: Invocation) -> Result<(), Error> {
        let welcome = email::welcome(&event);
        let ports = &self.ports;
        let delivery = ports
            .idempotency
            .once(
                &welcome.message_id,
                detail_hash(&event),
                invocation.window,
                invocation.deadline,
                || {
                    deliver_once(
                        &ports.mailer,
                        &ports.ledger,
                        &welcome,
                        ports.clock.now(),
                        self.daily_cap,
                    )
                },
            )
            .await?;
        if delivery.is_replay() || delivery.into_inner() == Delivery::AlreadySent {
            tracing::info!(user_id = %event.user_id, "duplicate event; welcome email already sent");
        } else {
            tracing::info!(user_id = %event.user_id, "welcome email sent");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryMailLedger, MemoryMailer};
    use eventline_domain::Timestamp;
    use eventline_powertools::idempotency::MemoryStore;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    type Handler =
        WelcomeEmail<Arc<MemoryMailer>, Arc<MemoryMailLedger>, FixedClock, Arc<MemoryStore>>;

    fn handler(mailer: &Arc<MemoryMailer>) -> Handler {
        handler_at(mailer, &Arc::default(), 1)
    }

    /// A handler at `now` with a fresh idempotency store (as if every record
    /// had expired) over `ledger`.
    fn handler_at(mailer: &Arc<MemoryMailer>, ledger: &Arc<MemoryMailLedger>, now: u64) -> Handler {
        WelcomeEmail::new(
            Ports {
                mailer: mailer.clone(),
                ledger: ledger.clone(),
                clock: FixedClock(Timestamp::from_unix_millis(now)),
                idempotency: Idempotency::new(
                    Arc::new(MemoryStore::default()),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
                dead_letters: None,
            },
            2,
            Duration::from_secs(3),
        )
    }

    fn event(id: &str, detail_type: &str, detail: Value) -> Value {
        json!({"version":"0","id":id,"detail-type":detail_type,"source":"user.service",
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1",
               "resources":[],"detail":detail})
    }

    fn detail() -> Value {
        json!({"user_id":"u1","email":"a@b.io","name":"Ada <3","created_at":"2026-11-27T09:24:26.123Z"})
    }

    #[tokio::test]
    async fn sends_one_welcome_email_per_user_however_often_the_event_comes() {
        let mailer = Arc::new(MemoryMailer::default());
        let handler = handler(&mailer);
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
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].message_id, "welcome.u1");
        assert!(sent[0].html.contains("Ada &lt;3"));
    }

    #[tokio::test]
    async fn wrong_detail_type_and_bad_detail_are_errors() {
        let mailer = Arc::new(MemoryMailer::default());
        let handler = handler(&mailer);
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
        assert!(mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn transport_failure_is_an_error_so_lambda_retries() {
        let mailer = Arc::new(MemoryMailer::default());
        mailer.faults.fail("welcome.u1", 1);
        let handler = handler(&mailer);
        let first = handler
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await;
        assert!(matches!(first, Err(Error::Port(_))), "{first:?}");
        handler
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        assert_eq!(mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_duplicate_long_after_the_replay_window_sends_no_second_email() {
        let mailer = Arc::new(MemoryMailer::default());
        let ledger = Arc::new(MemoryMailLedger::default());
        handler_at(&mailer, &ledger, 1)
            .handle(event("e-1", "User Created", detail()), 3_000)
            .await
            .unwrap();
        // Two days later the idempotency record is gone; the event is redriven.
        let later = 2 * 86_400_000;
        handler_at(&mailer, &ledger, later)
            .handle(event("e-1", "User Created", detail()), later + 3_000)
            .await
            .unwrap();
        assert_eq!(mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_recipient_over_its_daily_cap_gets_no_more_mail() {
        let mailer = Arc::new(MemoryMailer::default());
        let handler = handler(&mailer);
        let mut errors = Vec::new();
        for user in ["u1", "u2", "u3"] {
            let detail = json!({"user_id":user,"email":"victim@b.io","name":"Ada"});
            if let Err(e) = handler
                .handle(event(user, "User Created", detail), 3_000)
                .await
            {
                errors.push(e.kind());
            }
        }
        assert_eq!(mailer.sent().len(), 2, "the cap in this fixture is 2");
        assert_eq!(errors, ["RecipientQuotaExceeded"]);
    }
}
