//! A signup request as it arrives on the SignupQueue, parsed and validated once.
//!
//! Body schema (extra fields are ignored, so producers can add fields first):
//! `{"user_id": "u-123", "email": "ada@example.com", "name": "Ada Lovelace"}`

use crate::error::{from_json, required, FieldError, ParseError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A user id: 1–64 characters of `[A-Za-z0-9_-]`, safe in keys, paths and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Longest accepted id, in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates `raw` as a user id.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new("user_id", "must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(FieldError::new("user_id", "must be at most 64 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(FieldError::new(
                "user_id",
                "may only contain letters, digits, '-' and '_'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: trimmed, at most 254 characters, one `@`, a plausible
/// local part and a dotted DNS domain (stored lower-cased).
///
/// This is a deliberate subset of RFC 5321: no quoted local parts, no IP
/// literals, ASCII (punycode) domains. Anything it rejects is far more likely
/// to be a typo than a real mailbox.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Longest accepted address (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Validates `raw` (surrounding whitespace is ignored).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const INVALID: FieldError = FieldError::new("email", "not a valid address");
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(FieldError::new("email", "must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(FieldError::new("email", "must be at most 254 characters"));
        }
        let (local, domain) = raw.split_once('@').ok_or(INVALID)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        let labels_ok = domain.len() <= 253
            && domain.split('.').count() >= 2
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let tld_ok = domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|b| b.is_ascii_digit()));
        if !(local_ok && labels_ok && tld_ok) {
            return Err(INVALID);
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Redacted: addresses are personal data and must not reach logs by accident.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

/// A person's display name: trimmed, 1–100 characters (Unicode scalar
/// values), no control characters. Any script is welcome.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Validates `raw` (surrounding whitespace is ignored).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        // Byte length bounds the char count from above: skip counting in the common case.
        if name.len() > Self::MAX_CHARS && name.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new("name", "must be at most 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Redacted: names are personal data and must not reach logs by accident.
impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DisplayName(<redacted>)")
    }
}

macro_rules! deserialize_validated {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
deserialize_validated!(UserId, EmailAddress, DisplayName);

/// A validated signup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    /// Who signs up.
    pub user_id: UserId,
    /// Where to reach them.
    pub email: EmailAddress,
    /// How to address them.
    pub name: DisplayName,
}

#[derive(Deserialize)]
struct RawSignup<'a> {
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

impl Signup {
    /// Parses and validates an SQS message body. Fields are checked in the
    /// order `user_id`, `email`, `name`; the first problem is reported.
    pub fn parse(body: &str) -> Result<Self, ParseError> {
        let raw: RawSignup<'_> = from_json(body, "a signup")?;
        Ok(Self {
            user_id: UserId::parse(&required(raw.user_id, "user_id")?)?,
            email: EmailAddress::parse(&required(raw.email, "email")?)?,
            name: DisplayName::parse(&required(raw.name, "name")?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        Signup::parse(body).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_valid_signup_and_normalises_it() {
        let s = Signup::parse(
            r#"{"user_id":"u-1_A","email":"  Ada.L+tag@Example.COM ","name":"  Ada Lovelace ","extra":1}"#,
        )
        .unwrap();
        assert_eq!(s.user_id.as_str(), "u-1_A");
        assert_eq!(s.email.as_str(), "Ada.L+tag@example.com");
        assert_eq!(s.name.as_str(), "Ada Lovelace");
    }

    #[test]
    fn accepts_unicode_names() {
        for name in [
            "Zoë Ørsted",
            "山田太郎",
            "Ἀλέξανδρος",
            "👩‍💻 Dev",
            "O'Brien <3",
        ] {
            let body = serde_json::json!({"user_id":"u1","email":"a@b.io","name":name}).to_string();
            assert_eq!(Signup::parse(&body).unwrap().name.as_str(), name);
        }
    }

    #[test]
    fn names_the_field_and_rule() {
        assert_eq!(
            err(r#"{"email":"a@b.io","name":"A"}"#),
            "user_id: is required"
        );
        assert_eq!(
            err(r#"{"user_id":null,"email":"a@b.io","name":"A"}"#),
            "user_id: is required"
        );
        assert_eq!(
            err(r#"{"user_id":"u 1","email":"a@b.io","name":"A"}"#),
            "user_id: may only contain letters, digits, '-' and '_'"
        );
        assert_eq!(
            err(r#"{"user_id":"u1","email":"not-an-email","name":"A"}"#),
            "email: not a valid address"
        );
        assert_eq!(
            err(r#"{"user_id":"u1","email":"a@b.io","name":"   "}"#),
            "name: must not be empty"
        );
        assert_eq!(
            err(r#"{"user_id":"u1","email":"a@b.io","name":"a\u0007b"}"#),
            "name: must not contain control characters"
        );
    }

    #[test]
    fn enforces_length_limits_at_the_boundary() {
        let id64 = "a".repeat(64);
        let body = |id: &str, email: &str, name: &str| {
            serde_json::json!({"user_id":id,"email":email,"name":name}).to_string()
        };
        assert!(Signup::parse(&body(&id64, "a@b.io", "A")).is_ok());
        assert_eq!(
            err(&body(&format!("{id64}a"), "a@b.io", "A")),
            "user_id: must be at most 64 characters"
        );
        let email254 = format!(
            "{}@{}.{}.{}.io",
            "l".repeat(64),
            "d".repeat(63),
            "e".repeat(63),
            "f".repeat(58)
        );
        assert_eq!(email254.len(), 254);
        assert!(Signup::parse(&body("u1", &email254, "A")).is_ok());
        assert_eq!(
            err(&body("u1", &format!("x{email254}"), "A")),
            "email: must be at most 254 characters"
        );
        let name100 = "é".repeat(100);
        assert!(Signup::parse(&body("u1", "a@b.io", &name100)).is_ok());
        assert_eq!(
            err(&body("u1", "a@b.io", &format!("{name100}é"))),
            "name: must be at most 100 characters"
        );
    }

    #[test]
    fn rejects_implausible_addresses() {
        for bad in [
            "a@b",
            "@b.io",
            "a@",
            "a@@b.io",
            "a b@c.io",
            "a@-b.io",
            "a@b-.io",
            "a@b..io",
            ".a@b.io",
            "a.@b.io",
            "a..b@c.io",
            "a@b.1",
            "a@b.c",
            "a@ü.io",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(FieldError::new("email", "not a valid address")),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_json_errors_carry_no_input() {
        let secret = "ada@example.com";
        for body in [
            format!(r#"{{"user_id":"u1","email":"{secret}""#),
            format!(r#"["{secret}"]"#),
            format!(r#"{{"user_id":"u1","email":["{secret}"],"name":"A"}}"#),
        ] {
            let message = err(&body);
            assert!(!message.contains(secret), "{message}");
            assert!(message.starts_with("body "), "{message}");
        }
        assert_eq!(err("not json"), "body is not valid JSON (line 1, column 2)");
        assert_eq!(
            err(r#"{"user_id":1}"#),
            "body has the wrong shape for a signup (line 1, column 12)"
        );
    }

    #[test]
    fn rejects_oversized_bodies_before_parsing() {
        let body = format!(
            r#"{{"user_id":"u1","email":"a@b.io","name":"A","pad":"{}"}}"#,
            "x".repeat(crate::MAX_MESSAGE_BYTES)
        );
        assert!(matches!(
            Signup::parse(&body),
            Err(ParseError::TooLarge {
                limit: crate::MAX_MESSAGE_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn debug_output_redacts_personal_data() {
        let s =
            Signup::parse(r#"{"user_id":"u1","email":"ada@example.com","name":"Ada"}"#).unwrap();
        let debug = format!("{s:?}");
        assert!(debug.contains("u1"));
        assert!(
            !debug.contains("ada@example.com") && !debug.contains("Ada\""),
            "{debug}"
        );
    }
}
