//! welcome-email: EventBridge `User Created` → welcome email.
//!
//! Returns an error for anything it cannot handle (wrong event, invalid
//! detail, transport failure), so Lambda's async-invoke retries and then the
//! on-failure destination take over. The email's id is `welcome.<user_id>`, so
//! a re-delivered event overwrites the same outbox object.

use crate::ports::Mailer;
use crate::Error;
use eventline_domain::{email, UserCreated};
use eventline_powertools::eventbridge::unwrap_event;
use serde_json::Value;

/// The welcome-email use case.
pub struct WelcomeEmail<M> {
    mailer: M,
}

impl<M: Mailer> WelcomeEmail<M> {
    /// Wires the use case to its mailer.
    pub fn new(mailer: M) -> Self {
        Self { mailer }
    }

    /// Handles one EventBridge event (raw payload).
    pub async fn handle(&self, payload: Value) -> Result<(), Error> {
        let envelope = unwrap_event(payload, UserCreated::SOURCE, UserCreated::DETAIL_TYPE)?;
        let event = UserCreated::from_detail(&envelope.detail)?;
        self.mailer.send(&email::welcome(&event)).await?;
        tracing::info!(user_id = %event.user_id, event_id = envelope.id.as_deref().unwrap_or(""), "welcome email sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMailer;
    use serde_json::json;
    use std::sync::Arc;

    fn event(detail_type: &str, detail: Value) -> Value {
        json!({"version":"0","id":"e-1","detail-type":detail_type,"source":"user.service",
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1",
               "resources":[],"detail":detail})
    }

    fn detail() -> Value {
        json!({"user_id":"u1","email":"a@b.io","name":"Ada <3","created_at":"2026-11-27T09:24:26.123Z"})
    }

    #[tokio::test]
    async fn sends_one_welcome_email_per_event() {
        let mailer = Arc::new(MemoryMailer::default());
        let handler = WelcomeEmail::new(mailer.clone());
        handler
            .handle(event("User Created", detail()))
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
        let handler = WelcomeEmail::new(mailer.clone());
        let err = handler
            .handle(event("User Deleted", detail()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Envelope(_)), "{err}");
        let err = handler
            .handle(event(
                "User Created",
                json!({"user_id":"u1","email":"x","name":"A","created_at":"2026-11-27T09:24:26Z"}),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "email: not a valid address");
        assert!(mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn transport_failure_is_an_error_so_lambda_retries() {
        let mailer = Arc::new(MemoryMailer::default());
        mailer.faults.fail("welcome.u1", 1);
        let handler = WelcomeEmail::new(mailer.clone());
        assert!(matches!(
            handler.handle(event("User Created", detail())).await,
            Err(Error::Port(_))
        ));
        handler
            .handle(event("User Created", detail()))
            .await
            .unwrap();
        assert_eq!(mailer.sent().len(), 1);
    }
}
