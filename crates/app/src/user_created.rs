//! What the two `User Created` consumers share: unwrapping the EventBridge
//! event into a validated [`UserCreated`] inside the event's log span, the
//! payload hash their idempotency records use, the deadline, and what
//! happens to an event that can never succeed.
//!
//! An EventBridge target is invoked asynchronously: an error makes Lambda
//! retry (twice) and then hand the event to the on-failure destination with
//! no reason. An event that can never succeed (wrong shape, invalid detail, a
//! payload conflict, a recipient over quota) goes straight to the function's
//! dead-letter queue with its reason as attributes, and the invocation
//! succeeds; transient failures stay errors and keep the retry path.

use crate::{Error, Invocation};
use eventline_domain::{Timestamp, UserCreated};
use eventline_powertools::batch::{
    dead_letter, DeadLetter, DeadLetterSink, Disposition, RecordError,
};
use eventline_powertools::eventbridge::unwrap_event;
use eventline_powertools::idempotency::payload_hash;
use futures::FutureExt;
use serde_json::Value;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tracing::Instrument;

/// Runs `work` on the `User Created` event in `payload`, within the
/// invocation's deadline. Every log line of the work carries the detail's
/// `correlation_id` (the signup's, the same in every function and region)
/// and the event id; a detail without one (another producer) or not yet
/// read correlates by the event id. A rejection is dead-lettered through `dead_letters`
/// (and is then not an error); without a sink it is returned.
pub(crate) async fn on_user_created<F, Fut>(
    payload: Value,
    invocation: Invocation,
    dead_letters: Option<&dyn DeadLetterSink>,
    work: F,
) -> Result<(), Error>
where
    F: FnOnce(UserCreated) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let body = dead_letters.map(|_| payload.to_string());
    let envelope = unwrap_event(payload, UserCreated::SOURCE, UserCreated::DETAIL_TYPE);
    let event_id = envelope
        .as_ref()
        .ok()
        .and_then(|e| e.id.clone())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "event",
        event_id = %event_id,
        correlation_id = tracing::field::Empty
    );
    let result = async {
        let envelope = envelope?;
        let time = envelope.time_ms.map(Timestamp::from_unix_millis);
        let event = UserCreated::from_detail_at(&envelope.detail, time)?;
        if let Some(id) = &event.correlation_id {
            span.record("correlation_id", id.as_str());
        }
        match invocation
            .deadline
            .bound(AssertUnwindSafe(work(event)).catch_unwind())
            .await
        {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Panicked),
            Err(e) => Err(Error::Deadline(e)),
        }
    }
    .instrument(span.clone())
    .await;
    let error = match result {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let (Disposition::Reject(reason), Some(sink), Some(body)) =
        (error.disposition(), dead_letters, body)
    else {
        return Err(error);
    };
    let letter = DeadLetter {
        source_message_id: event_id,
        body,
        message_group_id: None,
        first_seen_ms: Some(invocation.window.now_ms),
        reason,
    };
    let message = error.to_string();
    if dead_letter(sink, &letter, &message).instrument(span).await {
        Ok(())
    } else {
        Err(error)
    }
}

/// The payload hash of a `User Created` event: what identifies it (user id,
/// email, name), not its time, so a re-published or forwarded copy is the
/// same event rather than a conflicting payload.
pub(crate) fn detail_hash(event: &UserCreated) -> String {
    payload_hash(event.identity())
}
