//! Counting wrappers around every port a function drives: each
//! successful side effect is recorded by kind and key ([`Effects`]), a
//! worker crash can be injected after a user write ([`Crashes`]), and the
//! clock can be moved forward ([`TestClock`]). [`Counter`] wraps each
//! function's wiring in them before it is composed.

use eventline_app::compose::{self, Wiring};
use eventline_app::ports::{
    Admission, BlobStore, Clock, EventPublisher, MailLedger, MailMarker, Mailer, NotificationQueue,
    PortError, ProfileStore, Put, Sent, StoredProfile, SystemClock, UserStore,
};
use eventline_app::{notification_processor, profile_creator, user_processor, welcome_email};
use eventline_aws::AwsAdapters;
use eventline_devstack::manifest::Manifest;
use eventline_domain::{
    MailboxKey, Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::batch::{DeadLetter, DeadLetterSink};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock};
use eventline_tests::player::{AllSettings, Functions};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Successful side effects, by kind and key, and the events published.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) counts: Mutex<BTreeMap<(&'static str, String), u32>>,
    pub(crate) published: Mutex<Vec<UserCreated>>,
}

impl Effects {
    pub(crate) fn add(&self, kind: &'static str, key: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((kind, key.to_owned()))
            .or_default() += 1;
    }

    /// The distinct keys of `kind`.
    pub(crate) fn keys_of(&self, kind: &str) -> BTreeSet<String> {
        self.counts
            .lock()
            .unwrap()
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// (distinct keys, most effects for one key) of `kind`.
    pub(crate) fn of(&self, kind: &str) -> (usize, u32) {
        let map = self.counts.lock().unwrap();
        let counts: Vec<u32> = map
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| *n)
            .collect();
        (counts.len(), counts.iter().copied().max().unwrap_or(0))
    }
}

/// A worker crash (a panic) right after the user write of chosen users,
/// once each, counted.
#[derive(Default)]
pub(crate) struct Crashes {
    pub(crate) after_user_write_of: Mutex<HashSet<String>>,
    pub(crate) happened: AtomicU64,
}

/// The system clock moved forward by a settable offset: "days later".
#[derive(Clone, Default)]
pub(crate) struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub(crate) fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().unix_millis();
        Timestamp::from_unix_millis(now + self.0.load(Ordering::SeqCst))
    }
}

/// Wraps a port, recording each successful effect; can crash (panic) once
/// after a user write, as a worker dying between two writes would.
pub(crate) struct Counted<T> {
    inner: T,
    effects: Arc<Effects>,
    crashes: Arc<Crashes>,
}

impl<T: UserStore> UserStore for Counted<T> {
    async fn create(&self, user: &User, lock: &ItemLock) -> Result<Claim<User>, PortError> {
        let result = self.inner.create(user, lock).await?;
        // A create the SDK resent after the first landed comes back with our own lock.
        let ours = match &result {
            Claim::Held => true,
            Claim::Found(stored) => stored.lock.as_ref() == Some(lock),
        };
        if ours {
            self.effects.add("user write", user.id.as_str());
            let chosen = self
                .crashes
                .after_user_write_of
                .lock()
                .unwrap()
                .remove(user.id.as_str());
            if chosen {
                self.crashes.happened.fetch_add(1, Ordering::SeqCst);
                panic!("simulated crash after the user write of {}", user.id);
            }
        }
        Ok(result)
    }
    async fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        self.inner.take_over(id, lock, now_ms).await
    }
    async fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        self.inner.announce(id, lock, at).await
    }
    async fn release(&self, id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        self.inner.release(id, lock).await
    }
    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.inner.get(id).await
    }
}

impl<T: NotificationQueue> NotificationQueue for Counted<T> {
    async fn enqueue_all(&self, all: &[Notification]) -> Vec<Result<(), PortError>> {
        let results = self.inner.enqueue_all(all).await;
        for (n, r) in all.iter().zip(&results) {
            if r.is_ok() {
                self.effects
                    .add("notification enqueued", &n.notification_id);
            }
        }
        results
    }
}

impl<T: EventPublisher> EventPublisher for Counted<T> {
    async fn publish_all(&self, all: &[UserCreated]) -> Vec<Result<(), PortError>> {
        let results = self.inner.publish_all(all).await;
        for (e, r) in all.iter().zip(&results) {
            if r.is_ok() {
                self.effects.add("event published", e.user_id.as_str());
                self.effects.published.lock().unwrap().push(e.clone());
            }
        }
        results
    }
}

impl<T: Mailer> Mailer for Counted<T> {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        let sent = self.inner.send(email).await?;
        // Only an email that went out now is one: the outbox creates its
        // object once per message id, and a repeat finds it.
        if sent == Sent::Now {
            let kind = if email.message_id.starts_with("welcome.") {
                "welcome email sent"
            } else {
                "notification email sent"
            };
            self.effects.add(kind, &email.message_id);
        }
        Ok(sent)
    }
}

impl<T: BlobStore> BlobStore for Counted<T> {
    async fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<Put, PortError> {
        let put = self.inner.put_new(key, body, content_type).await?;
        if put == Put::Created {
            self.effects.add("object put", key);
        }
        Ok(put)
    }
}

