//! The SQS entrypoint: what an SQS-triggered Lambda function receives and
//! answers, mapped to and from the transport-neutral [`crate::batch`].
//!
//! ```text
//! LambdaEvent<SqsEvent> ─► messages() ─► handler(Vec<Message>, deadline_ms)
//!                                              │ Result<BatchReport, BatchError>
//!                                              ▼
//!                 {"batchItemFailures": [...]} ◄─ BatchResponse
//! ```
//!
//! - A record without a `messageId` cannot be reported, and an unknown
//!   identifier would fail the whole batch anyway, so the invocation errors
//!   ([`Error::MissingMessageId`]) before anything runs.
//! - A record of a FIFO queue carries its `MessageGroupId`, which becomes
//!   the message's group: the processor then keeps each group in order.
//! - `ApproximateFirstReceiveTimestamp` becomes the message's first-seen
//!   time, which a dead letter carries.
//! - Message attributes of type `String` (or `String.<label>`) become the
//!   message's attributes; the others (numbers, binaries) are left out.
//!   One of them may carry the correlation id
//!   ([`crate::batch::CORRELATION_ATTRIBUTE`]).
//! - The answer lists every record the report does not call handled, and
//!   keeps the report beside it so [`crate::invocation_layer`] can count outcomes.

use crate::batch::{BatchError, BatchReport, Message};
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::{ready, Either, Map, Ready};
use futures::FutureExt;
use lambda_runtime::tower::Service;
use lambda_runtime::{Diagnostic, LambdaEvent};
use std::future::Future;
use std::task::{Context, Poll};

/// Why an SQS invocation failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A record has no `messageId`, so a partial response cannot name it.
    #[error(
        "record {index} of the batch has no messageId; failing the whole batch so it is retried"
    )]
    MissingMessageId {
        /// 0-based position in the batch.
        index: usize,
    },
    /// The batch processor refused the batch (every record failed).
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// Lets the runtime report [`Error`] with a meaningful `errorType`.
impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = match e {
            Error::MissingMessageId { .. } => "MissingMessageId",
            Error::Batch(BatchError::AllFailed { .. }) => "AllRecordsFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The batch's messages, in order; refuses a batch with a record that has
/// no `messageId`.
fn messages(event: SqsEvent) -> Result<Vec<Message>, Error> {
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(index, record)| message(record).ok_or(Error::MissingMessageId { index }))
        .collect()
}

fn message(record: SqsMessage) -> Option<Message> {
    let id = record.message_id.filter(|id| !id.is_empty())?;
    let fifo_queue = record
        .event_source_arn
        .as_deref()
        .is_some_and(|arn| arn.ends_with(".fifo"));
    // A FIFO queue's records always carry their group; one that does not
    // is still kept in order, with the others like it.
    let group = record
        .attributes
        .get("MessageGroupId")
        .cloned()
        .or_else(|| fifo_queue.then(String::new));
    let first_seen_ms = record
        .attributes
        .get("ApproximateFirstReceiveTimestamp")
        .and_then(|t| t.parse().ok());
    let attributes = record
        .message_attributes
        .into_iter()
        .filter(|(_, a)| {
            a.data_type
                .as_deref()
                .is_some_and(|t| t == "String" || t.starts_with("String."))
        })
        .filter_map(|(name, a)| Some((name, a.string_value?)))
        .collect();
    Some(Message {
        id,
        body: record.body,
        group,
        first_seen_ms,
        attributes,
    })
}

/// What an SQS function answers: the partial batch response Lambda reads
/// (it serializes as `{"batchItemFailures": [...]}` and dereferences to
/// [`SqsBatchResponse`]), together with the [`BatchReport`] it was built
/// from, so a layer around the handler can count outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResponse {
    response: SqsBatchResponse,
    report: BatchReport,
}

impl BatchResponse {
    /// Every record's outcome.
    pub fn report(&self) -> &BatchReport {
        &self.report
    }
}

impl From<BatchReport> for BatchResponse {
    fn from(report: BatchReport) -> Self {
        let mut response = SqsBatchResponse::default();
        for id in report.unhandled() {
            response.add_failure(id.to_owned());
        }
        Self { response, report }
    }
}

impl std::ops::Deref for BatchResponse {
    type Target = SqsBatchResponse;

    fn deref(&self) -> &SqsBatchResponse {
        &self.response
    }
}

impl serde::Serialize for BatchResponse {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.response.serialize(serializer)
    }
}

/// The Lambda service of an SQS function whose `handler` takes the batch's
/// messages and the invocation's deadline (Unix ms, from the context):
/// `sqs::service(|messages, deadline_ms| use_case.handle(messages, deadline_ms))`.
pub fn service<F, Fut>(handler: F) -> SqsService<F>
where
    F: Fn(Vec<Message>, u64) -> Fut,
    Fut: Future<Output = Result<BatchReport, BatchError>>,
{
    SqsService { handler }
}

/// The service [`service`] makes. A named type rather than `impl Service`,
/// so that callers can see whether its future is `Send`.
#[derive(Debug, Clone)]
pub struct SqsService<F> {
    handler: F,
}

/// The future of an [`SqsService`]: the batch refused at once, or the
/// handler's report on its way to the answer.
type Answer<Fut> = Either<
    Ready<Result<BatchResponse, Error>>,
    Map<Fut, fn(Result<BatchReport, BatchError>) -> Result<BatchResponse, Error>>,
