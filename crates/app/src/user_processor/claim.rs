//! Parsing and stage 1: every record parsed before any write, then each
//! user created carrying its group's lock, or the stored item classified.

use super::bounded::{each, in_progress};
use super::{Claimed, Group, Held, Outcomes, Parsed, UserProcessor};
use crate::ports::{Clock, EventPublisher, NotificationQueue, UserStore};
use crate::{Error, Invocation};
use eventline_domain::{CorrelationId, Signup, User, UserConflict, UserId};
use eventline_powertools::batch::Message;
use eventline_powertools::item_lock::{classify, Claim, Found, ItemLock, Locked};
use std::collections::HashMap;
use tracing::Instrument;

impl<U, Q, P, C> UserProcessor<U, Q, P, C>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
{
    /// Parses every record, before any write: a record that can never
    /// succeed is settled here and touches nothing. The rest are grouped by
    /// user id, in arrival order, each group with the lock it will write.
    pub(super) fn parse_all(
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
    pub(super) async fn claim(
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
}
