//! Every record's outcome, and the invocation error when all failed.

use thiserror::Error;

/// A batch the processor could not complete.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// Every record failed and the policy is [`AllFailed::Error`](super::AllFailed::Error).
    #[error("all {count} records of the batch failed (first: {first_error})")]
    AllFailed {
        /// Number of records.
        count: usize,
        /// The first record's error message.
        first_error: String,
    },
}

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The handler returned `Ok`.
    Succeeded,
    /// The handler returned `Err`, panicked, gave no result or was still
    /// running at the deadline; the message says which. Retried.
    Failed(String),
    /// An expected retry ([`Disposition::Expected`](super::Disposition::Expected)); not an error.
    Deferred(String),
    /// Can never succeed; stored in the dead-letter queue with this code.
    DeadLettered(&'static str),
    /// Not run: an earlier record of the same FIFO message group failed.
    Skipped,
}

impl RecordOutcome {
    /// Whether the record is done with (deleted from the source queue).
    pub fn is_handled(&self) -> bool {
        matches!(self, Self::Succeeded | Self::DeadLettered(_))
    }
}

/// The per-record outcomes of one batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// `(message id, outcome)` for every record.
    pub records: Vec<(String, RecordOutcome)>,
}

impl BatchReport {
    /// Number of records that succeeded.
    pub fn succeeded(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Succeeded))
    }

    /// Number of records that failed (not counting skipped or deferred ones).
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Failed(_)))
    }

    /// Number of records deferred as expected retries.
    pub fn deferred(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Deferred(_)))
    }

    /// Number of records sent to the dead-letter queue.
    pub fn dead_lettered(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::DeadLettered(_)))
    }

    /// Number of records skipped behind a failure in their FIFO group.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Skipped))
    }

    fn count(&self, f: impl Fn(&RecordOutcome) -> bool) -> usize {
        self.records.iter().filter(|(_, o)| f(o)).count()
    }

    /// The ids of the records that are not handled, in the batch's order:
    /// those to retry, which a partial batch response lists.
    pub fn unhandled(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter(|(_, outcome)| !outcome.is_handled())
            .map(|(id, _)| id.as_str())
            .collect()
    }
}
