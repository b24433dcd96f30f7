//! Why one record or event could not be handled.
//!
//! Messages name ids and rules, never emails or names, because the batch
//! processor logs them.

use crate::PortError;
use eventline_domain::{ParseError, UserConflict, UserId};
use eventline_powertools::eventbridge::EnvelopeError;
use eventline_powertools::idempotency::IdempotencyError;
use thiserror::Error;

/// A failed record (SQS) or event (EventBridge).
#[derive(Debug, Error)]
pub enum Error {
    /// The SQS record carries no body.
    #[error("record has no body")]
    NoBody,
    /// The body or detail does not parse or validate.
    #[error(transparent)]
    Invalid(#[from] ParseError),
    /// The user id belongs to a different signup.
    #[error(transparent)]
    Conflict(#[from] UserConflict),
    /// The EventBridge payload is not the expected event.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A notification names a user that is not stored.
    #[error("user {0} not found")]
    UnknownUser(UserId),
    /// A port (AWS call) failed; usually transient, so the record is retried.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The idempotency layer refused to run the work (in progress elsewhere,
    /// same key with another payload, or its store failed).
    #[error("{0}")]
    Idempotency(String),
}

impl From<IdempotencyError<Error>> for Error {
    fn from(e: IdempotencyError<Error>) -> Self {
        match e {
            IdempotencyError::Work(inner) => inner,
            other => Self::Idempotency(other.to_string()),
        }
    }
}

impl Error {
    /// A short, stable name for the kind of failure (Lambda's `errorType`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoBody => "NoBody",
            Self::Invalid(_) => "InvalidInput",
            Self::Conflict(_) => "Conflict",
            Self::Envelope(_) => "UnexpectedEvent",
            Self::UnknownUser(_) => "UnknownUser",
            Self::Port(_) => "DependencyFailed",
            Self::Idempotency(_) => "IdempotencyRefused",
        }
    }
}

/// Lets a handler return [`Error`] to the runtime with a meaningful `errorType`.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        Self {
            error_type: e.kind().to_owned(),
            error_message: e.to_string(),
        }
    }
}
