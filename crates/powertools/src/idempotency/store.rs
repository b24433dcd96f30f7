//! The store a guard keeps its records in: the port, the record and the
//! rules every store shares.

use std::future::Future;
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
