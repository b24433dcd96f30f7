//! Batch processing with partial batch responses, whatever the transport.
//!
//! Lambda's SQS event source mapping with `ReportBatchItemFailures` deletes
//! every message of a batch except those the function lists in
//! `batchItemFailures`; those become visible again after the visibility
//! timeout and, after `maxReceiveCount` receives, move to the DLQ.
//! [`BatchProcessor::process`] runs one handler per [`Message`] and returns
//! every record's outcome as a [`BatchReport`], so that:
//!
//! - **every record ends with an explicit outcome**; a record is reported
//!   done only when its handler said so. A result that is missing, a
//!   handler that panics or one still running at the deadline fails the
//!   record (fail closed): it is retried, never deleted unprocessed;
//! - a record whose handler returns `Err` or **panics** fails alone: the other
//!   records of the batch are still processed and deleted;
//! - work stops waiting at the invocation's [`Deadline`] (its timeout minus a
//!   margin): records still pending fail, the others keep their outcome, and
//!   the response goes back before Lambda would kill the invocation. A
//!   handler that honours the deadline itself (its own last calls stop at
//!   it) keeps every outcome it reached: the processor cuts handlers only at
//!   the deadline's [backstop](Deadline::backstop), half a margin later,
//!   and its own calls after the work (dead-letter sends) stop there too;
//! - a failure that can **never succeed** ([`Disposition::Reject`]: invalid
//!   input, a payload conflict) is sent at once to the dead-letter sink, with
//!   its reason as attributes, and reported handled; only if that send fails
//!   does it take the retry path. Transient failures are retried;
//! - in a **FIFO** batch (one whose messages carry a group), records run in
//!   order within their message group, and after the first failure in a
//!   group the rest of that group is reported failed without being run
//!   (processing them would break the group's order); other groups carry
//!   on. A dead-lettered record does not break its group;
//! - in a **standard** batch, records run concurrently up to a bound;
//! - when every record **really** fails, the invocation returns an error by
//!   default ([`AllFailed::Error`]), as Powertools does: Lambda's `Errors`
//!   metric and alarms see it and the event source mapping backs off instead
//!   of hammering a broken dependency. Expected retries
//!   ([`Disposition::Expected`], e.g. a duplicate whose first copy is still
//!   in progress) are normal at-least-once traffic: reported, never an
//!   invocation error. [`AllFailed::Report`] lists them all instead.
//!
//! Nothing here knows SQS or Lambda: the SQS entrypoint ([`crate::sqs`])
//! turns an SQS event into messages and the report into the partial batch
//! response, so a use case built on this module can be driven by any
//! source. The processor knows nothing of metrics either, as in Powertools:
//! whoever wants counts of processed, failed or dead-lettered records reads
//! them from the report (the functions do it in [`crate::layer`], once per
//! invocation).

pub use crate::deadline::Deadline;
use futures::future::BoxFuture;
use futures::{stream, FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use thiserror::Error;
use tracing::Instrument;

/// The span every record's work runs in ([`record_span`]): its fields are
/// `message_id` and `correlation_id`, which the logging layer puts on every
/// line logged inside it.
pub const RECORD_SPAN: &str = "record";

/// The string attribute that carries a message's correlation id (the id of
/// the message that started the chain of work it belongs to).
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";

/// One record of a batch, as the processor and the handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Unique within the batch: what the partial batch response names.
    pub id: String,
    /// The payload, if the record carries one.
    pub body: Option<String>,
    /// The FIFO message group. A batch in which any message has one is
    /// processed as FIFO: in order within each group.
    pub group: Option<String>,
    /// When the transport first delivered it (Unix ms), if known.
    pub first_seen_ms: Option<u64>,
    /// The producer's string attributes (SQS message attributes of type
    /// `String`), by name.
    pub attributes: BTreeMap<String, String>,
}

