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
use eventline_powertools::deadline::{DeadlineExceeded, Ran};
use eventline_powertools::eventbridge::unwrap_event;
use eventline_powertools::idempotency::payload_hash;
use serde_json::Value;
use std::future::Future;
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
    let started = std::time::Instant::now();
    let result = async {
        let envelope = envelope?;
        let time = envelope.time_ms.map(Timestamp::from_unix_millis);
        let event = UserCreated::from_detail_at(&envelope.detail, time)?;
        if let Some(id) = &event.correlation_id {
            span.record("correlation_id", id.as_str());
        }
        // The work stops at the deadline itself (its last call, the
        // idempotency completion, included); the backstop keeps its answer.
        match invocation.deadline.backstop().run(work(event)).await {
            Ran::Done(result) => result,
            Ran::Panicked(_) => Err(Error::Panicked),
            Ran::OutOfTime => Err(Error::Deadline(DeadlineExceeded)),
        }
    }
    .instrument(span.clone())
    .await;
    let outcome = match result.as_ref().map_err(|e| e.disposition()) {
        Ok(()) => "succeeded",
        Err(Disposition::Expected) => "deferred",
        Err(Disposition::Reject(_)) if dead_letters.is_some() => "dead_lettered",
        Err(_) => "failed",
    };
    span.in_scope(|| eventline_powertools::settled::log(outcome, started));
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
    // After the work, in the time it left (see `batch::dead_letter`).
    let sent = dead_letter(sink, &letter, &message, invocation.deadline.backstop());
    if sent.instrument(span).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryDeadLetters};
    use eventline_powertools::idempotency::{
        Acquire, CompleteError, Idempotency, IdempotencyError, IdempotencyStore, MemoryStore,
        Record, StoreError,
    };
    use serde_json::json;
    use std::time::Duration;

    fn created(id: &str) -> Value {
        json!({"version":"0","id":id,"detail-type":"User Created","source":"user.service",
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1",
               "resources":[],"detail":{"user_id":"u1","email":"a@b.io","name":"Ada",
               "created_at":"2026-11-27T09:24:26.123Z"}})
    }

    /// A 3 s invocation that started at Unix time 0.
    fn invocation() -> Invocation {
        Invocation::start(&FixedClock::default(), 3_000, Duration::from_secs(3))
    }

    /// Item 3 of issue 16: a `User Created` whose first copy is still in
    /// progress stays an invocation error (Lambda's asynchronous retries,
    /// then the on-failure destination, keep the event if the first attempt
    /// fails), is not dead-lettered, and is marked an expected retry, which
    /// the metrics layer counts as `RecordsDeferred` and the errors alarm
    /// subtracts.
    #[tokio::test]
    async fn an_in_progress_duplicate_stays_an_error_marked_expected_and_is_not_dead_lettered() {
        let letters = MemoryDeadLetters::default();
        let error = on_user_created(created("e-2"), invocation(), Some(&letters), |_| async {
            Err(Error::Idempotency(IdempotencyError::InProgress {
                key: "welcome.u1".into(),
            }))
        })
        .await
        .unwrap_err();
        assert_eq!(error.disposition(), Disposition::Expected);
        assert_eq!(error.error_type(), "InProgress");
        assert!(letters.letters().is_empty());
    }

    /// Refuses every completion; takes and releases locks.
    struct NoCompletions(MemoryStore);

    impl IdempotencyStore for NoCompletions {
        async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
            self.0.acquire(record, now_ms).await
        }
        async fn complete_all(&self, records: &[Record]) -> Vec<Result<(), CompleteError>> {
            records
                .iter()
                .map(|_| Err(CompleteError::Store(StoreError("throttled".into()))))
                .collect()
        }
        async fn release(&self, record: &Record) -> Result<(), StoreError> {
            self.0.release(record).await
        }
    }

    /// Item 1 of issue 16, through the consumers' shared path: work that
    /// took 2 s of a 3 s invocation, and completions the store never
    /// writes. The event succeeds (its effect happened) and the lost
    /// completion is reported, instead of the invocation ending in
    /// `DeadlineExceeded` and being retried.
    #[tokio::test(start_paused = true)]
    async fn slow_work_whose_completion_is_lost_still_succeeds_by_the_deadline() {
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = lost.clone();
        let idempotency = Idempotency::new(
            NoCompletions(MemoryStore::default()),
            "welcome-email",
            Duration::from_secs(3600),
        )
        .observed_by(move |event| {
            if let eventline_powertools::idempotency::Event::CompletionsLost { records } = event {
                counted.fetch_add(records, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let invocation = invocation();
        let result = on_user_created(created("e-1"), invocation, None, |event| {
            let idempotency = &idempotency;
            async move {
                idempotency
                    .once(
                        "welcome.u1",
                        detail_hash(&event),
                        invocation.window,
                        invocation.deadline,
                        || async {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            Ok::<(), Error>(())
                        },
                    )
                    .await?;
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(lost.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
