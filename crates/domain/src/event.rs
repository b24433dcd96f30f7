//! The `User Created` domain event, published on the EventBridge bus.
//!
//! Envelope: `source` = [`UserCreated::SOURCE`], `detail-type` =
//! [`UserCreated::DETAIL_TYPE`]. Detail schema, as user-processor publishes
//! it:
//!
//! ```text
//! {"user_id": "u-123", "email": "ada@example.com", "name": "Ada Lovelace",
//!  "created_at": "2026-11-27T09:24:26.123Z",
//!  "origin_region": "us-west-2", "home_region": "eu-west-1",
//!  "event_key": "user-created/u-123",
//!  "correlation_id": "059f36b4-87a3-44ab-83d2-661975830a7d"}
//! ```
//!
//! - `origin_region`: the region that published it. The forwarding rules
//!   match it (only locally-published events are forwarded, one hop); it
//!   lives in the detail because `PutEvents` cannot set the envelope's
//!   `region`.
//! - `home_region`: the user's home region ([`crate::region`]); only that
//!   region's welcome-email rule matches it.
//! - `event_key`: `user-created/<user_id>`, the same for the same signup in
//!   every region. Consumers deduplicate on the detail, never on the
//!   envelope id (EventBridge gives a forwarded event a new one).
//! - `correlation_id`: the id of the SQS message the signup arrived in
//!   ([`CorrelationId`]).
//!
//! Reading is lenient for other producers: those four may be absent (a
//! present one must be valid, and `event_key` must be the user's), and
//! `created_at` may be absent when the envelope has a `time`.

use crate::error::{FieldError, Fields, ParseError};
use crate::region::{Region, RegionSet};
use crate::{CorrelationId, DisplayName, EmailAddress, Timestamp, User, UserId};
use serde::Serialize;

/// A user was stored for the first time. Carries what consumers need to act
/// without reading the UsersTable (welcome email, default profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCreated {
    /// The new user's id.
    pub user_id: UserId,
    /// Their address.
    pub email: EmailAddress,
    /// Their display name.
    pub name: DisplayName,
    /// When the user was stored (equal for every re-publication of the event).
    pub created_at: Timestamp,
    /// The region that published the event, if the producer says.
    pub origin_region: Option<Region>,
    /// The user's home region, if the producer says.
    pub home_region: Option<Region>,
    /// The signup's correlation id, if the producer says.
    pub correlation_id: Option<CorrelationId>,
}

/// The detail as published: the event's fields and its `event_key`.
#[derive(Serialize)]
struct Detail<'a> {
    user_id: &'a UserId,
    email: &'a EmailAddress,
    name: &'a DisplayName,
    created_at: &'a Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_region: Option<&'a Region>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_region: Option<&'a Region>,
    event_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a CorrelationId>,
}

impl UserCreated {
    /// EventBridge `source` of the event.
    pub const SOURCE: &'static str = "user.service";
    /// EventBridge `detail-type` of the event.
    pub const DETAIL_TYPE: &'static str = "User Created";

    /// The event for a stored user, saying nothing yet of where it was
    /// published ([`UserCreated::published_in`]) or why
    /// ([`UserCreated::correlated`]).
    pub fn from_user(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            created_at: user.created_at,
            origin_region: None,
            home_region: None,
            correlation_id: None,
        }
    }

    /// The event as published by a process of `regions`: its own region is
    /// the origin, and the user's home is computed over the set.
    pub fn published_in(mut self, regions: &RegionSet) -> Self {
        self.origin_region = Some(regions.own().clone());
        self.home_region = Some(regions.home_region(&self.user_id).clone());
        self
    }

    /// The event carrying the signup's correlation id.
    pub fn correlated(mut self, correlation_id: CorrelationId) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// `user-created/<user_id>`: the same for every copy of the event, in
    /// every region.
    pub fn event_key(&self) -> String {
        format!("user-created/{}", self.user_id)
    }

    /// Parses and validates the event's `detail` object; `created_at` is
    /// required. Same as [`UserCreated::from_detail_at`] without an envelope time.
    pub fn from_detail(detail: &serde_json::Value) -> Result<Self, ParseError> {
        Self::from_detail_at(detail, None)
    }

    /// Parses and validates the event's `detail` object. A detail without
    /// `created_at` (other producers of `User Created`) takes
    /// `envelope_time`, the EventBridge envelope's `time`; a `created_at`
    /// that is present must be valid. So must `origin_region`,
    /// `home_region`, `event_key` and `correlation_id`, which may all be
    /// absent. Every problem is reported.
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
        let origin_region = fields.parse_optional("origin_region", region("origin_region"));
        let home_region = fields.parse_optional("home_region", region("home_region"));
        let event_key = fields.parse_optional("event_key", |raw| Ok(raw.to_owned()));
        let correlation_id = fields.parse_optional("correlation_id", CorrelationId::parse);
        if let (Some(key), Some(id)) = (&event_key, &user_id) {
            if key.strip_prefix("user-created/") != Some(id.as_str()) {
                fields.fail::<()>(FieldError::new(
                    "event_key",
                    "is not user-created/<user_id>",
                ));
            }
        }
        // An optional field is `None` when absent or invalid; an invalid
        // one fails the whole detail.
        match (user_id, email, name, created_at) {
            (Some(user_id), Some(email), Some(name), Some(created_at)) if !fields.has_errors() => {
                Ok(Self {
                    user_id,
                    email,
                    name,
                    created_at,
                    origin_region,
                    home_region,
                    correlation_id,
                })
            }
            _ => Err(fields.into_error()),
        }
    }

    /// What identifies the event's payload for consumers' idempotency
    /// hashes: `[user_id, email, name]`. Not `created_at` nor the envelope
    /// `time`, not where it was published nor its correlation id: a
    /// re-published or forwarded copy, the same signup published by two
    /// regions, or one whose time came from a different envelope, is the
    /// same event, not a conflicting payload.
    pub fn identity(&self) -> [&str; 3] {
        [
            self.user_id.as_str(),
            self.email.as_str(),
            self.name.as_str(),
        ]
    }

    /// The `detail` JSON for publishing.
    pub fn to_detail_json(&self) -> String {
        let detail = Detail {
            user_id: &self.user_id,
            email: &self.email,
            name: &self.name,
            created_at: &self.created_at,
            origin_region: self.origin_region.as_ref(),
            home_region: self.home_region.as_ref(),
            event_key: self.event_key(),
            correlation_id: self.correlation_id.as_ref(),
        };
        // Serialising plain strings cannot fail.
        serde_json::to_string(&detail).unwrap_or_default()
    }
}

