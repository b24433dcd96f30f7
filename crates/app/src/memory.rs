//! In-memory implementations of every port, for handler tests, benchmarks
//! and examples. Each records what it was given and can be told to fail for
//! a key (a user id, message id or object key) a number of times, to
//! exercise retries.

use crate::ports::{
    BlobStore, Clock, EventPublisher, Inserted, Mailer, NotificationQueue, PortError, ProfileStore,
    UserStore,
};
use eventline_domain::{
    Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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

/// [`UserStore`] over a map.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: Mutex<BTreeMap<UserId, User>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
    writes: AtomicU64,
}

impl MemoryUserStore {
    /// Every stored user, by id.
    pub fn users(&self) -> Vec<User> {
        lock(&self.users).values().cloned().collect()
    }

    /// How many inserts actually stored a user.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl UserStore for MemoryUserStore {
    async fn insert(&self, user: &User) -> Result<Inserted<User>, PortError> {
        self.faults
            .check("memory users insert", user.id.as_str())
            .await?;
        let mut users = lock(&self.users);
        if let Some(existing) = users.get(&user.id) {
            return Ok(Inserted::Existing(existing.clone()));
        }
        users.insert(user.id.clone(), user.clone());
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(Inserted::New)
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.faults.check("memory users get", id.as_str()).await?;
        Ok(lock(&self.users).get(id).cloned())
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
    async fn send(&self, email: &OutgoingEmail) -> Result<(), PortError> {
        self.faults
            .check("memory mailer send", &email.message_id)
            .await?;
        lock(&self.sent).push(email.clone());
        Ok(())
    }
}

/// [`ProfileStore`] over a map.
#[derive(Debug, Default)]
pub struct MemoryProfileStore {
    profiles: Mutex<BTreeMap<UserId, Profile>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryProfileStore {
    /// Every stored profile, by user id.
    pub fn profiles(&self) -> Vec<Profile> {
        lock(&self.profiles).values().cloned().collect()
    }

    /// Replaces a stored profile, as a user editing it would.
    pub fn overwrite(&self, profile: Profile) {
        lock(&self.profiles).insert(profile.user_id.clone(), profile);
    }
}

impl ProfileStore for MemoryProfileStore {
    async fn insert(&self, profile: &Profile) -> Result<Inserted<Profile>, PortError> {
        self.faults
            .check("memory profiles insert", profile.user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        if let Some(existing) = profiles.get(&profile.user_id) {
            return Ok(Inserted::Existing(existing.clone()));
        }
        profiles.insert(profile.user_id.clone(), profile.clone());
        Ok(Inserted::New)
    }
}

/// [`BlobStore`] over a map of key → (content type, body).
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

    /// How many puts succeeded (overwrites included).
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }
}

impl BlobStore for MemoryBlobStore {
    async fn put(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<(), PortError> {
        self.faults.check("memory blob put", key).await?;
        lock(&self.objects).insert(key.to_owned(), (content_type.to_owned(), body));
        self.puts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A [`Clock`] that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
