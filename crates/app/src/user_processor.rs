//! user-processor: SignupQueue → UsersTable, NotificationQueue, EventBridge.
//!
//! For each SQS record: parse and validate the signup, store the user with a
//! create-if-absent write, enqueue a `signup_confirmation` notification,
//! publish `User Created`, and record on the user's item that it was
//! announced. Each record succeeds or fails alone, and ends with an explicit
//! outcome: nothing is reported done unless every step of it said so.
//!
//! A batch takes three round trips, whatever its size: each user created
//! with its signup's lock (one conditional `PutItem` per user, all at
//! once); every notification in one `SendMessageBatch` beside every event
//! in one `PutEvents`; each announcement recorded under its lock (one
//! conditional `UpdateItem` per user, all at once). The user's item holds
//! its lock and its fact (`eventline_powertools::item_lock`): no separate
//! idempotency record and no transaction, 1 write unit per write.
//!
//! Retries are safe because a failed create returns the stored item, and
//! the item says what the signup's state is ([`classify`]):
//!
//! - announced, same signup: a duplicate of any age (a redelivery, the same
//!   signup sent again, a DLQ redrive days later) causes nothing again;
//! - another signup for the id: rejected to the DLQ, never overwritten;
//! - locked by a live attempt: deferred (an expected retry, not an alarm);
//! - stored but not announced and its lock lapsed (an attempt died between
//!   the write and the announcement): one record takes the lock over and
//!   finishes the effects *with the stored user's data*, so the
//!   notification and event are identical to the first attempt's and carry
//!   the same deterministic ids;
//! - carrying this attempt's own lock: our write landed and the SDK resent
//!   it; we hold the lock.
//!
//! Copies of one user id in a batch are settled by what was actually
//! written: a copy of the signup a record holds the lock for succeeds or is
//! retried with it; when the first copy wrote nothing, the others are
//! judged against the stored item on their own, or retried.
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

use crate::ports::{Clock, EventPublisher, NotificationQueue, UserStore};
use crate::{Error, Invocation, PortError};
use eventline_domain::{
    CorrelationId, Notification, NotificationKind, Region, RegionSet, Signup, User, UserConflict,
    UserCreated, UserId,
};
use eventline_powertools::batch::{record_span, BatchError, BatchProcessor, BatchReport, Message};
use eventline_powertools::deadline::Deadline;
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::IdempotencyError;
use eventline_powertools::item_lock::{classify, Claim, Finish, Found, ItemLock, Locked};
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

/// The function's name, for its dead letters.
pub const FUNCTION: &str = "user-processor";

/// The ports user-processor drives.
pub struct Ports<U, Q, P, C> {
    /// The UsersTable: each user item holds its signup's lock and the fact
    /// that it was announced.
    pub users: U,
    /// The NotificationQueue.
    pub notifications: Q,
    /// The event bus.
    pub events: P,
    /// The time.
    pub clock: C,
}

/// The user-processor use case.
pub struct UserProcessor<U, Q, P, C> {
    ports: Ports<U, Q, P, C>,
    batch: BatchProcessor,
    timeout: Duration,
    regions: Option<RegionSet>,
}

/// What a record's outcome is while the stages run: `None` until one says.
type Outcomes = Vec<Option<Result<(), Error>>>;

/// A record that parsed: the user it would create.
struct Parsed {
    index: usize,
    user: User,
    correlation_id: Option<CorrelationId>,
}

/// A record that holds its user's lock; the user (as stored) is not yet
/// announced.
struct Held {
    index: usize,
    lock: ItemLock,
    user: User,
    correlation_id: Option<CorrelationId>,
}

