//! Ports: what the use cases need from the outside world, one small trait each.
//!
//! Every port has an AWS adapter (`eventline-aws`) and an in-memory one
//! (`crate::memory`, feature `test-util`). Methods return `Send` futures
//! so handlers can run records concurrently on a multi-threaded runtime.

use eventline_domain::{
    MailboxKey, Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
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

/// Whether a quota slot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The message has a slot of its mailbox's quota for the day (taken
    /// now, or earlier: the same message id takes no second slot).
    Admitted,
    /// The mailbox already had `cap` distinct messages on this day.
    OverQuota,
}

/// The sent marker of one message (`mail-sent#<message_id>`): the mail's
/// own lock while it is being sent, then the durable fact that it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMarker {
    /// The payload the marker was taken for (none on markers written
    /// before hashes lived on them: they are the same payload).
    pub payload_hash: Option<String>,
    /// The message was sent (no expiry: a duplicate of any age finds it).
    pub sent: bool,
}

/// The durable record of sent mail, one marker per message id, each the
/// message's own lock ([`eventline_powertools::item_lock`]); and a daily
/// quota per mailbox counted in distinct message ids. Each method is one
/// single-item conditional write.
pub trait MailLedger: Send + Sync {
    /// Creates the marker of `message_id` in progress, carrying `lock` and
    /// `payload_hash`, unless one exists: then nothing is written and the
    /// marker is returned as it is.
    fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Claim<MailMarker>, PortError>> + Send;
    /// Puts `lock` on the marker of `message_id` if it is not sent and its
    /// lock lapsed at `now_ms` (or it has none, or it is `lock` already);
    /// otherwise returns the marker as it is.
    fn take_over(
        &self,
        message_id: &str,
        lock: &ItemLock,
        now_ms: u64,
    ) -> impl Future<Output = Result<Claim<MailMarker>, PortError>> + Send;
    /// Records that `message_id` was sent, if its marker still carries `lock`.
    fn record_sent(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Finish<MailMarker>, PortError>> + Send;
    /// Gives `lock` up after an attempt that sent nothing, if it is still
    /// this attempt's and the message is not sent: the unsent marker goes
    /// with it (it holds nothing else), so a retry creates it afresh.
    fn release(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Takes a slot of `mailbox`'s quota for `day` (`YYYY-MM-DD`, UTC) for
    /// `message_id`, unless `cap` distinct messages have one already.
    fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> impl Future<Output = Result<Admission, PortError>> + Send;
}

/// What a transport did with an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// It went out now.
    Now,
    /// The transport already held this message id (the outbox's object is
    /// created once): nothing new went out.
    Before,
}

/// A mail transport.
pub trait Mailer: Send + Sync {
    /// Delivers `email`. Delivering the same `message_id` twice must not
    /// produce two different messages (transports key on it).
    fn send(&self, email: &OutgoingEmail) -> impl Future<Output = Result<Sent, PortError>> + Send;
}

/// A stored profile and the payload it was created for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProfile {
    /// The profile (`document_written` is its fact).
    pub profile: Profile,
    /// The `User Created` payload hash it was created for (none on profiles
    /// written before hashes lived on them: they are the same payload).
    pub payload_hash: Option<String>,
}

/// The ProfilesTable. A profile's item is its own lock
/// ([`eventline_powertools::item_lock`]) and holds the fact that its
/// document was written: creating it with the lock is one conditional
/// write, and so is recording the document.
pub trait ProfileStore: Send + Sync {
    /// Stores `profile` carrying `lock` and `payload_hash`, unless one
    /// exists for the user: then nothing is written and it is returned.
    fn create(
        &self,
        profile: &Profile,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Claim<StoredProfile>, PortError>> + Send;
    /// Puts `lock` on the profile of `user_id` if its document is not
    /// recorded and its lock lapsed at `now_ms` (or it has none, or it is
    /// `lock` already); otherwise returns the profile as it is.
    fn take_over(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> impl Future<Output = Result<Claim<StoredProfile>, PortError>> + Send;
    /// Records on the profile, if it still carries `lock`, that its
    /// document was written, so a duplicate of any age writes nothing again.
    fn record_document(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Finish<StoredProfile>, PortError>> + Send;
    /// Gives `lock` up after failed work, if it is still this attempt's and
    /// the document is not recorded; the profile stays.
    fn release(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What a create-if-absent object write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The object did not exist; now it holds the body.
    Created,
    /// An object was already there; it was left as it was.
    Exists,
}

/// An object store (the bucket): profile documents and the mail outbox.
pub trait BlobStore: Send + Sync {
    /// Writes `body` under `key` unless an object is there already (one
    /// conditional write): an object, once written, is never replaced, so
    /// it is its own create-if-absent fact.
    fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> impl Future<Output = Result<Put, PortError>> + Send;
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
    fn send(&self, email: &OutgoingEmail) -> impl Future<Output = Result<Sent, PortError>> + Send {
        (**self).send(email)
    }
}

impl<T: ProfileStore> ProfileStore for Arc<T> {
    fn create(
        &self,
        profile: &Profile,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Claim<StoredProfile>, PortError>> + Send {
        (**self).create(profile, payload_hash, lock)
    }
    fn take_over(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> impl Future<Output = Result<Claim<StoredProfile>, PortError>> + Send {
        (**self).take_over(user_id, lock, now_ms)
    }
    fn record_document(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Finish<StoredProfile>, PortError>> + Send {
        (**self).record_document(user_id, lock)
    }
    fn release(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).release(user_id, lock)
    }
}

impl<T: MailLedger> MailLedger for Arc<T> {
    fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Claim<MailMarker>, PortError>> + Send {
        (**self).lock(message_id, payload_hash, lock)
    }
    fn take_over(
        &self,
        message_id: &str,
        lock: &ItemLock,
        now_ms: u64,
    ) -> impl Future<Output = Result<Claim<MailMarker>, PortError>> + Send {
        (**self).take_over(message_id, lock, now_ms)
    }
    fn record_sent(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<Finish<MailMarker>, PortError>> + Send {
        (**self).record_sent(message_id, lock)
    }
    fn release(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).release(message_id, lock)
    }
    fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> impl Future<Output = Result<Admission, PortError>> + Send {
        (**self).take_slot(mailbox, message_id, day, cap)
    }
}

impl<T: BlobStore> BlobStore for Arc<T> {
    fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> impl Future<Output = Result<Put, PortError>> + Send {
        (**self).put_new(key, body, content_type)
    }
}
