//! In-memory implementations of every port, for handler tests, benchmarks
//! and examples. Each records what it was given and can be told to fail for
//! a key (a user id, message id or object key) a number of times, to
//! exercise retries. [`MemoryAdapters`] wires them into each function
//! ([`crate::compose`]), with [`SETTINGS`] for every function.

use crate::compose::Wiring;
use crate::mail::{EitherMailer, MailConfig, OutboxMailer};
use crate::ports::{
    Admission, BlobStore, Clock, EventPublisher, MailLedger, MailMarker, Mailer, NotificationQueue,
    PortError, ProfileStore, Put, Sent, StoredProfile, UserStore,
};
use crate::{notification_processor, profile_creator, user_processor, welcome_email, Settings};
use eventline_domain::{
    MailboxKey, Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::batch::{DeadLetter, DeadLetterSink};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

/// [`UserStore`] over a map of users and the locks they carry, each write
/// atomic over its item as DynamoDB's conditional writes are.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: Mutex<BTreeMap<UserId, Locked<User>>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
    writes: AtomicU64,
}

impl MemoryUserStore {
    /// Every stored user, by id.
    pub fn users(&self) -> Vec<User> {
        lock(&self.users)
            .values()
            .map(|u| u.value.clone())
            .collect()
    }

    /// How many creates actually stored a user.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Stores `user` as an earlier attempt left it (carrying `lock`, or
    /// none): what a test starts from.
    pub fn seed(&self, user: User, lock: Option<ItemLock>) {
        let held = lock;
        self::lock(&self.users).insert(
            user.id.clone(),
            Locked {
                value: user,
                lock: held,
            },
        );
    }
}

impl UserStore for MemoryUserStore {
    async fn create(&self, user: &User, held: &ItemLock) -> Result<Claim<User>, PortError> {
        self.faults
            .check("memory users create", user.id.as_str())
            .await?;
        let mut users = lock(&self.users);
        if let Some(existing) = users.get(&user.id) {
            return Ok(Claim::Found(existing.clone()));
        }
        users.insert(
            user.id.clone(),
            Locked {
                value: user.clone(),
                lock: Some(held.clone()),
            },
        );
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(Claim::Held)
    }

    async fn take_over(
        &self,
        id: &UserId,
        held: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        self.faults
            .check("memory users take over", id.as_str())
            .await?;
        let mut users = lock(&self.users);
        let stored = users
            .get_mut(id)
            .ok_or_else(|| PortError::new("memory users take over", "no such user"))?;
        let free = stored
            .lock
            .as_ref()
            .is_none_or(|l| !l.is_live(now_ms) || l.attempt == held.attempt);
        if stored.value.is_announced() || !free {
            return Ok(Claim::Found(stored.clone()));
        }
        stored.lock = Some(held.clone());
        Ok(Claim::Held)
    }

    async fn announce(
        &self,
        id: &UserId,
        held: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        self.faults
            .check("memory users announce", id.as_str())
            .await?;
        let mut users = lock(&self.users);
        let stored = users
            .get_mut(id)
            .ok_or_else(|| PortError::new("memory users announce", "no such user"))?;
        if stored.lock.as_ref().map(|l| &l.attempt) != Some(&held.attempt) {
            return Ok(Finish::NotHeld(stored.clone()));
        }
        stored.value.announced_at.get_or_insert(at);
        Ok(Finish::Recorded)
    }

    async fn release(&self, id: &UserId, held: &ItemLock) -> Result<(), PortError> {
        self.faults
            .check("memory users release", id.as_str())
            .await?;
        if let Some(stored) = lock(&self.users).get_mut(id) {
            let ours = stored
                .lock
                .as_ref()
                .is_some_and(|l| l.attempt == held.attempt);
            if ours && !stored.value.is_announced() {
                stored.lock = None;
            }
        }
        Ok(())
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.faults.check("memory users get", id.as_str()).await?;
        Ok(lock(&self.users).get(id).map(|u| u.value.clone()))
    }
}

/// [`NotificationQueue`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<Notification>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryQueue {
    /// Everything enqueued, in order (duplicates included).
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

