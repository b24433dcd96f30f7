//! Idempotency: run a piece of work at most once per key, however often
//! at-least-once delivery hands it to us.
//!
//! [`Idempotency::once`] guards work with a record in a store (DynamoDB in
//! production, [`MemoryStore`] in tests), keyed by a stable key the caller
//! derives from the cause (not the message id), as Powertools for AWS Lambda
//! does, tightened where its lock can be lost:
//!
//! - one conditional write takes the lock ([`is_free`]), held until the
//!   invocation's deadline, and carrying the attempt that took it: only that
//!   attempt completes or releases it ([`is_held_by`]);
//! - a duplicate replays the stored result; one with another payload is an
//!   error ([`IdempotencyError::PayloadMismatch`]); one that finds the work
//!   in progress fails, so the batch retries it later;
//! - failed or panicking work releases its lock; lost completions are
//!   reported ([`Completion`], [`Event`]), never silently dropped.
//!
//! [`Idempotency::prepare`] and [`Idempotency::resolve`] split the lock for
//! a caller that writes it in a transaction with its own data. The design,
//! step by step, is in docs/reliability.md ("The idempotency record").

mod config;
mod errors;
mod lock;
mod memory;
mod observer;
mod store;
#[cfg(test)]
mod tests;

pub use config::{check_ttl, payload_hash, TtlTooShort, Window};
pub use errors::IdempotencyError;
pub(crate) use lock::{attempt_token, lock_until};
pub use lock::{Begin, Lock, Prepared, FALLBACK_LOCK};
pub use memory::MemoryStore;
pub use observer::{Completion, Event, Observer};
pub use store::{
    is_free, is_held_by, Acquire, CompleteError, IdempotencyStore, Record, Status, StoreError,
};

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::deadline::{Deadline, DeadlineExceeded, Ran};

/// What [`Idempotency::once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run<T> {
    /// The work ran now and returned this.
    Fresh(T),
    /// The work had run before; this is its stored result.
    Replayed(T),
}

impl<T> Run<T> {
    /// The result, however it was obtained.
    pub fn into_inner(self) -> T {
        match self {
            Self::Fresh(t) | Self::Replayed(t) => t,
        }
    }
}

/// Runs work at most once per key. Build it once per cold start.
#[derive(Clone)]
pub struct Idempotency<S> {
    store: S,
    scope: String,
    expires_after: Duration,
    observer: Option<Observer>,
    disabled: bool,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("store", &self.store)
            .field("scope", &self.scope)
            .field("expires_after", &self.expires_after)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl<S: IdempotencyStore> Idempotency<S> {
    /// Records in `store`, keys prefixed with `scope` (the function's name,
    /// so two functions guarding the same cause do not collide); completed
    /// records count for `expires_after` (Powertools' default is 1 hour).
    pub fn new(store: S, scope: impl Into<String>, expires_after: Duration) -> Self {
        Self {
            store,
            scope: scope.into(),
            expires_after,
            observer: None,
            disabled: false,
        }
    }

    /// Turns the guard off when `disabled` (`POWERTOOLS_IDEMPOTENCY_DISABLED`,
    /// read by `Env::idempotency_disabled`, which refuses it in AWS Lambda):
    /// [`Idempotency::once`] then runs the work every time and writes no
    /// record, as Powertools does, for tests and local runs.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Tells `observer` of every replay and every lost set of completions.
    pub fn observed_by(mut self, observer: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(std::sync::Arc::new(observer));
        self
    }

    fn notify(&self, event: Event) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    /// Runs `work` unless it already ran for `key` (with the same
    /// `payload_hash`), in which case its stored result is returned. If the
    /// work fails or panics the lock is released (a panic then resumes).
    ///
    /// `deadline` is the invocation's, built once when it started: taking
    /// the lock and the work stop one step before it
    /// ([`Deadline::for_work`]), leaving that step to complete the lock
    /// (or release it); the completion stops at `deadline`, and one it could
    /// not write is counted and logged, while the work's result is still
    /// returned. So `once` answers by `deadline`.
    pub async fn once<T, E, F, Fut>(
        &self,
        key: &str,
        payload_hash: String,
        window: Window,
        deadline: Deadline,
        work: F,
    ) -> Result<Run<T>, IdempotencyError<E>>
    where
        T: Serialize + DeserializeOwned,
        E: Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cut_off = deadline.for_work();
        if self.disabled {
            return match cut_off.bound(work()).await? {
                Ok(value) => Ok(Run::Fresh(value)),
                Err(e) => Err(IdempotencyError::Work(e)),
            };
        }
        let begun = cut_off.bound(self.begin(key, payload_hash, window)).await?;
        let lock = match begun.map_err(widen)? {
            Begin::Replayed(value) => return Ok(Run::Replayed(value)),
            Begin::Acquired(lock) => lock,
        };
        match cut_off.run(work()).await {
            Ran::Done(Ok(value)) => {
                self.complete_all(vec![(lock, &value)], deadline).await;
                Ok(Run::Fresh(value))
            }
            Ran::Done(Err(e)) => {
                self.release_by(lock, deadline).await;
                Err(IdempotencyError::Work(e))
            }
            // The panic hook has logged it already; it goes on to the caller
            // with its message.
            Ran::Panicked(message) => {
                self.release_by(lock, deadline).await;
                std::panic::resume_unwind(Box::new(message))
            }
            // Cut off: a call we stopped waiting for may still land, so the
            // lock stays until its own deadline rather than letting a
            // duplicate run beside it.
            Ran::OutOfTime => {
                tracing::warn!(id = %lock.record.id, "work was still running at its cut-off; its lock lapses at its deadline");
                Err(IdempotencyError::Deadline(DeadlineExceeded))
            }
        }
    }

