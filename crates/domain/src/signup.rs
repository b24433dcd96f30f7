//! A signup request as it arrives on the SignupQueue, parsed and validated
//! once, and the validated values it carries (see [`Signup`] for the schema).

use crate::error::{object_from_json, FieldError, Fields, ParseError};
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
/// values). Any script is welcome; what is refused is what lets a name
/// forge or hide content where it is shown (emails, profiles, logs):
/// - control characters and line breaks (CR, LF, tab, U+0085, U+2028, U+2029);
/// - bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
///   U+2066–U+2069), which reorder the text around them;
/// - invisible format characters: soft hyphen, zero-width space, word
///   joiner and invisible operators (U+2060–U+2064), BOM, deprecated format
///   controls, Hangul fillers, interlinear annotations and tag characters
///   (U+E0000–U+E007F, which smuggle invisible ASCII).
///
/// The zero-width joiner and non-joiner (U+200D, U+200C) are kept only
/// *between* two visible non-ASCII characters: there they build emoji
/// (`👩‍💻`) and are required spelling in Persian and Indic scripts; anywhere
/// else (around ASCII, at an edge, doubled) they only hide text.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

/// What a character may do in a display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameChar {
    Allowed,
    /// Control characters and line or paragraph separators.
    Control,
    Bidi,
    Invisible,
}

fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

fn class_ignoring_context(c: char) -> NameChar {
    if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
        return NameChar::Control;
    }
    match c {
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => NameChar::Bidi,
        '\u{00AD}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}' => NameChar::Invisible,
        _ => NameChar::Allowed,
    }
}

/// A neighbour a joiner may sit next to: visible and not ASCII.
fn joins(c: Option<char>) -> bool {
    c.is_some_and(|c| {
        !c.is_ascii()
            && !c.is_whitespace()
            && !is_joiner(c)
            && class_ignoring_context(c) == NameChar::Allowed
    })
}