impl NotificationQueue for MemoryQueue {
    async fn enqueue_all(&self, notifications: &[Notification]) -> Vec<Result<(), PortError>> {
        let mut results = Vec::with_capacity(notifications.len());
        for n in notifications {
            let result = self
                .faults
                .check("memory queue send", n.user_id.as_str())
                .await;
            if result.is_ok() {
                lock(&self.sent).push(n.clone());
            }
            results.push(result);
        }
        results
    }
}

/// [`EventPublisher`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryEventBus {
    published: Mutex<Vec<UserCreated>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryEventBus {
    /// Everything published, in order (duplicates included).
    pub fn published(&self) -> Vec<UserCreated> {
        lock(&self.published).clone()
    }
}

impl EventPublisher for MemoryEventBus {
    async fn publish_all(&self, events: &[UserCreated]) -> Vec<Result<(), PortError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let result = self
                .faults
                .check("memory bus publish", event.user_id.as_str())
                .await;
            if result.is_ok() {
                lock(&self.published).push(event.clone());
            }
            results.push(result);
        }
        results
    }
}

/// [`Mailer`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    /// Failures to inject, keyed by message id.
    pub faults: Faults,
}

impl MemoryMailer {
    /// Every email sent, in order (duplicates included).
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        lock(&self.sent).clone()
    }
}

impl Mailer for MemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        self.faults
            .check("memory mailer send", &email.message_id)
            .await?;
        lock(&self.sent).push(email.clone());
        Ok(Sent::Now)
    }
}

/// Whether an item's lock is free for `held` at `now_ms`: none, lapsed,
/// or `held` already.
fn free_for(stored: Option<&ItemLock>, held: &ItemLock, now_ms: u64) -> bool {
    stored.is_none_or(|l| !l.is_live(now_ms) || l.attempt == held.attempt)
}

/// Whether `stored` still carries `held`.
fn carries(stored: Option<&ItemLock>, held: &ItemLock) -> bool {
    stored.is_some_and(|l| l.attempt == held.attempt)
}