    /// Takes the lock for `key`, or returns the stored result of a completed
    /// run with the same payload. For callers that run the work of many keys
    /// in stages (e.g. one batched send for a whole batch); finish every
    /// acquired lock with [`Idempotency::complete_all`] or [`Idempotency::release`].
    /// It is [`Idempotency::prepare`] then [`Idempotency::take`].
    pub async fn begin<T: DeserializeOwned>(
        &self,
        key: &str,
        payload_hash: String,
        window: Window,
    ) -> Result<Begin<T>, IdempotencyError<Infallible>> {
        self.take(self.prepare(key, payload_hash, window), window.now_ms)
            .await
    }

    /// The lock [`Idempotency::begin`] would take for `key`, not yet
    /// written: for a caller that writes its record itself, under the lock
    /// condition ([`is_free`]), in one call with writes of its own (a
    /// transaction). The caller then turns it into a [`Lock`] with
    /// [`Prepared::acquired`] if the write succeeded, or asks
    /// [`Idempotency::resolve`] what the live record it found means.
    pub fn prepare(&self, key: &str, payload_hash: String, window: Window) -> Prepared {
        let in_progress_expiration = lock_until(window);
        Prepared {
            key: key.to_owned(),
            record: Record {
                id: format!("{}#{key}", self.scope),
                status: Status::InProgress,
                // Never before the lock's own deadline, so TTL cannot delete a live lock.
                expiration: (window.now_ms / 1000 + self.expires_after.as_secs())
                    .max(in_progress_expiration.div_ceil(1000) + 1),
                in_progress_expiration,
                payload_hash,
                result: None,
                attempt: attempt_token(),
            },
        }
    }

    /// Takes a prepared lock with one conditional write to the store, or
    /// returns the stored result of a completed run with the same payload.
    pub async fn take<T: DeserializeOwned>(
        &self,
        prepared: Prepared,
        now_ms: u64,
    ) -> Result<Begin<T>, IdempotencyError<Infallible>> {
        match self.store.acquire(&prepared.record, now_ms).await? {
            Acquire::Acquired => Ok(Begin::Acquired(prepared.acquired())),
            Acquire::Existing(existing) => self.resolve(&prepared, existing).map(Begin::Replayed),
        }
    }

    /// What a live record found in place of a prepared lock means: the
    /// stored result of a completed run with the same payload (a replay),
    /// [`IdempotencyError::InProgress`] when another attempt holds it, or
    /// [`IdempotencyError::PayloadMismatch`] when the key was used with
    /// another payload.
    pub fn resolve<T: DeserializeOwned>(
        &self,
        prepared: &Prepared,
        existing: Record,
    ) -> Result<T, IdempotencyError<Infallible>> {
        let value = replay(&prepared.key, &prepared.record, existing)?.into_inner();
        self.notify(Event::Replayed);
        Ok(value)
    }

