//! Why a guarded run did not return the work's value.

use std::convert::Infallible;
use thiserror::Error;

use super::StoreError;
use crate::deadline::DeadlineExceeded;

/// Why guarded work did not produce a result.
#[derive(Debug, Error)]
pub enum IdempotencyError<E> {
    /// Another attempt holds the lock; retry later.
    #[error("{key}: another attempt is in progress; will retry")]
    InProgress {
        /// The key.
        key: String,
    },
    /// The key was used before with a different payload.
    #[error("{key}: already processed with a different payload")]
    PayloadMismatch {
        /// The key.
        key: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored result could not be read back.
    #[error("{key}: stored result is unreadable: {reason}")]
    CorruptResult {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The work (or taking its lock) was still running at its cut-off;
    /// the lock, if taken, is kept until its own deadline (a call we
    /// stopped waiting for may still land).
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    /// The work itself failed (the record was released).
    #[error(transparent)]
    Work(E),
}

impl<E> IdempotencyError<E> {
    /// The error without the work's own failure, for callers that keep
    /// idempotency failures apart from work failures.
    pub fn split(self) -> Result<IdempotencyError<Infallible>, E> {
        match self {
            Self::Work(e) => Err(e),
            Self::InProgress { key } => Ok(IdempotencyError::InProgress { key }),
            Self::PayloadMismatch { key } => Ok(IdempotencyError::PayloadMismatch { key }),
            Self::Store(s) => Ok(IdempotencyError::Store(s)),
            Self::CorruptResult { key, reason } => {
                Ok(IdempotencyError::CorruptResult { key, reason })
            }
            Self::Deadline(d) => Ok(IdempotencyError::Deadline(d)),
        }
    }
}

impl Clone for IdempotencyError<Infallible> {
    fn clone(&self) -> Self {
        match self {
            Self::InProgress { key } => Self::InProgress { key: key.clone() },
            Self::PayloadMismatch { key } => Self::PayloadMismatch { key: key.clone() },
            Self::Store(s) => Self::Store(s.clone()),
            Self::CorruptResult { key, reason } => Self::CorruptResult {
                key: key.clone(),
                reason: reason.clone(),
            },
            Self::Deadline(d) => Self::Deadline(*d),
            Self::Work(never) => match *never {},
        }
    }
}

impl PartialEq for IdempotencyError<Infallible> {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