/// A region-name parser for `field` that does not quote the value (details
/// are untrusted input).
fn region(field: &'static str) -> impl FnOnce(&str) -> Result<Region, FieldError> {
    move |raw| Region::parse(raw).map_err(|_| FieldError::new(field, "not a region name"))
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
            r#"{"user_id":"u1","email":"a@b.io","name":"Zoë","created_at":"2026-11-27T09:24:26.123Z","event_key":"user-created/u1"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(UserCreated::from_detail(&value), Ok(event));
    }

    fn regions(own: &str) -> RegionSet {
        RegionSet::parse(Region::parse(own).unwrap(), "us-west-2,us-east-1,eu-west-1").unwrap()
    }

    #[test]
    fn a_published_event_says_where_from_whose_home_and_why() {
        let event = UserCreated::from_user(&user())
            .published_in(&regions("us-east-1"))
            .correlated(CorrelationId::parse("m-1").unwrap());
        let json = event.to_detail_json();
        assert_eq!(
            json,
            r#"{"user_id":"u1","email":"a@b.io","name":"Zoë","created_at":"2026-11-27T09:24:26.123Z","origin_region":"us-east-1","home_region":"us-west-2","event_key":"user-created/u1","correlation_id":"m-1"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(UserCreated::from_detail(&value), Ok(event.clone()));
        // Another region computes the same home for the same user.
        let elsewhere = UserCreated::from_user(&user()).published_in(&regions("eu-west-1"));
        assert_eq!(elsewhere.home_region, event.home_region);
        assert_eq!(
            elsewhere.origin_region.as_ref().map(Region::as_str),
            Some("eu-west-1")
        );
        assert_eq!(elsewhere.event_key(), event.event_key());
    }

    #[test]
    fn the_new_fields_are_optional_but_checked_when_present() {
        let detail = |extra: serde_json::Value| {
            let mut d = serde_json::json!({"user_id":"u1","email":"a@b.io","name":"A","created_at":"2026-11-27T09:24:26Z"});
            for (k, v) in extra.as_object().unwrap() {
                d[k] = v.clone();
            }
            UserCreated::from_detail(&d).map_err(|e| e.to_string())
        };
        let old = detail(serde_json::json!({})).unwrap();
        assert_eq!(
            (old.origin_region, old.home_region, old.correlation_id),
            (None, None, None)
        );
        assert!(
            detail(serde_json::json!({"origin_region": null, "event_key": "user-created/u1"}))
                .is_ok()
        );
        assert_eq!(
            detail(serde_json::json!({"origin_region":"mars","home_region":7})),
            Err("origin_region: not a region name; home_region: must be a string".into())
        );
        assert_eq!(
            detail(serde_json::json!({"event_key":"user-created/u2"})),
            Err("event_key: is not user-created/<user_id>".into())
        );
        assert_eq!(
            detail(serde_json::json!({"correlation_id":"ada@example.com"})),
            Err("correlation_id: may only contain letters, digits, '-', '_', '.' and ':'".into())
        );
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
    fn identity_ignores_when_where_and_why_the_event_was_stamped() {
        let event = UserCreated::from_user(&user()).published_in(&regions("us-west-2"));
        let mut forwarded = event.clone();
        forwarded.created_at = Timestamp::from_unix_millis(7);
        // The same signup, published by another region from another message.
        let forwarded = forwarded
            .published_in(&regions("eu-west-1"))
            .correlated(CorrelationId::parse("m-2").unwrap());
        assert_eq!(event.identity(), forwarded.identity());
        assert_eq!(event.identity(), ["u1", "a@b.io", "Zoë"]);
    }
}