    /// Marks locks completed with their results, each only if this attempt
    /// still holds it, in as few store calls as the store allows. Records the
    /// store did not write are retried with exponential backoff until
    /// `deadline`; every store call, the first included, is bounded by it
    /// and none starts once it has passed. What is still not written (or
    /// not confirmed) is returned in [`Completion::failed`], logged at
    /// `ERROR` and reported as [`Event::CompletionsLost`] (the work is done;
    /// the lock lapses at its deadline, and a retry then re-runs steps that
    /// are idempotent themselves).
    pub async fn complete_all<T: Serialize>(
        &self,
        done: Vec<(Lock, &T)>,
        deadline: Deadline,
    ) -> Completion {
        let mut pending: Vec<Record> = done
            .into_iter()
            .map(|(lock, value)| lock.completed(value))
            .collect();
        let mut completion = Completion::default();
        let mut backoff = COMPLETION_BACKOFF;
        while !pending.is_empty() {
            if deadline.passed() {
                break;
            }
            // Cut at the deadline: no answer, so no record of this call is
            // confirmed (some may have landed; they count as lost).
            let results = deadline
                .bound(self.store.complete_all(&pending))
                .await
                .unwrap_or_default();
            let mut retry = Vec::new();
            for (index, record) in pending.into_iter().enumerate() {
                match results.get(index) {
                    Some(Ok(())) => completion.completed += 1,
                    Some(Err(CompleteError::LockLost)) => {
                        tracing::warn!(id = %record.id, "idempotency lock was taken over before completion");
                        completion.lost.push(record.id);
                    }
                    // A missing result is not a success: retry it.
                    Some(Err(CompleteError::Store(_))) | None => retry.push(record),
                }
            }
            pending = retry;
            if pending.is_empty() || backoff >= deadline.remaining() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        if !pending.is_empty() {
            tracing::error!(
                records = pending.len(),
                "idempotency completions lost: records stay in progress until their deadline"
            );
            self.notify(Event::CompletionsLost {
                records: pending.len(),
            });
            completion.failed = pending.into_iter().map(|r| r.id).collect();
        }
        completion
    }

    /// Gives a lock up after failed work, so a retry can run at once. Only
    /// this attempt's lock is deleted.
    pub async fn release(&self, lock: Lock) {
        if let Err(e) = self.store.release(&lock.record).await {
            tracing::warn!(id = %lock.record.id, error = %e, "could not release idempotency record");
        }
    }

    /// [`Idempotency::release`], giving up at `deadline` (the lock then
    /// lapses at its own deadline).
    pub async fn release_by(&self, lock: Lock, deadline: Deadline) {
        let id = lock.record.id.clone();
        if deadline.bound(self.release(lock)).await.is_err() {
            tracing::warn!(id = %id, "idempotency record not released by the deadline; it lapses at its own");
        }
    }
}

/// First wait before retrying completions the store did not write.
const COMPLETION_BACKOFF: Duration = Duration::from_millis(50);

fn widen<E>(e: IdempotencyError<Infallible>) -> IdempotencyError<E> {
    match e {
        IdempotencyError::InProgress { key } => IdempotencyError::InProgress { key },
        IdempotencyError::PayloadMismatch { key } => IdempotencyError::PayloadMismatch { key },
        IdempotencyError::Store(s) => IdempotencyError::Store(s),
        IdempotencyError::CorruptResult { key, reason } => {
            IdempotencyError::CorruptResult { key, reason }
        }
        IdempotencyError::Deadline(d) => IdempotencyError::Deadline(d),
        IdempotencyError::Work(never) => match never {},
    }
}

fn replay<T: DeserializeOwned, E>(
    key: &str,
    ours: &Record,
    existing: Record,
) -> Result<Run<T>, IdempotencyError<E>> {
    if existing.payload_hash != ours.payload_hash {
        return Err(IdempotencyError::PayloadMismatch {
            key: key.to_owned(),
        });
    }
    match (existing.status, existing.result) {
        (Status::Completed, Some(result)) => serde_json::from_str(&result)
            .map(Run::Replayed)
            .map_err(|e| IdempotencyError::CorruptResult {
                key: key.to_owned(),
                reason: e.to_string(),
            }),
        (Status::Completed, None) => Err(IdempotencyError::CorruptResult {
            key: key.to_owned(),
            reason: "completed without a result".to_owned(),
        }),
        (Status::InProgress, _) => Err(IdempotencyError::InProgress {
            key: key.to_owned(),
        }),
    }
}
