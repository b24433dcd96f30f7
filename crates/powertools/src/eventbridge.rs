//! The EventBridge entrypoint, and checked unwrapping of the events it
//! delivers to a Lambda target.
//!
//! [`service`] hands a use case the raw JSON payload and the invocation's
//! deadline, and turns its error into a [`Failure`]: the runtime's
//! [`Diagnostic`] (through [`RecordError`]) plus whether the failure is an
//! expected retry ([`Disposition::Expected`], e.g. a duplicate whose first
//! copy is still in progress), which the metrics layer counts as deferred
//! rather than failed. So a use case needs no Lambda types. The use case
//! unwraps the payload with [`unwrap_event`], so that a payload of the wrong
//! shape or type becomes a clear, typed error (which Lambda's async-invoke
//! retries and the target's DLQ then handle) rather than a runtime
//! deserialisation failure whose message may echo the payload.

use crate::batch::{Disposition, RecordError};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use futures::future::Map;
use futures::FutureExt;
use lambda_runtime::tower::Service;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::task::{Context, Poll};
use thiserror::Error;

/// The Lambda service of an EventBridge target whose `handler` takes the
/// raw payload and the invocation's deadline (Unix ms, from the context):
/// `eventbridge::service(|payload, deadline_ms| use_case.handle(payload, deadline_ms))`.
/// Its error becomes the invocation's error, `errorType` from
/// [`RecordError::error_type`], carried in a [`Failure`].
pub fn service<F, Fut, E>(handler: F) -> EventBridgeService<F>
where
    F: Fn(Value, u64) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: RecordError,
{
    EventBridgeService { handler }
}

/// The service [`service`] makes (a named type, as
/// [`crate::sqs::SqsService`] is).
#[derive(Debug, Clone)]
pub struct EventBridgeService<F> {
    handler: F,
}

impl<F, Fut, E> Service<LambdaEvent<Value>> for EventBridgeService<F>
where
    F: Fn(Value, u64) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: RecordError,
{
    type Response = ();
    type Error = Failure;
    type Future = Map<Fut, fn(Result<(), E>) -> Result<(), Failure>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> Self::Future {
        (self.handler)(event.payload, event.context.deadline).map(diagnose as fn(_) -> _)
    }
}

fn diagnose<E: RecordError>(result: Result<(), E>) -> Result<(), Failure> {
    result.map_err(|e| Failure {
        diagnostic: Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        },
        expected: e.disposition() == Disposition::Expected,
    })
}

/// A failed invocation: what Lambda is told ([`Diagnostic`]), and whether
/// it is an expected retry. Either way the invocation fails, so Lambda's
/// asynchronous retries and on-failure destination keep the event; an
/// expected one is counted apart (`RecordsDeferred`, see
/// [`crate::invocation_layer`]), so an alarm on real failures can leave it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What the runtime reports.
    pub diagnostic: Diagnostic,
    /// An expected retry ([`Disposition::Expected`]), not a real failure.
    pub expected: bool,
}

impl From<Failure> for Diagnostic {
    fn from(failure: Failure) -> Self {
        failure.diagnostic
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diagnostic.error_message)
    }
}

impl RecordError for Failure {
    fn disposition(&self) -> Disposition {
        if self.expected {
            Disposition::Expected
        } else {
            Disposition::Retry
        }
    }

    fn error_type(&self) -> &str {
        &self.diagnostic.error_type
    }
}

/// Why an EventBridge payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// Not an EventBridge event (e.g. `source` or `detail-type` missing).
    #[error("payload is not an EventBridge event")]
    NotAnEvent,
    /// An EventBridge event, but not the one this function handles.
    #[error("unexpected event: source '{source_name}', detail-type '{detail_type}' (expected '{expected_source}', '{expected_detail_type}')")]
    Unexpected {
        /// The event's `source`.
        source_name: String,
        /// The event's `detail-type`.
        detail_type: String,
        /// The `source` this function handles.
        expected_source: &'static str,
        /// The `detail-type` this function handles.
        expected_detail_type: &'static str,
    },
}

/// An EventBridge event whose source and detail-type have been checked.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The event id (stable across EventBridge's redeliveries of one event;
    /// a forwarded or re-published copy gets a new one).
    pub id: Option<String>,
    /// The envelope's `time` (Unix milliseconds), if it has one.
    pub time_ms: Option<u64>,
    /// The event's `detail`, still raw.
    pub detail: Value,
}

/// Unwraps `payload`, requiring `source` and `detail_type`.
pub fn unwrap_event(
    payload: Value,
    source: &'static str,
    detail_type: &'static str,
) -> Result<Envelope, EnvelopeError> {
    let event =
        EventBridgeEvent::<Value>::deserialize(payload).map_err(|_| EnvelopeError::NotAnEvent)?;
    if event.source != source || event.detail_type != detail_type {
        return Err(EnvelopeError::Unexpected {
            source_name: event.source,
            detail_type: event.detail_type,
            expected_source: source,
            expected_detail_type: detail_type,
        });
    }
    Ok(Envelope {
        id: event.id,
        time_ms: event
            .time
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok()),
        detail: event.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str) -> Value {
        json!({"version":"0","id":"e-1","detail-type":detail_type,"source":source,
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1",
               "resources":[],"detail":{"k":"v"}})
    }

    /// Fails with a typed error, whatever the event.
    struct Refused;

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("refused")
        }
    }

    impl RecordError for Refused {
        fn error_type(&self) -> &str {
            "Refused"
        }
    }

    #[tokio::test]
    async fn the_service_passes_payload_and_deadline_and_reports_the_error_type() {
        use lambda_runtime::tower::ServiceExt;
        let mut context = lambda_runtime::Context::default();
        context.deadline = 42;
        let seen = std::sync::Mutex::new(None);
        let result = service(|payload, deadline_ms| {
            *seen.lock().unwrap() = Some((payload, deadline_ms));
            async { Err::<(), _>(Refused) }
        })
        .oneshot(LambdaEvent::new(json!({"k": 1}), context))
        .await;
        assert_eq!(
            result.map_err(Diagnostic::from),
            Err(Diagnostic {
                error_type: "Refused".to_owned(),
                error_message: "refused".to_owned(),
            })
        );
        assert_eq!(seen.into_inner().unwrap(), Some((json!({"k": 1}), 42)));
    }

    #[test]
    fn unwraps_the_expected_event() {
        let env = unwrap_event(
            event("user.service", "User Created"),
            "user.service",
            "User Created",
        )
        .unwrap();
        assert_eq!(env.id.as_deref(), Some("e-1"));
        assert_eq!(env.detail, json!({"k":"v"}));
    }

    #[test]
    fn refuses_other_events_and_non_events() {
        let err = unwrap_event(
            event("user.service", "User Deleted"),
            "user.service",
            "User Created",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected event: source 'user.service', detail-type 'User Deleted' \
             (expected 'user.service', 'User Created')"
        );
        assert_eq!(
            unwrap_event(json!({"Records":[]}), "user.service", "User Created").unwrap_err(),
            EnvelopeError::NotAnEvent
        );
    }
}
