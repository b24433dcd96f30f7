//! SQS batch processing with partial batch responses.
//!
//! Lambda's SQS event source mapping with `ReportBatchItemFailures` deletes
//! every message of a batch except those the function lists in
//! `batchItemFailures`; those become visible again after the visibility
//! timeout and, after `maxReceiveCount` receives, move to the DLQ.
//! [`BatchProcessor::process`] runs one handler per record and builds that
//! list, so that:
//!
//! - a record whose handler returns `Err` or **panics** fails alone: the other
//!   records of the batch are still processed and deleted;
//! - on a **FIFO** queue, records run in order within their message group, and
//!   after the first failure in a group the rest of that group is reported
//!   failed without being run (processing them would break the group's order);
//!   other groups carry on;
//! - on a **standard** queue, records run concurrently up to a bound;
//! - when **every** record fails, the invocation returns an error by default
//!   ([`AllFailed::Error`]), as Powertools does: the outcome for the messages
//!   is the same (all are retried), but Lambda's `Errors` metric and alarms
//!   see it and the event source mapping backs off instead of hammering a
//!   broken dependency. [`AllFailed::Report`] lists them all instead.
//! - a record without a `messageId` cannot be reported, and an unknown
//!   identifier would fail the whole batch anyway, so the invocation errors
//!   before running anything.

use crate::metrics::Metrics;
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{stream, FutureExt, StreamExt};
use std::fmt::Display;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use thiserror::Error;
use tracing::Instrument;

/// A record with its position in the batch and its message id.
type Indexed = (usize, String, SqsMessage);

/// What to do when every record of a batch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllFailed {
    /// Fail the invocation (the default, as in Powertools).
    #[default]
    Error,
    /// Report every record in `batchItemFailures` and succeed.
    Report,
}

/// A batch the processor refused or could not complete.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// A record has no `messageId`, so a partial response cannot name it.
    #[error(
        "record {index} of the batch has no messageId; failing the whole batch so it is retried"
    )]
    MissingMessageId {
        /// 0-based position in the batch.
        index: usize,
    },
    /// Every record failed and the policy is [`AllFailed::Error`].
    #[error("all {count} records of the batch failed (first: {first_error})")]
    AllFailed {
        /// Number of records.
        count: usize,
        /// The first record's error message.
        first_error: String,
    },
}

/// Lets a batch handler return [`BatchError`] to the runtime with a meaningful `errorType`.
impl From<BatchError> for lambda_runtime::Diagnostic {
    fn from(e: BatchError) -> Self {
        let error_type = match e {
            BatchError::MissingMessageId { .. } => "MissingMessageId",
            BatchError::AllFailed { .. } => "AllRecordsFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The handler returned `Ok`.
    Succeeded,
    /// The handler returned `Err` or panicked; the message says which.
    Failed(String),
    /// Not run: an earlier record of the same FIFO message group failed.
    Skipped,
}

/// The per-record outcomes of one batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// `(messageId, outcome)` for every record.
    pub records: Vec<(String, RecordOutcome)>,
}

impl BatchReport {
    /// Number of records that succeeded.
    pub fn succeeded(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Succeeded))
    }

    /// Number of records that failed (not counting skipped ones).
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Failed(_)))
    }

    /// Number of records skipped behind a failure in their FIFO group.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Skipped))
    }

    fn count(&self, f: impl Fn(&RecordOutcome) -> bool) -> usize {
        self.records.iter().filter(|(_, o)| f(o)).count()
    }

    /// The partial batch response: every record that did not succeed.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (id, outcome) in &self.records {
            if *outcome != RecordOutcome::Succeeded {
                response.add_failure(id.clone());
            }
        }
        response
    }
}

/// Runs a handler over the records of an SQS batch. Build it once per cold start.
#[derive(Debug, Clone)]
pub struct BatchProcessor {
    concurrency: NonZeroUsize,
    all_failed: AllFailed,
    metrics: Option<Arc<Metrics>>,
}

impl Default for BatchProcessor {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchProcessor {
    /// Sequential processing, [`AllFailed::Error`].
    pub const fn new() -> Self {
        Self {
            concurrency: NonZeroUsize::MIN,
            all_failed: AllFailed::Error,
            metrics: None,
        }
    }

