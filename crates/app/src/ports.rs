//! Ports: what the use cases need from the outside world, one small trait each.
//!
//! Every port has an AWS adapter (`eventline-aws`) and an in-memory one
//! ([`crate::memory`]). Methods return `Send` futures so handlers can run
//! records concurrently on a multi-threaded runtime.

use eventline_domain::{
    Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::idempotency::Record;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use thiserror::Error;

/// A call through a port failed. The message comes from the adapter (e.g. the
/// AWS error code and message) and must not contain personal data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{operation} failed: {message}")]
pub struct PortError {
    /// What was attempted, e.g. `DynamoDB PutItem users`.
    pub operation: &'static str,
    /// Why it failed.
    pub message: String,
}

impl PortError {
    /// A failure of `operation` because of `cause`.
    pub fn new(operation: &'static str, cause: impl Display) -> Self {
        Self {
            operation,
            message: cause.to_string(),
        }
    }
}

/// Outcome of a create-if-absent write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted<T> {
    /// Nothing was stored under the key; now the new value is.
    New,
    /// Something already was; it is returned and was left untouched.
    Existing(T),
}

/// The UsersTable.
pub trait UserStore: Send + Sync {
    /// Stores `user` unless its id is taken (one conditional write, no race).
    fn insert(&self, user: &User)
        -> impl Future<Output = Result<Inserted<User>, PortError>> + Send;
    /// The user stored under `id`, read consistently.
    fn get(&self, id: &UserId) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
    /// Records durably, on the user's item, that its confirmation was queued
    /// and its `User Created` published at `at` (sets `announced_at` if it is
    /// not set yet), so a duplicate of any age announces nothing again.
    fn mark_announced(
        &self,
        id: &UserId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What one entry of [`SignupWrites::lock_and_insert`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAndInsert {
    /// Both were written: the lock is the caller's, the user is stored.
    Written,
    /// Neither was written: a live idempotency record holds the key (it
    /// fails the lock condition, `eventline_powertools::idempotency::is_free`).
    LockTaken(Record),
    /// Neither was written: a user is stored under the id (and the lock was
    /// free).
    UserExists(User),
}

/// One entry of [`SignupWrites::complete_and_announce`]: a lock to complete
/// and, unless the user is announced already, the announcement to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The lock's completed record (`Lock::completed`).
    pub completed: Record,
    /// The user to mark announced and when (see [`UserStore::mark_announced`]).
    pub announce: Option<(UserId, Timestamp)>,
}

/// What one entry of [`SignupWrites::complete_and_announce`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The lock is completed and the announcement recorded.
    Completed,
    /// The announcement is recorded, but the lock was no longer this
    /// attempt's (it lapsed and another took it, or it is gone): not
    /// completed.
    LockLost,
}

/// user-processor's writes to the UsersTable and the IdempotencyTable:
/// a batch's locks and new users in one atomic write, its completions and
/// announcements in another, so a batch costs two write round trips
/// whatever its size.
///
/// Each call takes at most [`SignupWrites::MAX_ENTRIES`] entries, written
/// together (DynamoDB: one `TransactWriteItems`); an entry whose condition
/// fails leaves the write and the rest is written without it. One result
/// per entry, in order; an entry the store did not confirm is an error.
pub trait SignupWrites: Send + Sync {
    /// Entries one call takes at most.
    const MAX_ENTRIES: usize;

    /// For each `(lock, user)`: writes the in-progress lock unless a live
    /// record holds its key at `now_ms`, and the user unless its id is
    /// taken, both or neither.
    fn lock_and_insert(
        &self,
        entries: &[(Record, User)],
        now_ms: u64,
    ) -> impl Future<Output = Vec<Result<LockAndInsert, PortError>>> + Send;

    /// For each entry: records the announcement (its user must be stored;
    /// the first announcement's time stays) and writes the completed lock
    /// if this attempt still holds it. An entry whose announcement cannot
    /// be recorded writes neither.
    fn complete_and_announce(
        &self,
        entries: &[Finish],
    ) -> impl Future<Output = Vec<Result<Finished, PortError>>> + Send;
}

/// The NotificationQueue.
pub trait NotificationQueue: Send + Sync {
    /// Enqueues `notifications` for notification-processor, in as few calls
    /// as the queue allows. One result per notification, in order: a batch
    /// API's partial failure fails exactly the entries it names.
    fn enqueue_all(
        &self,
        notifications: &[Notification],
    ) -> impl Future<Output = Vec<Result<(), PortError>>> + Send;
}

/// The EventBridge bus.
pub trait EventPublisher: Send + Sync {
    /// Publishes one `User Created` (source `user.service`) per event, in as
    /// few calls as the bus allows. One result per event, in order.
    fn publish_all(
        &self,
        events: &[UserCreated],
    ) -> impl Future<Output = Vec<Result<(), PortError>>> + Send;
}

/// What the mail ledger says about an email about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it: it was never sent, and its recipient is under today's cap.
    /// (The same message id admitted again, after a failed send, takes no
    /// second slot of the quota.)
    Admitted,
    /// It was sent before (a durable marker under its message id): skip it.
    AlreadySent,
    /// Its recipient already had `cap` distinct emails on this day.
    OverQuota,
}

