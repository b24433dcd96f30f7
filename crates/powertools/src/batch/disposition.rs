//! What a record's failure means: retry it, expect it, or reject it.

use std::fmt::Display;

/// How a failed record is treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: retry (after the visibility timeout).
    Retry,
    /// Retry, and it is normal traffic, not a failure worth an alarm (e.g.
    /// a duplicate whose first copy is still in progress).
    Expected,
    /// Can never succeed: dead-letter it now, with this reason.
    Reject(Rejection),
}

/// Why a record can never succeed, as dead-letter attributes: codes and
/// field names, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// A stable code, e.g. `InvalidFields`, `PayloadConflict`.
    pub code: &'static str,
    /// The JSON fields involved (may be empty).
    pub fields: Vec<&'static str>,
}

/// A handler's error, classified. Plain strings are transient.
pub trait RecordError: Display {
    /// How the processor treats the record (default: retry).
    fn disposition(&self) -> Disposition {
        Disposition::Retry
    }

    /// A short, stable name for the kind of failure: Lambda's `errorType`
    /// when the error fails a whole invocation (one EventBridge event).
    fn error_type(&self) -> &str {
        "Error"
    }
}

impl RecordError for String {}
impl RecordError for &str {}
