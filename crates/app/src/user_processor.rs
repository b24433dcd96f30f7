//! user-processor: SignupQueue → UsersTable, NotificationQueue, EventBridge.
//!
//! For each SQS record: parse and validate the signup, store the user with a
//! create-if-absent write, enqueue a `signup_confirmation` notification,
//! publish `User Created`, and record on the user's item that it was
//! announced. Each record succeeds or fails alone, and ends with an explicit
//! outcome: nothing is reported done unless every step of it said so.
//!
//! A batch takes three round trips, whatever its size (up to
//! [`SignupWrites::MAX_ENTRIES`] records per write): every record's
//! idempotency lock and new user in one atomic write ([`SignupWrites::lock_and_insert`];
//! DynamoDB `TransactWriteItems`); every notification in one
//! `SendMessageBatch` beside every event in one `PutEvents`; every
//! announcement and lock completion in one atomic write
//! ([`SignupWrites::complete_and_announce`]). A record that is not new
//! leaves the first write (which is retried once without it): a key locked
//! elsewhere replays, defers or rejects the record as
//! [`Idempotency::resolve`] decides; a user stored by an earlier attempt is
//! taken up with a lock of its own (one more call, for that record only).
//!
//! Retries are safe, in three layers:
//!
//! - The idempotency layer keys each signup by `signup.<user_id>` with a
//!   hash of the validated signup: a duplicate of a completed signup (same
//!   message redelivered, or the same signup sent again as a new message)
//!   replays without side effects; one still in progress is deferred (an
//!   expected retry, not an alarm); a different signup for the same id is
//!   rejected to the DLQ. Duplicates inside one batch are settled by the
//!   first copy's outcome, without a write of their own.
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

use crate::ports::{
    Clock, EventPublisher, Finish, Finished, LockAndInsert, NotificationQueue, SignupWrites,
};
use crate::{Error, Invocation, PortError};
use eventline_domain::{
    CorrelationId, Notification, NotificationKind, Region, RegionSet, Signup, User, UserCreated,
};
use eventline_powertools::batch::{record_span, BatchError, BatchProcessor, BatchReport, Message};
use eventline_powertools::deadline::Deadline;
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{self, payload_hash, Idempotency, IdempotencyStore};
use futures::future::{join, join_all};
use futures::FutureExt;
use std::collections::HashMap;
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
pub struct Ports<W, Q, P, C, I> {
    /// The UsersTable and the IdempotencyTable, written together.
    pub writes: W,
    /// The NotificationQueue.
    pub notifications: Q,
    /// The event bus.
    pub events: P,
    /// The time.
    pub clock: C,
    /// The idempotency guard (its records are those `writes` writes).
    pub idempotency: Idempotency<I>,
}

/// The user-processor use case.
pub struct UserProcessor<W, Q, P, C, I> {
    ports: Ports<W, Q, P, C, I>,
    batch: BatchProcessor,
    timeout: Duration,
    regions: Option<RegionSet>,
}

/// What a record's outcome is while the stages run: `None` until one says.
type Outcomes = Vec<Option<Result<(), Error>>>;

/// A record that parsed, with the lock it is to take.
struct Parsed {
    index: usize,
    signup: Signup,
    lock: idempotency::Prepared,
    correlation_id: Option<CorrelationId>,
}

/// A record that holds its lock and whose user is stored but not yet
/// announced.
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

/// A record that holds its lock and has nothing left to do but finish
/// (its user was announced by an earlier attempt).
type Done = (usize, idempotency::Lock);

