//! Notifications queued by user-processor for notification-processor.
//!
//! Body schema on the NotificationQueue:
//! `{"notification_id": "signup_confirmation.u-123", "user_id": "u-123", "kind": "signup_confirmation",
//!   "mailbox": "<64 hex digits>"}`
//!
//! `mailbox` (optional) is the recipient's [`MailboxKey`]: the hash of the
//! normalised mailbox the daily mail cap counts, never the address. With it
//! notification-processor takes the quota slot while it reads the user; a
//! notification without it (older producers) is counted after the read. It
//! is a hint, not a fact: the consumer checks it against the user it reads,
//! and it is not part of what deduplicates the notification.
//!
//! The signup's correlation id travels beside the body, as the message
//! attribute `correlation_id` (String), not in it: it says why the
//! notification was sent, not what it is, so it is neither in the id nor in
//! what deduplicates it.

use crate::error::{object_from_json, FieldError, Fields, ParseError};
use crate::{CorrelationId, MailboxKey, UserId};
use serde::Serialize;
use std::fmt;

/// What to tell the user. New kinds get a variant and a template in [`crate::email`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// "Your account is ready": sent once per new user.
    SignupConfirmation,
}

impl NotificationKind {
    /// The wire name (`signup_confirmation`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SignupConfirmation => "signup_confirmation",
        }
    }

    fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "signup_confirmation" => Ok(Self::SignupConfirmation),
            _ => Err(FieldError::new("kind", "not a known notification kind")),
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification to deliver to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Deterministic id, `<kind>.<user_id>`: the same cause always yields the
    /// same id, so a duplicate is recognisable downstream (outbox key, SES
    /// idempotency, FIFO deduplication id).
    pub notification_id: String,
    /// Recipient.
    pub user_id: UserId,
    /// What to tell them.
    pub kind: NotificationKind,
    /// The recipient's mailbox key, when the producer knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<MailboxKey>,
    /// The correlation id of the signup that caused it, sent as a message
    /// attribute (never in the body, so [`Notification::parse`] leaves it
    /// `None`).
    #[serde(skip)]
    pub correlation_id: Option<CorrelationId>,
}

impl Notification {
    /// The notification of `kind` for `user_id`.
    pub fn new(user_id: UserId, kind: NotificationKind) -> Self {
        Self {
            notification_id: format!("{kind}.{user_id}"),
            user_id,
            kind,
            mailbox: None,
            correlation_id: None,
        }
    }

    /// The notification carrying its recipient's mailbox key.
    pub fn to_mailbox(mut self, mailbox: MailboxKey) -> Self {
        self.mailbox = Some(mailbox);
        self
    }

    /// The notification carrying the signup's correlation id.
    pub fn correlated(mut self, correlation_id: CorrelationId) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// Parses a NotificationQueue message body. The id must be the one
    /// [`Notification::new`] derives, so a tampered or stale id cannot slip in.
    pub fn parse(body: &str) -> Result<Self, ParseError> {
        let object = object_from_json(body, "a notification")?;
        let mut fields = Fields::of_text(&object);
        let id = fields.text("notification_id");
        let user_id = fields.parse("user_id", UserId::parse);
        let kind = fields.parse("kind", NotificationKind::parse);
        let mailbox = fields.parse_optional("mailbox", MailboxKey::parse);
        let (Some(id), Some(user_id), Some(kind), false) = (id, user_id, kind, fields.has_errors())
        else {
            return Err(fields.into_error());
        };
        let mut notification = Self::new(user_id, kind);
        notification.mailbox = mailbox;
        if notification.notification_id != id {
            return Err(
                FieldError::new("notification_id", "does not match kind and user_id").into(),
            );
        }
        Ok(notification)
    }

    /// The message body for the queue.
    pub fn to_json(&self) -> String {
        // Serialising plain strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_round_trip() {
        let n = Notification::new(
            UserId::parse("u-1").unwrap(),
            NotificationKind::SignupConfirmation,
        );
        assert_eq!(n.notification_id, "signup_confirmation.u-1");
        let body = n.to_json();
        assert_eq!(
            body,
            r#"{"notification_id":"signup_confirmation.u-1","user_id":"u-1","kind":"signup_confirmation"}"#
        );
        assert_eq!(Notification::parse(&body), Ok(n.clone()));
        let correlated = n.clone().correlated(CorrelationId::parse("m-1").unwrap());
        assert_eq!(
            correlated.to_json(),
            body,
            "the correlation id is not in the body"
        );
    }

    #[test]
    fn the_mailbox_key_is_optional_and_round_trips() {
        let key = crate::EmailAddress::parse("ada+x@b.io")
            .unwrap()
            .mailbox_key();
        let n = Notification::new(
            UserId::parse("u-1").unwrap(),
            NotificationKind::SignupConfirmation,
        )
        .to_mailbox(key.clone());
        let body = n.to_json();
        assert_eq!(
            body,
            format!(
                r#"{{"notification_id":"signup_confirmation.u-1","user_id":"u-1","kind":"signup_confirmation","mailbox":"{key}"}}"#
            )
        );
        assert_eq!(Notification::parse(&body), Ok(n));
        assert_eq!(
            Notification::parse(
                r#"{"notification_id":"signup_confirmation.u-1","user_id":"u-1","kind":"signup_confirmation","mailbox":"ada@b.io"}"#
            )
            .unwrap_err()
            .to_string(),
            "mailbox: not a mailbox key"
        );
    }

    #[test]
    fn rejects_unknown_kinds_and_mismatched_ids() {
        let err = |b: &str| Notification::parse(b).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"notification_id":"x.u1","user_id":"u1","kind":"sms"}"#),
            "kind: not a known notification kind"
        );
        assert_eq!(
            err(
                r#"{"notification_id":"signup_confirmation.u2","user_id":"u1","kind":"signup_confirmation"}"#
            ),
            "notification_id: does not match kind and user_id"
        );
        assert_eq!(
            err(r#"{"user_id":"u1"}"#),
            "notification_id: is required; kind: is required"
        );
    }
}
