//! An EventBridge rule's Lambda target, invoked asynchronously: receive the
//! event from the rule's tap, invoke, retry up to `MaximumRetryAttempts`,
//! then send an AWS-shaped failure record to `OnFailure`.

use super::queue::{delete, receive};
use super::{timed_out_message, Shared, OUTAGE_POLL};
use crate::invoke::{Invocation, Invoke, InvokeError};
use crate::manifest::{AsyncInvoke, EventSource};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How one asynchronous attempt ended: `None` when the event never reached
/// the function (EventBridge retries delivery), else whether it succeeded
/// and, if not, the error Lambda would report.
pub fn attempt_outcome(
    outcome: Result<Invocation, InvokeError>,
) -> Option<(bool, Option<(String, String)>)> {
    match outcome {
        Ok(Invocation::Response(_)) => Some((true, None)),
        Ok(Invocation::FunctionError {
            error_type,
            message,
        }) => Some((false, Some((error_type, message)))),
        Ok(Invocation::TimedOut { after }) => Some((
            false,
            Some((
                Invocation::TIMEOUT_ERROR_TYPE.to_owned(),
                timed_out_message(after),
            )),
        )),
        Err(_) => None,
    }
}

pub(super) async fn poll_event_source<I: Invoke>(
    shared: Arc<Shared<I>>,
    function: String,
    source: EventSource,
    retries: AsyncInvoke,
) {
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.out() {
            tokio::time::sleep(OUTAGE_POLL).await;
            continue;
        }
        let messages = receive(&shared, &source.tap_queue_url, 10).await;
        if messages.is_empty() {
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        // Lambda runs asynchronous invocations concurrently.
        let attempts = messages
            .into_iter()
            .map(|message| deliver_event(&shared, &function, &source, &retries, message));
        futures::future::join_all(attempts).await;
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn deliver_event<I: Invoke>(
    shared: &Shared<I>,
    function: &str,
    source: &EventSource,
    retries: &AsyncInvoke,
    message: aws_sdk_sqs::types::Message,
) {
    let attempt: u32 = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let handle = message.receipt_handle.clone().unwrap_or_default();
    let payload: Value = match message.body.as_deref().map(serde_json::from_str) {
        Some(Ok(payload)) => payload,
        _ => Value::String(message.body.clone().unwrap_or_default()),
    };
    let event_id = payload
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    if attempt == 1 {
        let origin = payload
            .pointer("/detail/origin_region")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned();
        let mut origins = shared.origins.lock().unwrap_or_else(|p| p.into_inner());
        *origins
            .entry(function.to_owned())
            .or_default()
            .entry(origin)
            .or_default() += 1;
    }
    let outcome = shared.invoke(function, payload.clone()).await;
    let timed_out = matches!(outcome, Ok(Invocation::TimedOut { .. }));
    let not_delivered = outcome.as_ref().err().map(ToString::to_string);
    let Some((ok, error)) = attempt_outcome(outcome) else {
        // Not delivered: leave it for the next receive, as EventBridge retries delivery.
        shared.say(format!(
            "{function:<24} event {event_id}: not delivered ({})",
            not_delivered.unwrap_or_default()
        ));
        return;
    };
    let exhausted = !ok && attempt > retries.maximum_retry_attempts;
    shared.record(function, |s| {
        s.invocations += 1;
        s.timed_out += u64::from(timed_out);
        s.received += 1;
        s.succeeded += u64::from(ok);
        s.failed += u64::from(!ok);
        s.retried += u64::from(attempt > 1);
        s.sent_to_failure_destination += u64::from(exhausted);
    });
    if ok {
        shared.say(format!(
            "{function:<24} event {event_id}: ok (attempt {attempt})"
        ));
        if !shared.deliver_twice || attempt >= 2 {
            delete(shared, &source.tap_queue_url, vec![handle]).await;
        }
        return;
    }
    let (error_type, error_message) = error.unwrap_or_default();
    if !exhausted {
        // Left on the tap: it comes back after the visibility timeout, like Lambda's retry.
        shared.say(format!(
            "{function:<24} event {event_id}: failed (attempt {attempt}, will retry): {error_type}: {error_message}"
        ));
        return;
    }
    shared.say(format!(
        "{function:<24} event {event_id}: failed (attempt {attempt}, retries exhausted): {error_type}: {error_message}"
    ));
    if let Some(url) = &retries.on_failure_queue_url {
        let record = failure_record(
            &shared.region,
            function,
            attempt,
            &payload,
            &error_type,
            &error_message,
        );
        if let Err(e) = shared
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(record.to_string())
            .send()
            .await
        {
            shared.say(format!("sending to the OnFailure destination failed: {e}"));
            return;
        }
    }
    delete(shared, &source.tap_queue_url, vec![handle]).await;
}

/// The record Lambda sends to an asynchronous invocation's OnFailure destination.
pub fn failure_record(
    region: &str,
    function: &str,
    attempts: u32,
    payload: &Value,
    error_type: &str,
    error_message: &str,
) -> Value {
    json!({
        "version": "1.0",
        "requestContext": {
            "functionArn": format!("arn:aws:lambda:{region}:123456789012:function:{function}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": error_message}
    })
}
