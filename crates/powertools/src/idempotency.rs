//! Idempotency: run a piece of work at most once per key, however often
//! at-least-once delivery hands it to us.
//!
//! SQS, EventBridge and Lambda's asynchronous invoke all deliver at least
//! once, and the same *cause* can also arrive as two different messages (a
//! producer retrying a send). [`Idempotency::once`] guards work with a
//! record in a store (DynamoDB in production), keyed by a stable key the
//! caller derives from the cause (not the message id), and follows the
//! design of Powertools for AWS Lambda, tightened where its lock can be lost:
//!
//! 1. **One conditional write takes the lock**, no read-then-write race:
//!    the record is created `INPROGRESS` unless a live record exists
//!    ([`is_free`]: none, or a `COMPLETED` one past its `expiration`, or an
//!    `INPROGRESS` one past its `in_progress_expiration`). An in-progress
//!    record is freed **only by its own deadline**, never by the time to
//!    live of completed records.
//! 2. The lock's in-progress expiry is the **invocation's deadline**: a
//!    crashed or timed-out attempt cannot block retries beyond it (SQS makes
//!    the message visible again only after the visibility timeout, which is
//!    at least the function timeout). Its `expiration` (the table's TTL
//!    attribute) is never earlier than that deadline, so DynamoDB's TTL
//!    cannot delete a live lock; [`check_ttl`] refuses, at cold start, a time
//!    to live that could not cover one invocation.
//! 3. Every lock carries the **attempt** that took it (a random token).
//!    Completing and releasing are conditional on it: a stale attempt whose
//!    lock lapsed cannot overwrite or delete the lock a newer attempt holds.
//! 4. On success the record becomes `COMPLETED` with a small result; a later
//!    duplicate **replays** that result without doing the work again.
//!    Completions that the store could not write are retried with backoff
//!    until the deadline; one that is finally lost is returned (and logged
//!    at `ERROR`), never silently dropped.
//! 5. On failure, or when the work **panics**, the record is deleted (by its
//!    owner only), so the retry can run at once.
//! 6. The record stores a **hash of the payload**: the same key with a
//!    different payload is an error ([`IdempotencyError::PayloadMismatch`]),
//!    never a silent replay of someone else's result.
//! 7. A concurrent duplicate that finds the record in progress fails
//!    ([`IdempotencyError::InProgress`]); the batch reports it and SQS
//!    retries it later, by which time it replays.
//!
//! A caller that writes the lock together with its own data, in one
//! transaction, splits [`Idempotency::begin`] in two: [`Idempotency::prepare`]
//! gives the record to write under the lock condition, then
//! [`Prepared::acquired`] is the lock if the write succeeded, and
//! [`Idempotency::resolve`] says what the live record it found means
//! (replay, in progress, other payload). [`Lock::completed`] is the record
//! that completes a lock, for writing it the same way.
//!
//! The guard knows nothing of metrics: it reports what happened to an
//! [`Observer`] its owner gives it ([`Idempotency::observed_by`]), one
//! [`Event`] per replay or per lost set of completions, and its callers see
//! the same facts in what it returns ([`Begin::Replayed`], [`Run::Replayed`],
//! [`Completion`]). The functions turn events into metrics where they wire
//! the guard (`eventline_powertools::layer::idempotency_metrics`).
//!
//! Idempotency records are a replay window, not the memory of effects: a
//! duplicate arriving after `expiration` runs the work again, so work whose
//! effect must happen once *ever* records that fact durably with its own data
//! (see the use cases).

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;

use crate::deadline::{Deadline, DeadlineExceeded, Ran};

/// State of an idempotency record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Work is running (or crashed before its deadline).
    InProgress,
    /// Work finished; `result` holds what it returned.
    Completed,
}

impl Status {
    /// The stored name, as Powertools stores it (`INPROGRESS`, `COMPLETED`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "INPROGRESS",
            Self::Completed => "COMPLETED",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            _ => None,
        }
    }
}

