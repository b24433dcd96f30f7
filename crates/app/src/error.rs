//! Why one record or event could not be handled, and what that means for it.
//!
//! Messages name ids and rules, never emails or names, because the batch
//! processor logs them and the runtime logs an invocation's error. [`Error`] says, through
//! [`RecordError::disposition`], whether a failure is transient (retry), an
//! expected retry (a duplicate still in progress elsewhere: normal
//! at-least-once traffic, not an alarm) or permanent (dead-letter it now,
//! with a code and the fields involved).

use crate::PortError;
use eventline_domain::{ParseError, UserConflict, UserId};
use eventline_powertools::batch::{Disposition, RecordError, Rejection};
use eventline_powertools::deadline::DeadlineExceeded;
use eventline_powertools::eventbridge::EnvelopeError;
use eventline_powertools::idempotency::IdempotencyError;
use std::convert::Infallible;
use thiserror::Error;

/// The idempotency layer's refusals, without a work error inside.
pub type IdempotencyFailure = IdempotencyError<Infallible>;

/// A failed record (SQS) or event (EventBridge).
#[derive(Debug, Clone, Error)]
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
    /// A notification names a user that is not stored (yet).
    #[error("user {0} not found")]
    UnknownUser(UserId),
    /// The recipient already had today's quota of emails.
    #[error("recipient is over its daily email quota")]
    OverQuota,
    /// A port (AWS call) failed; usually transient, so the record is retried.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The idempotency layer refused to run the work (in progress elsewhere,
    /// same key with another payload, or its store failed).
    #[error(transparent)]
    Idempotency(IdempotencyFailure),
    /// The work was still running at the invocation's deadline.
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    /// The work panicked (the panic message is not kept: it may hold data).
    #[error("the work panicked")]
    Panicked,
    /// No outcome was recorded for the record (a bug; fail closed).
    #[error("no outcome was recorded for this record")]
    Unaccounted,
}

impl From<IdempotencyError<Error>> for Error {
    fn from(e: IdempotencyError<Error>) -> Self {
        match e.split() {
            Ok(refusal) => refusal.into(),
            Err(work) => work,
        }
    }
}

impl From<IdempotencyFailure> for Error {
    fn from(e: IdempotencyFailure) -> Self {
        match e {
            // The guard stopped at the deadline: the same failure as the
            // work's own cut-off, not a store failure.
            IdempotencyError::Deadline(cut) => Self::Deadline(cut),
            refusal => Self::Idempotency(refusal),
        }
    }
}

impl Error {
    /// A short, stable name for the kind of failure (Lambda's `errorType`,
    /// and the dead-letter `error_code` of rejections).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoBody => "NoBody",
            Self::Invalid(e) => e.code(),
            Self::Conflict(_) => "UserIdConflict",
            Self::Envelope(_) => "UnexpectedEvent",
            Self::UnknownUser(_) => "UnknownUser",
            Self::OverQuota => "RecipientQuotaExceeded",
            Self::Port(_) => "DependencyFailed",
            Self::Idempotency(IdempotencyError::InProgress { .. }) => "InProgress",
            Self::Idempotency(IdempotencyError::PayloadMismatch { .. }) => "PayloadConflict",
            Self::Idempotency(_) => "IdempotencyStoreFailed",
            Self::Deadline(_) => "DeadlineExceeded",
            Self::Panicked => "Panicked",
            Self::Unaccounted => "Unaccounted",
        }
    }
}

impl RecordError for Error {
    fn disposition(&self) -> Disposition {
        let reject = |fields: Vec<&'static str>| {
            Disposition::Reject(Rejection {
                code: self.kind(),
                fields,
            })
        };
        match self {
            Self::NoBody | Self::Envelope(_) => reject(Vec::new()),
            Self::Invalid(e) => reject(e.fields()),
            Self::Conflict(_) => reject(vec!["user_id"]),
            Self::OverQuota => reject(vec!["email"]),
            Self::Idempotency(IdempotencyError::PayloadMismatch { .. }) => reject(Vec::new()),
            Self::Idempotency(IdempotencyError::InProgress { .. }) => Disposition::Expected,
            // A notification may overtake its user's write (or a replica);
            // retried, and the queue's redrive ends it if it never appears.
            Self::UnknownUser(_)
            | Self::Port(_)
            | Self::Idempotency(_)
            | Self::Deadline(_)
            | Self::Panicked
            | Self::Unaccounted => Disposition::Retry,
        }
    }

    /// [`Error::kind`]: what the EventBridge entrypoint reports to Lambda.
    fn error_type(&self) -> &str {
        self.kind()
    }
}
