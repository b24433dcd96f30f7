//! Test support: a wrapper around ports that logs when each call starts and
//! ends, so a test can count a use case's calls and its round trips (calls
//! in flight together share one) in the common case, the figure issue 15
//! bounds at 3 per invocation. The in-memory ports suspend once per call, as
//! a network call would, so calls made at once overlap in the log.

use crate::ports::{
    Admission, BlobStore, MailLedger, MailMarker, Mailer, PortError, ProfileStore, Put, Sent,
    StoredProfile, UserStore,
};
use eventline_domain::{MailboxKey, OutgoingEmail, Profile, Timestamp, User, UserId};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// The shared log: `(call, started?)` in the order it happened.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trace(Arc<Mutex<Vec<(&'static str, bool)>>>);

impl Trace {
    /// `port`, its calls logged here.
    pub(crate) fn wrap<T>(&self, port: T) -> Traced<T> {
        Traced {
            inner: port,
            trace: self.clone(),
        }
    }

    async fn call<F: Future>(&self, name: &'static str, call: F) -> F::Output {
        self.log(name, true);
        let output = call.await;
        self.log(name, false);
        output
    }

    fn log(&self, name: &'static str, started: bool) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name, started));
    }

    /// The calls so far, grouped into round trips: a round trip starts when
    /// a call starts with none in flight, and holds every call started
    /// before all of them ended. Names sorted within a round trip.
    pub(crate) fn round_trips(&self) -> Vec<Vec<&'static str>> {
        let mut trips: Vec<Vec<&'static str>> = Vec::new();
        let mut in_flight = 0usize;
        for (name, started) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if *started {
                if in_flight == 0 {
                    trips.push(Vec::new());
                }
                in_flight += 1;
                if let Some(trip) = trips.last_mut() {
                    trip.push(name);
                }
            } else {
                in_flight = in_flight.saturating_sub(1);
            }
        }
        for trip in &mut trips {
            trip.sort_unstable();
        }
        trips
    }

    /// Forgets the calls so far.
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A port whose calls are logged in a [`Trace`].
#[derive(Debug, Clone)]
pub(crate) struct Traced<T> {
    inner: T,
    trace: Trace,
}

impl<T: MailLedger> MailLedger for Traced<T> {
    async fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<MailMarker>, PortError> {
        let call = self.inner.lock(message_id, payload_hash, lock);
        self.trace.call("ledger.lock", call).await
    }
    async fn take_over(
        &self,
        message_id: &str,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<MailMarker>, PortError> {
        let call = self.inner.take_over(message_id, lock, now_ms);
        self.trace.call("ledger.take_over", call).await
    }
    async fn record_sent(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> Result<Finish<MailMarker>, PortError> {
        let call = self.inner.record_sent(message_id, lock);
        self.trace.call("ledger.record_sent", call).await
    }
    async fn release(&self, message_id: &str, lock: &ItemLock) -> Result<(), PortError> {
        let call = self.inner.release(message_id, lock);
        self.trace.call("ledger.release", call).await
    }
    async fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        let call = self.inner.take_slot(mailbox, message_id, day, cap);
        self.trace.call("ledger.take_slot", call).await
    }
}

impl<T: Mailer> Mailer for Traced<T> {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        self.trace.call("mailer.send", self.inner.send(email)).await
    }
}

impl<T: UserStore> UserStore for Traced<T> {
    async fn create(&self, user: &User, lock: &ItemLock) -> Result<Claim<User>, PortError> {
        self.trace
            .call("users.create", self.inner.create(user, lock))
            .await
    }
    async fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        let call = self.inner.take_over(id, lock, now_ms);
        self.trace.call("users.take_over", call).await
    }
    async fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        let call = self.inner.announce(id, lock, at);
        self.trace.call("users.announce", call).await
    }
    async fn release(&self, id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        self.trace
            .call("users.release", self.inner.release(id, lock))
            .await
    }
    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.trace.call("users.get", self.inner.get(id)).await
    }
}

impl<T: ProfileStore> ProfileStore for Traced<T> {
    async fn create(
        &self,
        profile: &Profile,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<StoredProfile>, PortError> {
        let call = self.inner.create(profile, payload_hash, lock);
        self.trace.call("profiles.create", call).await
    }
    async fn take_over(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<StoredProfile>, PortError> {
        let call = self.inner.take_over(user_id, lock, now_ms);
        self.trace.call("profiles.take_over", call).await
    }
    async fn record_document(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> Result<Finish<StoredProfile>, PortError> {
        let call = self.inner.record_document(user_id, lock);
        self.trace.call("profiles.record_document", call).await
    }
    async fn release(&self, user_id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        let call = self.inner.release(user_id, lock);
        self.trace.call("profiles.release", call).await
    }
}

impl<T: BlobStore> BlobStore for Traced<T> {
    async fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<Put, PortError> {
        let call = self.inner.put_new(key, body, content_type);
        self.trace.call("blobs.put_new", call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMailer;
    use eventline_domain::EmailAddress;

    #[tokio::test]
    async fn calls_in_flight_together_are_one_round_trip_and_sequential_ones_are_not() {
        let trace = Trace::default();
        let mailer = trace.wrap(MemoryMailer::default());
        let email = |id: &str| OutgoingEmail {
            message_id: id.into(),
            to: EmailAddress::parse("a@b.io").unwrap(),
            subject: String::new(),
            text: String::new(),
            html: String::new(),
        };
        let (a, b) = (email("a"), email("b"));
        let (x, y) = futures::join!(mailer.send(&a), mailer.send(&b));
        assert!(x.is_ok() && y.is_ok());
        mailer.send(&a).await.unwrap();
        assert_eq!(
            trace.round_trips(),
            [vec!["mailer.send", "mailer.send"], vec!["mailer.send"]]
        );
    }
}
