//! Errors for input that does not parse or does not validate.
//!
//! Messages name the field and the rule, never the offending value: they end
//! up in logs and dead-letter reasons, and values may be personal data
//! (emails, names). Validation checks every field and reports all problems
//! at once (`email: not a valid address; name: is required`), so a producer
//! fixes a message in one round. [`ParseError::code`] and
//! [`ParseError::fields`] give the same facts in machine-readable form.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use thiserror::Error;

/// A field that is absent or breaks a rule, e.g. `email: not a valid address`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    /// JSON name of the field.
    pub field: &'static str,
    /// The rule it breaks, phrased for a person.
    pub rule: &'static str,
}

impl FieldError {
    /// The rule for an absent (or null) field.
    pub const REQUIRED: &'static str = "is required";

    pub(crate) const fn new(field: &'static str, rule: &'static str) -> Self {
        Self { field, rule }
    }
}

/// Every field problem of one message, in field order; never empty when
/// produced by a parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
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
    /// The body is JSON but not an object.
    #[error("body has the wrong shape for {expected}{at}")]
    Shape {
        /// What the body should have been.
        expected: &'static str,
        /// Where in the text, when parsing text.
        at: Position,
    },
    /// Fields are absent, of the wrong type, repeated or invalid: all of them.
    #[error("{0}")]
    Fields(FieldErrors),
}

impl From<FieldError> for ParseError {
    fn from(e: FieldError) -> Self {
        Self::Fields(FieldErrors(vec![e]))
    }
}

impl ParseError {
    /// A stable machine code for the kind of problem (for dead-letter
    /// attributes and metrics): `TooLarge`, `InvalidJson`, `WrongShape` or
    /// `InvalidFields`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "TooLarge",
            Self::Syntax { .. } => "InvalidJson",
            Self::Shape { .. } => "WrongShape",
            Self::Fields(_) => "InvalidFields",
        }
    }

    /// The JSON names of the fields involved, in order; empty when the
    /// problem is the body as a whole.
    pub fn fields(&self) -> Vec<&'static str> {
        match self {
            Self::Fields(errors) => errors.0.iter().map(|e| e.field).collect(),
            _ => Vec::new(),
        }
    }
}

/// A 1-based position in a JSON text; line 0 means "not from text".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// 1-based line, or 0.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return Ok(());
        }
        write!(f, " (line {}, column {})", self.line, self.column)
    }
}

/// A JSON object read from text, remembering keys that appeared more than
/// once (serde_json keeps only the last, and two parsers disagreeing about
/// which copy counts is how smuggled values get through).
pub(crate) struct JsonObject {
    map: Map<String, Value>,
    repeated: Vec<String>,
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonObject, A::Error> {
                let mut map = Map::new();
                let mut repeated = Vec::new();
                while let Some(key) = access.next_key::<Cow<'de, str>>()? {
                    let value: Value = access.next_value()?;
                    if map.insert(key.clone().into_owned(), value).is_some() {
                        repeated.push(key.into_owned());
                    }
                }
                Ok(JsonObject { map, repeated })
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// Parses `body` as a JSON object, mapping serde's errors to [`ParseError`]
/// without echoing any part of the input.
pub(crate) fn object_from_json(
    body: &str,
    expected: &'static str,
) -> Result<JsonObject, ParseError> {
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

/// Reads the fields of one object and collects every problem, so a message
/// with three bad fields is reported once with all three.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    repeated: &'a [String],
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Fields of a parsed JSON text.
    pub(crate) fn of_text(object: &'a JsonObject) -> Self {
        Self {
            map: &object.map,
            repeated: &object.repeated,
            errors: Vec::new(),
        }
    }

    /// Fields of an already-parsed value (e.g. an EventBridge `detail`).
    pub(crate) fn of_value(value: &'a Value, expected: &'static str) -> Result<Self, ParseError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                repeated: &[],
                errors: Vec::new(),
            }),
            _ => Err(ParseError::Shape {
                expected,
                at: Position::default(),
            }),
        }
    }

    /// The text of `field`: `Ok(None)` when absent or null; an error when
    /// it is repeated or not a string.
    pub(crate) fn optional_text(&self, field: &'static str) -> Result<Option<&'a str>, FieldError> {
        if self.repeated.iter().any(|k| k == field) {
            return Err(FieldError::new(field, "appears more than once"));
        }
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(FieldError::new(field, "must be a string")),
        }
    }

    /// The text of `field`, recording a problem when absent, null, repeated
    /// or not a string.
    pub(crate) fn text(&mut self, field: &'static str) -> Option<&'a str> {
        match self.optional_text(field) {
            Ok(Some(s)) => Some(s),
            Ok(None) => self.fail(FieldError::new(field, FieldError::REQUIRED)),
            Err(e) => self.fail(e),
        }
    }

    /// Validates `field` with `parse`, recording its problem if any.
    pub(crate) fn parse<T>(
        &mut self,
        field: &'static str,
        parse: impl FnOnce(&str) -> Result<T, FieldError>,
    ) -> Option<T> {
        let raw = self.text(field)?;
        self.check(parse(raw))
    }

    /// Validates `field` with `parse` when it is present: `None` when it is
    /// absent or null, or when it is invalid (its problem is then
    /// recorded: check [`Fields::has_errors`]).
    pub(crate) fn parse_optional<T>(
        &mut self,
        field: &'static str,
        parse: impl FnOnce(&str) -> Result<T, FieldError>,
    ) -> Option<T> {
        match self.optional_text(field) {
            Ok(None) => None,
            Ok(Some(raw)) => self.check(parse(raw)),
            Err(e) => self.fail(e),
        }
    }

    /// Whether a problem was recorded.
    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Records the problem in `result`, if any.
    pub(crate) fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.errors.push(e)).ok()
    }

    /// Records `error`; always `None`, for use in expressions.
    pub(crate) fn fail<T>(&mut self, error: FieldError) -> Option<T> {
        self.errors.push(error);
        None
    }

    /// The error listing every problem recorded.
    pub(crate) fn into_error(self) -> ParseError {
        ParseError::Fields(FieldErrors(self.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_fields_are_machine_readable() {
        let too_large = ParseError::TooLarge { size: 2, limit: 1 };
        assert_eq!((too_large.code(), too_large.fields()), ("TooLarge", vec![]));
        let syntax = ParseError::Syntax { line: 1, column: 1 };
        assert_eq!(syntax.code(), "InvalidJson");
        let shape = ParseError::Shape {
            expected: "a signup",
            at: Position::default(),
        };
        assert_eq!(shape.code(), "WrongShape");
        let fields = ParseError::Fields(FieldErrors(vec![
            FieldError::new("email", "not a valid address"),
            FieldError::new("name", FieldError::REQUIRED),
        ]));
        assert_eq!(fields.code(), "InvalidFields");
        assert_eq!(fields.fields(), vec!["email", "name"]);
        assert_eq!(
            fields.to_string(),
            "email: not a valid address; name: is required"
        );
    }

    #[test]
    fn repeated_keys_are_remembered() {
        let object = object_from_json(r#"{"a":"1","b":"2","a":"3"}"#, "x").unwrap();
        let fields = Fields::of_text(&object);
        assert_eq!(
            fields.optional_text("a"),
            Err(FieldError::new("a", "appears more than once"))
        );
        assert_eq!(fields.optional_text("b"), Ok(Some("2")));
        assert_eq!(fields.optional_text("c"), Ok(None));
    }
}