/// Classifies every character of `name` in context.
fn classify(name: &str) -> impl Iterator<Item = (char, NameChar)> + '_ {
    let chars: Vec<char> = name.chars().collect();
    (0..chars.len()).map(move |i| {
        let c = chars[i];
        let class = if is_joiner(c) {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            if joins(prev) && joins(next) {
                NameChar::Allowed
            } else {
                NameChar::Invisible
            }
        } else {
            class_ignoring_context(c)
        };
        (c, class)
    })
}

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// What [`DisplayName::from_stored`] returns when nothing visible is left.
    pub const PLACEHOLDER: &'static str = "there";

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
        for (_, class) in classify(name) {
            let rule = match class {
                NameChar::Allowed => continue,
                NameChar::Control => "must not contain control characters or line breaks",
                NameChar::Bidi => "must not contain bidirectional control characters",
                NameChar::Invisible => "must not contain invisible characters",
            };
            return Err(FieldError::new("name", rule));
        }
        Ok(Self(name.to_owned()))
    }

    /// A name read back from the store. Never fails: a user stored under
    /// older, looser rules must stay readable. Control characters and line
    /// breaks become spaces, bidi controls and invisible characters are
    /// dropped, the result is trimmed and cut to [`DisplayName::MAX_CHARS`];
    /// if nothing is left, [`DisplayName::PLACEHOLDER`]. A name that passes
    /// [`DisplayName::parse`] comes back unchanged.
    pub fn from_stored(raw: &str) -> Self {
        let clean = |text: &str| -> String {
            classify(text)
                .filter_map(|(c, class)| match class {
                    NameChar::Allowed => Some(c),
                    NameChar::Control => Some(' '),
                    NameChar::Bidi | NameChar::Invisible => None,
                })
                .collect()
        };
        let cut: String = clean(raw).trim().chars().take(Self::MAX_CHARS).collect();
        // The cut may leave a joiner at the end: clean once more.
        let name = clean(&cut);
        let name = name.trim();
        if name.is_empty() {
            Self(Self::PLACEHOLDER.to_owned())
        } else {
            Self(name.to_owned())
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EmailAddress {
    /// An address read back from the store. Never fails: an address stored
    /// under older rules must stay readable (and its owner reachable). It is
    /// taken as stored, minus whitespace and control characters, which no
    /// address contains and which are the only characters that could break a
    /// mail header.
    pub fn from_stored(raw: &str) -> Self {
        Self(
            raw.chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect(),
        )
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
///
/// Body schema (extra fields are ignored, so producers can add fields first):
/// `{"user_id": "u-123", "email": "ada@example.com", "name": "Ada Lovelace"}`.
/// The seed design's shape `{"id": "u-123", "email": …, "name": …}` is
/// accepted too: `id` is an alias of `user_id`. A body carrying both must
/// give the same value in each, or it is refused with a `user_id` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    /// Who signs up.
    pub user_id: UserId,
    /// Where to reach them.
    pub email: EmailAddress,
    /// How to address them.
    pub name: DisplayName,
}

impl Signup {
    /// Parses and validates an SQS message body. Every field is checked and
    /// every problem reported, in the order `user_id`, `email`, `name`.
    pub fn parse(body: &str) -> Result<Self, ParseError> {
        let object = object_from_json(body, "a signup")?;
        let mut fields = Fields::of_text(&object);
        let user_id = user_id_or_alias(&mut fields);
        let email = fields.parse("email", EmailAddress::parse);
        let name = fields.parse("name", DisplayName::parse);
        match (user_id, email, name) {
            (Some(user_id), Some(email), Some(name)) => Ok(Self {
                user_id,
                email,
                name,
            }),
            _ => Err(fields.into_error()),
        }
    }
}

/// `user_id`, or its alias `id` from the seed design's message shape.
fn user_id_or_alias(fields: &mut Fields<'_>) -> Option<UserId> {
    let raw = match (fields.optional_text("user_id"), fields.optional_text("id")) {
        (Err(e), _) | (_, Err(e)) => return fields.fail(e),
        (Ok(Some(user_id)), Ok(Some(id))) if user_id != id => {
            return fields.fail(FieldError::new(
                "user_id",
                "differs from id, its alias: send one of them",
            ))
        }
        (Ok(Some(raw)), _) | (Ok(None), Ok(Some(raw))) => raw,
        (Ok(None), Ok(None)) => {
            return fields.fail(FieldError::new("user_id", FieldError::REQUIRED))
        }
    };
    fields.check(UserId::parse(raw))
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
            "name: must not contain control characters or line breaks"
        );
    }

    #[test]
    fn seed_shape_with_id_is_accepted() {
        let s = Signup::parse(r#"{"id":"u-1","email":"ada@example.com","name":"Ada"}"#).unwrap();
        assert_eq!(s.user_id.as_str(), "u-1");
        let both = Signup::parse(r#"{"id":"u-1","user_id":"u-1","email":"a@b.io","name":"A"}"#);
        assert_eq!(both.unwrap().user_id.as_str(), "u-1");
        assert_eq!(
            err(r#"{"id":"u-1","user_id":"u-2","email":"a@b.io","name":"A"}"#),
            "user_id: differs from id, its alias: send one of them"
        );
        assert_eq!(
            err(r#"{"id":"u 1","email":"a@b.io","name":"A"}"#),
            "user_id: may only contain letters, digits, '-' and '_'"
        );
        assert_eq!(
            err(r#"{"id":7,"email":"a@b.io","name":"A"}"#),
            "id: must be a string"
        );
    }

    #[test]
    fn every_invalid_field_is_named() {
        let e = Signup::parse(r#"{"user_id":"u1","email":"ada@","name":null}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "email: not a valid address; name: is required"
        );
        assert_eq!(e.code(), "InvalidFields");
        assert_eq!(e.fields(), vec!["email", "name"]);
        let e = Signup::parse(r#"{"user_id":"u 1","email":7,"name":"a\u2028b"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user_id: may only contain letters, digits, '-' and '_'; email: must be a string; \
             name: must not contain control characters or line breaks"
        );
        assert_eq!(e.fields(), vec!["user_id", "email", "name"]);
        assert_eq!(
            err("{}"),
            "user_id: is required; email: is required; name: is required"
        );
    }

    #[test]
    fn repeated_fields_are_refused() {
        let e =
            Signup::parse(r#"{"user_id":"u1","email":"a@b.io","email":"evil@b.io","name":"A"}"#)
                .unwrap_err();
        assert_eq!(e.to_string(), "email: appears more than once");
        assert_eq!(e.fields(), vec!["email"]);
    }

    #[test]
    fn bidi_and_zero_width_names_are_refused() {
        let bidi = "must not contain bidirectional control characters";
        let invisible = "must not contain invisible characters";
        let control = "must not contain control characters or line breaks";
        for (name, rule) in [
            ("Ada\u{202E}nimda", bidi),
            ("Ada\u{2066}x\u{2069}", bidi),
            ("\u{200F}Ada", bidi),
            ("A\u{061C}da", bidi),
            ("Ad\u{200B}a", invisible),
            ("Ad\u{FEFF}a", invisible),
            ("Ad\u{00AD}a", invisible),
            ("Ad\u{2060}a", invisible),
            ("Ada\u{E0041}\u{E0042}", invisible),
            ("Ada\u{3164}", invisible),
            ("ev\u{200C}il", invisible),
            ("Ada\u{200D}", invisible),
            ("é\u{200D}\u{200D}é", invisible),
            ("Ada\r\nBcc: x", control),
            ("Ada\tLovelace", control),
            ("Ada\u{0085}x", control),
            ("Ada\u{2029}x", control),
        ] {
            assert_eq!(
                DisplayName::parse(name),
                Err(FieldError::new("name", rule)),
                "{name:?}"
            );
        }
    }

    #[test]
    fn joiners_inside_emoji_and_scripts_are_kept() {
        for name in ["👩\u{200D}💻 Dev", "می\u{200C}خواهم", "क्\u{200D}ष"] {
            assert_eq!(DisplayName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn stored_names_stay_readable_when_rules_tighten() {
        for (stored, read) in [
            ("Ada Lovelace", "Ada Lovelace"),
            ("Ada\u{202E}nimda", "Adanimda"),
            ("Ada\r\nLovelace", "Ada  Lovelace"),
            ("\u{200B}\u{FEFF}", DisplayName::PLACEHOLDER),
            ("", DisplayName::PLACEHOLDER),
            (" Ad\u{200C}a ", "Ada"),
            ("👩\u{200D}💻", "👩\u{200D}💻"),
        ] {
            assert_eq!(
                DisplayName::from_stored(stored).as_str(),
                read,
                "{stored:?}"
            );
        }
        let long = "é".repeat(150);
        assert_eq!(
            DisplayName::from_stored(&long).as_str().chars().count(),
            100
        );
        assert_eq!(
            EmailAddress::from_stored(" Old.Rules@Example.com\r\n").as_str(),
            "Old.Rules@Example.com"
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
            format!(r#"{{"user_id":"u1","email":"{secret}@","name":"{secret}"}}"#),
        ] {
            let message = err(&body);
            assert!(!message.contains(secret), "{message}");
        }
        assert_eq!(err("not json"), "body is not valid JSON (line 1, column 2)");
        assert_eq!(
            err(r#"["a@b.io"]"#),
            "body has the wrong shape for a signup (line 1, column 0)"
        );
        assert_eq!(
            err(r#"{"user_id":1}"#),
            "user_id: must be a string; email: is required; name: is required"
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
