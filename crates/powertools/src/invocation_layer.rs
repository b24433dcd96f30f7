//! What every invocation records, as one tower layer around the handler.
//!
//! [`MetricsLayer`] wraps a function's handler service, in the style of
//! `lambda_runtime::layers` (trace, panic, otel), and for each invocation:
//!
//! 1. adds `ColdStart` = 1 on the first invocation the layer sees (it is
//!    built once per process, so that is the process's cold start);
//! 2. runs the handler inside an `invocation` span
//!    ([`crate::logging::INVOCATION_SPAN`]) carrying the invoked ARN (the
//!    logs' `function_arn`), then counts its [`Outcome`]: an SQS batch's
//!    report counts, or one event's `RecordsProcessed`, `RecordsFailed` or
//!    (an expected retry) `RecordsDeferred`;
//! 3. flushes everything added during the invocation as EMF to stdout.
//!
//! This module is where eventline's metric names live; `metrics`, `batch`
//! and `idempotency` know none and nothing of each other, so no module
//! cycle ([`idempotency_metrics`] counts the guard's events). Why it wraps
//! the handler and not the runtime: docs/observability.md ("The metrics layer").
//!
//! ```ignore
//! let service = sqs::service(|messages, deadline_ms| use_case.handle(messages, deadline_ms));
//! lambda_runtime::run(MetricsLayer::new(metrics).layer(service)).await
//! ```

use crate::batch::{BatchError, Disposition, RecordError};
use crate::idempotency;
use crate::logging::{FUNCTION_ARN, INVOCATION_SPAN};
use crate::metrics::{Metrics, Unit};
use crate::sqs::{self, BatchResponse};
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaEvent;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Counted once, on the first invocation of the process.
pub const COLD_START: &str = "ColdStart";
/// Records (or single events) handled: done with, deleted from the queue.
pub const RECORDS_PROCESSED: &str = "RecordsProcessed";
/// Records that failed or were skipped behind a failure: they will be
/// retried (single events: the invocation failed).
pub const RECORDS_FAILED: &str = "RecordsFailed";
/// Records retried as expected traffic (e.g. a duplicate still in progress).
/// For one event (EventBridge) that is a failed invocation Lambda retries,
/// counted in Lambda's `Errors` too: the errors alarms of those functions
/// subtract it (template.yaml, docs/reliability.md).
pub const RECORDS_DEFERRED: &str = "RecordsDeferred";
/// Records sent to the dead-letter queue as never able to succeed.
pub const RECORDS_DEAD_LETTERED: &str = "RecordsDeadLettered";
/// Duplicates answered from a completed idempotency record.
pub const IDEMPOTENT_REPLAYS: &str = "IdempotentReplays";
/// Idempotency completions the store never wrote before the deadline.
pub const IDEMPOTENCY_COMPLETIONS_LOST: &str = "IdempotencyCompletionsLost";

/// What a handler's result says about the records it handled.
pub trait Outcome {
    /// Adds the result's counts to `metrics`.
    fn record(&self, metrics: &Metrics);
}

/// One event per invocation (EventBridge): processed, deferred (an
/// expected retry) or failed.
impl<E: RecordError> Outcome for Result<(), E> {
    fn record(&self, metrics: &Metrics) {
        let name = match self {
            Ok(()) => RECORDS_PROCESSED,
            Err(e) if e.disposition() == Disposition::Expected => RECORDS_DEFERRED,
            Err(_) => RECORDS_FAILED,
        };
        metrics.add(name, Unit::Count, 1.0);
    }
}

