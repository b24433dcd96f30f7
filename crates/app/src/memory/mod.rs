//! In-memory implementations of every port, for handler tests, benchmarks
//! and examples (feature `test-util`; the crate's own tests always have
//! them). Each records what it was given and can be told to fail for a key
//! (a user id, message id or object key) a number of times through its
//! [`Faults`], to exercise retries. [`MemoryAdapters`] wires them into
//! each function ([`crate::compose`]), with [`SETTINGS`] for every
//! function.
//!
//! - [`users`], [`profiles`]: the two tables, each write atomic over its
//!   item as DynamoDB's conditional writes are;
//! - [`messaging`]: the notification queue, the event bus, dead letters;
//! - [`mail`]: the SES double and the mail ledger;
//! - [`blobs`]: the bucket, create-if-absent as S3's conditional write;
//! - [`adapters`]: one of each, shared, and every function's settings.

pub mod adapters;
pub mod blobs;
pub mod mail;
pub mod messaging;
pub mod profiles;
pub mod users;

pub use adapters::{
    MemoryAdapters, MemoryMail, NotificationProcessorPorts, ProfileCreatorPorts,
    UserProcessorPorts, WelcomeEmailPorts, SETTINGS,
};
pub use blobs::MemoryBlobStore;
pub use mail::{MemoryMailLedger, MemoryMailer};
pub use messaging::{MemoryDeadLetters, MemoryEventBus, MemoryQueue};
pub use profiles::MemoryProfileStore;
pub use users::MemoryUserStore;

use crate::ports::{Clock, PortError};
use eventline_domain::Timestamp;
use eventline_powertools::item_lock::ItemLock;
use std::collections::HashMap;
use std::sync::Mutex;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the assertions.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Suspends once, as a real network call would, so concurrent records
/// interleave in tests the way they do against AWS.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Injected failures: `key` fails its next `n` calls.
#[derive(Debug, Default)]
pub struct Faults(Mutex<HashMap<String, usize>>);

impl Faults {
    /// Makes the next `times` calls for `key` fail (`usize::MAX`: always).
    pub fn fail(&self, key: &str, times: usize) {
        lock(&self.0).insert(key.to_owned(), times);
    }

    async fn check(&self, operation: &'static str, key: &str) -> Result<(), PortError> {
        yield_once().await;
        let mut faults = lock(&self.0);
        match faults.get_mut(key) {
            Some(n) if *n > 0 => {
                *n = n.saturating_sub(1);
                Err(PortError::new(operation, "injected fault"))
            }
            _ => Ok(()),
        }
    }
}

/// Whether an item's lock is free for `held` at `now_ms`: none, lapsed,
/// or `held` already.
pub(crate) fn free_for(stored: Option<&ItemLock>, held: &ItemLock, now_ms: u64) -> bool {
    stored.is_none_or(|l| !l.is_live(now_ms) || l.attempt == held.attempt)
}

/// Whether `stored` still carries `held`.
pub(crate) fn carries(stored: Option<&ItemLock>, held: &ItemLock) -> bool {
    stored.is_some_and(|l| l.attempt == held.attempt)
}

/// A [`Clock`] that always says the same time (by default the Unix epoch).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Default for FixedClock {
    fn default() -> Self {
        Self(Timestamp::from_unix_millis(0))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
