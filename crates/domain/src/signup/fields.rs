//! The validated values a signup carries: [`UserId`], [`EmailAddress`],
//! [`DisplayName`], each parsed once with the rules that make it safe to
//! store, key on and log.

use crate::error::FieldError;
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
