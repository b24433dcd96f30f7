//! Ports: what the use cases need from the outside world, one small trait each.
//!
//! Every port has an AWS adapter (`eventline-aws`) and an in-memory one
//! ([`crate::memory`]). Methods return `Send` futures so handlers can run
//! records concurrently on a multi-threaded runtime.

use eventline_domain::{
    Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock};
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

/// The UsersTable. A user's item holds its signup's lock and the fact
/// that the user was announced (`eventline_powertools::item_lock`): taking
/// the lock and storing the user is one conditional write, and so is
/// recording the announcement.
pub trait UserStore: Send + Sync {
    /// Stores `user` carrying `lock`, unless an item holds its id: then
    /// nothing is written and the stored user is returned with its lock.
    fn create(
        &self,
        user: &User,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Claim<User>, PortError>> + Send;
    /// Puts `lock` on the stored user `id` if it is not announced and its
    /// lock lapsed at `now_ms` (or it has none, or it is `lock` already);
    /// otherwise returns the user as it is.
    fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> impl Future<Output = Result<Claim<User>, PortError>> + Send;
    /// Records on user `id`, if it still carries `lock`, that its
    /// confirmation was queued and its `User Created` published at `at`
    /// (the first time recorded stays), so a duplicate of any age
    /// announces nothing again.
    fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> impl Future<Output = Result<Finish<User>, PortError>> + Send;
    /// Gives `lock` up after failed work, if it is still this attempt's and
    /// the user is not announced; the user stays stored.
    fn release(
        &self,
        id: &UserId,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The user stored under `id`, read consistently.
    fn get(&self, id: &UserId) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
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
    fn create(
        &self,
        user: &User,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Claim<User>, PortError>> + Send {
        (**self).create(user, lock)
    }
    fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> impl Future<Output = Result<Claim<User>, PortError>> + Send {
        (**self).take_over(id, lock, now_ms)
    }
    fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> impl Future<Output = Result<Finish<User>, PortError>> + Send {
        (**self).announce(id, lock, at)
    }
    fn release(
        &self,
        id: &UserId,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).release(id, lock)
    }
    fn get(&self, id: &UserId) -> impl Future<Output = Result<Option<User>, PortError>> + Send {
        (**self).get(id)
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
