//! The default profile profile-creator makes for every new user.
//!
//! Stored as an item in the ProfilesTable and as `profiles/<user_id>.json` in
//! the bucket, with this schema:
//! `{"user_id": "u-123", "display_name": "Ada Lovelace", "bio": "",
//!   "avatar_url": null, "locale": "en", "marketing_opt_in": false,
//!   "created_at": "2026-11-27T09:24:26.123Z"}`
//!
//! The table item also records `document_written`: the fact that the
//! document went to the bucket, so a duplicate event of any age writes
//! nothing (the document itself does not carry that flag).

use crate::{DisplayName, Timestamp, UserCreated, UserId};
use serde::Serialize;

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Owner, and the profile's key.
    pub user_id: UserId,
    /// Shown name; starts as the signup name.
    pub display_name: DisplayName,
    /// Free text; starts empty.
    pub bio: String,
    /// Picture; none until the user uploads one.
    pub avatar_url: Option<String>,
    /// BCP 47 language tag for messages; `en` until the user picks one.
    pub locale: String,
    /// Consent is never assumed: starts `false`.
    pub marketing_opt_in: bool,
    /// Equal to the user's `created_at`, so a re-created profile is identical.
    pub created_at: Timestamp,
    /// Whether the document was written to the bucket (durable fact of the
    /// effect). Not part of the document; ignored by [`Profile::is_default_for`].
    #[serde(skip)]
    pub document_written: bool,
}

impl Profile {
    /// Key of the profile document in the bucket.
    pub fn document_key(user_id: &UserId) -> String {
        format!("profiles/{user_id}.json")
    }

    /// The default profile for a new user. Deterministic: the same event
    /// always yields the same profile, so a re-delivery writes identical data.
    pub fn default_for(event: &UserCreated) -> Self {
        Self {
            user_id: event.user_id.clone(),
            display_name: event.name.clone(),
            bio: String::new(),
            avatar_url: None,
            locale: "en".to_owned(),
            marketing_opt_in: false,
            created_at: event.created_at,
            document_written: false,
        }
    }

    /// Whether this (stored) profile still has exactly the content
    /// [`Profile::default_for`] gives `event`, i.e. the user has not edited
    /// it. `document_written` is not content and is ignored.
    pub fn is_default_for(&self, event: &UserCreated) -> bool {
        self.same_content(&Self::default_for(event))
    }

    /// Equality of everything the user sees, ignoring `document_written`.
    pub fn same_content(&self, other: &Profile) -> bool {
        let Self {
            user_id,
            display_name,
            bio,
            avatar_url,
            locale,
            marketing_opt_in,
            created_at,
            document_written: _,
        } = self;
        *user_id == other.user_id
            && *display_name == other.display_name
            && *bio == other.bio
            && *avatar_url == other.avatar_url
            && *locale == other.locale
            && *marketing_opt_in == other.marketing_opt_in
            && *created_at == other.created_at
    }

    /// The JSON document for the bucket.
    pub fn to_json(&self) -> String {
        // Serialising strings, bools and options cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Signup, User};

    #[test]
    fn default_profile_is_deterministic_and_private_by_default() {
        let s = Signup::parse(r#"{"user_id":"u1","email":"a@b.io","name":"山田"}"#).unwrap();
        let event = UserCreated::from_user(&User::from_signup(s, Timestamp::from_unix_millis(5)));
        let profile = Profile::default_for(&event);
        assert_eq!(profile, Profile::default_for(&event));
        assert!(!profile.marketing_opt_in);
        assert_eq!(Profile::document_key(&profile.user_id), "profiles/u1.json");
        let json: serde_json::Value = serde_json::from_str(&profile.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"user_id":"u1","display_name":"山田","bio":"","avatar_url":null,
                "locale":"en","marketing_opt_in":false,"created_at":"1970-01-01T00:00:00.005Z"})
        );
        assert!(!profile.document_written);
    }

    #[test]
    fn the_written_flag_is_not_content() {
        let s = Signup::parse(r#"{"user_id":"u1","email":"a@b.io","name":"Ada"}"#).unwrap();
        let event = UserCreated::from_user(&User::from_signup(s, Timestamp::from_unix_millis(5)));
        let mut stored = Profile::default_for(&event);
        stored.document_written = true;
        assert!(stored.is_default_for(&event));
        assert_eq!(stored.to_json(), Profile::default_for(&event).to_json());
        stored.bio = "Mathematician".to_owned();
        assert!(
            !stored.is_default_for(&event),
            "an edited profile is not the default"
        );
    }
}