/// [`ProfileStore`] over a map of profiles and the locks they carry, each
/// write atomic over its item as DynamoDB's conditional writes are.
#[derive(Debug, Default)]
pub struct MemoryProfileStore {
    profiles: Mutex<BTreeMap<UserId, Locked<StoredProfile>>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryProfileStore {
    /// Every stored profile, by user id.
    pub fn profiles(&self) -> Vec<Profile> {
        lock(&self.profiles)
            .values()
            .map(|p| p.value.profile.clone())
            .collect()
    }

    /// Replaces a stored profile's content, as a user editing it would.
    pub fn overwrite(&self, profile: Profile) {
        let mut profiles = lock(&self.profiles);
        match profiles.get_mut(&profile.user_id) {
            Some(stored) => stored.value.profile = profile,
            None => {
                profiles.insert(
                    profile.user_id.clone(),
                    Locked {
                        value: StoredProfile {
                            profile,
                            payload_hash: None,
                        },
                        lock: None,
                    },
                );
            }
        }
    }

    /// Stores `profile` as an earlier attempt (or an older version) left it:
    /// what a test starts from.
    pub fn seed(&self, profile: Profile, payload_hash: Option<&str>, held: Option<ItemLock>) {
        lock(&self.profiles).insert(
            profile.user_id.clone(),
            Locked {
                value: StoredProfile {
                    profile,
                    payload_hash: payload_hash.map(str::to_owned),
                },
                lock: held,
            },
        );
    }

    /// The lock the profile of `user_id` carries.
    pub fn lock_of(&self, user_id: &str) -> Option<ItemLock> {
        let id = UserId::parse(user_id).ok()?;
        lock(&self.profiles).get(&id)?.lock.clone()
    }
}

impl ProfileStore for MemoryProfileStore {
    async fn create(
        &self,
        profile: &Profile,
        payload_hash: &str,
        held: &ItemLock,
    ) -> Result<Claim<StoredProfile>, PortError> {
        self.faults
            .check("memory profiles create", profile.user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        if let Some(existing) = profiles.get(&profile.user_id) {
            return Ok(Claim::Found(existing.clone()));
        }
        profiles.insert(
            profile.user_id.clone(),
            Locked {
                value: StoredProfile {
                    profile: profile.clone(),
                    payload_hash: Some(payload_hash.to_owned()),
                },
                lock: Some(held.clone()),
            },
        );
        Ok(Claim::Held)
    }

    async fn take_over(
        &self,
        user_id: &UserId,
        held: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<StoredProfile>, PortError> {
        self.faults
            .check("memory profiles take over", user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        let stored = profiles
            .get_mut(user_id)
            .ok_or_else(|| PortError::new("memory profiles take over", "no such profile"))?;
        if stored.value.profile.document_written || !free_for(stored.lock.as_ref(), held, now_ms) {
            return Ok(Claim::Found(stored.clone()));
        }
        stored.lock = Some(held.clone());
        Ok(Claim::Held)
    }

    async fn record_document(
        &self,
        user_id: &UserId,
        held: &ItemLock,
    ) -> Result<Finish<StoredProfile>, PortError> {
        self.faults
            .check("memory profiles record document", user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        let stored = profiles
            .get_mut(user_id)
            .ok_or_else(|| PortError::new("memory profiles record document", "no such profile"))?;
        if !carries(stored.lock.as_ref(), held) {
            return Ok(Finish::NotHeld(stored.clone()));
        }
        stored.value.profile.document_written = true;
        Ok(Finish::Recorded)
    }

    async fn release(&self, user_id: &UserId, held: &ItemLock) -> Result<(), PortError> {
        self.faults
            .check("memory profiles release", user_id.as_str())
            .await?;
        if let Some(stored) = lock(&self.profiles).get_mut(user_id) {
            if carries(stored.lock.as_ref(), held) && !stored.value.profile.document_written {
                stored.lock = None;
            }
        }
        Ok(())
    }
}

/// [`MailLedger`] over a map of markers (with their locks) and
/// per-(mailbox, day) sets of message ids.
#[derive(Debug, Default)]
pub struct MemoryMailLedger {
    markers: Mutex<BTreeMap<String, Locked<MailMarker>>>,
    quota: Mutex<HashMap<(MailboxKey, String), BTreeSet<String>>>,
    /// Failures to inject, keyed by message id.
    pub faults: Faults,
}

impl MemoryMailLedger {
    /// Whether `message_id` is marked sent.
    pub fn is_sent(&self, message_id: &str) -> bool {
        lock(&self.markers)
            .get(message_id)
            .is_some_and(|m| m.value.sent)
    }

    /// The marker of `message_id` with its lock.
    pub fn marker(&self, message_id: &str) -> Option<Locked<MailMarker>> {
        lock(&self.markers).get(message_id).cloned()
    }

    /// Stores a marker as an earlier attempt (or an older version) left it.
    pub fn seed(&self, message_id: &str, marker: MailMarker, held: Option<ItemLock>) {
        lock(&self.markers).insert(
            message_id.to_owned(),
            Locked {
                value: marker,
                lock: held,
            },
        );
    }

    /// The message ids holding a slot of `mailbox`'s quota on `day`.
    pub fn slots(&self, mailbox: &MailboxKey, day: &str) -> Vec<String> {
        lock(&self.quota)
            .get(&(mailbox.clone(), day.to_owned()))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl MailLedger for MemoryMailLedger {
    async fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        held: &ItemLock,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.faults.check("memory ledger lock", message_id).await?;
        let mut markers = lock(&self.markers);
        if let Some(existing) = markers.get(message_id) {
            return Ok(Claim::Found(existing.clone()));
        }
        markers.insert(
            message_id.to_owned(),
            Locked {
                value: MailMarker {
                    payload_hash: Some(payload_hash.to_owned()),
                    sent: false,
                },
                lock: Some(held.clone()),
            },
        );
        Ok(Claim::Held)
    }

    async fn take_over(
        &self,
        message_id: &str,
        held: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.faults
            .check("memory ledger take over", message_id)
            .await?;
        let mut markers = lock(&self.markers);
        let stored = markers
            .get_mut(message_id)
            .ok_or_else(|| PortError::new("memory ledger take over", "no such marker"))?;
        if stored.value.sent || !free_for(stored.lock.as_ref(), held, now_ms) {
            return Ok(Claim::Found(stored.clone()));
        }
        stored.lock = Some(held.clone());
        Ok(Claim::Held)
    }

    async fn record_sent(
        &self,
        message_id: &str,
        held: &ItemLock,
    ) -> Result<Finish<MailMarker>, PortError> {
        self.faults
            .check("memory ledger record sent", message_id)
            .await?;
        let mut markers = lock(&self.markers);
        let stored = markers
            .get_mut(message_id)
            .ok_or_else(|| PortError::new("memory ledger record sent", "no such marker"))?;
        if !carries(stored.lock.as_ref(), held) {
            return Ok(Finish::NotHeld(stored.clone()));
        }
        stored.value.sent = true;
        Ok(Finish::Recorded)
    }

    async fn release(&self, message_id: &str, held: &ItemLock) -> Result<(), PortError> {
        self.faults
            .check("memory ledger release", message_id)
            .await?;
        let mut markers = lock(&self.markers);
        if markers
            .get(message_id)
            .is_some_and(|m| carries(m.lock.as_ref(), held) && !m.value.sent)
        {
            markers.remove(message_id);
        }
        Ok(())
    }

    async fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        self.faults
            .check("memory ledger take slot", message_id)
            .await?;
        let mut quota = lock(&self.quota);
        let ids = quota.entry((mailbox.clone(), day.to_owned())).or_default();
        if ids.contains(message_id) || ids.len() < cap as usize {
            ids.insert(message_id.to_owned());
            Ok(Admission::Admitted)
        } else {
            Ok(Admission::OverQuota)
        }
    }
}

/// [`DeadLetterSink`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    /// Refusals to inject, keyed by the letter's source message id.
    pub faults: Faults,
}

impl MemoryDeadLetters {
    /// Every letter received, in order.
    pub fn letters(&self) -> Vec<DeadLetter> {
        lock(&self.letters).clone()
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.faults
                .check("memory dead letters send", &letter.source_message_id)
                .await
                .map_err(|e| e.to_string())?;
            lock(&self.letters).push(letter.clone());
            Ok(())
        })
    }
}

/// [`BlobStore`] over a map of key → (content type, body); an object once
/// written is never replaced, as S3's `If-None-Match: *` write.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, (String, String)>>,
    /// Failures to inject, keyed by object key.
    pub faults: Faults,
    puts: AtomicU64,
}

impl MemoryBlobStore {
    /// The body stored under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        lock(&self.objects).get(key).map(|(_, body)| body.clone())
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }

