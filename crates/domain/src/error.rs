//! Errors for input that does not parse or does not validate.
//!
//! Messages name the field and the rule, never the offending value: they end
//! up in logs, and values may be personal data (emails, names).

use thiserror::Error;

/// A field that is present but breaks a rule, e.g. `email: not a valid address`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    /// JSON name of the field.
    pub field: &'static str,
    /// The rule it breaks, phrased for a person.
    pub rule: &'static str,
}

impl FieldError {
    pub(crate) const fn new(field: &'static str, rule: &'static str) -> Self {
        Self { field, rule }
    }
}

/// Why a message body could not be turned into a domain value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The body exceeds [`crate::MAX_MESSAGE_BYTES`].
    #[error("body is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The body is not JSON at all (position only: the text may hold personal data).
    #[error("body is not valid JSON (line {line}, column {column})")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The body is JSON of the wrong shape, e.g. a field of the wrong type.
    #[error("body has the wrong shape for {expected}{at}")]
    Shape {
        /// What the body should have been.
        expected: &'static str,
        /// Where in the text, when parsing text.
        at: Position,
    },
    /// A required field is absent or null.
    #[error("{0}: is required")]
    Missing(&'static str),
    /// A field breaks a validation rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// Parses `body` as JSON into `T`, mapping serde's errors to [`ParseError`]
/// without echoing any part of the input.
pub(crate) fn from_json<'a, T: serde::Deserialize<'a>>(
    body: &'a str,
    expected: &'static str,
) -> Result<T, ParseError> {
    if body.len() > crate::MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge {
            size: body.len(),
            limit: crate::MAX_MESSAGE_BYTES,
        });
    }
    serde_json::from_str(body).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => ParseError::Shape {
                expected,
                at: Position { line, column },
            },
            _ => ParseError::Syntax { line, column },
        }
    })
}

/// Unwraps an optional field or reports it as missing.
pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, ParseError> {
    value.ok_or(ParseError::Missing(field))
}

/// Deserialises an already-parsed JSON value (e.g. an EventBridge `detail`)
/// into `T`, with the same no-echo error mapping as text.
pub(crate) fn from_value<'a, T: serde::Deserialize<'a>>(
    value: &'a serde_json::Value,
    expected: &'static str,
) -> Result<T, ParseError> {
    T::deserialize(value).map_err(|_| ParseError::Shape {
        expected,
        at: Position::default(),
    })
}

/// A 1-based position in a JSON text; line 0 means "not from text".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// 1-based line, or 0.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            return Ok(());
        }
        write!(f, " (line {}, column {})", self.line, self.column)
    }
}