impl Held {
    /// The user's confirmation, correlated with the signup.
    fn notification(&self) -> Notification {
        let n = Notification::new(self.user.id.clone(), NotificationKind::SignupConfirmation)
            .to_mailbox(self.user.email.mailbox_key());
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

/// The records of one user id in a batch, in arrival order, and the lock
/// this attempt writes for them (one item, one lock).
struct Group {
    members: Vec<Parsed>,
    lock: ItemLock,
}

/// Where stage 1 left a batch: the records holding their user's lock, the
/// records whose outcome is their leader's (a copy of the same signup
/// settled by what that record does), and the locks of records that
/// failed while holding one.
#[derive(Default)]
struct Claimed {
    held: Vec<Held>,
    waiting: Vec<(usize, usize)>,
    failed: Vec<(UserId, ItemLock)>,
}

impl<U, Q, P, C> UserProcessor<U, Q, P, C>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
{
    /// Wires the use case to its ports; `timeout` is the function's (used
    /// when the deadline is unknown).
    pub fn new(ports: Ports<U, Q, P, C>, batch: BatchProcessor, timeout: Duration) -> Self {
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

    /// Handles records in three round trips for all records at once: each
    /// user created with its lock (one conditional write per user, all at
    /// once); every notification in one `SendMessageBatch` beside every
    /// event in one `PutEvents`; each announcement recorded under its lock
    /// (one conditional update per user, all at once). Records whose user
    /// was there already take a short detour of their own. A record that
    /// fails at any stage fails alone (its lock is released); a batch API's
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
        let groups = self.parse_all(&records, invocation, &mut outcomes);
        let mut claimed = self.claim(groups, &spans, invocation, &mut outcomes).await;
        let announced = self
            .announce(
                std::mem::take(&mut claimed.held),
                invocation,
                &mut outcomes,
                &mut claimed.failed,
            )
            .await;
        // Released while the others finish: no round trip of their own.
        let failed = std::mem::take(&mut claimed.failed);
        join(
            self.finish(announced, &spans, invocation, &mut outcomes),
            self.release(failed, invocation.deadline),
        )
        .await;
        // A copy of a signup is settled by what its leader did: done if it
        // succeeded, otherwise retried later (and then it takes its own path).
        for (index, leader) in claimed.waiting {
            let _record = spans[index].enter();
            outcomes[index] = Some(match &outcomes[leader] {
                Some(Ok(())) => {
                    tracing::info!("duplicate signup in the same batch; already processed");
                    Ok(())
                }
                _ => Err(in_progress(&records[index].id)),
            });
        }
        // Fail closed: a record no stage gave an outcome is retried.
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(Error::Unaccounted)))
            .collect()
    }