impl Message {
    /// A message of no group and no attributes, first seen at an unknown time.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: Some(body.into()),
            group: None,
            first_seen_ms: None,
            attributes: BTreeMap::new(),
        }
    }

    /// The message with the string attribute `name` set to `value`.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// The chain of work this message belongs to: its
    /// [`CORRELATION_ATTRIBUTE`] when the producer set one that
    /// [`is_correlation_id`], else its own id (it starts a chain).
    pub fn correlation_id(&self) -> &str {
        self.attributes
            .get(CORRELATION_ATTRIBUTE)
            .map(String::as_str)
            .filter(|id| is_correlation_id(id))
            .unwrap_or(&self.id)
    }
}

/// Whether `value` may be logged as a correlation id: 1–128 characters of
/// `[A-Za-z0-9._:-]` (`eventline_domain::CorrelationId`'s rule). Anything
/// else (a sentence, an address) is not logged: the producer's attribute is
/// input.
pub fn is_correlation_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The [`RECORD_SPAN`] of `message`: its id and its correlation id.
pub fn record_span(message: &Message) -> tracing::Span {
    tracing::info_span!(
        RECORD_SPAN,
        message_id = %message.id,
        correlation_id = %message.correlation_id()
    )
}

/// A message with its position in the batch.
struct Indexed {
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

/// A record that can never succeed, on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's message id (an EventBridge event's id).
    pub source_message_id: String,
    /// The record's body, unchanged, so it can be redriven.
    pub body: String,
    /// The FIFO message group, if any.
    pub message_group_id: Option<String>,
    /// When it was first delivered (Unix ms), if known.
    pub first_seen_ms: Option<u64>,
    /// Why.
    pub reason: Rejection,
}

/// Where rejected records go (the source queue's DLQ, in production the
/// SQS adapter in `eventline-aws`). The sink adds the function's name.
pub trait DeadLetterSink: Send + Sync {
    /// Stores `letter` durably; an error keeps the record on the retry path.
    fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>>;
}

