//! Lambda's SQS event source mapping: receive a batch, invoke the function
//! with it, delete what the partial batch response did not list as failed.

use super::queue::{delete, receive};
use super::{timed_out_message, Shared, OUTAGE_POLL};
use crate::invoke::{Invocation, Invoke, InvokeError};
use crate::manifest::SqsSource;
use crate::shape::{receive_count, sqs_event};
use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which records of `event` failed, per Lambda's rules for partial batch
/// responses: an empty or null list means none; an invalid response, or an
/// identifier that is empty or not in the batch, fails the whole batch.
pub fn failed_records(
    event: &SqsEvent,
    response: &Value,
    report_batch_item_failures: bool,
) -> HashSet<String> {
    let all: HashSet<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    if !report_batch_item_failures || response.is_null() {
        return HashSet::new();
    }
    let Some(object) = response.as_object() else {
        return all;
    };
    let failures = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return HashSet::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return all,
    };
    let mut failed = HashSet::new();
    for item in failures {
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if all.contains(id) => {
                failed.insert(id.to_owned());
            }
            _ => return all,
        }
    }
    failed
}

pub(super) async fn poll_sqs_source<I: Invoke>(
    shared: Arc<Shared<I>>,
    function: String,
    source: SqsSource,
) {
    let window = Duration::from_secs(source.maximum_batching_window_seconds);
    let batch_size = source.batch_size.max(1) as usize;
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.out() {
            tokio::time::sleep(OUTAGE_POLL).await;
            continue;
        }
        let mut messages = receive(&shared, &source.queue_url, batch_size as i32).await;
        if messages.is_empty() {
            continue;
        }
        let gathering = Instant::now();
        while messages.len() < batch_size && gathering.elapsed() < window {
            let more = receive(
                &shared,
                &source.queue_url,
                (batch_size - messages.len()) as i32,
            )
            .await;
            messages.extend(more);
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let event = sqs_event(messages, &source.queue_arn, &shared.region);
        let payload = serde_json::to_value(&event).unwrap_or_default();
        let outcome = shared.invoke(&function, payload).await;
        let (failed, note) = batch_outcome(&event, &outcome, source.report_batch_item_failures);
        let handles = event
            .records
            .iter()
            .filter(|r| r.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .filter(|r| !shared.deliver_twice || receive_count(r) >= 2)
            .filter_map(|r| r.receipt_handle.clone())
            .collect();
        delete(&shared, &source.queue_url, handles).await;
        let retried = event
            .records
            .iter()
            .filter(|r| receive_count(r) > 1)
            .count() as u64;
        let (n, bad) = (event.records.len() as u64, failed.len() as u64);
        let timed_out = matches!(outcome, Ok(Invocation::TimedOut { .. }));
        shared.record(&function, |s| {
            s.invocations += u64::from(outcome.is_ok());
            s.timed_out += u64::from(timed_out);
            s.received += n;
            s.succeeded += n - bad;
            s.failed += bad;
            s.retried += retried;
        });
        shared.say(format!(
            "{function:<24} batch of {n:>2}: {:>2} ok, {bad:>2} failed, {retried:>2} retried{note}",
            n - bad
        ));
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Which records of `event` failed given how its invocation ended, and a
/// note for the progress line. A function error, a timeout or a failed
/// invoke fails the whole batch, as Lambda's event source mapping does.
pub fn batch_outcome(
    event: &SqsEvent,
    outcome: &Result<Invocation, InvokeError>,
    report_batch_item_failures: bool,
) -> (HashSet<String>, String) {
    let all = || {
        event
            .records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect()
    };
    match outcome {
        Ok(Invocation::Response(response)) => (
            failed_records(event, response, report_batch_item_failures),
            String::new(),
        ),
        Ok(Invocation::FunctionError {
            error_type,
            message,
        }) => (all(), format!(" (function error {error_type}: {message})")),
        Ok(Invocation::TimedOut { after }) => (all(), format!(" ({})", timed_out_message(*after))),
        Err(e) => (all(), format!(" ({e})")),
    }
}