/// An SQS batch: every record's outcome, from the batch report. A batch
/// refused as a whole for having no usable ids counts nothing (its records
/// were never run).
impl Outcome for Result<BatchResponse, sqs::Error> {
    fn record(&self, metrics: &Metrics) {
        let (processed, failed, deferred, dead_lettered) = match self {
            Ok(response) => {
                let report = response.report();
                (
                    report.succeeded(),
                    report.failed() + report.skipped(),
                    report.deferred(),
                    report.dead_lettered(),
                )
            }
            Err(sqs::Error::Batch(BatchError::AllFailed { count, .. })) => (0, *count, 0, 0),
            Err(sqs::Error::MissingMessageId { .. }) => return,
        };
        for (name, count) in [
            (RECORDS_PROCESSED, processed),
            (RECORDS_FAILED, failed),
            (RECORDS_DEFERRED, deferred),
            (RECORDS_DEAD_LETTERED, dead_lettered),
        ] {
            metrics.add(name, Unit::Count, count as f64);
        }
    }
}

/// What the layer reads from a request: the ARN the invocation was made
/// with, if it has one.
pub trait Invocation {
    /// The invoked ARN (`None` when unknown).
    fn invoked_function_arn(&self) -> Option<&str>;
}

impl<T> Invocation for LambdaEvent<T> {
    fn invoked_function_arn(&self) -> Option<&str> {
        Some(self.context.invoked_function_arn.as_str()).filter(|arn| !arn.is_empty())
    }
}

/// A request without a context (tests).
impl Invocation for () {
    fn invoked_function_arn(&self) -> Option<&str> {
        None
    }
}

/// An observer for [`idempotency::Idempotency::observed_by`] that counts
/// replays and lost completions in `metrics`.
pub fn idempotency_metrics(metrics: Arc<Metrics>) -> impl Fn(idempotency::Event) + Send + Sync {
    move |event| match event {
        idempotency::Event::Replayed => metrics.add(IDEMPOTENT_REPLAYS, Unit::Count, 1.0),
        idempotency::Event::CompletionsLost { records } => {
            metrics.add(IDEMPOTENCY_COMPLETIONS_LOST, Unit::Count, records as f64);
        }
    }
}

/// Where the documents go after each invocation.
#[derive(Clone)]
enum Sink {
    /// Lambda sends stdout to CloudWatch Logs, which extracts the metrics.
    Stdout,
    /// Kept in memory (tests).
    #[cfg(test)]
    Memory(Arc<std::sync::Mutex<Vec<u8>>>),
}

impl Sink {
    fn flush(&self, metrics: &Metrics) {
        match self {
            Self::Stdout => metrics.flush_to_stdout(),
            #[cfg(test)]
            Self::Memory(buffer) => metrics.flush_to(
                &mut *buffer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
        }
    }
}

/// Cold start, outcome and EMF flush around each invocation of a handler.
/// Build it once per process.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    /// `true` until the first invocation; shared by every service it makes.
    cold: Arc<AtomicBool>,
    sink: Sink,
}

impl MetricsLayer {
    /// Records in `metrics` (which the handler's parts may add to as well)
    /// and flushes them to stdout after each invocation.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            cold: Arc::new(AtomicBool::new(true)),
            sink: Sink::Stdout,
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`MetricsLayer`] makes around a handler service.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    layer: MetricsLayer,
}

impl<S, Request> Service<Request> for MetricsService<S>
where
    S: Service<Request>,
    Request: Invocation,
    Result<S::Response, S::Error>: Outcome,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.layer.cold.swap(false, Ordering::Relaxed) {
            self.layer.metrics.add(COLD_START, Unit::Count, 1.0);
        }
        let span = tracing::info_span!(
            INVOCATION_SPAN,
            { FUNCTION_ARN } = request.invoked_function_arn()
        );
        // The handler's synchronous part runs in the span too.
        let inner = span.in_scope(|| self.inner.call(request));
        MetricsFuture {
            inner,
            span,
            layer: self.layer.clone(),
        }
    }
}

pin_project! {
    /// The handler's future; counts its outcome and flushes when it ends.
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        layer: MetricsLayer,
    }
}

