//! user-processor: SignupQueue → UsersTable, NotificationQueue, EventBridge.
//!
//! For each SQS record: parse and validate the signup, store the user with a
//! create-if-absent write, enqueue a `signup_confirmation` notification,
//! publish `User Created`, and record on the user's item that it was
//! announced. Each record succeeds or fails alone, and ends with an explicit
//! outcome: nothing is reported done unless every step of it said so.
//!
//! Retries are safe, in three layers:
//!
//! - The idempotency layer keys each signup by `signup.<user_id>` with a
//!   hash of the validated signup: a duplicate of a completed signup (same
//!   message redelivered, or the same signup sent again as a new message)
//!   replays without side effects; one still in progress is deferred (an
//!   expected retry, not an alarm); a different signup for the same id is
//!   rejected to the DLQ.
//! - The user item remembers durably that the user was **announced**
//!   (`announced_at`): a duplicate of any age (after the replay window, a
//!   DLQ redrive days later) finds it and causes no notification and no
//!   event.
//! - Below that, the steps themselves are idempotent. If an attempt dies
//!   between the user write and the announcement, its retry finds the user
//!   stored but not announced, recognises the same signup
//!   ([`User::reconcile`]) and completes the missing steps *with the stored
//!   user's data*, so the notification and event are identical to the first
//!   attempt's and carry the same deterministic ids.
//!
//! The `User Created` detail says where it was published and why
//! (docs/multi-region.md): `origin_region` is this process's `AWS_REGION`,
//! `home_region` the user's home over `REGIONS` ([`RegionSet`]), and
//! `correlation_id` the signup message's correlation id (its
//! `correlation_id` attribute if its producer set one, else its message
//! id), which the confirmation carries too, as a message attribute. Every
//! line logged for a record carries it, so one query follows the signup
//! through every function and region.
//!
//! Every stage stops waiting at the invocation's deadline: records still
//! pending fail (their locks lapse at the deadline), the rest keep their
//! outcome, and the partial batch response goes back in time. A stage that
//! panics fails its records and releases their locks.

use crate::ports::{Clock, EventPublisher, Inserted, NotificationQueue, UserStore};
use crate::{Error, Invocation};
use eventline_domain::{
    CorrelationId, Notification, NotificationKind, Region, RegionSet, Signup, User, UserCreated,
};
use eventline_powertools::batch::{record_span, BatchError, BatchProcessor, BatchReport, Message};
use eventline_powertools::deadline::Deadline;
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{self, payload_hash, Idempotency, IdempotencyStore};
use futures::future::{join, join_all};
use futures::FutureExt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tracing::Instrument;

/// Settings: `USERS_TABLE`, `NOTIFICATION_QUEUE_URL`, `EVENT_BUS_NAME`,
/// `SIGNUP_DLQ_URL`, optional `BATCH_CONCURRENCY` (records processed at
/// once, default 10), and the regions: `AWS_REGION` (set by Lambda) and
/// optional `REGIONS` (this region and its peers, comma-separated; default
/// this region alone). `AWS_REGION` is required when `REGIONS` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of users.
    pub users_table: String,
    /// SQS queue for notifications.
    pub notification_queue_url: String,
    /// EventBridge bus name.
    pub event_bus_name: String,
    /// Where signups that can never succeed go, with their reason.
    pub dead_letter_queue_url: String,
    /// Records processed at once.
    pub concurrency: NonZeroUsize,
    /// This region and the set home regions are picked from; `None` when
    /// neither `AWS_REGION` nor `REGIONS` is set (outside Lambda): the
    /// events then name no region.
    pub regions: Option<RegionSet>,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            users_table: env.required("USERS_TABLE"),
            notification_queue_url: env.required("NOTIFICATION_QUEUE_URL"),
            event_bus_name: env.required("EVENT_BUS_NAME"),
            dead_letter_queue_url: env.required("SIGNUP_DLQ_URL"),
            concurrency: env.parsed_or("BATCH_CONCURRENCY", crate::DEFAULT_CONCURRENCY),
            regions: regions_from_env(env),
        }
    }
}

/// `AWS_REGION` and `REGIONS`, as [`Config::regions`] describes them.
fn regions_from_env(env: &mut Env) -> Option<RegionSet> {
    let list = env.optional("REGIONS");
    let own = match list {
        Some(_) => Some(env.required("AWS_REGION")).filter(|own| !own.is_empty()),
        None => env.optional("AWS_REGION"),
    }?;
    let own = Region::parse(&own)
        .map_err(|e| env.reject("AWS_REGION", e))
        .ok()?;
    match list {
        None => Some(RegionSet::single(own)),
        Some(list) => RegionSet::parse(own, &list)
            .map_err(|e| env.reject("REGIONS", e))
            .ok(),
    }
}

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "user-processor";

/// The ports user-processor drives.
pub struct Ports<U, Q, P, C, I> {
    /// The UsersTable.
    pub users: U,
    /// The NotificationQueue.
    pub notifications: Q,
    /// The event bus.
    pub events: P,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
}