/// One idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `<scope>#<key>`.
    pub id: String,
    /// Lock or result.
    pub status: Status,
    /// When the record stops counting (Unix seconds; the table's TTL attribute).
    pub expiration: u64,
    /// When an in-progress lock lapses (Unix milliseconds).
    pub in_progress_expiration: u64,
    /// SHA-256 of the payload, hex.
    pub payload_hash: String,
    /// The work's result as JSON (completed records only).
    pub result: Option<String>,
    /// The attempt that took the lock (random token); completing and
    /// releasing are conditional on it.
    pub attempt: String,
}

/// A store failed (unreachable, throttled…). The work is not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("idempotency store: {0}")]
pub struct StoreError(pub String);

/// Outcome of trying to take the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is ours.
    Acquired,
    /// A live record exists; here it is.
    Existing(Record),
}

/// Why one completion was not written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompleteError {
    /// The record is no longer this attempt's lock (it lapsed and another
    /// attempt took it, or it is gone). Not retried.
    #[error("the lock is no longer held by this attempt")]
    LockLost,
    /// The store did not write it (unreachable, throttled, unprocessed);
    /// worth retrying.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where records live. DynamoDB in production (`eventline-aws`), memory in tests.
pub trait IdempotencyStore: Send + Sync {
    /// Writes `record` (in progress) unless a live record with its id exists
    /// at `now_ms` ([`is_free`]), in one conditional write; returns the live
    /// one otherwise.
    fn acquire(
        &self,
        record: &Record,
        now_ms: u64,
    ) -> impl Future<Output = Result<Acquire, StoreError>> + Send;
    /// Writes each record's completed form, each only if the stored record is
    /// still in progress under the same `attempt`. One result per record, in
    /// order; stores that can write many items per call do so.
    fn complete_all(
        &self,
        records: &[Record],
    ) -> impl Future<Output = Vec<Result<(), CompleteError>>> + Send;
    /// Deletes the record if it is still in progress under `record.attempt`
    /// (the work failed; let a retry run). A record held by another attempt,
    /// or already gone, is left alone and is not an error.
    fn release(&self, record: &Record) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why guarded work did not produce a result.
#[derive(Debug, Error)]
pub enum IdempotencyError<E> {
    /// Another attempt holds the lock; retry later.
    #[error("{key}: another attempt is in progress; will retry")]
    InProgress {
        /// The key.
        key: String,
    },
    /// The key was used before with a different payload.
    #[error("{key}: already processed with a different payload")]
    PayloadMismatch {
        /// The key.
        key: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored result could not be read back.
    #[error("{key}: stored result is unreadable: {reason}")]
    CorruptResult {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The work (or taking its lock) was still running at its cut-off;
    /// the lock, if taken, is kept until its own deadline (a call we
    /// stopped waiting for may still land).
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    /// The work itself failed (the record was released).
    #[error(transparent)]
    Work(E),
}

impl<E> IdempotencyError<E> {
    /// The error without the work's own failure, for callers that keep
    /// idempotency failures apart from work failures.
    pub fn split(self) -> Result<IdempotencyError<Infallible>, E> {
        match self {
            Self::Work(e) => Err(e),
            Self::InProgress { key } => Ok(IdempotencyError::InProgress { key }),
            Self::PayloadMismatch { key } => Ok(IdempotencyError::PayloadMismatch { key }),
            Self::Store(s) => Ok(IdempotencyError::Store(s)),
            Self::CorruptResult { key, reason } => {
                Ok(IdempotencyError::CorruptResult { key, reason })
            }
            Self::Deadline(d) => Ok(IdempotencyError::Deadline(d)),
        }
    }
}

impl Clone for IdempotencyError<Infallible> {
    fn clone(&self) -> Self {
        match self {
            Self::InProgress { key } => Self::InProgress { key: key.clone() },
            Self::PayloadMismatch { key } => Self::PayloadMismatch { key: key.clone() },
            Self::Store(s) => Self::Store(s.clone()),
            Self::CorruptResult { key, reason } => Self::CorruptResult {
                key: key.clone(),
                reason: reason.clone(),
            },
            Self::Deadline(d) => Self::Deadline(*d),
            Self::Work(never) => match *never {},
        }
    }
}

impl PartialEq for IdempotencyError<Infallible> {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

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

    /// Whether the result was replayed.
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// When an attempt runs and how long its lock may live.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Now, Unix milliseconds.
    pub now_ms: u64,
    /// The invocation's deadline, Unix milliseconds (Lambda context).
    pub deadline_ms: u64,
}

/// SHA-256 of `parts`, each length-prefixed so that ("ab","c") ≠ ("a","bc").
pub fn payload_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// A time to live that cannot cover one invocation (see [`check_ttl`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "IDEMPOTENCY_TTL_SECONDS ({ttl_seconds}) must be greater than FUNCTION_TIMEOUT_SECONDS \
     ({timeout_seconds}): a shorter time to live lets a duplicate take a live lock"
)]
pub struct TtlTooShort {
    /// The configured time to live.
    pub ttl_seconds: u64,
    /// The function's timeout.
    pub timeout_seconds: u64,
}

/// Refuses a time to live that could not cover one invocation. Lambda does
/// not tell a process its timeout, so the template passes it.
pub fn check_ttl(expires_after: Duration, function_timeout: Duration) -> Result<(), TtlTooShort> {
    if expires_after > function_timeout {
        Ok(())
    } else {
        Err(TtlTooShort {
            ttl_seconds: expires_after.as_secs(),
            timeout_seconds: function_timeout.as_secs(),
        })
    }
}

/// How the completions of one [`Idempotency::complete_all`] call ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// Records marked completed.
    pub completed: usize,
    /// Ids whose lock another attempt holds now (their work ran; a
    /// duplicate may run it again, so effects must be idempotent).
    pub lost: Vec<String>,
    /// Ids the store would not complete before the deadline (they stay in
    /// progress until their deadline, then a retry re-runs idempotent steps).
    pub failed: Vec<String>,
}