>;

impl<F, Fut> Service<LambdaEvent<SqsEvent>> for SqsService<F>
where
    F: Fn(Vec<Message>, u64) -> Fut,
    Fut: Future<Output = Result<BatchReport, BatchError>>,
{
    type Response = BatchResponse;
    type Error = Error;
    type Future = Answer<Fut>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<SqsEvent>) -> Self::Future {
        match messages(event.payload) {
            Ok(messages) => Either::Right(
                (self.handler)(messages, event.context.deadline).map(answer as fn(_) -> _),
            ),
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}

fn answer(result: Result<BatchReport, BatchError>) -> Result<BatchResponse, Error> {
    Ok(BatchResponse::from(result?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchProcessor, Deadline, RecordOutcome};
    use lambda_runtime::tower::ServiceExt;
    use std::sync::Mutex;

    fn record(id: Option<&str>, body: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = id.map(str::to_owned);
        r.body = Some(body.to_owned());
        r
    }

    fn event(records: Vec<SqsMessage>) -> LambdaEvent<SqsEvent> {
        let mut e = SqsEvent::default();
        e.records = records;
        LambdaEvent::new(e, lambda_runtime::Context::default())
    }

    fn attribute(data_type: &str, value: &str) -> aws_lambda_events::sqs::SqsMessageAttribute {
        let mut a = aws_lambda_events::sqs::SqsMessageAttribute::default();
        a.data_type = Some(data_type.to_owned());
        a.string_value = Some(value.to_owned());
        a
    }

    #[test]
    fn string_message_attributes_become_the_messages_attributes() {
        let mut r = record(Some("m2"), "x");
        for (name, data_type, value) in [
            ("correlation_id", "String", "m1"),
            ("label", "String.trace", "t"),
            ("count", "Number", "3"),
        ] {
            r.message_attributes
                .insert(name.to_owned(), attribute(data_type, value));
        }
        let mut e = SqsEvent::default();
        e.records = vec![r];
        let message = messages(e).unwrap().remove(0);
        assert_eq!(
            message,
            Message::new("m2", "x")
                .with_attribute("correlation_id", "m1")
                .with_attribute("label", "t")
        );
        assert_eq!(message.correlation_id(), "m1");
    }

    #[test]
    fn records_become_messages_with_their_group_and_first_receive() {
        let mut fifo = record(Some("a1"), "x");
        fifo.attributes
            .insert("MessageGroupId".to_owned(), "A".to_owned());
        fifo.attributes.insert(
            "ApproximateFirstReceiveTimestamp".to_owned(),
            "1700000000000".to_owned(),
        );
        let mut ungrouped_fifo = record(Some("f1"), "y");
        ungrouped_fifo.event_source_arn =
            Some("arn:aws:sqs:us-east-1:123456789012:q.fifo".to_owned());
        let mut bodiless = record(Some("n1"), "");
        bodiless.body = None;
        let mut e = SqsEvent::default();
        e.records = vec![fifo, ungrouped_fifo, bodiless];
        assert_eq!(
            messages(e).unwrap(),
            [
                Message {
                    group: Some("A".to_owned()),
                    first_seen_ms: Some(1_700_000_000_000),
                    ..Message::new("a1", "x")
                },
                Message {
                    group: Some(String::new()),
                    ..Message::new("f1", "y")
                },
                Message {
                    body: None,
                    ..Message::new("n1", "")
                },
            ]
        );
    }

    /// A use case over the batch processor that fails the records whose
    /// body is "bad".
    async fn process(messages: Vec<Message>, _deadline_ms: u64) -> Result<BatchReport, BatchError> {
        let deadline = Deadline::after(std::time::Duration::from_secs(30));
        BatchProcessor::new()
            .process(messages, deadline, |m| async move {
                match m.body.as_deref() {
                    Some("bad") => Err("bad record".to_owned()),
                    _ => Ok(()),
                }
            })
            .await
    }

    #[tokio::test]
    async fn the_answer_lists_the_unhandled_records_and_keeps_the_report() {
        let response = service(process)
            .oneshot(event(vec![
                record(Some("1"), "ok"),
                record(Some("2"), "bad"),
            ]))
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "2"}]})
        );
        assert_eq!(
            response.report().records[1].1,
            RecordOutcome::Failed("bad record".to_owned())
        );
    }

    #[tokio::test]
    async fn a_record_without_message_id_fails_the_batch_before_running_anything() {
        let ran = Mutex::new(0);
        let service = service(|messages, deadline_ms| {
            *ran.lock().unwrap() += 1;
            process(messages, deadline_ms)
        });
        let err = service
            .oneshot(event(vec![record(Some("1"), "ok"), record(None, "ok")]))
            .await
            .unwrap_err();
        assert_eq!(err, Error::MissingMessageId { index: 1 });
        assert_eq!(Diagnostic::from(err).error_type, "MissingMessageId");
        assert_eq!(*ran.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn the_all_failed_policy_is_an_invocation_error() {
        let err = service(process)
            .oneshot(event(vec![record(Some("1"), "bad")]))
            .await
            .unwrap_err();
        assert_eq!(Diagnostic::from(err).error_type, "AllRecordsFailed");
    }

    #[tokio::test]
    async fn an_empty_batch_answers_an_empty_failure_list() {
        let response = service(process).oneshot(event(vec![])).await.unwrap();
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"batchItemFailures":[]}"#
        );
    }
}