impl<F, R, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<R, E>>,
    Result<R, E>: Outcome,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        output.record(&this.layer.metrics);
        this.layer.sink.flush(&this.layer.metrics);
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchProcessor, Deadline, Message};
    use crate::sqs::{SqsEvent, SqsMessage};
    use lambda_runtime::tower::{service_fn, ServiceExt};
    use lambda_runtime::LambdaEvent;
    use serde_json::Value;
    use std::sync::Mutex;
    use std::time::Duration;

    /// A layer whose documents land in the returned buffer.
    fn layer() -> (MetricsLayer, Arc<Mutex<Vec<u8>>>) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let mut layer = MetricsLayer::new(Arc::new(Metrics::new("eventline", "svc", "fn")));
        layer.sink = Sink::Memory(buffer.clone());
        (layer, buffer)
    }

    /// The documents flushed so far, parsed, and forgotten.
    fn documents(buffer: &Mutex<Vec<u8>>) -> Vec<Value> {
        let bytes = std::mem::take(&mut *buffer.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The SQS event of records whose ids are their bodies.
    fn batch(ids: &[&str]) -> LambdaEvent<SqsEvent> {
        let mut event = SqsEvent::default();
        event.records = ids
            .iter()
            .map(|id| {
                let mut record = SqsMessage::default();
                record.message_id = Some((*id).to_owned());
                record.body = Some((*id).to_owned());
                record
            })
            .collect();
        LambdaEvent::new(event, lambda_runtime::Context::default())
    }

    /// Processes `messages`, failing those `fails` says fail.
    async fn process(
        messages: Vec<Message>,
        fails: fn(&Message) -> bool,
    ) -> Result<crate::batch::BatchReport, BatchError> {
        let later = Deadline::after(Duration::from_secs(30));
        BatchProcessor::new()
            .process(messages, later, |message| async move {
                if fails(&message) {
                    Err("bad record".to_owned())
                } else {
                    Ok(())
                }
            })
            .await
    }

    #[tokio::test]
    async fn cold_start_is_counted_on_the_first_invocation_only_and_each_is_flushed() {
        let (layer, buffer) = layer();
        let mut service = layer.layer(service_fn(|_: ()| async { Ok::<(), String>(()) }));
        service.ready().await.unwrap().call(()).await.unwrap();
        let first = documents(&buffer);
        assert_eq!(first.len(), 1, "one document per invocation");
        assert_eq!(first[0][COLD_START], 1);
        assert_eq!(first[0][RECORDS_PROCESSED], 1);

        service.ready().await.unwrap().call(()).await.unwrap();
        let second = documents(&buffer);
        assert_eq!(second.len(), 1);
        assert!(second[0].get(COLD_START).is_none(), "{}", second[0]);
        assert_eq!(second[0][RECORDS_PROCESSED], 1);
    }

    #[tokio::test]
    async fn a_failed_event_counts_as_failed_and_the_error_passes_through() {
        let (layer, buffer) = layer();
        let service = layer.layer(service_fn(|_: ()| async { Err::<(), _>("down") }));
        assert_eq!(service.oneshot(()).await, Err("down"));
        let doc = &documents(&buffer)[0];
        assert_eq!(doc[RECORDS_FAILED], 1);
        assert!(doc.get(RECORDS_PROCESSED).is_none(), "{doc}");
    }

    /// Item 3 of issue 16: an event whose first copy is still in progress
    /// fails its invocation (Lambda retries it, and its on-failure
    /// destination keeps it if every retry fails) but counts as deferred,
    /// not failed: the errors alarm subtracts `RecordsDeferred` from Lambda's
    /// `Errors`.
    #[tokio::test]
    async fn an_expected_retry_of_one_event_fails_the_invocation_but_counts_as_deferred() {
        #[derive(Debug)]
        struct Busy;
        impl std::fmt::Display for Busy {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("k: another attempt is in progress; will retry")
            }
        }
        impl RecordError for Busy {
            fn disposition(&self) -> Disposition {
                Disposition::Expected
            }
            fn error_type(&self) -> &str {
                "InProgress"
            }
        }
        let (layer, buffer) = layer();
        let service = layer.layer(crate::eventbridge::service(|_, _| async {
            Err::<(), _>(Busy)
        }));
        let mut context = lambda_runtime::Context::default();
        context.deadline = 42;
        let failure = service
            .oneshot(LambdaEvent::new(serde_json::json!({}), context))
            .await
            .unwrap_err();
        assert_eq!(
            lambda_runtime::Diagnostic::from(failure).error_type,
            "InProgress",
            "still an invocation error: Lambda retries the event"
        );
        let doc = &documents(&buffer)[0];
        assert_eq!(doc[RECORDS_DEFERRED], 1);
        assert!(doc.get(RECORDS_FAILED).is_none(), "{doc}");
    }

    #[tokio::test]
    async fn a_batch_counts_every_record_outcome_and_answers_its_failures() {
        let (layer, buffer) = layer();
        let service = layer.layer(sqs::service(|messages, _| {
            process(messages, |m| m.body.as_deref() == Some("bad"))
        }));
        let response = service.oneshot(batch(&["1", "bad", "3"])).await.unwrap();
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
        );
        let doc = &documents(&buffer)[0];
        assert_eq!(doc[RECORDS_PROCESSED], 2);
        assert_eq!(doc[RECORDS_FAILED], 1);
        assert_eq!(doc[RECORDS_DEFERRED], 0);
        assert_eq!(doc[RECORDS_DEAD_LETTERED], 0);
    }

    #[tokio::test]
    async fn a_batch_that_all_failed_counts_every_record_as_failed() {
        let (layer, buffer) = layer();
        let service = layer.layer(sqs::service(|messages, _| process(messages, |_| true)));
        let result = service.oneshot(batch(&["1", "2"])).await;
        assert!(
            matches!(
                result,
                Err(sqs::Error::Batch(BatchError::AllFailed { count: 2, .. }))
            ),
            "{result:?}"
        );
        let doc = &documents(&buffer)[0];
        assert_eq!(doc[RECORDS_PROCESSED], 0);
        assert_eq!(doc[RECORDS_FAILED], 2);
    }

    #[tokio::test]
    async fn handler_lines_carry_the_invoked_function_arn() {
        use crate::logging::{self, Capture, LogConfig};
        let logs = Capture::new();
        let _guard = tracing::subscriber::set_default(logging::subscriber(
            &LogConfig::json("svc"),
            logs.clone(),
        ));
        let (layer, _buffer) = layer();
        let service = layer.layer(sqs::service(|messages, _| async move {
            tracing::info!("handling");
            process(messages, |_| false).await
        }));
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:eventline-user-processor:live";
        let mut event = batch(&["1"]);
        event.context.invoked_function_arn = arn.to_owned();
        service.oneshot(event).await.unwrap();
        let lines = logs.json_lines();
        let handling = lines.iter().find(|l| l["message"] == "handling").unwrap();
        assert_eq!(handling["function_arn"], arn);
        // Outside the invocation, no ARN.
        tracing::info!("after");
        let after = logs.json_lines().pop().unwrap();
        assert!(after.get("function_arn").is_none(), "{after}");
    }

    #[test]
    fn idempotency_events_become_replay_and_lost_completion_counts() {
        let metrics = Arc::new(Metrics::new("eventline", "svc", "fn"));
        let observe = idempotency_metrics(metrics.clone());
        observe(idempotency::Event::Replayed);
        observe(idempotency::Event::Replayed);
        observe(idempotency::Event::CompletionsLost { records: 3 });
        let doc: Value = serde_json::from_str(&metrics.flush()[0]).unwrap();
        assert_eq!(doc[IDEMPOTENT_REPLAYS], serde_json::json!([1, 1]));
        assert_eq!(doc[IDEMPOTENCY_COMPLETIONS_LOST], 3);
    }
}
