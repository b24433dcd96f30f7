//! Idempotency: run a piece of work at most once per key, however often
//! at-least-once delivery hands it to us.
//!
//! SQS, EventBridge and Lambda's asynchronous invoke all deliver at least
//! once, and the same *cause* can also arrive as two different messages (a
//! producer retrying a send). [`Idempotency::once`] guards work with a
//! record in a store (DynamoDB in production), keyed by a stable key the
//! caller derives from the cause (not the message id), and follows the
//! design of Powertools for AWS Lambda:
//!
//! 1. **One conditional write takes the lock** — no read-then-write race:
//!    the record is created `IN_PROGRESS` unless a live record exists
//!    (`attribute_not_exists(id) OR expiration < :now OR (status =
//!    IN_PROGRESS AND in_progress_expiration < :now_ms)`).
//! 2. The lock's **in-progress expiry is the invocation's deadline**: a
//!    crashed or timed-out attempt cannot block retries beyond it (SQS makes
//!    the message visible again only after the visibility timeout, which is
//!    at least the function timeout).
//! 3. On success the record becomes `COMPLETED` with a small result and a
//!    time to live; a later duplicate **replays** that result without doing
//!    the work again.
//! 4. On failure the record is deleted, so the retry can run at once.
//! 5. The record stores a **hash of the payload**: the same key with a
//!    different payload is an error ([`IdempotencyError::PayloadMismatch`]),
//!    never a silent replay of someone else's result.
//! 6. A concurrent duplicate that finds the record in progress fails
//!    ([`IdempotencyError::InProgress`]); the batch reports it and SQS
//!    retries it later, by which time it replays.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::{Display, Write};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;

/// State of an idempotency record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Work is running (or crashed before its deadline).
    InProgress,
    /// Work finished; `result` holds what it returned.
    Completed,
}

impl Status {
    /// The stored name, as Powertools stores it.
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

/// Where records live. DynamoDB in production (`eventline-aws`), memory in tests.
pub trait IdempotencyStore: Send + Sync {
    /// Writes `record` (in progress) unless a live record with its id exists
    /// at `now_ms`, in one conditional write; returns the live one otherwise.
    fn acquire(
        &self,
        record: &Record,
        now_ms: u64,
    ) -> impl Future<Output = Result<Acquire, StoreError>> + Send;
    /// Overwrites the record with its completed form.
    fn complete(&self, record: &Record) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes the record (the work failed; let a retry run).
    fn release(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Overwrites several records with their completed forms; stores that
    /// can write many items in one call override this.
    fn complete_all(
        &self,
        records: &[Record],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for record in records {
                self.complete(record).await?;
            }
            Ok(())
        }
    }
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
    /// The work itself failed (the record was released).
    #[error(transparent)]
    Work(E),
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
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Runs work at most once per key. Build it once per cold start.
#[derive(Debug, Clone)]
pub struct Idempotency<S> {
    store: S,
    scope: String,
    expires_after: Duration,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
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
            metrics: None,
        }
    }

    /// Counts every replay as `IdempotentReplays` in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs `work` unless it already ran for `key` (with the same
    /// `payload_hash`), in which case its stored result is returned.
    pub async fn once<T, E, F, Fut>(
        &self,
        key: &str,
        payload_hash: String,
        window: Window,
        work: F,
    ) -> Result<Run<T>, IdempotencyError<E>>
    where
        T: Serialize + DeserializeOwned,
        E: Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let lock = match self.begin(key, payload_hash, window).await.map_err(widen)? {
            Begin::Replayed(value) => return Ok(Run::Replayed(value)),
            Begin::Acquired(lock) => lock,
        };
        match work().await {
            Ok(value) => {
                self.complete_all(vec![(lock, &value)]).await;
                Ok(Run::Fresh(value))
            }
            Err(e) => {
                self.release(lock).await;
                Err(IdempotencyError::Work(e))
            }
        }
    }

    /// Takes the lock for `key`, or returns the stored result of a completed
    /// run with the same payload. For callers that run the work of many keys
    /// in stages (e.g. one batched send for a whole batch); finish every
    /// acquired lock with [`Idempotency::complete_all`] or [`Idempotency::release`].
    pub async fn begin<T: DeserializeOwned>(
        &self,
        key: &str,
        payload_hash: String,
        window: Window,
    ) -> Result<Begin<T>, IdempotencyError<Infallible>> {
        let record = Record {
            id: format!("{}#{key}", self.scope),
            status: Status::InProgress,
            expiration: (window.now_ms / 1000) + self.expires_after.as_secs(),
            in_progress_expiration: lock_until(window),
            payload_hash,
            result: None,
        };
        match self.store.acquire(&record, window.now_ms).await? {
            Acquire::Acquired => Ok(Begin::Acquired(Lock { record })),
            Acquire::Existing(existing) => {
                let value = replay(key, &record, existing)?.into_inner();
                if let Some(metrics) = &self.metrics {
                    metrics.add("IdempotentReplays", crate::metrics::Unit::Count, 1.0);
                }
                Ok(Begin::Replayed(value))
            }
        }
    }

    /// Marks locks completed with their results, in as few store calls as the
    /// store allows. Failures are logged, not returned: the work is done, and
    /// a lock that stays in progress lapses at its deadline, after which a
    /// retry re-runs steps that are themselves idempotent.
    pub async fn complete_all<T: Serialize>(&self, done: Vec<(Lock, &T)>) {
        let records: Vec<Record> = done
            .into_iter()
            .map(|(lock, value)| {
                let mut record = lock.record;
                record.status = Status::Completed;
                record.result =
                    Some(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()));
                record
            })
            .collect();
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.store.complete_all(&records).await {
            tracing::warn!(records = records.len(), error = %e, "could not mark idempotency records completed");
        }
    }

    /// Gives a lock up after failed work, so a retry can run at once.
    pub async fn release(&self, lock: Lock) {
        if let Err(e) = self.store.release(&lock.record.id).await {
            tracing::warn!(id = %lock.record.id, error = %e, "could not release idempotency record");
        }
    }
}