    /// How many puts reached the store (those that found the object there
    /// included).
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }

    /// Stores `body` under `key`, replacing what was there (a test's set-up).
    pub fn seed(&self, key: &str, body: &str) {
        lock(&self.objects).insert(key.to_owned(), ("application/json".into(), body.to_owned()));
    }
}

impl BlobStore for MemoryBlobStore {
    async fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<Put, PortError> {
        self.faults.check("memory blob put", key).await?;
        self.puts.fetch_add(1, Ordering::Relaxed);
        let mut objects = lock(&self.objects);
        if objects.contains_key(key) {
            return Ok(Put::Exists);
        }
        objects.insert(key.to_owned(), (content_type.to_owned(), body));
        Ok(Put::Created)
    }
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

/// Every function's settings for [`MemoryAdapters`], as
/// `eventline_powertools::env::Env::from_map(SETTINGS)`: the names are
/// placeholders (the adapters share one store of each kind), the rest is
/// the template's defaults (outbox mail, a 10 s function timeout).
pub const SETTINGS: [(&str, &str); 13] = [
    ("USERS_TABLE", "users"),
    ("PROFILES_TABLE", "profiles"),
    ("NOTIFICATION_QUEUE_URL", "notifications"),
    ("EVENT_BUS_NAME", "bus"),
    ("BUCKET_NAME", "bucket"),
    ("MAIL_FROM", "no-reply@example.com"),
    ("IDEMPOTENCY_TABLE", "idempotency"),
    ("FUNCTION_TIMEOUT_SECONDS", "10"),
    ("SIGNUP_DLQ_URL", "dead-letters"),
    ("NOTIFICATION_DLQ_URL", "dead-letters"),
    ("WELCOME_EMAIL_DLQ_URL", "dead-letters"),
    ("PROFILE_CREATOR_DLQ_URL", "dead-letters"),
    ("MAIL_TRANSPORT", "outbox"),
];

/// One in-memory adapter of each kind, shared: every function's wiring
/// gets the same store whatever table, queue, bus or bucket its settings
/// name, as the deployed stack shares its resources between functions, and
/// tests inspect them here. Clones share the stores; a clone with a field
/// replaced (a later `clock`) shares the rest.
#[derive(Debug, Clone, Default)]
pub struct MemoryAdapters {
    /// The UsersTable.
    pub users: Arc<MemoryUserStore>,
    /// The ProfilesTable.
    pub profiles: Arc<MemoryProfileStore>,
    /// The NotificationQueue.
    pub notifications: Arc<MemoryQueue>,
    /// The event bus.
    pub events: Arc<MemoryEventBus>,
    /// The bucket: profile documents and the mail outbox.
    pub bucket: Arc<MemoryBlobStore>,
    /// The SES transport (`MAIL_TRANSPORT=ses`).
    pub ses: Arc<MemoryMailer>,
    /// Sent markers and quotas.
    pub ledger: Arc<MemoryMailLedger>,
    /// Every function's dead-letter queue.
    pub dead_letters: Arc<MemoryDeadLetters>,
    /// The time.
    pub clock: FixedClock,
}

/// The mail transport the settings name, over the shared bucket or SES.
pub type MemoryMail = EitherMailer<OutboxMailer<Arc<MemoryBlobStore>>, Arc<MemoryMailer>>;
/// user-processor's ports in memory.
pub type UserProcessorPorts =
    user_processor::Ports<Arc<MemoryUserStore>, Arc<MemoryQueue>, Arc<MemoryEventBus>, FixedClock>;
/// notification-processor's ports in memory.
pub type NotificationProcessorPorts = notification_processor::Ports<
    Arc<MemoryUserStore>,
    MemoryMail,
    Arc<MemoryMailLedger>,
    FixedClock,
>;
/// welcome-email's ports in memory.
pub type WelcomeEmailPorts = welcome_email::Ports<MemoryMail, Arc<MemoryMailLedger>, FixedClock>;
/// profile-creator's ports in memory.
pub type ProfileCreatorPorts =
    profile_creator::Ports<Arc<MemoryProfileStore>, Arc<MemoryBlobStore>, FixedClock>;

impl MemoryAdapters {
    /// user-processor's ports (see [`crate::compose`]).
    pub fn user_processor_wiring(
        &self,
        _settings: &Settings<user_processor::Config>,
    ) -> Wiring<UserProcessorPorts> {
        self.wiring(user_processor::Ports {
            users: self.users.clone(),
            notifications: self.notifications.clone(),
            events: self.events.clone(),
            clock: self.clock,
        })
    }