/// Something the guard did that its owner may want to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A duplicate found a completed record and replayed its result.
    Replayed,
    /// Completions the store never wrote before the deadline (see
    /// [`Completion::failed`]); their records stay in progress until then.
    CompletionsLost {
        /// How many.
        records: usize,
    },
}

/// Told of every [`Event`]; called inline, so it must be quick.
pub type Observer = std::sync::Arc<dyn Fn(Event) + Send + Sync>;

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

    /// Releases many locks at once.
    pub async fn release_all(&self, locks: Vec<Lock>) {
        futures::future::join_all(locks.into_iter().map(|lock| self.release(lock))).await;
    }
}

/// First wait before retrying completions the store did not write.
const COMPLETION_BACKOFF: Duration = Duration::from_millis(50);

/// How long a lock lives when the invocation's deadline is unknown or
/// already past: Lambda always passes a real deadline, but local emulators
/// may not (`cargo lambda watch` 1.9 passes a fixed value in 1970), and a
/// lock that lapses at once would let a concurrent duplicate through.
pub const FALLBACK_LOCK: Duration = Duration::from_secs(10);

pub(crate) fn lock_until(window: Window) -> u64 {
    if window.deadline_ms > window.now_ms {
        window.deadline_ms
    } else {
        window.now_ms + FALLBACK_LOCK.as_millis() as u64
    }
}

/// A token no other attempt has: a per-process random seed (std's hasher
/// keys are random per process), the time and a counter.
pub(crate) fn attempt_token() -> String {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{seed:016x}-{nanos:x}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A held idempotency lock (see [`Idempotency::begin`]).
#[derive(Debug)]
#[must_use = "complete or release the lock"]
pub struct Lock {
    record: Record,
}

impl Lock {
    /// The record this lock wrote.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The record that completes this lock with `value` as its result:
    /// what [`Idempotency::complete_all`] writes, for a caller that writes
    /// it itself (only while [`is_held_by`] holds).
    pub fn completed<T: Serialize>(&self, value: &T) -> Record {
        Record {
            status: Status::Completed,
            result: Some(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())),
            ..self.record.clone()
        }
    }
}

/// A lock not yet taken (see [`Idempotency::prepare`]).
#[derive(Debug, Clone)]
#[must_use = "write the record, then take the lock or resolve what was found"]
pub struct Prepared {
    key: String,
    record: Record,
}

impl Prepared {
    /// The in-progress record to write, unless a live one exists ([`is_free`]).
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The lock, once the caller's conditional write of [`Prepared::record`]
    /// succeeded.
    pub fn acquired(self) -> Lock {
        Lock {
            record: self.record,
        }
    }
}

