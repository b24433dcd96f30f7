//! Stages 2 and 3: the notifications and events of every record holding
//! its lock, in one batch call each, then each announcement recorded under
//! its lock; and releasing the locks of records that failed.

use super::bounded::{confirmed, each, fail, stage};
use super::{Held, Outcomes, UserProcessor};
use crate::ports::{Clock, EventPublisher, NotificationQueue, UserStore};
use crate::{Error, Invocation};
use eventline_domain::{Notification, UserCreated, UserId};
use eventline_powertools::deadline::Deadline;
use eventline_powertools::item_lock::{Finish, ItemLock};
use futures::future::join;
use tracing::Instrument;

impl<U, Q, P, C> UserProcessor<U, Q, P, C>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
{
    /// Stage 2: one `SendMessageBatch` beside one `PutEvents` for all
    /// records. Returns the records whose effects both succeeded; the locks
    /// of the others go to `failed`.
    pub(super) async fn announce(
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
    pub(super) async fn finish(
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
    pub(super) async fn release(&self, locks: Vec<(UserId, ItemLock)>, deadline: Deadline) {
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
