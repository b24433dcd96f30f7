//! A lock on one key: prepared, held, completed.

use serde::Serialize;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Record, Status, Window};

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

/// A held idempotency lock (see [`Idempotency::begin`](super::Idempotency::begin)).
#[derive(Debug)]
#[must_use = "complete or release the lock"]
pub struct Lock {
    pub(super) record: Record,
}

impl Lock {
    /// The record this lock wrote.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The record that completes this lock with `value` as its result:
    /// what [`Idempotency::complete_all`](super::Idempotency::complete_all) writes, for a caller that writes
    /// it itself (only while [`is_held_by`](super::is_held_by) holds).
    pub fn completed<T: Serialize>(&self, value: &T) -> Record {
        Record {
            status: Status::Completed,
            result: Some(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())),
            ..self.record.clone()
        }
    }
}

/// A lock not yet taken (see [`Idempotency::prepare`](super::Idempotency::prepare)).
#[derive(Debug, Clone)]
#[must_use = "write the record, then take the lock or resolve what was found"]
pub struct Prepared {
    pub(super) key: String,
    pub(super) record: Record,
}

impl Prepared {
    /// The in-progress record to write, unless a live one exists ([`is_free`](super::is_free)).
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

/// What [`Idempotency::begin`](super::Idempotency::begin) found.
#[derive(Debug)]
pub enum Begin<T> {
    /// The lock is ours: do the work.
    Acquired(Lock),
    /// The work already ran with this payload; its result.
    Replayed(T),
}
