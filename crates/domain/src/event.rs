//! The `User Created` domain event, published on the EventBridge bus.
//!
//! Envelope: `source` = [`UserCreated::SOURCE`], `detail-type` =
//! [`UserCreated::DETAIL_TYPE`]. Detail schema:
//! `{"user_id": "u-123", "email": "ada@example.com", "name": "Ada Lovelace",
//!   "created_at": "2026-11-27T09:24:26.123Z"}`

use crate::error::{FieldError, Fields, ParseError};
use crate::{DisplayName, EmailAddress, Timestamp, User, UserId};
use serde::Serialize;

/// A user was stored for the first time. Carries what consumers need to act
/// without reading the UsersTable (welcome email, default profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserCreated {
    /// The new user's id.
    pub user_id: UserId,
    /// Their address.
    pub email: EmailAddress,
    /// Their display name.
    pub name: DisplayName,
    /// When the user was stored (equal for every re-publication of the event).
    pub created_at: Timestamp,
}

impl UserCreated {
    /// EventBridge `source` of the event.
    pub const SOURCE: &'static str = "user.service";
    /// EventBridge `detail-type` of the event.
    pub const DETAIL_TYPE: &'static str = "User Created";

    /// The event for a stored user.
    pub fn from_user(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            created_at: user.created_at,
        }
    }

    /// Parses and validates the event's `detail` object; `created_at` is
    /// required. Same as [`UserCreated::from_detail_at`] without an envelope time.
    pub fn from_detail(detail: &serde_json::Value) -> Result<Self, ParseError> {
        Self::from_detail_at(detail, None)
    }

    /// Parses and validates the event's `detail` object. A detail without
    /// `created_at` (other producers of `User Created`) takes
    /// `envelope_time`, the EventBridge envelope's `time`; a `created_at`
    /// that is present must be valid. Every problem is reported.
    pub fn from_detail_at(
        detail: &serde_json::Value,
        envelope_time: Option<Timestamp>,
    ) -> Result<Self, ParseError> {
        let mut fields = Fields::of_value(detail, "a User Created detail")?;
        let user_id = fields.parse("user_id", UserId::parse);
        let email = fields.parse("email", EmailAddress::parse);
        let name = fields.parse("name", DisplayName::parse);
        let created_at = match (fields.optional_text("created_at"), envelope_time) {
            (Err(e), _) => fields.fail(e),
            (Ok(Some(raw)), _) => fields.check(
                Timestamp::parse_rfc3339(raw)
                    .ok_or(FieldError::new("created_at", "not an RFC 3339 timestamp")),
            ),
            (Ok(None), Some(time)) => Some(time),
            (Ok(None), None) => fields.fail(FieldError::new("created_at", FieldError::REQUIRED)),
        };
        match (user_id, email, name, created_at) {
            (Some(user_id), Some(email), Some(name), Some(created_at)) => Ok(Self {
                user_id,
                email,
                name,
                created_at,
            }),
            _ => Err(fields.into_error()),
        }
    }

    /// What identifies the event's payload for consumers' idempotency
    /// hashes: `[user_id, email, name]`. Not `created_at` nor the envelope
    /// `time`: a re-published or forwarded copy, or one whose time came from
    /// a different envelope, is the same event, not a conflicting payload.
    pub fn identity(&self) -> [&str; 3] {
        [
            self.user_id.as_str(),
            self.email.as_str(),
            self.name.as_str(),
        ]
    }

    /// The `detail` JSON for publishing.
    pub fn to_detail_json(&self) -> String {
        // Serialising plain strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signup;

    fn user() -> User {
        let s = Signup::parse(r#"{"user_id":"u1","email":"a@b.io","name":"Zoë"}"#).unwrap();
        User::from_signup(s, Timestamp::from_unix_millis(1_795_771_466_123))
    }

    #[test]
    fn detail_round_trips() {
        let event = UserCreated::from_user(&user());
        let json = event.to_detail_json();
        assert_eq!(
            json,
            r#"{"user_id":"u1","email":"a@b.io","name":"Zoë","created_at":"2026-11-27T09:24:26.123Z"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(UserCreated::from_detail(&value), Ok(event));
    }

    #[test]
    fn invalid_details_name_the_field() {
        let detail = |v: serde_json::Value| UserCreated::from_detail(&v).unwrap_err().to_string();
        assert_eq!(
            detail(serde_json::json!({"user_id":"u1","email":"a@b.io","name":"A"})),
            "created_at: is required"
        );
        assert_eq!(
            detail(
                serde_json::json!({"user_id":"u1","email":"a@b.io","name":"A","created_at":"yesterday"})
            ),
            "created_at: not an RFC 3339 timestamp"
        );
        assert_eq!(
            detail(
                serde_json::json!({"user_id":"u1","email":"bad","name":"A","created_at":"2026-11-27T09:24:26Z"})
            ),
            "email: not a valid address"
        );
        assert_eq!(
            detail(serde_json::json!(["a@b.io"])),
            "body has the wrong shape for a User Created detail"
        );
        assert_eq!(
            detail(serde_json::json!({"user_id":"u1","email":"bad","name":"","created_at":"2026-02-31T00:00:00Z"})),
            "email: not a valid address; name: must not be empty; created_at: not an RFC 3339 timestamp"
        );
        assert_eq!(
            detail(
                serde_json::json!({"user_id":"u1","email":"a@b.io","name":"A","created_at":"2026-11-27T09:24:26.1€Z"})
            ),
            "created_at: not an RFC 3339 timestamp"
        );
    }

    #[test]
    fn a_detail_without_created_at_takes_the_envelope_time() {
        let time = Timestamp::parse_rfc3339("2026-11-27T09:24:26Z");
        let detail = serde_json::json!({"user_id":"u1","email":"a@b.io","name":"Zoë"});
        let event = UserCreated::from_detail_at(&detail, time).unwrap();
        assert_eq!(Some(event.created_at), time);
        let own = serde_json::json!({"user_id":"u1","email":"a@b.io","name":"Zoë","created_at":"2026-11-27T09:24:26.123Z"});
        assert_eq!(
            UserCreated::from_detail_at(&own, time).map(|e| e.created_at.to_string()),
            Ok("2026-11-27T09:24:26.123Z".to_owned()),
            "the detail's own created_at wins"
        );
        let bad =
            serde_json::json!({"user_id":"u1","email":"a@b.io","name":"Zoë","created_at":"soon"});
        assert!(
            UserCreated::from_detail_at(&bad, time).is_err(),
            "an invalid created_at is not replaced"
        );
    }

    #[test]
    fn identity_ignores_when_the_event_was_stamped() {
        let event = UserCreated::from_user(&user());
        let mut forwarded = event.clone();
        forwarded.created_at = Timestamp::from_unix_millis(7);
        assert_eq!(event.identity(), forwarded.identity());
        assert_eq!(event.identity(), ["u1", "a@b.io", "Zoë"]);
    }
}