    /// Records `RecordsProcessed` and `RecordsFailed` of every batch in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs up to `n` records (standard queue) or message groups (FIFO) at once.
    pub const fn with_concurrency(mut self, n: NonZeroUsize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the all-records-failed policy.
    pub const fn on_all_failed(mut self, policy: AllFailed) -> Self {
        self.all_failed = policy;
        self
    }

    /// Processes `event` and returns the partial batch response for Lambda.
    pub async fn process<F, Fut, E>(
        &self,
        event: SqsEvent,
        handler: F,
    ) -> Result<SqsBatchResponse, BatchError>
    where
        F: Fn(SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let report = self.run(event, handler).await?;
        self.respond(report)
    }

    /// Processes `event` with a handler that takes many records at once, so
    /// it can use batch APIs (one `SendMessageBatch` for the whole batch…).
    /// It returns one result per record, in order. On a FIFO queue the
    /// handler is called one record at a time, in group order, to keep the
    /// ordering guarantees of [`BatchProcessor::process`]. A panic fails
    /// every record of that call; a missing result fails its record.
    pub async fn process_batch<F, Fut, E>(
        &self,
        event: SqsEvent,
        handler: F,
    ) -> Result<SqsBatchResponse, BatchError>
    where
        F: Fn(Vec<SqsMessage>) -> Fut,
        Fut: Future<Output = Vec<Result<(), E>>>,
        E: Display,
    {
        let fifo = event.records.iter().any(is_fifo_record);
        if fifo {
            let report = self
                .run(event, |record| {
                    let results = handler(vec![record]);
                    async move {
                        results
                            .await
                            .into_iter()
                            .next()
                            .unwrap_or_else(|| Ok(()))
                            .map_err(|e| e.to_string())
                    }
                })
                .await?;
            return self.respond(report);
        }
        let records = checked(event)?;
        let ids: Vec<String> = records.iter().map(|(_, id, _)| id.clone()).collect();
        let messages: Vec<SqsMessage> = records.into_iter().map(|(_, _, r)| r).collect();
        let span = tracing::info_span!("batch", records = ids.len());
        let results = AssertUnwindSafe(async { handler(messages).await })
            .catch_unwind()
            .instrument(span)
            .await;
        let outcomes: Vec<RecordOutcome> = match results {
            Ok(results) => {
                let mut results = results.into_iter();
                ids.iter()
                    .map(|_| match results.next() {
                        Some(Ok(())) => RecordOutcome::Succeeded,
                        Some(Err(e)) => RecordOutcome::Failed(e.to_string()),
                        None => RecordOutcome::Failed(
                            "the batch handler returned no result for this record".to_owned(),
                        ),
                    })
                    .collect()
            }
            Err(_) => {
                tracing::error!("batch handler panicked");
                ids.iter()
                    .map(|_| RecordOutcome::Failed("batch handler panicked".to_owned()))
                    .collect()
            }
        };
        for (id, outcome) in ids.iter().zip(&outcomes) {
            if let RecordOutcome::Failed(error) = outcome {
                // In the record's span, so the line carries its correlation id.
                let _record = tracing::info_span!("record", message_id = %id).entered();
                tracing::warn!(error = %error, "record failed");
            }
        }
        self.respond(BatchReport {
            records: ids.into_iter().zip(outcomes).collect(),
        })
    }

    /// Logs the summary and applies the all-failed policy.
    fn respond(&self, report: BatchReport) -> Result<SqsBatchResponse, BatchError> {
        if let Some(metrics) = &self.metrics {
            metrics.record_batch(&report);
        }
        let failed = report.failed() + report.skipped();
        tracing::info!(
            records = report.records.len(),
            succeeded = report.succeeded(),
            failed = report.failed(),
            skipped = report.skipped(),
            "batch processed"
        );
        if self.all_failed == AllFailed::Error && failed > 0 && report.succeeded() == 0 {
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
        Ok(report.response())
    }

    /// Processes `event` and returns every record's outcome (for callers that
    /// record metrics or want to decide themselves).
    pub async fn run<F, Fut, E>(
        &self,
        event: SqsEvent,
        handler: F,
    ) -> Result<BatchReport, BatchError>
    where
        F: Fn(SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let records = checked(event)?;
        let is_fifo = records.iter().any(|(_, _, r)| is_fifo_record(r));
        let mut outcomes: Vec<(usize, String, RecordOutcome)> = if is_fifo {
            self.run_fifo(records, &handler).await
        } else {
            let handler = &handler;
            stream::iter(records)
                .map(|(index, id, record)| async move {
                    let outcome = run_one(handler, &id, record).await;
                    (index, id, outcome)
                })
                .buffer_unordered(self.concurrency.get())
                .collect()
                .await
        };
        outcomes.sort_unstable_by_key(|(index, _, _)| *index);
        Ok(BatchReport {
            records: outcomes.into_iter().map(|(_, id, o)| (id, o)).collect(),
        })
    }

    async fn run_fifo<F, Fut, E>(
        &self,
        records: Vec<Indexed>,
        handler: &F,
    ) -> Vec<(usize, String, RecordOutcome)>
    where
        F: Fn(SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        // Groups in order of first appearance; records keep their order inside a group.
        let mut groups: Vec<(String, Vec<Indexed>)> = Vec::new();
        for record in records {
            let group = record
                .2
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, members)) => members.push(record),
                None => groups.push((group, vec![record])),
            }
        }
        let per_group: Vec<Vec<(usize, String, RecordOutcome)>> = stream::iter(groups)
            .map(|(_, members)| async move {
                let mut outcomes = Vec::with_capacity(members.len());
                let mut broken = false;
                for (index, id, record) in members {
                    let outcome = if broken {
                        RecordOutcome::Skipped
                    } else {
                        run_one(handler, &id, record).await
                    };
                    broken |= outcome != RecordOutcome::Succeeded;
                    outcomes.push((index, id, outcome));
                }
                outcomes
            })
            .buffer_unordered(self.concurrency.get())
            .collect()
            .await;
        per_group.into_iter().flatten().collect()
    }
}

