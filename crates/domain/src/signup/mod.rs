//! A signup request as it arrives on the SignupQueue, parsed and validated
//! once ([`Signup`], which documents the schema), and the validated values
//! it carries ([`fields`]).

mod fields;
#[cfg(test)]
mod tests;

pub use fields::{DisplayName, EmailAddress, UserId};

use crate::error::{object_from_json, FieldError, Fields, ParseError};

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