/// A batch the processor could not complete.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// Every record failed and the policy is [`AllFailed::Error`].
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
    /// An expected retry ([`Disposition::Expected`]); not an error.
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
            .bound(AssertUnwindSafe(async { handler(messages).await }).catch_unwind())
            .instrument(span)
            .await;
        let mut results: Vec<Option<Result<(), Reason>>> = match results {
            Ok(Ok(results)) => results
                .into_iter()
                .map(|r| Some(r.map_err(Reason::of)))
                .collect(),
            Ok(Err(_)) => {
                tracing::error!("batch handler panicked");
                (0..sources.len())
                    .map(|_| Some(Err(Reason::retry("batch handler panicked"))))
                    .collect()
            }
            Err(_) => {
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

    async fn run_fifo<F, Fut, E>(
        &self,
        records: Vec<Indexed>,
        deadline: Deadline,
        handler: &F,
    ) -> Vec<(usize, String, RecordOutcome)>
    where
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: RecordError,
    {
        // Groups in order of first appearance; records keep their order inside a group.
        let mut groups: Vec<(Option<String>, Vec<Indexed>)> = Vec::new();
        for record in records {
            let group = record.message.group.clone();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, members)) => members.push(record),
                None => groups.push((group, vec![record])),
            }
        }
        let per_group: Vec<Vec<(usize, String, RecordOutcome)>> = stream::iter(groups)
            .map(|(_, members)| async move {
                let mut outcomes = Vec::with_capacity(members.len());
                let mut broken = false;
                for r in members {
                    let id = r.message.id.clone();
                    let outcome = if broken {
                        RecordOutcome::Skipped
                    } else {
                        self.run_one(handler, deadline, r.message).await
                    };
                    broken |= !outcome.is_handled();
                    outcomes.push((r.index, id, outcome));
                }
                outcomes
            })
            .buffer_unordered(self.concurrency.get())
            .collect()
            .await;
        per_group.into_iter().flatten().collect()
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
        // A panic must cost one record, not the batch. The handler's state is not
        // observed after a panic (the future is dropped), hence AssertUnwindSafe.
        let result = deadline
            .backstop()
            .bound(AssertUnwindSafe(async { handler(message).await }).catch_unwind())
            .instrument(span.clone())
            .await;
        let result = match result {
            Ok(Ok(result)) => result.map_err(Reason::of),
            Ok(Err(_)) => Err(Reason::retry("record handler panicked")),
            Err(_) => Err(Reason::retry("not finished by the invocation's deadline")),
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

/// Whether `messages` form a FIFO batch.
fn is_fifo(messages: &[Message]) -> bool {
    messages.iter().any(|m| m.group.is_some())
}

/// Sends `letter` to `sink` and logs the outcome with `error` (the
/// rejection's message); `true` when the sink stored it. Shared by the
/// batch processor and the handlers of single events (EventBridge), so a
/// rejection reads the same in the logs wherever it happened. The send runs
/// after the work, in the time it left: it stops at `deadline`, and one cut
/// off (or not started, the deadline being past) keeps the record on the
/// retry path.
pub async fn dead_letter(
    sink: &dyn DeadLetterSink,
    letter: &DeadLetter,
    error: &str,
    deadline: Deadline,
) -> bool {
    let code = letter.reason.code;
    let sent = if deadline.passed() {
        Err("not sent: the invocation's deadline had passed".to_owned())
    } else {
        deadline
            .bound(sink.send(letter))
            .await
            .unwrap_or_else(|_| Err("cut off at the invocation's deadline".to_owned()))
    };
    match sent {
        Ok(()) => {
            tracing::warn!(error, code, "rejected; sent to the dead-letter queue");
            true
        }
        Err(e) => {
            tracing::error!(error, code, sink_error = %e, "rejected, but the dead-letter queue refused it; it stays on the retry path");
            false
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn record(id: &str, body: &str, group: Option<&str>) -> Message {
        Message {
            group: group.map(str::to_owned),
            ..Message::new(id, body)
        }
    }

    fn soon() -> Deadline {
        Deadline::after(std::time::Duration::from_secs(30))
    }

    #[test]
    fn a_message_correlates_by_its_attribute_or_else_by_its_own_id() {
        assert_eq!(Message::new("m-2", "x").correlation_id(), "m-2");
        let caused = Message::new("m-2", "x").with_attribute(CORRELATION_ATTRIBUTE, "m-1");
        assert_eq!(caused.correlation_id(), "m-1");
        let long = "x".repeat(129);
        for not_an_id in ["", "ada@example.com", "Ada Lovelace", long.as_str()] {
            let message = Message::new("m-2", "x").with_attribute(CORRELATION_ATTRIBUTE, not_an_id);
            assert_eq!(
                message.correlation_id(),
                "m-2",
                "{not_an_id:?} is not logged"
            );
        }
    }

    #[tokio::test]
    async fn every_line_of_a_record_names_its_message_and_its_correlation_id() {
        use crate::logging::{self, Capture, LogConfig};
        let logs = Capture::new();
        let _guard = tracing::subscriber::set_default(logging::subscriber(
            &LogConfig::json("svc"),
            logs.clone(),
        ));
        let messages = vec![
            Message::new("m-1", "ok"),
            Message::new("m-2", "bad").with_attribute(CORRELATION_ATTRIBUTE, "m-1"),
        ];
        BatchProcessor::new()
            .process(messages, soon(), |m| async move {
                tracing::info!("working");
                handler(m).await
            })
            .await
            .unwrap();
        let lines: Vec<_> = logs
            .json_lines()
            .into_iter()
            .filter(|l| l.get("message_id").is_some())
            .map(|l| {
                let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
                (text("message_id"), text("correlation_id"), text("message"))
            })
            .collect();
        let line = |id: &str, correlation: &str, message: &str| {
            (id.to_owned(), correlation.to_owned(), message.to_owned())
        };
        assert_eq!(
            lines,
            [
                line("m-1", "m-1", "working"),
                line("m-1", "m-1", "record settled"),
                line("m-2", "m-1", "working"),
                line("m-2", "m-1", "record failed"),
                line("m-2", "m-1", "record settled"),
            ]
        );
    }

    /// Fails bodies starting with "bad", panics on "panic".
    async fn handler(record: Message) -> Result<(), String> {
        let body = record.body.unwrap_or_default();
        if body.starts_with("panic") {
            panic!("boom");
        }
        if body.starts_with("bad") {
            return Err("bad body".to_owned());
        }
        Ok(())
    }

    #[tokio::test]
    async fn bad_record_fails_alone() {
        let e = vec![
            record("1", "ok", None),
            record("2", "bad", None),
            record("3", "ok", None),
        ];
        let response = BatchProcessor::new()
            .process(e, soon(), handler)
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["2"]);
    }

    #[tokio::test]
    async fn panicking_record_fails_alone() {
        let e = vec![record("1", "panic", None), record("2", "ok", None)];
        let report = BatchProcessor::new().run(e, soon(), handler).await;
        assert_eq!(
            report.records,
            [
                (
                    "1".to_owned(),
                    RecordOutcome::Failed("record handler panicked".to_owned())
                ),
                ("2".to_owned(), RecordOutcome::Succeeded)
            ]
        );
    }

    #[tokio::test]
    async fn all_good_reports_an_empty_failure_list() {
        let e = vec![record("1", "ok", None), record("2", "ok", None)];
        let response = BatchProcessor::new()
            .process(e, soon(), handler)
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
    }

    #[tokio::test]
    async fn all_failed_errors_by_default_and_reports_on_request() {
        let e = || vec![record("1", "bad", None), record("2", "bad", None)];
        let err = BatchProcessor::new()
            .process(e(), soon(), handler)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            BatchError::AllFailed {
                count: 2,
                first_error: "bad body".to_owned()
            }
        );
        let response = BatchProcessor::new()
            .on_all_failed(AllFailed::Report)
            .process(e(), soon(), handler)
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["1", "2"]);
    }

    #[tokio::test]
    async fn batch_handler_results_map_back_to_their_records() {
        let e = vec![
            record("1", "ok", None),
            record("2", "bad", None),
            record("3", "ok", None),
        ];
        let response = BatchProcessor::new()
            .process_batch(e, soon(), |records| async move {
                records
                    .iter()
                    .map(|r| match r.body.as_deref() {
                        Some("bad") => Err("bad body".to_owned()),
                        _ => Ok(()),
                    })
                    .collect()
            })
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["2"]);
    }

    #[tokio::test]
    async fn batch_handler_missing_results_and_panics_fail_records() {
        let e = || vec![record("1", "ok", None), record("2", "ok", None)];
        let short = BatchProcessor::new()
            .process_batch(e(), soon(), |_| async { vec![Ok::<(), String>(())] })
            .await
            .unwrap();
        assert_eq!(short.unhandled(), ["2"]);
        let fifo = || vec![record("a1", "ok", Some("A")), record("a2", "ok", Some("A"))];
        let empty = BatchProcessor::new()
            .on_all_failed(AllFailed::Report)
            .process_batch(fifo(), soon(), |_| async {
                Vec::<Result<(), String>>::new()
            })
            .await
            .unwrap();
        assert_eq!(
            empty.unhandled(),
            ["a1", "a2"],
            "FIFO: no result is a failure too"
        );
        let panicked = BatchProcessor::new()
            .on_all_failed(AllFailed::Report)
            .process_batch(e(), soon(), |_| async {
                panic!("boom");
                #[allow(unreachable_code)]
                Vec::<Result<(), String>>::new()
            })
            .await
            .unwrap();
        assert_eq!(panicked.unhandled(), ["1", "2"]);
    }

    #[tokio::test]
    async fn batch_handler_on_fifo_keeps_group_order() {
        let e = vec![
            record("a1", "ok", Some("A")),
            record("a2", "bad", Some("A")),
            record("a3", "ok", Some("A")),
            record("b1", "ok", Some("B")),
        ];
        let calls = Mutex::new(Vec::new());
        let response = BatchProcessor::new()
            .process_batch(e, soon(), |records| {
                calls.lock().unwrap().push(records.len());
                async move {
                    records
                        .iter()
                        .map(|r| {
                            if r.body.as_deref() == Some("bad") {
                                Err("bad")
                            } else {
                                Ok(())
                            }
                        })
                        .collect()
                }
            })
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["a2", "a3"]);
        assert!(
            calls.into_inner().unwrap().iter().all(|n| *n == 1),
            "one record per call on FIFO"
        );
    }

    #[tokio::test]
    async fn empty_batch_succeeds() {
        let response = BatchProcessor::new()
            .process(vec![], soon(), handler)
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
    }

    #[tokio::test]
    async fn fifo_failure_skips_the_rest_of_its_group_only() {
        let e = vec![
            record("a1", "ok", Some("A")),
            record("b1", "ok", Some("B")),
            record("a2", "bad", Some("A")),
            record("b2", "ok", Some("B")),
            record("a3", "ok", Some("A")),
            record("b3", "ok", Some("B")),
        ];
        let ran = Mutex::new(Vec::new());
        let report = BatchProcessor::new()
            .with_concurrency(NonZeroUsize::new(4).unwrap())
            .run(e, soon(), |r| {
                ran.lock().unwrap().push(r.id.clone());
                handler(r)
            })
            .await;
        assert_eq!(report.unhandled(), ["a2", "a3"]);
        assert_eq!(report.skipped(), 1);
        let ran = ran.into_inner().unwrap();
        assert!(
            !ran.contains(&"a3".to_owned()),
            "a3 must not run after a2 failed: {ran:?}"
        );
        let order_b: Vec<_> = ran.iter().filter(|id| id.starts_with('b')).collect();
        assert_eq!(order_b, ["b1", "b2", "b3"]);
    }

    #[tokio::test]
    async fn standard_queue_runs_records_concurrently_up_to_the_bound() {
        let in_flight = Mutex::new((0usize, 0usize)); // (current, max)
        let e = (0..8).map(|i| record(&i.to_string(), "ok", None)).collect();
        BatchProcessor::new()
            .with_concurrency(NonZeroUsize::new(3).unwrap())
            .process(e, soon(), |_| async {
                {
                    let mut g = in_flight.lock().unwrap();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                }
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                in_flight.lock().unwrap().0 -= 1;
                Ok::<(), String>(())
            })
            .await
            .unwrap();
        assert_eq!(in_flight.into_inner().unwrap().1, 3);
    }

    /// Rejects bodies starting with "poison", defers "busy", fails "bad".
    #[derive(Debug)]
    enum Classified {
        Poison,
        Busy,
        Bad,
    }

    impl Display for Classified {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl RecordError for Classified {
        fn disposition(&self) -> Disposition {
            match self {
                Self::Poison => Disposition::Reject(Rejection {
                    code: "InvalidFields",
                    fields: vec!["email"],
                }),
                Self::Busy => Disposition::Expected,
                Self::Bad => Disposition::Retry,
            }
        }
    }

    async fn classify(record: Message) -> Result<(), Classified> {
        match record.body.as_deref() {
            Some(b) if b.starts_with("poison") => Err(Classified::Poison),
            Some(b) if b.starts_with("busy") => Err(Classified::Busy),
            Some(b) if b.starts_with("bad") => Err(Classified::Bad),
            _ => Ok(()),
        }
    }

    /// Keeps dead letters; refuses them while `refuse` is set.
    #[derive(Default)]
    struct Sink {
        letters: Mutex<Vec<DeadLetter>>,
        refuse: std::sync::atomic::AtomicBool,
    }

    impl DeadLetterSink for Sink {
        fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err("queue unavailable".to_owned());
                }
                self.letters.lock().unwrap().push(letter.clone());
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn a_record_that_can_never_succeed_is_dead_lettered_with_its_reason_and_handled() {
        let sink = Arc::new(Sink::default());
        let mut poison = record("2", "poison body", None);
        poison.first_seen_ms = Some(1_700_000_000_000);
        let e = vec![record("1", "ok", None), poison, record("3", "bad", None)];
        let report = BatchProcessor::new()
            .with_dead_letters(sink.clone())
            .run(e, soon(), classify)
            .await;
        assert_eq!(
            report.unhandled(),
            ["3"],
            "only the transient failure is retried"
        );
        assert_eq!(
            report.records[1].1,
            RecordOutcome::DeadLettered("InvalidFields")
        );
        let letters = sink.letters.lock().unwrap().clone();
        assert_eq!(
            letters,
            [DeadLetter {
                source_message_id: "2".into(),
                body: "poison body".into(),
                message_group_id: None,
                first_seen_ms: Some(1_700_000_000_000),
                reason: Rejection {
                    code: "InvalidFields",
                    fields: vec!["email"]
                },
            }]
        );
    }

    #[tokio::test]
    async fn a_rejected_record_stays_on_the_retry_path_when_the_dead_letter_queue_refuses_it() {
        let sink = Arc::new(Sink::default());
        sink.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = vec![record("1", "poison", None), record("2", "ok", None)];
        let response = BatchProcessor::new()
            .with_dead_letters(sink.clone())
            .process(e, soon(), classify)
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["1"]);
        assert!(sink.letters.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_batch_of_expected_retries_is_reported_but_is_not_an_invocation_error() {
        let e = vec![record("1", "busy", None), record("2", "busy", None)];
        let response = BatchProcessor::new()
            .process(e, soon(), classify)
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["1", "2"]);
        let e = vec![record("1", "busy", None), record("2", "bad", None)];
        let report = BatchProcessor::new().run(e, soon(), classify).await;
        assert_eq!((report.deferred(), report.failed()), (1, 1));
    }

    #[tokio::test]
    async fn a_dead_lettered_record_does_not_break_its_fifo_group() {
        let sink = Arc::new(Sink::default());
        let e = vec![
            record("a1", "poison", Some("A")),
            record("a2", "ok", Some("A")),
        ];
        let report = BatchProcessor::new()
            .with_dead_letters(sink.clone())
            .run(e, soon(), classify)
            .await;
        assert!(report.unhandled().is_empty());
        assert_eq!(
            sink.letters.lock().unwrap()[0].message_group_id.as_deref(),
            Some("A")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_still_running_at_the_deadline_fail_alone_and_the_answer_comes_in_time() {
        let e = vec![
            record("fast", "ok", None),
            record("slow", "hang", None),
            record("fast2", "ok", None),
        ];
        let (lambda, deadline) = lambda_deadline();
        let processor = BatchProcessor::new().with_concurrency(NonZeroUsize::new(3).unwrap());
        let report = tokio::time::timeout_at(
            lambda,
            processor.run(e, deadline, |r| async move {
                if r.body.as_deref() == Some("hang") {
                    std::future::pending::<()>().await;
                }
                Ok::<(), String>(())
            }),
        )
        .await
        .expect("answered before Lambda's deadline");
        assert_eq!(report.unhandled(), ["slow"]);
        assert_eq!(
            report.records[1].1,
            RecordOutcome::Failed("not finished by the invocation's deadline".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_handler_past_the_deadline_fails_every_record_it_did_not_answer() {
        let e = vec![record("1", "ok", None), record("2", "ok", None)];
        let response = BatchProcessor::new()
            .on_all_failed(AllFailed::Report)
            .process_batch(
                e,
                Deadline::after(std::time::Duration::from_secs(1)),
                |_| async {
                    std::future::pending::<()>().await;
                    vec![Ok::<(), String>(())]
                },
            )
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["1", "2"]);
    }

    /// Lambda's deadline, 3 s from now, and the invocation's [`Deadline`]
    /// built from it once, as the functions do.
    fn lambda_deadline() -> (tokio::time::Instant, Deadline) {
        let lambda = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        (
            lambda,
            Deadline::for_invocation(3_000, 0, std::time::Duration::from_secs(3)),
        )
    }

    /// An idempotency store that takes locks but never answers a completion.
    struct CompletionsHang(crate::idempotency::MemoryStore);

    impl crate::idempotency::IdempotencyStore for CompletionsHang {
        async fn acquire(
            &self,
            record: &crate::idempotency::Record,
            now_ms: u64,
        ) -> Result<crate::idempotency::Acquire, crate::idempotency::StoreError> {
            self.0.acquire(record, now_ms).await
        }
        async fn complete_all(
            &self,
            _: &[crate::idempotency::Record],
        ) -> Vec<Result<(), crate::idempotency::CompleteError>> {
            std::future::pending().await
        }
        async fn release(
            &self,
            record: &crate::idempotency::Record,
        ) -> Result<(), crate::idempotency::StoreError> {
            self.0.release(record).await
        }
    }

    /// Item 2 of issue 16: a batch handler whose last step (completing its
    /// locks) is still waiting on the store at the deadline. The
    /// completion stops at the deadline, so the handler answers and the
    /// batch keeps every outcome it reached (a success, a deferral, a
    /// rejection), rather than all becoming failures; the partial batch
    /// response is back before Lambda's deadline.
    #[tokio::test(start_paused = true)]
    async fn a_batch_whose_completions_hang_keeps_its_outcomes_and_answers_before_lambdas_deadline()
    {
        use crate::idempotency::{payload_hash, Begin, Idempotency, MemoryStore, Window};
        let (lambda, deadline) = lambda_deadline();
        let idem = Idempotency::new(
            CompletionsHang(MemoryStore::default()),
            "fn",
            std::time::Duration::from_secs(3600),
        );
        let sink = Arc::new(Sink::default());
        let e = vec![
            record("1", "ok", None),
            record("2", "busy", None),
            record("3", "poison", None),
        ];
        let processor = BatchProcessor::new().with_dead_letters(sink.clone());
        let answer = tokio::time::timeout_at(
            lambda,
            processor.process_batch(e, deadline, |records| {
                let idem = &idem;
                async move {
                    let window = Window {
                        now_ms: 0,
                        deadline_ms: 3_000,
                    };
                    let Ok(Begin::Acquired(lock)) =
                        idem.begin::<()>("1", payload_hash(["1"]), window).await
                    else {
                        panic!("a fresh lock");
                    };
                    let results: Vec<Result<(), Classified>> =
                        futures::future::join_all(records.into_iter().map(classify)).await;
                    let completion = idem.complete_all(vec![(lock, &())], deadline).await;
                    assert_eq!(completion.failed, ["fn#1"], "the completion was cut");
                    results
                }
            }),
        )
        .await
        .expect("answered before Lambda's deadline")
        .unwrap();
        assert_eq!(
            answer.records,
            [
                ("1".to_owned(), RecordOutcome::Succeeded),
                ("2".to_owned(), RecordOutcome::Deferred("Busy".into())),
                ("3".to_owned(), RecordOutcome::DeadLettered("InvalidFields")),
            ]
        );
        assert_eq!(sink.letters.lock().unwrap().len(), 1);
    }

    /// Item 2 of issue 16: the dead-letter send runs after the work, in the
    /// time left. A dead-letter queue that never answers is cut at the
    /// deadline: the record stays on the retry path, the others keep their
    /// outcome, and the answer is back before Lambda's deadline.
    #[tokio::test(start_paused = true)]
    async fn a_dead_letter_send_that_hangs_is_cut_at_the_deadline_and_its_record_retried() {
        struct Hangs;
        impl DeadLetterSink for Hangs {
            fn send<'a>(&'a self, _: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
                Box::pin(std::future::pending())
            }
        }
        let (lambda, deadline) = lambda_deadline();
        let e = vec![record("1", "ok", None), record("2", "poison", None)];
        let processor = BatchProcessor::new().with_dead_letters(Arc::new(Hangs));
        let report = tokio::time::timeout_at(lambda, processor.process(e, deadline, classify))
            .await
            .expect("answered before Lambda's deadline")
            .unwrap();
        assert_eq!(report.unhandled(), ["2"]);
        assert_eq!(report.records[0].1, RecordOutcome::Succeeded);
        assert_eq!(report.records[1].1, RecordOutcome::Failed("Poison".into()));
    }
}