/// How long a lock lives when the invocation's deadline is unknown or
/// already past: Lambda always passes a real deadline, but local emulators
/// may not (`cargo lambda watch` 1.9 passes a fixed value in 1970), and a
/// lock that lapses at once would let a concurrent duplicate through.
pub const FALLBACK_LOCK: Duration = Duration::from_secs(10);

fn lock_until(window: Window) -> u64 {
    if window.deadline_ms > window.now_ms {
        window.deadline_ms
    } else {
        window.now_ms + FALLBACK_LOCK.as_millis() as u64
    }
}

/// A held idempotency lock (see [`Idempotency::begin`]).
#[derive(Debug)]
#[must_use = "complete or release the lock"]
pub struct Lock {
    record: Record,
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

/// The lock condition, shared by every store: may `record` be (re)written at `now_ms`?
pub fn is_free(existing: Option<&Record>, now_ms: u64) -> bool {
    match existing {
        None => true,
        Some(r) => {
            r.expiration < now_ms / 1000
                || (r.status == Status::InProgress && r.in_progress_expiration < now_ms)
        }
    }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl IdempotencyStore for MemoryStore {
    async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
        let mut records = self.lock();
        let existing = records.get(&record.id);
        if is_free(existing, now_ms) {
            records.insert(record.id.clone(), record.clone());
            return Ok(Acquire::Acquired);
        }
        Ok(Acquire::Existing(
            existing.cloned().unwrap_or_else(|| record.clone()),
        ))
    }

    async fn complete(&self, record: &Record) -> Result<(), StoreError> {
        self.lock().insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.lock().remove(id);
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
    fn complete(&self, record: &Record) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(record)
    }
    fn release(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(id)
    }
    fn complete_all(
        &self,
        records: &[Record],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete_all(records)
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
            .once("k", payload_hash(["a"]), at(1_000), || count(&runs))
            .await
            .unwrap();
        let second = idem
            .once("k", payload_hash(["a"]), at(2_000), || count(&runs))
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
    async fn same_key_with_a_different_payload_is_an_error() {
        let (_, idem) = guard();
        let runs = AtomicU32::new(0);
        idem.once("k", payload_hash(["a"]), at(1_000), || count(&runs))
            .await
            .unwrap();
        let err = idem
            .once("k", payload_hash(["b"]), at(2_000), || count(&runs))
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
        };
        assert_eq!(
            store.acquire(&crashed, 1_000).await.unwrap(),
            Acquire::Acquired
        );
        let runs = AtomicU32::new(0);
        let err = idem
            .once("k", payload_hash(["a"]), at(3_999), || count(&runs))
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::InProgress { .. }), "{err}");
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let retry = idem
            .once("k", payload_hash(["a"]), at(4_001), || count(&runs))
            .await
            .unwrap();
        assert_eq!(retry, Run::Fresh(1));
    }

    #[tokio::test]
    async fn failed_work_releases_the_lock_for_an_immediate_retry() {
        let (store, idem) = guard();
        let err = idem
            .once("k", payload_hash(["a"]), at(1_000), || async {
                Err::<u32, _>("boom")
            })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(store.get("fn#k"), None);
        let runs = AtomicU32::new(0);
        assert_eq!(
            idem.once("k", payload_hash(["a"]), at(1_001), || count(&runs))
                .await
                .unwrap(),
            Run::Fresh(1)
        );
    }

    #[tokio::test]
    async fn completed_records_expire() {
        let (_, idem) = guard();
        let runs = AtomicU32::new(0);
        idem.once("k", payload_hash(["a"]), at(0), || count(&runs))
            .await
            .unwrap();
        let later = idem
            .once("k", payload_hash(["a"]), at(3_601_000), || count(&runs))
            .await
            .unwrap();
        assert_eq!(later, Run::Fresh(2));
    }

    #[tokio::test]
    async fn concurrent_duplicates_run_the_work_once() {
        let (_, idem) = guard();
        let runs = AtomicU32::new(0);
        let attempts = (0..8).map(|_| {
            idem.once("k", payload_hash(["a"]), at(1_000), || async {
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

    #[test]
    fn payload_hash_separates_parts() {
        assert_ne!(payload_hash(["ab", "c"]), payload_hash(["a", "bc"]));
        assert_eq!(payload_hash(["a"]).len(), 64);
    }
}