/// The user-processor use case.
pub struct UserProcessor<U, Q, P, C, I> {
    ports: Ports<U, Q, P, C, I>,
    batch: BatchProcessor,
    timeout: Duration,
    regions: Option<RegionSet>,
}

/// What a record's outcome is while the stages run: `None` until one says.
type Outcomes = Vec<Option<Result<(), Error>>>;

/// A record that took its lock and has a signup to process.
struct Locked {
    index: usize,
    lock: idempotency::Lock,
    signup: Signup,
    correlation_id: Option<CorrelationId>,
}

/// A record whose user is stored but not yet announced.
struct Stored {
    index: usize,
    lock: idempotency::Lock,
    user: User,
    correlation_id: Option<CorrelationId>,
}

impl Stored {
    /// The user's confirmation, correlated with the signup.
    fn notification(&self) -> Notification {
        let n = Notification::new(self.user.id.clone(), NotificationKind::SignupConfirmation);
        match &self.correlation_id {
            Some(id) => n.correlated(id.clone()),
            None => n,
        }
    }

    /// The user's `User Created`, stamped with where (if `regions` is
    /// known) and why.
    fn event(&self, regions: Option<&RegionSet>) -> UserCreated {
        let mut event = UserCreated::from_user(&self.user);
        if let Some(regions) = regions {
            event = event.published_in(regions);
        }
        if let Some(id) = &self.correlation_id {
            event = event.correlated(id.clone());
        }
        event
    }
}