impl<T: MailLedger> MailLedger for Counted<T> {
    async fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.inner.lock(message_id, payload_hash, lock).await
    }
    async fn take_over(
        &self,
        message_id: &str,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.inner.take_over(message_id, lock, now_ms).await
    }
    async fn record_sent(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> Result<Finish<MailMarker>, PortError> {
        let finish = self.inner.record_sent(message_id, lock).await?;
        if finish == Finish::Recorded {
            self.effects.add("sent marker", message_id);
        }
        Ok(finish)
    }
    async fn release(&self, message_id: &str, lock: &ItemLock) -> Result<(), PortError> {
        self.inner.release(message_id, lock).await
    }
    async fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        let admission = self.inner.take_slot(mailbox, message_id, day, cap).await?;
        if admission == Admission::Admitted {
            self.effects.add("mail admitted", message_id);
        }
        Ok(admission)
    }
}

/// A dead-letter sink whose accepted letters are counted, by source message id.
pub(crate) struct CountedDeadLetters {
    inner: Arc<dyn DeadLetterSink>,
    effects: Arc<Effects>,
}

impl DeadLetterSink for CountedDeadLetters {
    fn send<'a>(
        &'a self,
        letter: &'a DeadLetter,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.inner.send(letter).await?;
            self.effects.add("dead letter", &letter.source_message_id);
            Ok(())
        })
    }
}

impl<T: ProfileStore> ProfileStore for Counted<T> {
    async fn create(
        &self,
        p: &Profile,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<StoredProfile>, PortError> {
        let result = self.inner.create(p, payload_hash, lock).await?;
        // A create the SDK resent after the first landed comes back with our own lock.
        let ours = match &result {
            Claim::Held => true,
            Claim::Found(stored) => stored.lock.as_ref() == Some(lock),
        };
        if ours {
            self.effects.add("profile write", p.user_id.as_str());
        }
        Ok(result)
    }
    async fn take_over(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<StoredProfile>, PortError> {
        self.inner.take_over(user_id, lock, now_ms).await
    }
    async fn record_document(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> Result<Finish<StoredProfile>, PortError> {
        self.inner.record_document(user_id, lock).await
    }
    async fn release(&self, user_id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        self.inner.release(user_id, lock).await
    }
}

/// Wraps each function's ports (users, notifications, events, mail,
/// profiles, objects, sent markers, dead letters) so every side effect is
/// counted, and puts them on the test's clock. The use cases are then
/// composed from the wrapped wirings exactly as the functions' `main`s
/// compose theirs.
pub(crate) struct Counter {
    pub(crate) effects: Arc<Effects>,
    pub(crate) crashes: Arc<Crashes>,
    pub(crate) clock: TestClock,
}

// The wrapped wirings' types name each counted port: long, not complex.
#[allow(clippy::type_complexity)]
impl Counter {
    pub(crate) fn counted<T>(&self, port: T) -> Counted<T> {
        Counted {
            inner: port,
            effects: self.effects.clone(),
            crashes: self.crashes.clone(),
        }
    }

    pub(crate) fn dead_letters(&self, inner: Arc<dyn DeadLetterSink>) -> Arc<dyn DeadLetterSink> {
        Arc::new(CountedDeadLetters {
            inner,
            effects: self.effects.clone(),
        })
    }

    pub(crate) fn user_processor<U, Q, P, C>(
        &self,
        w: Wiring<user_processor::Ports<U, Q, P, C>>,
    ) -> Wiring<user_processor::Ports<Counted<U>, Counted<Q>, Counted<P>, TestClock>> {
        Wiring {
            ports: user_processor::Ports {
                users: self.counted(w.ports.users),
                notifications: self.counted(w.ports.notifications),
                events: self.counted(w.ports.events),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    pub(crate) fn notification_processor<U, M, L, C>(
        &self,
        w: Wiring<notification_processor::Ports<U, M, L, C>>,
    ) -> Wiring<notification_processor::Ports<Counted<U>, Counted<M>, Counted<L>, TestClock>> {
        Wiring {
            ports: notification_processor::Ports {
                users: self.counted(w.ports.users),
                mailer: self.counted(w.ports.mailer),
                ledger: self.counted(w.ports.ledger),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    pub(crate) fn welcome_email<M, L, C>(
        &self,
        w: Wiring<welcome_email::Ports<M, L, C>>,
    ) -> Wiring<welcome_email::Ports<Counted<M>, Counted<L>, TestClock>> {
        Wiring {
            ports: welcome_email::Ports {
                mailer: self.counted(w.ports.mailer),
                ledger: self.counted(w.ports.ledger),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    pub(crate) fn profile_creator<P, B, C>(
        &self,
        w: Wiring<profile_creator::Ports<P, B, C>>,
    ) -> Wiring<profile_creator::Ports<Counted<P>, Counted<B>, TestClock>> {
        Wiring {
            ports: profile_creator::Ports {
                profiles: self.counted(w.ports.profiles),
                documents: self.counted(w.ports.documents),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    /// The four functions of `manifest`'s stack over `aws`, counted.
    pub(crate) fn functions(&self, aws: &AwsAdapters, manifest: &Manifest) -> Functions {
        let AllSettings { up, np, we, pc } = AllSettings::of(manifest);
        Functions::new(
            compose::user_processor(self.user_processor(aws.user_processor_wiring(&up)), &up),
            compose::notification_processor(
                self.notification_processor(aws.notification_processor_wiring(&np)),
                &np,
            ),
            compose::welcome_email(self.welcome_email(aws.welcome_email_wiring(&we)), &we),
            compose::profile_creator(self.profile_creator(aws.profile_creator_wiring(&pc)), &pc),
        )
    }
}
