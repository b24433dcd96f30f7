//! The `User Created` domain event, published on the EventBridge bus.
//!
//! Envelope: `source` = [`UserCreated::SOURCE`], `detail-type` =
//! [`UserCreated::DETAIL_TYPE`]. Detail schema:
//! `{"user_id": "u-123", "email": "ada@example.com", "name": "Ada Lovelace",
//!   "created_at": "2026-11-27T09:24:26.123Z"}`

use crate::error::{from_value, required, ParseError};
use crate::{DisplayName, EmailAddress, Timestamp, User, UserId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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

#[derive(Deserialize)]
struct RawUserCreated<'a> {
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
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

    /// Parses and validates the event's `detail` object.
    pub fn from_detail(detail: &serde_json::Value) -> Result<Self, ParseError> {
        let raw: RawUserCreated<'_> = from_value(detail, "a User Created detail")?;
        let created_at = required(raw.created_at, "created_at")?;
        Ok(Self {
            user_id: UserId::parse(&required(raw.user_id, "user_id")?)?,
            email: EmailAddress::parse(&required(raw.email, "email")?)?,
            name: DisplayName::parse(&required(raw.name, "name")?)?,
            created_at: Timestamp::parse_rfc3339(&created_at).ok_or(crate::FieldError::new(
                "created_at",
                "not an RFC 3339 UTC timestamp",
            ))?,
        })
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
            "created_at: not an RFC 3339 UTC timestamp"
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
    }
}