/// The durable record of sent mail: one marker per message id (no expiry),
/// and a per-recipient daily quota counted in distinct message ids.
pub trait MailLedger: Send + Sync {
    /// Checks the sent marker of `email.message_id` and, if unsent, takes a
    /// slot of `email.to`'s quota for `day` (`YYYY-MM-DD`, UTC) unless `cap`
    /// distinct messages already have one, in one conditional write.
    fn admit(
        &self,
        email: &OutgoingEmail,
        day: &str,
        cap: u32,
    ) -> impl Future<Output = Result<Admission, PortError>> + Send;
    /// Records durably that `message_id` was sent.
    fn record_sent(&self, message_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A mail transport.
pub trait Mailer: Send + Sync {
    /// Delivers `email`. Delivering the same `message_id` twice must not
    /// produce two different messages (transports key on it).
    fn send(&self, email: &OutgoingEmail) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The ProfilesTable.
pub trait ProfileStore: Send + Sync {
    /// Stores `profile` unless one exists for the user (one conditional write).
    fn insert(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = Result<Inserted<Profile>, PortError>> + Send;
    /// Records durably, on the profile's item, that its document was
    /// written, so a duplicate of any age writes nothing again.
    fn mark_document_written(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// An object store (the bucket): profile documents and the mail outbox.
pub trait BlobStore: Send + Sync {
    /// Writes `body` under `key`, replacing what was there.
    fn put(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The current time. A port so tests can fix it.
pub trait Clock: Send + Sync {
    /// Now, UTC.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Timestamp::from_unix_millis(millis)
    }
}

// A shared port is a port: a test keeps an `Arc` to an in-memory adapter while
// the use case owns a clone, and production code can share one client.
impl<T: UserStore> UserStore for Arc<T> {
    fn insert(
        &self,
        user: &User,
    ) -> impl Future<Output = Result<Inserted<User>, PortError>> + Send {
        (**self).insert(user)
    }
    fn get(&self, id: &UserId) -> impl Future<Output = Result<Option<User>, PortError>> + Send {
        (**self).get(id)
    }
    fn mark_announced(
        &self,
        id: &UserId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).mark_announced(id, at)
    }
}

impl<T: SignupWrites> SignupWrites for Arc<T> {
    const MAX_ENTRIES: usize = T::MAX_ENTRIES;
    fn lock_and_insert(
        &self,
        entries: &[(Record, User)],
        now_ms: u64,
    ) -> impl Future<Output = Vec<Result<LockAndInsert, PortError>>> + Send {
        (**self).lock_and_insert(entries, now_ms)
    }
    fn complete_and_announce(
        &self,
        entries: &[Finish],
    ) -> impl Future<Output = Vec<Result<Finished, PortError>>> + Send {
        (**self).complete_and_announce(entries)
    }
}

impl<T: NotificationQueue> NotificationQueue for Arc<T> {
    fn enqueue_all(
        &self,
        notifications: &[Notification],
    ) -> impl Future<Output = Vec<Result<(), PortError>>> + Send {
        (**self).enqueue_all(notifications)
    }
}

impl<T: EventPublisher> EventPublisher for Arc<T> {
    fn publish_all(
        &self,
        events: &[UserCreated],
    ) -> impl Future<Output = Vec<Result<(), PortError>>> + Send {
        (**self).publish_all(events)
    }
}

impl<T: Mailer> Mailer for Arc<T> {
    fn send(&self, email: &OutgoingEmail) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).send(email)
    }
}

impl<T: ProfileStore> ProfileStore for Arc<T> {
    fn insert(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = Result<Inserted<Profile>, PortError>> + Send {
        (**self).insert(profile)
    }
    fn mark_document_written(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).mark_document_written(user_id)
    }
}

impl<T: MailLedger> MailLedger for Arc<T> {
    fn admit(
        &self,
        email: &OutgoingEmail,
        day: &str,
        cap: u32,
    ) -> impl Future<Output = Result<Admission, PortError>> + Send {
        (**self).admit(email, day, cap)
    }
    fn record_sent(&self, message_id: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).record_sent(message_id)
    }
}

impl<T: BlobStore> BlobStore for Arc<T> {
    fn put(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).put(key, body, content_type)
    }
}