/// What [`Idempotency::begin`] found.
#[derive(Debug)]
pub enum Begin<T> {
    /// The lock is ours: do the work.
    Acquired(Lock),
    /// The work already ran with this payload; its result.
    Replayed(T),
}

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

/// The lock condition, shared by every store: may a new lock be written over
/// `existing` at `now_ms`? A completed record frees at its `expiration`; an
/// in-progress one only at its own `in_progress_expiration`.
pub fn is_free(existing: Option<&Record>, now_ms: u64) -> bool {
    match existing {
        None => true,
        Some(r) => match r.status {
            Status::Completed => r.expiration < now_ms / 1000,
            Status::InProgress => r.in_progress_expiration < now_ms,
        },
    }
}

/// Whether `stored` is still the lock `ours` took (the completion and
/// release condition, shared by every store).
pub fn is_held_by(stored: Option<&Record>, ours: &Record) -> bool {
    stored.is_some_and(|r| r.status == Status::InProgress && r.attempt == ours.attempt)
}

/// An [`IdempotencyStore`] in memory, for tests and examples.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    /// The record with `id`, if any.
    pub fn get(&self, id: &str) -> Option<Record> {
        self.lock().get(id).cloned()
    }

    /// Removes the record with `id`, as DynamoDB's TTL would once it expired.
    pub fn expire(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MemoryStore {
    /// [`IdempotencyStore::acquire`], at once: for in-memory adapters that
    /// write a lock together with data of their own, atomically.
    pub fn acquire_now(&self, record: &Record, now_ms: u64) -> Acquire {
        let mut records = self.lock();
        let existing = records.get(&record.id);
        if is_free(existing, now_ms) {
            records.insert(record.id.clone(), record.clone());
            return Acquire::Acquired;
        }
        Acquire::Existing(existing.cloned().unwrap_or_else(|| record.clone()))
    }

    /// One completion of [`IdempotencyStore::complete_all`], at once.
    pub fn complete_now(&self, record: &Record) -> Result<(), CompleteError> {
        let mut stored = self.lock();
        if is_held_by(stored.get(&record.id), record) {
            stored.insert(record.id.clone(), record.clone());
            Ok(())
        } else {
            Err(CompleteError::LockLost)
        }
    }
}

impl IdempotencyStore for MemoryStore {
    async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
        Ok(self.acquire_now(record, now_ms))
    }

    async fn complete_all(&self, records: &[Record]) -> Vec<Result<(), CompleteError>> {
        records.iter().map(|r| self.complete_now(r)).collect()
    }

    async fn release(&self, record: &Record) -> Result<(), StoreError> {
        let mut stored = self.lock();
        if is_held_by(stored.get(&record.id), record) {
            stored.remove(&record.id);
        }
        Ok(())
    }
}

impl<T: IdempotencyStore> IdempotencyStore for std::sync::Arc<T> {
    fn acquire(
        &self,
        record: &Record,
        now_ms: u64,
    ) -> impl Future<Output = Result<Acquire, StoreError>> + Send {
        (**self).acquire(record, now_ms)
    }
    fn complete_all(
        &self,
        records: &[Record],
    ) -> impl Future<Output = Vec<Result<(), CompleteError>>> + Send {
        (**self).complete_all(records)
    }
    fn release(&self, record: &Record) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(now_ms: u64) -> Window {
        Window {
            now_ms,
            deadline_ms: now_ms + 3_000,
        }
    }

    fn soon() -> crate::deadline::Deadline {
        crate::deadline::Deadline::after(Duration::from_secs(3))
    }

    fn guard() -> (Arc<MemoryStore>, Idempotency<Arc<MemoryStore>>) {
        let store = Arc::new(MemoryStore::default());
        (store.clone(), Idempotency::new(store, "fn", HOUR))
    }

    async fn count(runs: &AtomicU32) -> Result<u32, String> {
        Ok(runs.fetch_add(1, Ordering::SeqCst) + 1)
    }