impl<U, Q, P, C, I> UserProcessor<U, Q, P, C, I>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
    I: IdempotencyStore,
{
    /// Wires the use case to its ports; `timeout` is the function's (used
    /// when the deadline is unknown).
    pub fn new(ports: Ports<U, Q, P, C, I>, batch: BatchProcessor, timeout: Duration) -> Self {
        Self {
            ports,
            batch,
            timeout,
            regions: None,
        }
    }

    /// The use case in a process of `regions` (see [`Config::regions`]).
    pub fn with_regions(mut self, regions: Option<RegionSet>) -> Self {
        self.regions = regions;
        self
    }

    /// Handles one batch of signup messages and reports every record's
    /// outcome. `deadline_ms` is the invocation's deadline (Unix ms).
    pub async fn handle(
        &self,
        messages: Vec<Message>,
        deadline_ms: u64,
    ) -> Result<BatchReport, BatchError> {
        let invocation = Invocation::start(&self.ports.clock, deadline_ms, self.timeout);
        self.batch
            .process_batch(messages, invocation.deadline, |records| {
                self.process_all(records, invocation)
            })
            .await
    }

    /// Handles records in stages, each one round trip for all records at
    /// once: take the idempotency locks; store the users; enqueue every
    /// notification in one `SendMessageBatch` while publishing every event in
    /// one `PutEvents`; record each announcement on its user; complete the
    /// locks. A record that fails at any stage fails alone (its lock is
    /// released); a batch API's partial or missing answer fails exactly the
    /// records it does not confirm.
    async fn process_all(
        &self,
        records: Vec<Message>,
        invocation: Invocation,
    ) -> Vec<Result<(), Error>> {
        let mut outcomes: Outcomes = records.iter().map(|_| None).collect();
        // Each record's log lines carry its message id and correlation id.
        let spans: Vec<tracing::Span> = records.iter().map(record_span).collect();
        let locked = self
            .lock_all(&records, &spans, invocation, &mut outcomes)
            .await;
        let (unannounced, mut done) = self
            .store_users(locked, &spans, invocation, &mut outcomes)
            .await;
        done.extend(
            self.announce(unannounced, &spans, invocation, &mut outcomes)
                .await,
        );
        self.complete(done, invocation.deadline, &mut outcomes)
            .await;
        // Fail closed: a record no stage gave an outcome is retried.
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(Error::Unaccounted)))
            .collect()
    }

    /// Stage 1: parses each record and takes its lock. Duplicates of a
    /// completed signup are done here. Each record stops waiting at the
    /// stage's cut-off on its own.
    async fn lock_all(
        &self,
        records: &[Message],
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) -> Vec<Locked> {
        let begun = each(
            invocation.stage_cut_off(4),
            records
                .iter()
                .zip(spans)
                .map(|(r, span)| self.begin(r, invocation).instrument(span.clone())),
        )
        .await;
        let mut locked = Vec::new();
        for (index, begun) in begun.into_iter().enumerate() {
            match begun.and_then(|b| b) {
                Ok(Some((lock, signup))) => locked.push(Locked {
                    index,
                    lock,
                    signup,
                    // The same rule as the span's: a message id is one.
                    correlation_id: CorrelationId::parse(records[index].correlation_id()).ok(),
                }),
                Ok(None) => outcomes[index] = Some(Ok(())),
                // A lock taken by a call we stopped waiting for lapses at its deadline.
                Err(e) => outcomes[index] = Some(Err(e)),
            }
        }
        locked
    }

    /// Stage 2: stores the users. Returns those still to announce, and those
    /// an earlier attempt already announced (nothing more to do).
    async fn store_users(
        &self,
        locked: Vec<Locked>,
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) -> (Vec<Stored>, Vec<(usize, idempotency::Lock)>) {
        let stored = each(
            invocation.stage_cut_off(3),
            locked.iter().map(|l| {
                self.store_user(&l.signup)
                    .instrument(spans[l.index].clone())
            }),
        )
        .await;
        let (mut unannounced, mut done, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        // `each` yields one result per future, in order.
        for (l, result) in locked.into_iter().zip(stored) {
            match result.and_then(|r| r) {
                Ok(user) if user.is_announced() => {
                    let _record = spans[l.index].enter();
                    tracing::info!(user_id = %user.id, "signup already announced; nothing to do");
                    done.push((l.index, l.lock));
                }
                Ok(user) => unannounced.push(Stored {
                    index: l.index,
                    lock: l.lock,
                    user,
                    correlation_id: l.correlation_id,
                }),
                Err(e) => fail(l.index, l.lock, e, outcomes, &mut failed),
            }
        }
        self.release(failed, invocation.deadline).await;
        (unannounced, done)
    }

    /// Stage 3: one `SendMessageBatch` beside one `PutEvents` for all
    /// records, then the announcement recorded on each user. Returns the
    /// records whose effects and record all succeeded.
    async fn announce(
        &self,
        stored: Vec<Stored>,
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) -> Vec<(usize, idempotency::Lock)> {
        if stored.is_empty() {
            return Vec::new();
        }
        let notifications: Vec<Notification> = stored.iter().map(Stored::notification).collect();
        let events: Vec<UserCreated> = stored
            .iter()
            .map(|s| s.event(self.regions.as_ref()))
            .collect();
        // One call for all records: it ends for all of them at once.
        let sent = stage(
            invocation.stage_cut_off(2),
            join(
                self.ports.notifications.enqueue_all(&notifications),
                self.ports.events.publish_all(&events),
            ),
        )
        .await;
        let (mut effected, mut failed) = (Vec::new(), Vec::new());
        for (position, s) in stored.into_iter().enumerate() {
            // Only an explicit Ok for both entries counts: a missing result is a failure.
            let result = match &sent {
                Ok((sent, published)) => {
                    confirmed(sent, position, "SQS SendMessageBatch notifications")
                        .and(confirmed(published, position, "EventBridge PutEvents"))
                        .map_err(Error::from)
                }
                Err(e) => Err(e.clone()),
            };
            match result {
                Ok(()) => effected.push(s),
                Err(e) => fail(s.index, s.lock, e, outcomes, &mut failed),
            }
        }

        let now = self.ports.clock.now();
        let marked = each(
            invocation.stage_cut_off(1),
            effected.iter().map(|s| {
                self.ports
                    .users
                    .mark_announced(&s.user.id, now)
                    .instrument(spans[s.index].clone())
            }),
        )
        .await;
        let mut announced = Vec::new();
        for (s, result) in effected.into_iter().zip(marked) {
            match result.and_then(|r| r.map_err(Error::from)) {
                Ok(()) => {
                    let _record = spans[s.index].enter();
                    tracing::info!(user_id = %s.user.id, "signup processed");
                    announced.push((s.index, s.lock));
                }
                // The effects went out; the retry repeats them with the same
                // ids (consumers deduplicate) and records them.
                Err(e) => fail(s.index, s.lock, e, outcomes, &mut failed),
            }
        }
        self.release(failed, invocation.deadline).await;
        announced
    }

    /// Stage 4: completes the locks of the records that are done. Their
    /// outcome is success whatever the completion does: the effects and
    /// their durable record are in place, so a retry would change nothing.
    async fn complete(
        &self,
        done: Vec<(usize, idempotency::Lock)>,
        deadline: Deadline,
        outcomes: &mut Outcomes,
    ) {
        let mut locks = Vec::with_capacity(done.len());
        for (index, lock) in done {
            outcomes[index] = Some(Ok(()));
            locks.push((lock, &()));
        }
        self.ports.idempotency.complete_all(locks, deadline).await;
    }

    /// Releases locks of failed records, giving up at the deadline.
    async fn release(&self, locks: Vec<idempotency::Lock>, deadline: Deadline) {
        if !locks.is_empty() {
            let _ = deadline
                .bound(self.ports.idempotency.release_all(locks))
                .await;
        }
    }

    /// Parses a record and takes its lock; `None` when it is a duplicate of
    /// a signup already processed.
    async fn begin(
        &self,
        record: &Message,
        invocation: Invocation,
    ) -> Result<Option<(idempotency::Lock, Signup)>, Error> {
        let body = record.body.as_deref().ok_or(Error::NoBody)?;
        let signup = Signup::parse(body)?;
        let key = format!("signup.{}", signup.user_id);
        let hash = payload_hash([
            signup.user_id.as_str(),
            signup.email.as_str(),
            signup.name.as_str(),
        ]);
        match self
            .ports
            .idempotency
            .begin::<()>(&key, hash, invocation.window)
            .await?
        {
            idempotency::Begin::Acquired(lock) => Ok(Some((lock, signup))),
            idempotency::Begin::Replayed(()) => {
                tracing::info!(user_id = %signup.user_id, "duplicate signup; already processed");
                Ok(None)
            }
        }
    }

    /// Stores the user, or recognises the same signup stored by an earlier
    /// attempt (whose side effects may not have happened) and returns the
    /// stored user, so what follows is identical to that attempt's.
    async fn store_user(&self, signup: &Signup) -> Result<User, Error> {
        let candidate = User::from_signup(signup.clone(), self.ports.clock.now());
        match self.ports.users.insert(&candidate).await? {
            Inserted::New => {
                tracing::info!(user_id = %candidate.id, "user created");
                Ok(candidate)
            }
            Inserted::Existing(stored) => {
                stored.reconcile(&candidate)?;
                tracing::info!(user_id = %stored.id, "signup already stored");
                Ok(stored)
            }
        }
    }
}

