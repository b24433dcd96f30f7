//! user-processor: SignupQueue → UsersTable, NotificationQueue, EventBridge.
//!
//! For each SQS record: parse and validate the signup, store the user with a
//! create-if-absent write, enqueue a `signup_confirmation` notification,
//! publish `User Created`, and record on the user's item that it was
//! announced. Each record succeeds or fails alone and ends with an explicit
//! outcome: nothing is reported done unless every step of it said so.
//!
//! A batch takes three round trips whatever its size (`claim.rs`: each user
//! created carrying its signup's lock; `announce.rs`: one `SendMessageBatch`
//! beside one `PutEvents`, then each announcement recorded under its lock).
//! The user's item holds its lock and its fact, so a failed create returns
//! the stored item and `item_lock::classify` says what it means (replay,
//! conflict, in progress, our own resent write, or a lapsed lock to take
//! over): docs/reliability.md, "user-processor: the user item". Every stage
//! stops waiting at the invocation's deadline and a stage that panics fails
//! its records (`bounded.rs`). The `User Created` detail carries
//! `origin_region`, `home_region` and `correlation_id`
//! (docs/multi-region.md, docs/observability.md).

mod announce;
mod bounded;
mod claim;
mod config;

pub use config::Config;

use crate::ports::{Clock, EventPublisher, NotificationQueue, UserStore};
use crate::{Error, Invocation};
use bounded::in_progress;
use eventline_domain::{
    CorrelationId, Notification, NotificationKind, RegionSet, User, UserCreated, UserId,
};
use eventline_powertools::batch::{record_span, BatchError, BatchProcessor, BatchReport, Message};
use eventline_powertools::item_lock::ItemLock;
use futures::future::join;
use std::time::Duration;

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
}

#[cfg(test)]
mod tests;