    /// notification-processor's ports.
    pub fn notification_processor_wiring(
        &self,
        settings: &Settings<notification_processor::Config>,
    ) -> Wiring<NotificationProcessorPorts> {
        self.wiring(notification_processor::Ports {
            users: self.users.clone(),
            mailer: self.mailer(&settings.config.mail),
            ledger: self.ledger.clone(),
            clock: self.clock,
        })
    }

    /// welcome-email's ports.
    pub fn welcome_email_wiring(
        &self,
        settings: &Settings<welcome_email::Config>,
    ) -> Wiring<WelcomeEmailPorts> {
        self.wiring(welcome_email::Ports {
            mailer: self.mailer(&settings.config.mail),
            ledger: self.ledger.clone(),
            clock: self.clock,
        })
    }

    /// profile-creator's ports.
    pub fn profile_creator_wiring(
        &self,
        _settings: &Settings<profile_creator::Config>,
    ) -> Wiring<ProfileCreatorPorts> {
        self.wiring(profile_creator::Ports {
            profiles: self.profiles.clone(),
            documents: self.bucket.clone(),
            clock: self.clock,
        })
    }

    fn wiring<P>(&self, ports: P) -> Wiring<P> {
        Wiring {
            ports,
            dead_letters: self.dead_letters.clone(),
        }
    }

    fn mailer(&self, config: &MailConfig) -> MemoryMail {
        config.mailer(|_bucket| self.bucket.clone(), || self.ses.clone())
    }
}
