//! Batch processing with partial batch responses, whatever the transport.
//!
//! [`BatchProcessor::process`] runs one handler per [`Message`] and returns
//! every record's outcome as a [`BatchReport`], what a partial batch
//! response (`batchItemFailures`) lists. It guarantees:
//!
//! - every record ends with an explicit outcome, and is reported done only
//!   when its handler said so; a missing result, a panic or a handler still
//!   running at the [`Deadline`] fails that record alone (fail closed);
//! - a failure that can never succeed ([`Disposition::Reject`]) goes to the
//!   dead-letter sink at once and is reported handled ([`DeadLetterSink`]);
//! - a FIFO batch runs in order within each message group, and a failure
//!   skips the rest of its group only; a standard batch runs concurrently
//!   up to a bound;
//! - a batch whose records all really fail is an invocation error
//!   ([`AllFailed`]), as in Powertools; expected retries never are.
//!
//! Nothing here knows SQS, Lambda or metrics: [`crate::sqs`] adapts the
//! transport and the metrics layer counts the report. The rules in full
//! are in docs/reliability.md ("Every record ends with an explicit outcome").

mod dead_letter;
mod disposition;
mod fifo;
mod message;
mod report;
#[cfg(test)]
mod tests;

pub use crate::deadline::Deadline;
pub use dead_letter::{dead_letter, DeadLetter, DeadLetterSink};
pub use disposition::{Disposition, RecordError, Rejection};
pub use message::{is_correlation_id, record_span, Message, CORRELATION_ATTRIBUTE, RECORD_SPAN};
pub use report::{BatchError, BatchReport, RecordOutcome};

use crate::deadline::Ran;
use fifo::is_fifo;
use futures::{stream, FutureExt, StreamExt};
use std::fmt::Display;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use tracing::Instrument;

/// A message with its position in the batch.
pub(super) struct Indexed {
    index: usize,
    message: Message,
}

/// What to do when every record of a batch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllFailed {
    /// Fail the invocation (the default, as in Powertools).
    #[default]
    Error,
    /// Report every record in `batchItemFailures` and succeed.
    Report,
}

/// Runs a handler over the records of a batch. Build it once per cold start.
#[derive(Clone)]
pub struct BatchProcessor {
    concurrency: NonZeroUsize,
    all_failed: AllFailed,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
}