/// Runs `work` until `cut_off`, with a panic turned into an error.
async fn stage<F: Future>(cut_off: Deadline, work: F) -> Result<F::Output, Error> {
    match cut_off.bound(AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(_)) => {
            tracing::error!("work panicked");
            Err(Error::Panicked)
        }
        Err(e) => {
            tracing::warn!("work was still running at its cut-off");
            Err(Error::Deadline(e))
        }
    }
}

/// Runs one stage's work for many records at once, each bounded on its
/// own: a record whose call hangs or panics fails alone, and the others
/// keep their results. One result per future, in order.
async fn each<F: Future>(
    cut_off: Deadline,
    work: impl IntoIterator<Item = F>,
) -> Vec<Result<F::Output, Error>> {
    join_all(work.into_iter().map(|w| stage(cut_off, w))).await
}

/// Records `error` as the record's outcome. Its lock goes to `release`
/// unless the error is the cut-off: a call we stopped waiting for may still
/// land, and no time is left, so that lock lapses at its own deadline.
fn fail(
    index: usize,
    lock: idempotency::Lock,
    error: Error,
    outcomes: &mut Outcomes,
    release: &mut Vec<idempotency::Lock>,
) {
    if !matches!(error, Error::Deadline(_)) {
        release.push(lock);
    }
    outcomes[index] = Some(Err(error));
}