    #[tokio::test]
    async fn second_call_replays_the_stored_result_without_running() {
        let (store, idem) = guard();
        let runs = AtomicU32::new(0);
        let first = idem
            .once("k", payload_hash(["a"]), at(1_000), soon(), || count(&runs))
            .await
            .unwrap();
        let second = idem
            .once("k", payload_hash(["a"]), at(2_000), soon(), || count(&runs))
            .await
            .unwrap();
        assert_eq!(first, Run::Fresh(1));
        assert_eq!(second, Run::Replayed(1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let record = store.get("fn#k").unwrap();
        assert_eq!(record.status, Status::Completed);
        assert_eq!(record.expiration, 1 + 3600);
    }

    #[tokio::test]
    async fn a_disabled_guard_runs_the_work_every_time_and_writes_no_record() {
        let store = Arc::new(MemoryStore::default());
        let idem = Idempotency::new(store.clone(), "fn", HOUR).disabled(true);
        let runs = AtomicU32::new(0);
        for now in [1_000, 2_000] {
            idem.once("k", payload_hash(["a"]), at(now), soon(), || count(&runs))
                .await
                .unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(store.get("fn#k"), None);
    }

    #[tokio::test]
    async fn same_key_with_a_different_payload_is_an_error() {
        let (_, idem) = guard();
        let runs = AtomicU32::new(0);
        idem.once("k", payload_hash(["a"]), at(1_000), soon(), || count(&runs))
            .await
            .unwrap();
        let err = idem
            .once("k", payload_hash(["b"]), at(2_000), soon(), || count(&runs))
            .await
            .unwrap_err();
        assert!(
            matches!(err, IdempotencyError::PayloadMismatch { .. }),
            "{err}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn in_progress_duplicate_fails_until_the_lock_lapses() {
        let (store, idem) = guard();
        // A crashed attempt left its lock, valid until its deadline (1_000 + 3_000).
        let crashed = Record {
            id: "fn#k".into(),
            status: Status::InProgress,
            expiration: 3_601,
            in_progress_expiration: 4_000,
            payload_hash: payload_hash(["a"]),
            result: None,
            attempt: "crashed".into(),
        };
        assert_eq!(
            store.acquire(&crashed, 1_000).await.unwrap(),
            Acquire::Acquired
        );
        let runs = AtomicU32::new(0);
        let err = idem
            .once("k", payload_hash(["a"]), at(3_999), soon(), || count(&runs))
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::InProgress { .. }), "{err}");
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let retry = idem
            .once("k", payload_hash(["a"]), at(4_001), soon(), || count(&runs))
            .await
            .unwrap();
        assert_eq!(retry, Run::Fresh(1));
    }

    #[tokio::test]
    async fn failed_work_releases_the_lock_for_an_immediate_retry() {
        let (store, idem) = guard();
        let err = idem
            .once("k", payload_hash(["a"]), at(1_000), soon(), || async {
                Err::<u32, _>("boom")
            })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(store.get("fn#k"), None);
        let runs = AtomicU32::new(0);
        assert_eq!(
            idem.once("k", payload_hash(["a"]), at(1_001), soon(), || count(&runs))
                .await
                .unwrap(),
            Run::Fresh(1)
        );
    }

    #[tokio::test]
    async fn completed_records_expire() {
        let (_, idem) = guard();
        let runs = AtomicU32::new(0);
        idem.once("k", payload_hash(["a"]), at(0), soon(), || count(&runs))
            .await
            .unwrap();
        let later = idem
            .once("k", payload_hash(["a"]), at(3_601_000), soon(), || {
                count(&runs)
            })
            .await
            .unwrap();
        assert_eq!(later, Run::Fresh(2));
    }

    #[tokio::test]
    async fn concurrent_duplicates_run_the_work_once() {
        let (_, idem) = guard();
        let runs = AtomicU32::new(0);
        let attempts = (0..8).map(|_| {
            idem.once("k", payload_hash(["a"]), at(1_000), soon(), || async {
                tokio::task::yield_now().await;
                count(&runs).await
            })
        });
        let results = futures::future::join_all(attempts).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let fresh = results
            .iter()
            .filter(|r| matches!(r, Ok(Run::Fresh(_))))
            .count();
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(IdempotencyError::InProgress { .. })))
            .count();
        assert_eq!((fresh, busy), (1, 7));
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_still_locks_for_the_fallback_time() {
        let (store, idem) = guard();
        let lock = match idem
            .begin::<u32>(
                "k",
                payload_hash(["a"]),
                Window {
                    now_ms: 50_000,
                    deadline_ms: 600_000 - 599_000,
                },
            )
            .await
            .unwrap()
        {
            Begin::Acquired(lock) => lock,
            Begin::Replayed(_) => panic!("nothing to replay"),
        };
        assert_eq!(store.get("fn#k").unwrap().in_progress_expiration, 60_000);
        let busy = idem
            .begin::<u32>("k", payload_hash(["a"]), at(59_999))
            .await
            .unwrap_err();
        assert!(matches!(busy, IdempotencyError::InProgress { .. }));
        idem.release(lock).await;
    }

    fn acquired(begin: Begin<u32>) -> Lock {
        match begin {
            Begin::Acquired(lock) => lock,
            Begin::Replayed(_) => panic!("nothing to replay"),
        }
    }

    #[tokio::test]
    async fn an_in_progress_lock_is_freed_only_by_its_own_deadline_not_by_the_ttl() {
        // A 5 s time to live with a 10 s invocation: the lock's expiration must
        // still cover the deadline, and a duplicate after 5 s must not get in.
        let store = Arc::new(MemoryStore::default());
        let idem = Idempotency::new(store.clone(), "fn", Duration::from_secs(5));
        let window = Window {
            now_ms: 1_000,
            deadline_ms: 11_000,
        };
        let _live = acquired(idem.begin("k", payload_hash(["a"]), window).await.unwrap());
        assert!(store.get("fn#k").unwrap().expiration * 1000 > 11_000);
        let duplicate = idem
            .begin::<u32>("k", payload_hash(["a"]), at(7_000))
            .await
            .unwrap_err();
        assert!(matches!(duplicate, IdempotencyError::InProgress { .. }));
        let after_deadline = idem
            .begin::<u32>("k", payload_hash(["a"]), at(11_001))
            .await;
        assert!(matches!(after_deadline, Ok(Begin::Acquired(_))));
    }

    #[tokio::test]
    async fn a_stale_attempt_can_neither_release_nor_complete_a_newer_lock() {
        let (store, idem) = guard();
        let stale = acquired(
            idem.begin("k", payload_hash(["a"]), at(1_000))
                .await
                .unwrap(),
        );
        // The stale attempt's deadline (4_000) passes; a retry takes the lock.
        let fresh = acquired(
            idem.begin("k", payload_hash(["a"]), at(5_000))
                .await
                .unwrap(),
        );
        let fresh_attempt = fresh.record().attempt.clone();
        let stale_again = acquired(
            idem.begin("other", payload_hash(["a"]), at(5_000))
                .await
                .unwrap(),
        );
        idem.release(stale).await;
        assert_eq!(
            store.get("fn#k").unwrap().attempt,
            fresh_attempt,
            "release kept the live lock"
        );
        let stale = Lock {
            record: Record {
                id: "fn#k".into(),
                attempt: "stale".into(),
                ..stale_again.record().clone()
            },
        };
        let completion = idem.complete_all(vec![(stale, &1u32)], soon()).await;
        assert_eq!(completion.lost, ["fn#k"]);
        let record = store.get("fn#k").unwrap();
        assert_eq!(
            (record.status, record.attempt),
            (Status::InProgress, fresh_attempt)
        );
        let completion = idem.complete_all(vec![(fresh, &2u32)], soon()).await;
        assert_eq!(completion.completed, 1);
        idem.release(stale_again).await;
    }

    #[tokio::test]
    async fn a_lock_the_caller_writes_itself_behaves_as_one_begin_takes() {
        let (store, idem) = guard();
        let prepared = idem.prepare("k", payload_hash(["a"]), at(1_000));
        assert_eq!(prepared.record().id, "fn#k");
        assert_eq!(prepared.record().status, Status::InProgress);
        assert_eq!(prepared.record().in_progress_expiration, 4_000);
        // The caller's own write of the record, under the lock condition.
        assert_eq!(
            store.acquire(prepared.record(), 1_000).await.unwrap(),
            Acquire::Acquired
        );
        let lock = prepared.acquired();

        // A duplicate's write finds the live lock: in progress.
        let duplicate = idem.prepare("k", payload_hash(["a"]), at(1_500));
        let Acquire::Existing(live) = store.acquire(duplicate.record(), 1_500).await.unwrap()
        else {
            panic!("the lock is live");
        };
        let busy = idem.resolve::<u32>(&duplicate, live.clone()).unwrap_err();
        assert!(
            matches!(busy, IdempotencyError::InProgress { .. }),
            "{busy}"
        );
        let other = idem.prepare("k", payload_hash(["b"]), at(1_500));
        let mismatch = idem.resolve::<u32>(&other, live).unwrap_err();
        assert!(
            matches!(mismatch, IdempotencyError::PayloadMismatch { .. }),
            "{mismatch}"
        );

        // Completed by the caller's own write of `completed`: later duplicates replay.
        let completed = lock.completed(&7u32);
        assert_eq!(
            (completed.status, completed.result.as_deref()),
            (Status::Completed, Some("7"))
        );
        assert_eq!(
            store.complete_all(std::slice::from_ref(&completed)).await,
            [Ok(())]
        );
        assert_eq!(
            idem.resolve::<u32>(&duplicate, store.get("fn#k").unwrap()),
            Ok(7)
        );
        assert!(matches!(
            idem.take::<u32>(idem.prepare("k", payload_hash(["a"]), at(2_000)), 2_000)
                .await,
            Ok(Begin::Replayed(7))
        ));
    }

    #[tokio::test]
    async fn a_panicking_work_releases_its_lock() {
        let (store, idem) = guard();
        let panicked = soon()
            .run(
                idem.once("k", payload_hash(["a"]), at(1_000), soon(), || async {
                    if store.get("fn#k").is_some() {
                        panic!("boom");
                    }
                    Ok::<u32, String>(1)
                }),
            )
            .await;
        assert!(
            matches!(panicked, Ran::Panicked(message) if message == "boom"),
            "the panic reaches the caller"
        );
        assert_eq!(store.get("fn#k"), None, "and the lock is gone");
    }

    /// Fails the first `n` completions of each call with a store error.
    struct Flaky {
        inner: MemoryStore,
        failures: AtomicU32,
    }

    impl IdempotencyStore for Flaky {
        async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
            self.inner.acquire(record, now_ms).await
        }
        async fn complete_all(&self, records: &[Record]) -> Vec<Result<(), CompleteError>> {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return vec![Err(CompleteError::Store(StoreError("throttled".into())))];
            }
            self.inner.complete_all(records).await
        }
        async fn release(&self, record: &Record) -> Result<(), StoreError> {
            self.inner.release(record).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unwritten_completions_are_retried_with_backoff_and_a_final_loss_is_reported() {
        let flaky = Arc::new(Flaky {
            inner: MemoryStore::default(),
            failures: AtomicU32::new(2),
        });
        let idem = Idempotency::new(flaky.clone(), "fn", HOUR);
        let lock = acquired(idem.begin("k", payload_hash(["a"]), at(0)).await.unwrap());
        let completion = idem.complete_all(vec![(lock, &1u32)], soon()).await;
        assert_eq!(
            flaky.failures.load(Ordering::SeqCst),
            0,
            "both faults fired"
        );
        assert_eq!(completion.completed, 1, "the third try wrote it");

        flaky.failures.store(1_000, Ordering::SeqCst);
        let lock = acquired(idem.begin("j", payload_hash(["a"]), at(0)).await.unwrap());
        let completion = idem.complete_all(vec![(lock, &1u32)], soon()).await;
        assert!(flaky.failures.load(Ordering::SeqCst) < 1_000);
        assert_eq!(
            completion.failed,
            ["fn#j"],
            "lost at the deadline, and said so"
        );
        assert_eq!(flaky.inner.get("fn#j").unwrap().status, Status::InProgress);
    }

    #[tokio::test(start_paused = true)]
    async fn the_observer_is_told_of_replays_and_lost_completions_only() {
        let flaky = Arc::new(Flaky {
            inner: MemoryStore::default(),
            failures: AtomicU32::new(0),
        });
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let idem = Idempotency::new(flaky.clone(), "fn", HOUR)
            .observed_by(move |event| seen.lock().unwrap().push(event));
        let runs = AtomicU32::new(0);
        idem.once("k", payload_hash(["a"]), at(1_000), soon(), || count(&runs))
            .await
            .unwrap();
        assert!(events.lock().unwrap().is_empty(), "a fresh run is no event");
        idem.once("k", payload_hash(["a"]), at(2_000), soon(), || count(&runs))
            .await
            .unwrap();
        flaky.failures.store(1_000, Ordering::SeqCst);
        let lock = acquired(idem.begin("j", payload_hash(["a"]), at(0)).await.unwrap());
        let completion = idem.complete_all(vec![(lock, &1u32)], soon()).await;
        assert!(
            flaky.failures.load(Ordering::SeqCst) < 1_000,
            "the fault fired"
        );
        assert_eq!(completion.failed, ["fn#j"]);
        assert_eq!(
            *events.lock().unwrap(),
            [Event::Replayed, Event::CompletionsLost { records: 1 }]
        );
    }

    /// Item 1 of issue 16: the completion after the work must end by the
    /// invocation's deadline, counted from its start, not from the end of
    /// the work. A 3 s invocation whose work takes 2 s, against a store that
    /// never writes completions: the guard must give up at the deadline,
    /// report the loss, and return the work's result before the caller's
    /// own bound (as the handlers put around it) cuts everything off.
    #[tokio::test(start_paused = true)]
    async fn a_completion_after_slow_work_stops_at_the_invocations_deadline_and_is_counted_lost() {
        let flaky = Arc::new(Flaky {
            inner: MemoryStore::default(),
            failures: AtomicU32::new(1_000),
        });
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let idem = Idempotency::new(flaky.clone(), "fn", HOUR)
            .observed_by(move |event| seen.lock().unwrap().push(event));
        let window = at(0);
        let deadline = crate::deadline::Deadline::for_invocation(
            window.deadline_ms,
            window.now_ms,
            FALLBACK_LOCK,
        );
        let run = deadline
            .backstop()
            .bound(
                idem.once("k", payload_hash(["a"]), window, deadline, || async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok::<u32, String>(7)
                }),
            )
            .await;
        assert!(
            flaky.failures.load(Ordering::SeqCst) < 1_000,
            "the store refused completions"
        );
        assert_eq!(
            run.expect("answered within the invocation's time")
                .expect("the work's result"),
            Run::Fresh(7)
        );
        assert_eq!(
            *events.lock().unwrap(),
            [Event::CompletionsLost { records: 1 }]
        );
        assert_eq!(flaky.inner.get("fn#k").unwrap().status, Status::InProgress);
    }