impl<W, Q, P, C, I> UserProcessor<W, Q, P, C, I>
where
    W: SignupWrites,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
    I: IdempotencyStore,
{
    /// Wires the use case to its ports; `timeout` is the function's (used
    /// when the deadline is unknown).
    pub fn new(ports: Ports<W, Q, P, C, I>, batch: BatchProcessor, timeout: Duration) -> Self {
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

    /// Handles records in three round trips for all records at once: take
    /// the idempotency locks and store the users in one atomic write;
    /// enqueue every notification in one `SendMessageBatch` while publishing
    /// every event in one `PutEvents`; complete the locks and record the
    /// announcements in one atomic write. Records whose lock or user was
    /// there already take a short detour of their own. A record that fails
    /// at any stage fails alone (its lock is released); a batch API's
    /// partial or missing answer fails exactly the records it does not
    /// confirm.
    async fn process_all(
        &self,
        records: Vec<Message>,
        invocation: Invocation,
    ) -> Vec<Result<(), Error>> {
        let mut outcomes: Outcomes = records.iter().map(|_| None).collect();
        // Each record's log lines carry its message id and correlation id.
        let spans: Vec<tracing::Span> = records.iter().map(record_span).collect();
        let parsed = self.parse_all(&records, invocation, &mut outcomes);
        // Locks of records that failed before the last write.
        let mut failed = Vec::new();
        let (unannounced, done) = self
            .lock_and_store(parsed, &spans, invocation, &mut outcomes, &mut failed)
            .await;
        let announced = self
            .announce(unannounced, invocation, &mut outcomes, &mut failed)
            .await;
        // Released while the others finish: no round trip of their own.
        join(
            self.finish(announced, done, &spans, invocation, &mut outcomes),
            self.release(failed, invocation.deadline),
        )
        .await;
        // Fail closed: a record no stage gave an outcome is retried.
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(Error::Unaccounted)))
            .collect()
    }

    /// Parses every record and prepares its lock, before any write: a
    /// record that can never succeed is settled here and touches nothing.
    fn parse_all(
        &self,
        records: &[Message],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) -> Vec<Parsed> {
        let mut parsed = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let signup = record
                .body
                .as_deref()
                .ok_or(Error::NoBody)
                .and_then(|body| Signup::parse(body).map_err(Error::from));
            match signup {
                Ok(signup) => {
                    let hash = payload_hash([
                        signup.user_id.as_str(),
                        signup.email.as_str(),
                        signup.name.as_str(),
                    ]);
                    parsed.push(Parsed {
                        index,
                        lock: self.ports.idempotency.prepare(
                            &format!("signup.{}", signup.user_id),
                            hash,
                            invocation.window,
                        ),
                        signup,
                        // The same rule as the span's: a message id is one.
                        correlation_id: CorrelationId::parse(record.correlation_id()).ok(),
                    });
                }
                Err(e) => outcomes[index] = Some(Err(e)),
            }
        }
        parsed
    }

    /// Stage 1: takes the locks and stores the users, both or neither per
    /// record, in one write per [`SignupWrites::MAX_ENTRIES`] records.
    /// A transaction cannot touch one item twice, so only the first record
    /// of each key goes in; a later one with the same key is settled by the
    /// first's outcome (in progress, or what the first found). A record
    /// whose user was stored by an earlier attempt takes its lock on its own
    /// and goes on with the stored user; one whose lock is live elsewhere
    /// replays, is deferred or is rejected. Returns the records still to
    /// announce, and those an earlier attempt already announced; the locks
    /// of records that failed go to `failed`.
    async fn lock_and_store(
        &self,
        parsed: Vec<Parsed>,
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
        failed: &mut Vec<idempotency::Lock>,
    ) -> (Vec<Stored>, Vec<Done>) {
        let mut leads: Vec<Parsed> = Vec::with_capacity(parsed.len());
        let mut followers: Vec<(Parsed, usize)> = Vec::new();
        let mut lead_of: HashMap<String, usize> = HashMap::new();
        for p in parsed {
            match lead_of.get(&p.lock.record().id) {
                Some(&lead) => followers.push((p, lead)),
                None => {
                    lead_of.insert(p.lock.record().id.clone(), leads.len());
                    leads.push(p);
                }
            }
        }
        let now = self.ports.clock.now();
        let candidates: Vec<User> = leads
            .iter()
            .map(|p| User::from_signup(p.signup.clone(), now))
            .collect();
        let entries: Vec<(idempotency::Record, User)> = leads
            .iter()
            .zip(&candidates)
            .map(|(p, user)| (p.lock.record().clone(), user.clone()))
            .collect();
        let cut_off = invocation.stage_cut_off(2);
        let written = in_chunks(cut_off, &entries, W::MAX_ENTRIES, |chunk| {
            self.ports
                .writes
                .lock_and_insert(chunk, invocation.window.now_ms)
        })
        .await;

        // What each lead's key holds now, for the followers to settle by.
        let holders: Vec<idempotency::Record> = leads
            .iter()
            .zip(&written)
            .map(|(p, w)| match w {
                Ok(LockAndInsert::LockTaken(live)) => live.clone(),
                _ => p.lock.record().clone(),
            })
            .collect();
        for (p, lead) in followers {
            let _record = spans[p.index].enter();
            outcomes[p.index] = Some(self.settle(&p.lock, holders[lead].clone(), &p.signup));
        }

        let (mut unannounced, mut done, mut detours) = (Vec::new(), Vec::new(), Vec::new());
        for ((p, candidate), result) in leads.into_iter().zip(candidates).zip(written) {
            let _record = spans[p.index].enter();
            match result {
                Ok(LockAndInsert::Written) => {
                    tracing::info!(user_id = %candidate.id, "user created");
                    unannounced.push(Stored {
                        index: p.index,
                        lock: p.lock.acquired(),
                        user: candidate,
                        correlation_id: p.correlation_id,
                    });
                }
                Ok(LockAndInsert::LockTaken(live)) => {
                    outcomes[p.index] = Some(self.settle(&p.lock, live, &p.signup));
                }
                Ok(LockAndInsert::UserExists(stored)) => detours.push((p, candidate, stored)),
                // A write that panicked may have landed: release the lock
                // (only this attempt's). Otherwise nothing was written, or,
                // cut off, it may land: the lock then lapses at its deadline
                // and the retry finds the user.
                Err(Error::Panicked) => fail(
                    p.index,
                    p.lock.acquired(),
                    Error::Panicked,
                    outcomes,
                    failed,
                ),
                Err(e) => outcomes[p.index] = Some(Err(e)),
            }
        }

        let taken = each(
            cut_off,
            detours.iter().map(|(p, _, _)| {
                self.ports
                    .idempotency
                    .take::<()>(p.lock.clone(), invocation.window.now_ms)
                    .instrument(spans[p.index].clone())
            }),
        )
        .await;
        for ((p, candidate, stored), taken) in detours.into_iter().zip(taken) {
            let _record = spans[p.index].enter();
            match taken.and_then(|t| t.map_err(Error::from)) {
                Ok(idempotency::Begin::Acquired(lock)) => match stored.reconcile(&candidate) {
                    Ok(()) if stored.is_announced() => {
                        tracing::info!(user_id = %stored.id, "signup already announced; nothing to do");
                        done.push((p.index, lock));
                    }
                    Ok(()) => {
                        tracing::info!(user_id = %stored.id, "signup already stored");
                        unannounced.push(Stored {
                            index: p.index,
                            lock,
                            user: stored,
                            correlation_id: p.correlation_id,
                        });
                    }
                    Err(conflict) => fail(p.index, lock, conflict.into(), outcomes, failed),
                },
                Ok(idempotency::Begin::Replayed(())) => {
                    tracing::info!(user_id = %p.signup.user_id, "duplicate signup; already processed");
                    outcomes[p.index] = Some(Ok(()));
                }
                Err(e) => outcomes[p.index] = Some(Err(e)),
            }
        }
        (unannounced, done)
    }

    /// What a live record found in place of `lock` means for its signup:
    /// done already (a replay), in progress elsewhere, or another payload.
    fn settle(
        &self,
        lock: &idempotency::Prepared,
        live: idempotency::Record,
        signup: &Signup,
    ) -> Result<(), Error> {
        self.ports.idempotency.resolve::<()>(lock, live)?;
        tracing::info!(user_id = %signup.user_id, "duplicate signup; already processed");
        Ok(())
    }

    /// Stage 2: one `SendMessageBatch` beside one `PutEvents` for all
    /// records. Returns the records whose effects both succeeded; the locks
    /// of the others go to `failed`.
    async fn announce(
        &self,
        stored: Vec<Stored>,
        invocation: Invocation,
        outcomes: &mut Outcomes,
        failed: &mut Vec<idempotency::Lock>,
    ) -> Vec<Stored> {
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
            invocation.stage_cut_off(1),
            join(
                self.ports.notifications.enqueue_all(&notifications),
                self.ports.events.publish_all(&events),
            ),
        )
        .await;
        let mut effected = Vec::new();
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
                Err(e) => fail(s.index, s.lock, e, outcomes, failed),
            }
        }
        effected
    }

    /// Stage 3: records each announcement on its user and completes the
    /// locks, in one write per [`SignupWrites::MAX_ENTRIES`] records. An
    /// announced record whose announcement is not recorded fails (its
    /// retry repeats the effects with the same ids, and records them); a
    /// record whose completion alone is lost succeeds: its effects and
    /// their durable record are in place. Completions of records announced
    /// earlier that the write did not take go to the guard, which retries
    /// them until the deadline and reports what it could not write.
    async fn finish(
        &self,
        announced: Vec<Stored>,
        done: Vec<Done>,
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) {
        let now = self.ports.clock.now();
        let entries: Vec<Finish> = announced
            .iter()
            .map(|s| Finish {
                completed: s.lock.completed(&()),
                announce: Some((s.user.id.clone(), now)),
            })
            .chain(done.iter().map(|(_, lock)| Finish {
                completed: lock.completed(&()),
                announce: None,
            }))
            .collect();
        if entries.is_empty() {
            return;
        }
        let written = in_chunks(invocation.deadline, &entries, W::MAX_ENTRIES, |chunk| {
            self.ports.writes.complete_and_announce(chunk)
        })
        .await;
        let mut written = written.into_iter();
        let mut failed = Vec::new();
        for s in announced {
            let _record = spans[s.index].enter();
            match written.next().unwrap_or(Err(Error::Unaccounted)) {
                Ok(finished) => {
                    if finished == Finished::LockLost {
                        tracing::warn!(id = %s.lock.record().id, "idempotency lock was taken over before completion");
                    }
                    tracing::info!(user_id = %s.user.id, "signup processed");
                    outcomes[s.index] = Some(Ok(()));
                }
                Err(e) => fail(s.index, s.lock, e, outcomes, &mut failed),
            }
        }
        let mut unwritten = Vec::new();
        for ((index, lock), result) in done.into_iter().zip(written) {
            // Announced by an earlier attempt: done, whatever the completion does.
            outcomes[index] = Some(Ok(()));
            match result {
                Ok(Finished::LockLost) => {
                    let _record = spans[index].enter();
                    tracing::warn!(id = %lock.record().id, "idempotency lock was taken over before completion");
                }
                Ok(Finished::Completed) => {}
                Err(_) => unwritten.push((lock, &())),
            }
        }
        if !unwritten.is_empty() {
            self.ports
                .idempotency
                .complete_all(unwritten, invocation.deadline)
                .await;
        }
        self.release(failed, invocation.deadline).await;
    }

    /// Releases locks of failed records, giving up at the deadline.
    async fn release(&self, locks: Vec<idempotency::Lock>, deadline: Deadline) {
        if !locks.is_empty() {
            let _ = deadline
                .bound(self.ports.idempotency.release_all(locks))
                .await;
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

/// Calls a port that writes many entries at once on chunks of at most
/// `max` entries, all chunks at once, each bounded on its own: a call that
/// hangs or panics fails only the entries it carries. One result per
/// entry, in order; an entry the port gave no result for fails.
async fn in_chunks<'a, E, R, F, Fut>(
    cut_off: Deadline,
    entries: &'a [E],
    max: usize,
    call: F,
) -> Vec<Result<R, Error>>
where
    F: Fn(&'a [E]) -> Fut,
    Fut: Future<Output = Vec<Result<R, PortError>>>,
{
    let chunks = entries.chunks(max.max(1));
    let answers = each(cut_off, chunks.clone().map(&call)).await;
    chunks
        .zip(answers)
        .flat_map(|(chunk, answer)| {
            let mut results: Vec<Result<R, Error>> = match answer {
                Ok(results) => results
                    .into_iter()
                    .take(chunk.len())
                    .map(|r| r.map_err(Error::from))
                    .collect(),
                Err(e) => chunk.iter().map(|_| Err(e.clone())).collect(),
            };
            results.resize_with(chunk.len(), || Err(Error::Unaccounted));
            results
        })
        .collect()
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
    results: &[Result<(), PortError>],
    position: usize,
    operation: &'static str,
) -> Result<(), PortError> {
    results
        .get(position)
        .cloned()
        .unwrap_or_else(|| Err(PortError::new(operation, "no result for this entry")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{
        FixedClock, MemoryEventBus, MemoryQueue, MemorySignupWrites, MemoryUserStore,
    };
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

    /// The use case on the fixture's queue, clock and records, with these
    /// writes and events.
    type ProcessorOn<W, P = Arc<MemoryEventBus>> =
        UserProcessor<W, Arc<MemoryQueue>, P, FixedClock, Arc<MemoryStore>>;

    type Processor = ProcessorOn<MemorySignupWrites>;

    type FixturePorts<W, P> = Ports<W, Arc<MemoryQueue>, P, FixedClock, Arc<MemoryStore>>;

    impl Fixture {
        fn new() -> Self {
            Self {
                users: Arc::default(),
                queue: Arc::default(),
                bus: Arc::default(),
                records: Arc::default(),
            }
        }

        /// The users and records, written as the use case writes them.
        fn writes(&self) -> MemorySignupWrites {
            MemorySignupWrites {
                users: self.users.clone(),
                records: self.records.clone(),
            }
        }

        /// The fixture's queue, records and clock at `now`, with `writes`
        /// and `events`.
        fn ports<W, P>(&self, writes: W, events: P, now: u64) -> FixturePorts<W, P> {
            Ports {
                writes,
                notifications: self.queue.clone(),
                events,
                clock: FixedClock(Timestamp::from_unix_millis(now)),
                idempotency: Idempotency::new(
                    self.records.clone(),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
            }
        }

        fn processor(&self, now: u64) -> Processor {
            UserProcessor::new(
                self.ports(self.writes(), self.bus.clone(), now),
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

    /// Signup writes that record the entries of every call.
    #[derive(Default)]
    struct CountingWrites {
        inner: MemorySignupWrites,
        locked: std::sync::Mutex<Vec<Vec<String>>>,
        finished: std::sync::Mutex<Vec<Vec<(String, bool)>>>,
    }

    impl SignupWrites for CountingWrites {
        const MAX_ENTRIES: usize = MemorySignupWrites::MAX_ENTRIES;
        async fn lock_and_insert(
            &self,
            entries: &[(idempotency::Record, User)],
            now_ms: u64,
        ) -> Vec<Result<LockAndInsert, PortError>> {
            let users = entries.iter().map(|(_, u)| u.id.to_string()).collect();
            self.locked.lock().unwrap().push(users);
            self.inner.lock_and_insert(entries, now_ms).await
        }
        async fn complete_and_announce(
            &self,
            entries: &[Finish],
        ) -> Vec<Result<Finished, PortError>> {
            let keys = entries
                .iter()
                .map(|e| (e.completed.id.clone(), e.announce.is_some()))
                .collect();
            self.finished.lock().unwrap().push(keys);
            self.inner.complete_and_announce(entries).await
        }
    }

    fn counting_processor(
        f: &Fixture,
        now: u64,
        sink: &Arc<crate::memory::MemoryDeadLetters>,
    ) -> (Arc<CountingWrites>, ProcessorOn<Arc<CountingWrites>>) {
        let writes = Arc::new(CountingWrites {
            inner: f.writes(),
            ..CountingWrites::default()
        });
        let processor = UserProcessor::new(
            f.ports(writes.clone(), f.bus.clone(), now),
            BatchProcessor::new().with_dead_letters(sink.clone()),
            Duration::from_secs(3),
        );
        (writes, processor)
    }

    #[tokio::test]
    async fn a_batch_of_new_signups_is_written_once_before_its_effects_and_once_after() {
        let f = Fixture::new();
        let sink = Arc::default();
        let (writes, processor) = counting_processor(&f, 1, &sink);
        let response = processor
            .handle(
                (0..10)
                    .map(|i| Message::new(format!("m{i}"), signup(&format!("u{i}"), "a@b.io")))
                    .collect(),
                3_001,
            )
            .await
            .unwrap();
        assert!(response.unhandled().is_empty());
        let locked = writes.locked.lock().unwrap().clone();
        assert_eq!(locked.len(), 1, "one write of locks and users");
        assert_eq!(locked[0].len(), 10);
        let finished = writes.finished.lock().unwrap().clone();
        assert_eq!(
            finished.len(),
            1,
            "one write of completions and announcements"
        );
        assert_eq!(finished[0].len(), 10);
        assert!(finished[0].iter().all(|(_, announce)| *announce));
        assert_eq!((f.queue.sent().len(), f.bus.published().len()), (10, 10));
        assert!(f.users.users().iter().all(User::is_announced));
        assert!((0..10).all(|i| {
            f.records
                .get(&format!("user-processor#signup.u{i}"))
                .is_some_and(|r| r.status == idempotency::Status::Completed)
        }));
    }

    #[tokio::test]
    async fn records_a_cancelled_write_names_take_their_own_path_and_the_rest_is_written() {
        use crate::ports::UserStore;
        let f = Fixture::new();
        // u1: another invocation holds its lock right now.
        let held = f.processor(1).ports.idempotency.prepare(
            "signup.u1",
            payload_hash(["u1", "a@b.io", "Ada"]),
            idempotency::Window {
                now_ms: 1,
                deadline_ms: 10_000,
            },
        );
        f.records.acquire_now(held.record(), 1);
        // u2: stored by an attempt that died before announcing it.
        let stored_at = Timestamp::from_unix_millis(1);
        let u2 = User::from_signup(Signup::parse(&signup("u2", "b@b.io")).unwrap(), stored_at);
        f.users.insert(&u2).await.unwrap();
        // u3: announced long ago; its idempotency record expired.
        f.handle(1, vec![Message::new("m0", signup("u3", "c@d.io"))])
            .await
            .unwrap();
        f.records.expire("user-processor#signup.u3");
        let before = (f.queue.sent().len(), f.bus.published().len());

        let sink = Arc::default();
        let (writes, processor) = counting_processor(&f, 2, &sink);
        let response = processor
            .handle(
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", signup("u2", "b@b.io")),
                    Message::new("m3", signup("u3", "c@d.io")),
                    Message::new("m4", signup("u4", "d@d.io")),
                    Message::new("m5", signup("u5", "e@d.io")),
                ],
                3_002,
            )
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["m1"], "u1 is in progress elsewhere");
        assert_eq!(
            *writes.locked.lock().unwrap(),
            [["u1", "u2", "u3", "u4", "u5"]]
        );
        let mut finished = writes.finished.lock().unwrap().clone();
        assert_eq!(finished.len(), 1);
        finished[0].sort();
        assert_eq!(
            finished[0],
            [
                ("user-processor#signup.u2".to_owned(), true),
                ("user-processor#signup.u3".to_owned(), false),
                ("user-processor#signup.u4".to_owned(), true),
                ("user-processor#signup.u5".to_owned(), true),
            ],
            "u3 was announced before: its lock is completed, nothing announced again"
        );
        let mut announced: Vec<_> = f.queue.sent()[before.0..]
            .iter()
            .map(|n| n.user_id.to_string())
            .collect();
        announced.sort();
        assert_eq!(announced, ["u2", "u4", "u5"]);
        assert_eq!(f.bus.published().len() - before.1, 3);
        let u2_event = f
            .bus
            .published()
            .into_iter()
            .find(|e| e.user_id.as_str() == "u2")
            .unwrap();
        assert_eq!(
            u2_event.created_at, stored_at,
            "u2 goes on with its stored data"
        );
        assert_eq!(
            f.records.get("user-processor#signup.u1").map(|r| r.attempt),
            Some(held.record().attempt.clone()),
            "u1's lock is still the other invocation's"
        );
        for id in ["u2", "u3", "u4", "u5"] {
            let record = f.records.get(&format!("user-processor#signup.{id}"));
            assert_eq!(
                record.map(|r| r.status),
                Some(idempotency::Status::Completed),
                "{id}"
            );
        }
        assert!(sink.letters().is_empty());
    }

    #[tokio::test]
    async fn a_different_signup_for_the_same_id_in_the_same_batch_is_rejected_without_a_write() {
        let f = Fixture::new();
        let sink = Arc::default();
        let (writes, processor) = counting_processor(&f, 1, &sink);
        let response = processor
            .handle(
                vec![
                    Message::new("m1", signup("u1", "a@b.io")),
                    Message::new("m2", signup("u1", "mallory@evil.io")),
                    Message::new("m3", signup("u1", "a@b.io")),
                ],
                3_001,
            )
            .await
            .unwrap();
        assert_eq!(response.unhandled(), ["m3"], "the same signup is deferred");
        let letters: Vec<_> = sink
            .letters()
            .iter()
            .map(|l| (l.source_message_id.clone(), l.reason.code))
            .collect();
        assert_eq!(letters, [("m2".to_owned(), "PayloadConflict")]);
        assert_eq!(
            *writes.locked.lock().unwrap(),
            [["u1"]],
            "one item once in the transaction"
        );
        assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
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
    ) -> ProcessorOn<MemorySignupWrites, Arc<FaultyBus>> {
        UserProcessor::new(
            f.ports(f.writes(), bus, now),
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

    /// Signup writes of two records at most per call, whose first call
    /// that carries one chosen user never answers.
    struct HangingWrites {
        inner: MemorySignupWrites,
        hang_for: &'static str,
        hung: std::sync::atomic::AtomicUsize,
    }

    impl SignupWrites for HangingWrites {
        const MAX_ENTRIES: usize = 2;
        async fn lock_and_insert(
            &self,
            entries: &[(idempotency::Record, User)],
            now_ms: u64,
        ) -> Vec<Result<LockAndInsert, PortError>> {
            if entries.iter().any(|(_, u)| u.id.as_str() == self.hang_for) {
                self.hung.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return std::future::pending().await;
            }
            self.inner.lock_and_insert(entries, now_ms).await
        }
        async fn complete_and_announce(
            &self,
            entries: &[Finish],
        ) -> Vec<Result<Finished, PortError>> {
            self.inner.complete_and_announce(entries).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_never_answers_fails_only_the_records_it_carries() {
        let f = Fixture::new();
        let writes = Arc::new(HangingWrites {
            inner: f.writes(),
            hang_for: "u2",
            hung: Default::default(),
        });
        let processor = UserProcessor::new(
            f.ports(writes.clone(), f.bus.clone(), 1),
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
            writes.hung.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the write of u1 and u2 hung"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(response.unhandled(), ["m1", "m2"]);
        let announced: Vec<_> = f
            .users
            .users()
            .iter()
            .filter(|u| u.is_announced())
            .map(|u| u.id.to_string())
            .collect();
        assert_eq!(announced, ["u3"]);
        assert_eq!((f.queue.sent().len(), f.bus.published().len()), (1, 1));
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
            f.ports(f.writes(), f.bus.clone(), 2),
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
