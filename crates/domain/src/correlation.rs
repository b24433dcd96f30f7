//! The correlation id of a signup: the id of the SQS message it arrived in,
//! carried by everything the signup causes (the `User Created` detail, the
//! confirmation's message attribute) in every region, and logged by every
//! function as `correlation_id`, so one query follows one signup.

use crate::error::FieldError;
use std::fmt;

/// A correlation id: 1–128 characters of `[A-Za-z0-9._:-]` (an SQS message
/// id is a UUID). The rule keeps it an id: it is logged, so a producer
/// must not be able to slip a sentence, an address or a name into it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// Longest accepted id, in characters.
    pub const MAX_LEN: usize = 128;

    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "correlation_id",
                "must be 1 to 128 characters",
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(FieldError::new(
                "correlation_id",
                "may only contain letters, digits, '-', '_', '.' and ':'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_correlation_ids_and_sentences_are_not() {
        for good in [
            "11111111-1111-4111-8111-111111111111",
            "m1",
            "1-5759e988-bd86:x.y_z",
        ] {
            assert_eq!(
                CorrelationId::parse(good).map(|c| c.to_string()),
                Ok(good.to_owned())
            );
        }
        for bad in [
            "",
            "ada@example.com",
            "Ada Lovelace",
            "a/b",
            &"x".repeat(129),
        ] {
            assert!(CorrelationId::parse(bad).is_err(), "{bad}");
        }
    }
}