    /// The first completion call is bounded too: a store that never answers
    /// is cut at the deadline, and the loss is still reported.
    #[tokio::test(start_paused = true)]
    async fn a_completion_the_store_never_answers_is_cut_at_the_deadline_and_reported() {
        struct Hangs(MemoryStore);
        impl IdempotencyStore for Hangs {
            async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
                self.0.acquire(record, now_ms).await
            }
            async fn complete_all(&self, _: &[Record]) -> Vec<Result<(), CompleteError>> {
                std::future::pending().await
            }
            async fn release(&self, record: &Record) -> Result<(), StoreError> {
                self.0.release(record).await
            }
        }
        let idem = Idempotency::new(Hangs(MemoryStore::default()), "fn", HOUR);
        let lock = acquired(idem.begin("k", payload_hash(["a"]), at(0)).await.unwrap());
        let deadline = soon();
        let completion = deadline
            .backstop()
            .bound(idem.complete_all(vec![(lock, &1u32)], deadline))
            .await
            .expect("complete_all answers by its deadline");
        assert_eq!(completion.failed, ["fn#k"]);
    }

    #[test]
    fn a_ttl_that_cannot_cover_an_invocation_is_refused() {
        let ten = Duration::from_secs(10);
        assert!(check_ttl(Duration::from_secs(3600), ten).is_ok());
        let err = check_ttl(Duration::from_secs(5), ten).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "IDEMPOTENCY_TTL_SECONDS (5) must be greater than FUNCTION_TIMEOUT_SECONDS (10)"
            ),
            "{err}"
        );
        assert!(check_ttl(Duration::ZERO, ten).is_err());
    }

    #[test]
    fn payload_hash_separates_parts() {
        assert_ne!(payload_hash(["ab", "c"]), payload_hash(["a", "bc"]));
        assert_eq!(payload_hash(["a"]).len(), 64);
    }
}