impl std::fmt::Debug for BatchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchProcessor")
            .field("concurrency", &self.concurrency)
            .field("all_failed", &self.all_failed)
            .field("dead_letters", &self.dead_letters.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for BatchProcessor {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchProcessor {
    /// Sequential processing, [`AllFailed::Error`], no dead-letter sink
    /// (rejected records are then retried until the queue's redrive).
    pub const fn new() -> Self {
        Self {
            concurrency: NonZeroUsize::MIN,
            all_failed: AllFailed::Error,
            dead_letters: None,
        }
    }

    /// Sends records that can never succeed to `sink` and reports them handled.
    pub fn with_dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Runs up to `n` records (standard batch) or message groups (FIFO) at once.
    pub const fn with_concurrency(mut self, n: NonZeroUsize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the all-records-failed policy.
    pub const fn on_all_failed(mut self, policy: AllFailed) -> Self {
        self.all_failed = policy;
        self
    }

    /// Processes `messages` one handler call per record and returns every
    /// record's outcome, under the all-failed policy.
    pub async fn process<F, Fut, E>(
        &self,
        messages: Vec<Message>,
        deadline: Deadline,
        handler: F,
    ) -> Result<BatchReport, BatchError>
    where
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: RecordError,
    {
        let report = self.run(messages, deadline, handler).await;
        self.respond(report)
    }

    /// Processes `messages` with a handler that takes many records at once,
    /// so it can use batch APIs (one `SendMessageBatch` for the whole
    /// batch…). It returns one result per record, in order, and should
    /// itself stop waiting at `deadline`. In a FIFO batch the handler is
    /// called one record at a time, in group order, to keep the ordering
    /// guarantees of [`BatchProcessor::process`]. A panic, a missing result
    /// or a handler still running at the deadline fails the records it did
    /// not answer for.
    pub async fn process_batch<F, Fut, E>(
        &self,
        messages: Vec<Message>,
        deadline: Deadline,
        handler: F,
    ) -> Result<BatchReport, BatchError>
    where
        F: Fn(Vec<Message>) -> Fut,
        Fut: Future<Output = Vec<Result<(), E>>>,
        E: RecordError,
    {
        if is_fifo(&messages) {
            let report = self
                .run(messages, deadline, |message| {
                    let results = handler(vec![message]);
                    async move {
                        match results.await.into_iter().next() {
                            Some(result) => result.map_err(ResultOr::Handler),
                            None => Err(ResultOr::Unanswered(Unanswered(
                                "the batch handler returned no result for this record",
                            ))),
                        }
                    }
                })
                .await;
            return self.respond(report);
        }
        // The handler consumes the messages; their copies stay here for
        // the dead letters of rejected records.
        let sources = messages.clone();
        let span = tracing::info_span!("batch", records = sources.len());
        let started = std::time::Instant::now();
        // The handler stops at the deadline itself; the backstop only cuts
        // one that does not, so its answer at the deadline is kept.
        let results = deadline
            .backstop()
            .run(handler(messages))
            .instrument(span)
            .await;
        let mut results: Vec<Option<Result<(), Reason>>> = match results {
            Ran::Done(results) => results
                .into_iter()
                .map(|r| Some(r.map_err(Reason::of)))
                .collect(),
            Ran::Panicked(_) => {
                tracing::error!("batch handler panicked");
                (0..sources.len())
                    .map(|_| Some(Err(Reason::retry("batch handler panicked"))))
                    .collect()
            }
            Ran::OutOfTime => {
                tracing::error!("batch handler was still running at the deadline");
                Vec::new()
            }
        };
        results.resize_with(sources.len(), || None);
        let settled = sources
            .into_iter()
            .zip(results)
            .map(|(message, result)| async move {
                let result = result.unwrap_or_else(|| {
                    Err(Reason::retry(
                        "no result for this record (missing, or the deadline passed)",
                    ))
                });
                let span = record_span(&message);
                let id = message.id.clone();
                let outcome = self
                    .settle(message, result, deadline.backstop())
                    .inspect(|outcome| crate::settled::log(outcome.label(), started))
                    .instrument(span)
                    .await;
                (id, outcome)
            });
        let records = futures::future::join_all(settled).await;
        self.respond(BatchReport { records })
    }

    /// Logs the summary and applies the all-failed policy.
    fn respond(&self, report: BatchReport) -> Result<BatchReport, BatchError> {
        tracing::info!(
            records = report.records.len(),
            succeeded = report.succeeded(),
            failed = report.failed(),
            deferred = report.deferred(),
            dead_lettered = report.dead_lettered(),
            skipped = report.skipped(),
            "batch processed"
        );
        let nothing_handled = report.records.iter().all(|(_, o)| !o.is_handled());
        let all_real_failures = report.deferred() == 0 && report.failed() > 0;
        if self.all_failed == AllFailed::Error && nothing_handled && all_real_failures {
            let first_error = report
                .records
                .iter()
                .find_map(|(_, o)| match o {
                    RecordOutcome::Failed(e) => Some(e.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            return Err(BatchError::AllFailed {
                count: report.records.len(),
                first_error,
            });
        }
        Ok(report)
    }

    /// Every record's outcome, before the all-failed policy.
    async fn run<F, Fut, E>(
        &self,
        messages: Vec<Message>,
        deadline: Deadline,
        handler: F,
    ) -> BatchReport
    where
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: RecordError,
    {
        let fifo = is_fifo(&messages);
        let records = messages
            .into_iter()
            .enumerate()
            .map(|(index, message)| Indexed { index, message });
        let mut outcomes: Vec<(usize, String, RecordOutcome)> = if fifo {
            self.run_fifo(records.collect(), deadline, &handler).await
        } else {
            let handler = &handler;
            stream::iter(records)
                .map(|r| async move {
                    let id = r.message.id.clone();
                    let outcome = self.run_one(handler, deadline, r.message).await;
                    (r.index, id, outcome)
                })
                .buffer_unordered(self.concurrency.get())
                .collect()
                .await
        };
        outcomes.sort_unstable_by_key(|(index, _, _)| *index);
        BatchReport {
            records: outcomes.into_iter().map(|(_, id, o)| (id, o)).collect(),
        }
    }

    async fn run_one<F, Fut, E>(
        &self,
        handler: &F,
        deadline: Deadline,
        message: Message,
    ) -> RecordOutcome
    where
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: RecordError,
    {
        let span = record_span(&message);
        let started = std::time::Instant::now();
        // The handler consumes the message; its copy is what a dead letter needs.
        let source = message.clone();
        // A panic must cost one record, not the batch.
        let result = deadline
            .backstop()
            .run(handler(message))
            .instrument(span.clone())
            .await;
        let result = match result {
            Ran::Done(result) => result.map_err(Reason::of),
            Ran::Panicked(_) => Err(Reason::retry("record handler panicked")),
            Ran::OutOfTime => Err(Reason::retry("not finished by the invocation's deadline")),
        };
        self.settle(source, result, deadline.backstop())
            .inspect(|outcome| crate::settled::log(outcome.label(), started))
            .instrument(span)
            .await
    }

    /// Turns a record's result into its outcome, dead-lettering rejections
    /// by `until` (the backstop: the work's own deadline may be spent).
    async fn settle(
        &self,
        message: Message,
        result: Result<(), Reason>,
        until: Deadline,
    ) -> RecordOutcome {
        let reason = match result {
            Ok(()) => return RecordOutcome::Succeeded,
            Err(reason) => reason,
        };
        match reason.disposition {
            Disposition::Retry => {
                tracing::warn!(error = %reason.message, "record failed");
                RecordOutcome::Failed(reason.message)
            }
            Disposition::Expected => {
                tracing::info!(error = %reason.message, "record deferred");
                RecordOutcome::Deferred(reason.message)
            }
            Disposition::Reject(rejection) => {
                let Some(sink) = &self.dead_letters else {
                    tracing::warn!(error = %reason.message, code = rejection.code, "record rejected; no dead-letter sink, so it is retried");
                    return RecordOutcome::Failed(reason.message);
                };
                let code = rejection.code;
                let letter = DeadLetter {
                    source_message_id: message.id,
                    body: message.body.unwrap_or_default(),
                    message_group_id: message.group,
                    first_seen_ms: message.first_seen_ms,
                    reason: rejection,
                };
                if dead_letter(sink.as_ref(), &letter, &reason.message, until).await {
                    RecordOutcome::DeadLettered(code)
                } else {
                    RecordOutcome::Failed(reason.message)
                }
            }
        }
    }
}

/// A failure's message and disposition, once the handler's type is gone.
struct Reason {
    message: String,
    disposition: Disposition,
}

impl Reason {
    fn of<E: RecordError>(e: E) -> Self {
        Self {
            message: e.to_string(),
            disposition: e.disposition(),
        }
    }

    fn retry(message: &str) -> Self {
        Self {
            message: message.to_owned(),
            disposition: Disposition::Retry,
        }
    }
}

/// A record the batch handler gave no result for.
struct Unanswered(&'static str);

impl Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The FIFO path's error: the handler's, or a missing result.
enum ResultOr<E> {
    Handler(E),
    Unanswered(Unanswered),
}

impl<E: Display> Display for ResultOr<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handler(e) => e.fmt(f),
            Self::Unanswered(u) => u.fmt(f),
        }
    }
}

impl<E: RecordError> RecordError for ResultOr<E> {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Handler(e) => e.disposition(),
            Self::Unanswered(_) => Disposition::Retry,
        }
    }
}
