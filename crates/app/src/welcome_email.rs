//! welcome-email: EventBridge `User Created` → welcome email.
//!
//! Returns an error for anything it cannot handle (wrong event, invalid
//! detail, transport failure), so Lambda's async-invoke retries and then the
//! on-failure destination take over. The email's id is `welcome.<user_id>`, so
//! a re-delivered event overwrites the same outbox object.

use crate::ports::{Clock, Mailer};
use crate::user_created::{detail_hash, on_user_created};
use crate::{window, Error};
use eventline_domain::{email, UserCreated};
use eventline_powertools::idempotency::{Idempotency, IdempotencyStore};
use serde_json::Value;

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "welcome-email";

/// The ports welcome-email drives.
pub struct Ports<M, C, I> {
    /// The mail transport.
    pub mailer: M,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
}

/// The welcome-email use case.
pub struct WelcomeEmail<M, C, I> {
    ports: Ports<M, C, I>,
}

impl<M: Mailer, C: Clock, I: IdempotencyStore> WelcomeEmail<M, C, I> {
    /// Wires the use case to its ports.
    pub fn new(ports: Ports<M, C, I>) -> Self {
        Self { ports }
    }

    /// Handles one EventBridge event (raw payload); sends each welcome email
    /// at most once, keyed by its message id (`welcome.<user_id>`), so the
    /// same event delivered twice, or re-published, is one email.
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<(), Error> {
        on_user_created(payload, |event| self.send_welcome(event, deadline_ms)).await
    }

    async fn send_welcome(&self, event: UserCreated, deadline_ms: u64) -> Result<(), Error> {
        let welcome = email::welcome(&event);
        let run = self
            .ports
            .idempotency
            .once(
                &welcome.message_id,
                detail_hash(&event),
                window(&self.ports.clock, deadline_ms),
                || async { self.ports.mailer.send(&welcome).await.map_err(Error::from) },
            )
            .await?;
        if run.is_replay() {
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
    use crate::memory::{FixedClock, MemoryMailer};
    use eventline_domain::Timestamp;
    use eventline_powertools::idempotency::MemoryStore;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    type Handler = WelcomeEmail<Arc<MemoryMailer>, FixedClock, Arc<MemoryStore>>;

    fn handler(mailer: &Arc<MemoryMailer>) -> Handler {
        WelcomeEmail::new(Ports {
            mailer: mailer.clone(),
            clock: FixedClock(Timestamp::from_unix_millis(1)),
            idempotency: Idempotency::new(
                Arc::new(MemoryStore::default()),
                IDEMPOTENCY_SCOPE,
                Duration::from_secs(3600),
            ),
        })
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
}