    /// Parses every record, before any write: a record that can never
    /// succeed is settled here and touches nothing. The rest are grouped by
    /// user id, in arrival order, each group with the lock it will write.
    fn parse_all(
        &self,
        records: &[Message],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) -> Vec<Group> {
        let now = self.ports.clock.now();
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: HashMap<UserId, usize> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let signup = record
                .body
                .as_deref()
                .ok_or(Error::NoBody)
                .and_then(|body| Signup::parse(body).map_err(Error::from));
            let signup = match signup {
                Ok(signup) => signup,
                Err(e) => {
                    outcomes[index] = Some(Err(e));
                    continue;
                }
            };
            let parsed = Parsed {
                index,
                // The same rule as the span's: a message id is one.
                correlation_id: CorrelationId::parse(record.correlation_id()).ok(),
                user: User::from_signup(signup, now),
            };
            match group_of.get(&parsed.user.id) {
                Some(&g) => groups[g].members.push(parsed),
                None => {
                    group_of.insert(parsed.user.id.clone(), groups.len());
                    groups.push(Group {
                        members: vec![parsed],
                        lock: ItemLock::new(invocation.window),
                    });
                }
            }
        }
        groups
    }

    /// Stage 1: the first record of each user id creates its user carrying
    /// the group's lock, all users at once, each call bounded on its own.
    /// Where the user was stored already, the item that came back decides
    /// each record of the group ([`classify`]): done (a replay), in
    /// progress elsewhere (deferred), another signup (rejected), or owed
    /// its announcement with a lapsed lock: then one record of the group
    /// takes the lock over (one more call, for that user only). A record
    /// whose signup is the one a record of its group holds the lock for is
    /// settled by that record; one is never settled by what another record
    /// *tried* to write.
    async fn claim(
        &self,
        groups: Vec<Group>,
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) -> Claimed {
        let cut_off = invocation.stage_cut_off(2);
        let created = each(
            cut_off,
            groups.iter().map(|g| {
                let lead = &g.members[0];
                self.ports
                    .users
                    .create(&lead.user, &g.lock)
                    .instrument(spans[lead.index].clone())
            }),
        )
        .await;

        let mut claimed = Claimed::default();
        // Records that take a lapsed lock over, with the group's lock.
        let mut takers: Vec<(Parsed, ItemLock, User)> = Vec::new();
        for (group, created) in groups.into_iter().zip(created) {
            let Group { members, lock } = group;
            let mut members = members.into_iter();
            let Some(lead) = members.next() else { continue };
            let stored = match created.and_then(|c| c.map_err(Error::from)) {
                Ok(Claim::Held) => {
                    let _record = spans[lead.index].enter();
                    tracing::info!(user_id = %lead.user.id, "user created");
                    Locked {
                        value: lead.user.clone(),
                        lock: Some(lock.clone()),
                    }
                }
                Ok(Claim::Found(stored)) => stored,
                Err(e) => {
                    // The write may have landed only if it panicked (a
                    // cut-off one lapses at the deadline): release then.
                    if matches!(e, Error::Panicked) {
                        claimed.failed.push((lead.user.id.clone(), lock));
                    }
                    outcomes[lead.index] = Some(Err(e));
                    // Nothing known was written: the copies retry later.
                    claimed
                        .waiting
                        .extend(members.map(|m| (m.index, lead.index)));
                    continue;
                }
            };
            let now_ms = self.ports.clock.now().unix_millis();
            let mut taker: Option<Parsed> = None;
            let mut holder: Option<usize> = None;
            for member in std::iter::once(lead).chain(members) {
                let _record = spans[member.index].enter();
                let same = stored.value.reconcile(&member.user).is_ok();
                match classify(
                    stored.lock.as_ref(),
                    stored.value.is_announced(),
                    same,
                    &lock,
                    now_ms,
                ) {
                    Found::Conflict => {
                        outcomes[member.index] = Some(Err(UserConflict.into()));
                    }
                    // The lock is ours (created now, or our resent write).
                    Found::Ours if holder.is_none() => {
                        holder = Some(member.index);
                        claimed.held.push(Held {
                            index: member.index,
                            lock: lock.clone(),
                            user: stored.value.clone(),
                            correlation_id: member.correlation_id,
                        });
                    }
                    Found::Ours => {
                        claimed
                            .waiting
                            .push((member.index, holder.unwrap_or(member.index)));
                    }
                    Found::Done => {
                        tracing::info!(user_id = %member.user.id, "duplicate signup; already announced");
                        outcomes[member.index] = Some(Ok(()));
                    }
                    Found::InProgress => {
                        tracing::info!(user_id = %member.user.id, "signup in progress elsewhere; retry later");
                        outcomes[member.index] = Some(Err(in_progress(&member.user.id)));
                    }
                    Found::Lapsed => match &taker {
                        Some(first) => claimed.waiting.push((member.index, first.index)),
                        None => taker = Some(member),
                    },
                }
            }
            if let Some(first) = taker {
                takers.push((first, lock, stored.value));
            }
        }
        if takers.is_empty() {
            return claimed;
        }

        let now_ms = self.ports.clock.now().unix_millis();
        let taken = each(
            cut_off,
            takers.iter().map(|(p, lock, _)| {
                self.ports
                    .users
                    .take_over(&p.user.id, lock, now_ms)
                    .instrument(spans[p.index].clone())
            }),
        )
        .await;
        for ((p, lock, stored_user), taken) in takers.into_iter().zip(taken) {
            let _record = spans[p.index].enter();
            match taken.and_then(|t| t.map_err(Error::from)) {
                Ok(Claim::Held) => {
                    tracing::info!(user_id = %p.user.id, "signup stored but not announced; finishing it");
                    // The stored user's data goes out, as the first attempt's would have.
                    claimed.held.push(Held {
                        index: p.index,
                        lock,
                        user: stored_user,
                        correlation_id: p.correlation_id,
                    });
                }
                Ok(Claim::Found(stored)) => {
                    let same = stored.value.reconcile(&p.user).is_ok();
                    let found = classify(
                        stored.lock.as_ref(),
                        stored.value.is_announced(),
                        same,
                        &lock,
                        now_ms,
                    );
                    outcomes[p.index] = Some(match found {
                        Found::Done => Ok(()),
                        Found::Conflict => Err(UserConflict.into()),
                        // Another attempt took it first, or it moved under us: retry.
                        _ => Err(in_progress(&p.user.id)),
                    });
                }
                Err(e) => {
                    if matches!(e, Error::Panicked) {
                        claimed.failed.push((p.user.id.clone(), lock));
                    }
                    outcomes[p.index] = Some(Err(e));
                }
            }
        }
        claimed
    }

    /// Stage 2: one `SendMessageBatch` beside one `PutEvents` for all
    /// records. Returns the records whose effects both succeeded; the locks
    /// of the others go to `failed`.
    async fn announce(
        &self,
        held: Vec<Held>,
        invocation: Invocation,
        outcomes: &mut Outcomes,
        failed: &mut Vec<(UserId, ItemLock)>,
    ) -> Vec<Held> {
        if held.is_empty() {
            return Vec::new();
        }
        let notifications: Vec<Notification> = held.iter().map(Held::notification).collect();
        let events: Vec<UserCreated> = held
            .iter()
            .map(|h| h.event(self.regions.as_ref()))
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
        for (position, h) in held.into_iter().enumerate() {
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
                Ok(()) => effected.push(h),
                Err(e) => fail(h, e, outcomes, failed),
            }
        }
        effected
    }

    /// Stage 3: records each announcement on its user under the record's
    /// lock, all at once, each call bounded on its own. A record whose
    /// announcement is not recorded fails (its retry repeats the effects
    /// with the same ids, and records them); one whose lock another attempt
    /// took over meanwhile succeeds: its effects went out, and the holder
    /// repeats them with the same ids and records them.
    async fn finish(
        &self,
        announced: Vec<Held>,
        spans: &[tracing::Span],
        invocation: Invocation,
        outcomes: &mut Outcomes,
    ) {
        if announced.is_empty() {
            return;
        }
        let now = self.ports.clock.now();
        let written = each(
            invocation.deadline,
            announced.iter().map(|h| {
                self.ports
                    .users
                    .announce(&h.user.id, &h.lock, now)
                    .instrument(spans[h.index].clone())
            }),
        )
        .await;
        let mut failed = Vec::new();
        for (h, written) in announced.into_iter().zip(written) {
            let _record = spans[h.index].enter();
            match written.and_then(|w| w.map_err(Error::from)) {
                Ok(finish) => {
                    if let Finish::NotHeld(_) = finish {
                        tracing::warn!(user_id = %h.user.id, "signup lock was taken over before the announcement was recorded");
                    }
                    tracing::info!(user_id = %h.user.id, "signup processed");
                    outcomes[h.index] = Some(Ok(()));
                }
                Err(e) => fail(h, e, outcomes, &mut failed),
            }
        }
        self.release(failed, invocation.deadline).await;
    }

    /// Releases the locks of failed records, giving up at the deadline.
    async fn release(&self, locks: Vec<(UserId, ItemLock)>, deadline: Deadline) {
        let released = each(
            deadline,
            locks
                .iter()
                .map(|(id, lock)| self.ports.users.release(id, lock)),
        )
        .await;
        for ((id, _), result) in locks.iter().zip(released) {
            if let Err(e) = result.and_then(|r| r.map_err(Error::from)) {
                tracing::warn!(user_id = %id, error = %e, "could not release a signup lock; it lapses at its deadline");
            }
        }
    }
}

/// The outcome of a copy that must wait for another attempt (or record)
/// holding the same signup: an expected retry, not an alarm.
fn in_progress(key: impl std::fmt::Display) -> Error {
    Error::Idempotency(IdempotencyError::InProgress {
        key: format!("signup.{key}"),
    })
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
fn fail(held: Held, error: Error, outcomes: &mut Outcomes, release: &mut Vec<(UserId, ItemLock)>) {
    if !matches!(error, Error::Deadline(_)) {
        release.push((held.user.id, held.lock));
    }
    outcomes[held.index] = Some(Err(error));
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
mod tests;