/// The batch API's answer for entry `position`; no answer is a failure.
fn confirmed(
    results: &[Result<(), crate::PortError>],
    position: usize,
    operation: &'static str,
) -> Result<(), crate::PortError> {
    results
        .get(position)
        .cloned()
        .unwrap_or_else(|| Err(crate::PortError::new(operation, "no result for this entry")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryEventBus, MemoryQueue, MemoryUserStore};
    use eventline_domain::Timestamp;
    use eventline_powertools::idempotency::MemoryStore;
    use std::sync::Arc;
    use std::time::Duration;

    struct Fixture {
        users: Arc<MemoryUserStore>,
        queue: Arc<MemoryQueue>,
        bus: Arc<MemoryEventBus>,
        records: Arc<MemoryStore>,
    }

    type Processor = UserProcessor<
        Arc<MemoryUserStore>,
        Arc<MemoryQueue>,
        Arc<MemoryEventBus>,
        FixedClock,
        Arc<MemoryStore>,
    >;

    impl Fixture {
        fn new() -> Self {
            Self {
                users: Arc::default(),
                queue: Arc::default(),
                bus: Arc::default(),
                records: Arc::default(),
            }
        }

        fn processor(&self, now: u64) -> Processor {
            UserProcessor::new(
                Ports {
                    users: self.users.clone(),
                    notifications: self.queue.clone(),
                    events: self.bus.clone(),
                    clock: FixedClock(Timestamp::from_unix_millis(now)),
                    idempotency: Idempotency::new(
                        self.records.clone(),
                        IDEMPOTENCY_SCOPE,
                        Duration::from_secs(3600),
                    ),
                },
                BatchProcessor::new().with_concurrency(crate::DEFAULT_CONCURRENCY),
                Duration::from_secs(3),
            )
        }

        async fn handle(&self, now: u64, records: Vec<Message>) -> Result<BatchReport, BatchError> {
            self.processor(now).handle(records, now + 3_000).await
        }
    }

    fn signup(id: &str, email: &str) -> String {
        serde_json::json!({"user_id": id, "email": email, "name": "Ada"}).to_string()
    }

    #[tokio::test]
    async fn good_bad_good_reports_exactly_the_bad_record() {
        let f = Fixture::new();
        let response = f
            .handle(
                1,
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", r#"{"user_id":"u2","email":"nope","name":"Bob"}"#),
                    Message::new("m3", signup("u3", "c@d.io")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["m2"]);
        let ids: Vec<_> = f.users.users().iter().map(|u| u.id.to_string()).collect();
        assert_eq!(ids, ["u1", "u3"]);
        let mut queued: Vec<_> = f
            .queue
            .sent()
            .iter()
            .map(|n| n.notification_id.clone())
            .collect();
        queued.sort();
        assert_eq!(queued, ["signup_confirmation.u1", "signup_confirmation.u3"]);
        assert_eq!(f.bus.published().len(), 2);
    }

    #[tokio::test]
    async fn unparsable_and_empty_records_fail_alone() {
        let f = Fixture::new();
        let mut empty = Message::new("m3", "");
        empty.body = None;
        let response = f
            .handle(
                1,
                vec![
                    Message::new("m1", "{not json"),
                    Message::new("m2", signup("u2", "a@b.io")),
                    empty,
                ],
            )
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["m1", "m3"]);
        assert_eq!(f.users.users().len(), 1);
    }

    #[tokio::test]
    async fn duplicate_signup_as_a_new_message_replays_without_side_effects() {
        let f = Fixture::new();
        f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let response = f
            .handle(99, vec![Message::new("m1-again", signup("u1", " a@B.io"))])
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
        assert_eq!(f.users.writes(), 1);
        assert_eq!(
            f.users.users()[0].created_at,
            Timestamp::from_unix_millis(1)
        );
        assert_eq!(
            f.queue.sent().len(),
            1,
            "the duplicate sends no second notification"
        );
        assert_eq!(f.bus.published().len(), 1, "and publishes no second event");
    }

    #[tokio::test]
    async fn concurrent_duplicates_in_one_batch_run_once_and_the_other_is_retried() {
        let f = Fixture::new();
        let response = f
            .handle(
                1,
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", signup("u1", "a@b.io")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            response.unhandled(),
            ["m2"],
            "the in-progress duplicate fails, to be retried"
        );
        assert_eq!(
            (
                f.users.writes(),
                f.queue.sent().len(),
                f.bus.published().len()
            ),
            (1, 1, 1)
        );
        let retry = f
            .handle(5_000, vec![Message::new("m2", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        assert!(retry.unhandled().is_empty(), "the retry replays");
        assert_eq!(
            (
                f.users.writes(),
                f.queue.sent().len(),
                f.bus.published().len()
            ),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn different_signup_for_a_taken_id_fails_and_changes_nothing() {
        let f = Fixture::new();
        f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let err = f
            .handle(2, vec![Message::new("m2", signup("u1", "mallory@evil.io"))])
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("already processed with a different payload"),
            "{err}"
        );
        assert!(!err.to_string().contains("mallory"), "{err}");
        assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
        assert_eq!(f.queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn conflict_is_caught_by_the_store_when_idempotency_records_have_expired() {
        let f = Fixture::new();
        f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let much_later = 1 + 3_601_000;
        let err = f
            .handle(
                much_later,
                vec![Message::new("m2", signup("u1", "mallory@evil.io"))],
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("user_id: already taken by a different signup"),
            "{err}"
        );
        assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
    }

    #[tokio::test]
    async fn crash_after_the_user_write_is_healed_by_the_retry() {
        let f = Fixture::new();
        f.queue.faults.fail("u1", 1);
        let first = f
            .handle(
                1,
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", signup("u2", "b@b.io")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            first.unhandled(),
            ["m1"],
            "the batch send failed for u1's entry only"
        );
        assert_eq!(
            f.users.users().len(),
            2,
            "the user write happened before the failure"
        );
        assert_eq!(
            f.records.get("user-processor#signup.u1"),
            None,
            "u1's lock was released"
        );

        let retry = f
            .handle(2, vec![Message::new("m1", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        assert!(retry.unhandled().is_empty());
        assert_eq!(f.users.writes(), 2, "no second write for u1");
        let queued: Vec<_> = f
            .queue
            .sent()
            .iter()
            .map(|n| n.user_id.to_string())
            .collect();
        assert_eq!(queued, ["u2", "u1"]);
        // The event went out in the failed attempt (publish ran beside the
        // send) and again on the retry: identical, so consumers dedupe it.
        let u1_events: Vec<_> = f
            .bus
            .published()
            .into_iter()
            .filter(|e| e.user_id.as_str() == "u1")
            .collect();
        assert_eq!(u1_events.len(), 2);
        assert_eq!(u1_events[0], u1_events[1]);
        assert_eq!(
            f.records.get("user-processor#signup.u1").map(|r| r.status),
            Some(eventline_powertools::idempotency::Status::Completed)
        );
    }

    /// A bus whose `publish_all` never answers, or answers for fewer
    /// events than it was given; counts the calls it faulted.
    #[derive(Default)]
    struct FaultyBus {
        inner: MemoryEventBus,
        hang: std::sync::atomic::AtomicBool,
        short: std::sync::atomic::AtomicBool,
        faulted: std::sync::atomic::AtomicUsize,
    }

    impl EventPublisher for FaultyBus {
        async fn publish_all(&self, events: &[UserCreated]) -> Vec<Result<(), crate::PortError>> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.hang.load(SeqCst) {
                self.faulted.fetch_add(1, SeqCst);
                return std::future::pending().await;
            }
            let mut results = self.inner.publish_all(events).await;
            if self.short.load(SeqCst) && !results.is_empty() {
                self.faulted.fetch_add(1, SeqCst);
                results.pop();
            }
            results
        }
    }

    fn processor_with(
        f: &Fixture,
        bus: Arc<FaultyBus>,
        now: u64,
    ) -> UserProcessor<
        Arc<MemoryUserStore>,
        Arc<MemoryQueue>,
        Arc<FaultyBus>,
        FixedClock,
        Arc<MemoryStore>,
    > {
        UserProcessor::new(
            Ports {
                users: f.users.clone(),
                notifications: f.queue.clone(),
                events: bus,
                clock: FixedClock(Timestamp::from_unix_millis(now)),
                idempotency: Idempotency::new(
                    f.records.clone(),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
            },
            BatchProcessor::new()
                .with_concurrency(crate::DEFAULT_CONCURRENCY)
                .on_all_failed(eventline_powertools::batch::AllFailed::Report),
            Duration::from_secs(3),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_that_never_answers_fails_its_records_in_time_and_the_retry_completes_them() {
        let f = Fixture::new();
        let bus = Arc::new(FaultyBus::default());
        bus.hang.store(true, std::sync::atomic::Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let response = processor_with(&f, bus.clone(), 1)
            .handle(
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", "{not json"),
                ],
                1 + 3_000,
            )
            .await
            .unwrap();
        assert!(
            bus.faulted.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "the call hung"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered before the deadline"
        );
        assert_eq!(
            response.unhandled(),
            ["m1", "m2"],
            "m2 has no dead-letter sink here"
        );
        assert!(!f.users.users()[0].is_announced());
        // The lock lapses at the deadline; the retry (after the visibility
        // timeout) completes the announcement.
        bus.hang.store(false, std::sync::atomic::Ordering::SeqCst);
        let retry = processor_with(&f, bus.clone(), 10_000)
            .handle(vec![Message::new("m1", signup("u1", "a@b.io"))], 13_000)
            .await
            .unwrap();
        assert!(retry.unhandled().is_empty());
        assert_eq!(bus.inner.published().len(), 1);
        assert!(f.users.users()[0].is_announced());
    }

    /// A user store whose insert for one user id never answers.
    struct HangingUsers {
        inner: Arc<MemoryUserStore>,
        hang_for: &'static str,
        hung: std::sync::atomic::AtomicUsize,
    }

    impl UserStore for HangingUsers {
        async fn insert(&self, user: &User) -> Result<Inserted<User>, crate::PortError> {
            if user.id.as_str() == self.hang_for {
                self.hung.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return std::future::pending().await;
            }
            self.inner.insert(user).await
        }
        async fn get(
            &self,
            id: &eventline_domain::UserId,
        ) -> Result<Option<User>, crate::PortError> {
            self.inner.get(id).await
        }
        async fn mark_announced(
            &self,
            id: &eventline_domain::UserId,
            at: Timestamp,
        ) -> Result<(), crate::PortError> {
            self.inner.mark_announced(id, at).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_write_that_never_answers_fails_only_its_record() {
        let f = Fixture::new();
        let users = Arc::new(HangingUsers {
            inner: f.users.clone(),
            hang_for: "u2",
            hung: Default::default(),
        });
        let processor = UserProcessor::new(
            Ports {
                users: users.clone(),
                notifications: f.queue.clone(),
                events: f.bus.clone(),
                clock: FixedClock(Timestamp::from_unix_millis(1)),
                idempotency: Idempotency::new(
                    f.records.clone(),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
            },
            BatchProcessor::new(),
            Duration::from_secs(3),
        );
        let started = tokio::time::Instant::now();
        let response = processor
            .handle(
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", signup("u2", "b@b.io")),
                    Message::new("m3", signup("u3", "c@d.io")),
                ],
                3_001,
            )
            .await
            .unwrap();
        assert_eq!(
            users.hung.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the write hung"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(response.unhandled(), ["m2"]);
        let announced: Vec<_> = f
            .users
            .users()
            .iter()
            .filter(|u| u.is_announced())
            .map(|u| u.id.to_string())
            .collect();
        assert_eq!(announced, ["u1", "u3"]);
        assert_eq!((f.queue.sent().len(), f.bus.published().len()), (2, 2));
    }

    #[tokio::test]
    async fn an_entry_the_batch_api_does_not_answer_for_is_failed_not_deleted() {
        let f = Fixture::new();
        let bus = Arc::new(FaultyBus::default());
        bus.short.store(true, std::sync::atomic::Ordering::SeqCst);
        let response = processor_with(&f, bus.clone(), 1)
            .handle(
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", signup("u2", "b@b.io")),
                ],
                3_001,
            )
            .await
            .unwrap();
        assert_eq!(bus.faulted.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(response.unhandled(), ["m2"], "no result for u2's event");
        assert_eq!(
            f.records.get("user-processor#signup.u2"),
            None,
            "its lock was released for the retry"
        );
    }

    #[tokio::test]
    async fn a_late_duplicate_of_an_announced_user_announces_nothing_again() {
        let f = Fixture::new();
        f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        // Days later, the idempotency record long expired (and deleted by
        // TTL), the message is redriven from the DLQ.
        f.records.expire("user-processor#signup.u1");
        let days_later = 4 * 86_400_000;
        let response = f
            .handle(
                days_later,
                vec![Message::new("m1-redriven", signup("u1", "a@b.io"))],
            )
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
        assert_eq!((f.queue.sent().len(), f.bus.published().len()), (1, 1));
    }

    #[tokio::test]
    async fn the_seed_shape_with_id_is_accepted() {
        let f = Fixture::new();
        let seed = r#"{"id":"u1","email":"a@b.io","name":"Ada"}"#;
        let response = f.handle(1, vec![Message::new("m1", seed)]).await.unwrap();
        assert!(response.unhandled().is_empty());
        assert_eq!(f.users.users()[0].id.as_str(), "u1");
    }

    #[tokio::test]
    async fn invalid_signups_and_conflicts_go_to_the_dead_letter_queue_at_once_with_their_reason() {
        let f = Fixture::new();
        f.handle(1, vec![Message::new("m0", signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let sink = Arc::new(crate::memory::MemoryDeadLetters::default());
        let processor = UserProcessor::new(
            Ports {
                users: f.users.clone(),
                notifications: f.queue.clone(),
                events: f.bus.clone(),
                clock: FixedClock(Timestamp::from_unix_millis(2)),
                idempotency: Idempotency::new(
                    f.records.clone(),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
            },
            BatchProcessor::new().with_dead_letters(sink.clone()),
            Duration::from_secs(3),
        );
        let response = processor
            .handle(
                vec![
                    Message::new("m1", r#"{"user_id":"u2","email":"nope","name":""}"#),
                    Message::new("m2", signup("u1", "mallory@evil.io")),
                    Message::new("m3", signup("u3", "c@d.io")),
                ],
                3_002,
            )
            .await
            .unwrap();
        assert!(
            response.unhandled().is_empty(),
            "handled: stored or dead-lettered"
        );
        let letters = sink.letters();
        let reasons: Vec<_> = letters
            .iter()
            .map(|l| {
                (
                    l.source_message_id.as_str(),
                    l.reason.code,
                    l.reason.fields.clone(),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("m1", "InvalidFields", vec!["email", "name"]),
                ("m2", "PayloadConflict", vec![]),
            ]
        );
        assert!(letters.iter().all(|l| !l.body.is_empty()));
        assert_eq!(f.users.users().len(), 2);
    }

    #[tokio::test]
    async fn a_batch_of_only_in_progress_duplicates_is_not_an_invocation_error() {
        let f = Fixture::new();
        // Another invocation holds u1's lock right now.
        let lock = f
            .processor(1)
            .ports
            .idempotency
            .begin::<()>(
                "signup.u1",
                payload_hash(["u1", "a@b.io", "Ada"]),
                idempotency::Window {
                    now_ms: 1,
                    deadline_ms: 3_001,
                },
            )
            .await
            .unwrap();
        assert!(matches!(lock, idempotency::Begin::Acquired(_)));
        let response = f
            .handle(2, vec![Message::new("m1", signup("u1", "a@b.io"))])
            .await
            .expect("an expected retry, not an error");
        assert_eq!(response.unhandled(), ["m1"]);
    }

    fn region_set(own: &str, list: &str) -> RegionSet {
        RegionSet::parse(Region::parse(own).unwrap(), list).unwrap()
    }

    #[tokio::test]
    async fn the_event_and_the_confirmation_say_where_whose_home_and_which_signup() {
        let f = Fixture::new();
        let regions = region_set("us-east-1", "us-west-2,us-east-1,eu-west-1");
        let processor = f.processor(1).with_regions(Some(regions.clone()));
        let response = processor
            .handle(
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    // A producer that passes its own chain along.
                    Message::new("m2", signup("u2", "b@b.io"))
                        .with_attribute("correlation_id", "upstream-7"),
                ],
                3_001,
            )
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
        let mut events = f.bus.published();
        events.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let stamped: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.user_id.to_string(),
                    e.origin_region.as_ref().map(Region::to_string),
                    e.home_region.clone(),
                    e.event_key(),
                    e.correlation_id.as_ref().map(CorrelationId::to_string),
                )
            })
            .collect();
        let home = |id: &str| {
            Some(
                regions
                    .home_region(&eventline_domain::UserId::parse(id).unwrap())
                    .clone(),
            )
        };
        assert_eq!(
            stamped,
            [
                (
                    "u1".to_owned(),
                    Some("us-east-1".to_owned()),
                    home("u1"),
                    "user-created/u1".to_owned(),
                    Some("m1".to_owned())
                ),
                (
                    "u2".to_owned(),
                    Some("us-east-1".to_owned()),
                    home("u2"),
                    "user-created/u2".to_owned(),
                    Some("upstream-7".to_owned())
                ),
            ]
        );
        let mut confirmations: Vec<_> = f
            .queue
            .sent()
            .into_iter()
            .map(|n| {
                (
                    n.user_id.to_string(),
                    n.correlation_id.map(|c| c.to_string()),
                )
            })
            .collect();
        confirmations.sort();
        assert_eq!(
            confirmations,
            [
                ("u1".to_owned(), Some("m1".to_owned())),
                ("u2".to_owned(), Some("upstream-7".to_owned()))
            ]
        );
    }

    #[tokio::test]
    async fn a_single_region_stack_is_every_users_home_and_origin() {
        let f = Fixture::new();
        let mut env = Env::from_map([
            ("USERS_TABLE", "t"),
            ("NOTIFICATION_QUEUE_URL", "q"),
            ("EVENT_BUS_NAME", "b"),
            ("SIGNUP_DLQ_URL", "d"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let config = Config::from_env(&mut env);
        assert_eq!(env.finish(), Ok(()));
        assert_eq!(
            config.regions,
            Some(RegionSet::single(Region::parse("eu-west-1").unwrap())),
            "REGIONS defaults to this region alone"
        );
        f.processor(1)
            .with_regions(config.regions)
            .handle(
                (0..5)
                    .map(|i| Message::new(format!("m{i}"), signup(&format!("u{i}"), "a@b.io")))
                    .collect(),
                3_001,
            )
            .await
            .unwrap();
        let events = f.bus.published();
        assert_eq!(events.len(), 5);
        for e in events {
            assert_eq!(
                e.origin_region.as_ref().map(Region::as_str),
                Some("eu-west-1")
            );
            assert_eq!(
                e.home_region.as_ref().map(Region::as_str),
                Some("eu-west-1")
            );
        }
    }

    #[test]
    fn the_record_span_and_the_event_agree_on_what_a_correlation_id_is() {
        let long = "x".repeat(CorrelationId::MAX_LEN);
        let too_long = "x".repeat(CorrelationId::MAX_LEN + 1);
        for candidate in [
            "m1",
            "11111111-1111-4111-8111-111111111111",
            "a:b.c_d-E9",
            long.as_str(),
            too_long.as_str(),
            "",
            "a@b.io",
            "Ada Lovelace",
            "a/b",
            "é",
        ] {
            assert_eq!(
                eventline_powertools::batch::is_correlation_id(candidate),
                CorrelationId::parse(candidate).is_ok(),
                "{candidate:?}"
            );
        }
    }

    #[test]
    fn regions_come_from_aws_region_and_regions() {
        let read = |vars: &[(&'static str, &'static str)]| {
            let mut all = vec![
                ("USERS_TABLE", "t"),
                ("NOTIFICATION_QUEUE_URL", "q"),
                ("EVENT_BUS_NAME", "b"),
                ("SIGNUP_DLQ_URL", "d"),
            ];
            all.extend_from_slice(vars);
            let mut env = Env::from_map(all);
            let config = Config::from_env(&mut env);
            env.finish()
                .map(|()| config.regions)
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(&[]), Ok(None), "outside Lambda: no region to stamp");
        assert_eq!(
            read(&[
                ("AWS_REGION", "us-west-2"),
                ("REGIONS", "eu-west-1,us-west-2,,us-east-1")
            ]),
            Ok(Some(region_set(
                "us-west-2",
                "us-east-1,eu-west-1,us-west-2"
            )))
        );
        assert_eq!(
            read(&[("REGIONS", "us-west-2,eu-west-1")]),
            Err("missing environment variables: AWS_REGION".into())
        );
        assert_eq!(
            read(&[("AWS_REGION", "ap-south-1"), ("REGIONS", "us-west-2,eu-west-1")]),
            Err("invalid environment variables: REGIONS: does not list this function's own region ap-south-1".into())
        );
        assert_eq!(
            read(&[("AWS_REGION", "us-west-2"), ("REGIONS", "us-west-2,eu-west")]),
            Err(r#"invalid environment variables: REGIONS: "eu-west" is not a region name (like us-west-2)"#.into())
        );
        assert_eq!(
            read(&[("AWS_REGION", "local")]),
            Err(r#"invalid environment variables: AWS_REGION: "local" is not a region name (like us-west-2)"#.into())
        );
    }

    #[test]
    fn config_names_every_missing_variable() {
        let mut env = Env::from_map([("USERS_TABLE", "t"), ("BATCH_CONCURRENCY", "0")]);
        Config::from_env(&mut env);
        assert_eq!(
            env.finish().unwrap_err().to_string(),
            "missing environment variables: NOTIFICATION_QUEUE_URL, EVENT_BUS_NAME, SIGNUP_DLQ_URL; \
             invalid environment variables: BATCH_CONCURRENCY: number would be zero for non-zero type"
        );
    }
}