/// The records with their positions and ids; refuses a batch with a record
/// that has no `messageId`, before anything runs.
fn checked(event: SqsEvent) -> Result<Vec<Indexed>, BatchError> {
    let mut records = Vec::with_capacity(event.records.len());
    for (index, record) in event.records.into_iter().enumerate() {
        match record.message_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => records.push((index, id, record)),
            None => return Err(BatchError::MissingMessageId { index }),
        }
    }
    Ok(records)
}

fn is_fifo_record(record: &SqsMessage) -> bool {
    record
        .event_source_arn
        .as_deref()
        .is_some_and(|arn| arn.ends_with(".fifo"))
        || record.attributes.contains_key("MessageGroupId")
}

async fn run_one<F, Fut, E>(handler: &F, id: &str, record: SqsMessage) -> RecordOutcome
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let span = tracing::info_span!("record", message_id = %id);
    // A panic must cost one record, not the batch. The handler's state is not
    // observed after a panic (the future is dropped), hence AssertUnwindSafe.
    let result = AssertUnwindSafe(async { handler(record).await })
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    match result {
        Ok(Ok(())) => RecordOutcome::Succeeded,
        Ok(Err(e)) => {
            let message = e.to_string();
            tracing::warn!(error = %message, "record failed");
            RecordOutcome::Failed(message)
        }
        Err(_) => {
            tracing::error!("record handler panicked");
            RecordOutcome::Failed("record handler panicked".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn record(id: &str, body: &str, group: Option<&str>) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.to_owned());
        r.body = Some(body.to_owned());
        if let Some(g) = group {
            r.attributes
                .insert("MessageGroupId".to_owned(), g.to_owned());
            r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:q.fifo".to_owned());
        }
        r
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn failures(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    /// Fails bodies starting with "bad", panics on "panic".
    async fn handler(record: SqsMessage) -> Result<(), String> {
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
        let e = event(vec![
            record("1", "ok", None),
            record("2", "bad", None),
            record("3", "ok", None),
        ]);
        let response = BatchProcessor::new().process(e, handler).await.unwrap();
        assert_eq!(failures(&response), ["2"]);
    }

    #[tokio::test]
    async fn panicking_record_fails_alone() {
        let e = event(vec![record("1", "panic", None), record("2", "ok", None)]);
        let report = BatchProcessor::new().run(e, handler).await.unwrap();
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
        let e = event(vec![record("1", "ok", None), record("2", "ok", None)]);
        let response = BatchProcessor::new().process(e, handler).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"batchItemFailures":[]}"#
        );
    }

    #[tokio::test]
    async fn all_failed_errors_by_default_and_reports_on_request() {
        let e = || event(vec![record("1", "bad", None), record("2", "bad", None)]);
        let err = BatchProcessor::new()
            .process(e(), handler)
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
            .process(e(), handler)
            .await
            .unwrap();
        assert_eq!(failures(&response), ["1", "2"]);
    }

    #[tokio::test]
    async fn batch_handler_results_map_back_to_their_records() {
        let e = event(vec![
            record("1", "ok", None),
            record("2", "bad", None),
            record("3", "ok", None),
        ]);
        let response = BatchProcessor::new()
            .process_batch(e, |records| async move {
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
        assert_eq!(failures(&response), ["2"]);
    }

    #[tokio::test]
    async fn batch_handler_missing_results_and_panics_fail_records() {
        let e = || event(vec![record("1", "ok", None), record("2", "ok", None)]);
        let short = BatchProcessor::new()
            .process_batch(e(), |_| async { vec![Ok::<(), String>(())] })
            .await
            .unwrap();
        assert_eq!(failures(&short), ["2"]);
        let panicked = BatchProcessor::new()
            .on_all_failed(AllFailed::Report)
            .process_batch(e(), |_| async {
                panic!("boom");
                #[allow(unreachable_code)]
                Vec::<Result<(), String>>::new()
            })
            .await
            .unwrap();
        assert_eq!(failures(&panicked), ["1", "2"]);
    }

    #[tokio::test]
    async fn batch_handler_on_fifo_keeps_group_order() {
        let e = event(vec![
            record("a1", "ok", Some("A")),
            record("a2", "bad", Some("A")),
            record("a3", "ok", Some("A")),
            record("b1", "ok", Some("B")),
        ]);
        let calls = Mutex::new(Vec::new());
        let response = BatchProcessor::new()
            .process_batch(e, |records| {
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
        assert_eq!(failures(&response), ["a2", "a3"]);
        assert!(
            calls.into_inner().unwrap().iter().all(|n| *n == 1),
            "one record per call on FIFO"
        );
    }

    #[tokio::test]
    async fn empty_batch_succeeds() {
        let response = BatchProcessor::new()
            .process(event(vec![]), handler)
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn record_without_message_id_fails_the_batch_before_running_anything() {
        let mut anonymous = record("", "ok", None);
        anonymous.message_id = None;
        let ran = Mutex::new(0);
        let err = BatchProcessor::new()
            .process(event(vec![record("1", "ok", None), anonymous]), |_| {
                *ran.lock().unwrap() += 1;
                async { Ok::<(), String>(()) }
            })
            .await
            .unwrap_err();
        assert_eq!(err, BatchError::MissingMessageId { index: 1 });
        assert_eq!(*ran.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn fifo_failure_skips_the_rest_of_its_group_only() {
        let e = event(vec![
            record("a1", "ok", Some("A")),
            record("b1", "ok", Some("B")),
            record("a2", "bad", Some("A")),
            record("b2", "ok", Some("B")),
            record("a3", "ok", Some("A")),
            record("b3", "ok", Some("B")),
        ]);
        let ran = Mutex::new(Vec::new());
        let report = BatchProcessor::new()
            .with_concurrency(NonZeroUsize::new(4).unwrap())
            .run(e, |r| {
                ran.lock().unwrap().push(r.message_id.clone().unwrap());
                handler(r)
            })
            .await
            .unwrap();
        assert_eq!(failures(&report.response()), ["a2", "a3"]);
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
        let e = event((0..8).map(|i| record(&i.to_string(), "ok", None)).collect());
        BatchProcessor::new()
            .with_concurrency(NonZeroUsize::new(3).unwrap())
            .process(e, |_| async {
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
}
