//! The item an effect concerns holds its own lock and its own fact.
//!
//! [`crate::idempotency`] guards work with a record of its own, beside the
//! data. When the work is "create this item, cause its effects, record that
//! they happened", the item itself can carry the lock: a create-if-absent
//! write of the item *with* an [`ItemLock`] takes the lock and stores the
//! data in one single-item conditional write (1 write unit under 1 KB, where
//! a separate record costs another write, and a transaction doubles both).
//! Recording the fact (`announced_at`, `sent`, `document_written`) is one
//! conditional update owned by the attempt, and the fact outlives any replay
//! window because it lives with the data.
//!
//! Whoever finds the item taken (the create's condition failed, and the
//! store returned the item as it was) asks [`classify`] what it means. The
//! same rules as Powertools' lock: an in-progress lock is freed only by its
//! own deadline; a different payload is a conflict; a recorded fact is a
//! replay; and a lock carrying *this* attempt's token is this attempt's own
//! write, resent by the SDK after the first one landed.

use crate::idempotency::{attempt_token, lock_until, Window};

/// The lock an item carries while the effects it concerns are under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLock {
    /// The attempt that holds it (a token no other attempt has).
    pub attempt: String,
    /// When it lapses, Unix milliseconds: the holder's invocation deadline.
    pub until_ms: u64,
}

impl ItemLock {
    /// A fresh lock for an attempt in `window`, held until its deadline
    /// (or [`crate::idempotency::FALLBACK_LOCK`] when that is unknown).
    pub fn new(window: Window) -> Self {
        Self {
            attempt: attempt_token(),
            until_ms: lock_until(window),
        }
    }

    /// Whether the lock still holds at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.until_ms >= now_ms
    }
}

/// A stored item with the lock it carries, if any (items written before
/// locks lived on them carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked<T> {
    /// The item's data.
    pub value: T,
    /// Its lock.
    pub lock: Option<ItemLock>,
}

/// What a write that takes an item's lock (a create, a take-over) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<T> {
    /// The item now carries the lock: the caller holds it.
    Held,
    /// The write's condition failed on this item, as it was ([`classify`]
    /// says what it means).
    Found(Locked<T>),
}

/// What a write that records an item's fact under its lock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish<T> {
    /// The fact is recorded (now, or by this attempt's own earlier write).
    Recorded,
    /// The lock was no longer this attempt's (it lapsed and another took it
    /// over, or was released): nothing was written. The item as it was.
    NotHeld(Locked<T>),
}

/// What an item found in place of a create (or a take-over) means for the
/// attempt holding `ours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// It carries our lock: our own write landed (a resend of it found it).
    Ours,
    /// Its fact is recorded and its payload is ours: nothing to do again.
    Done,
    /// Another attempt holds a live lock for the same payload: retry later.
    InProgress,
    /// Same payload, fact not recorded, and its lock lapsed (or it has
    /// none): the effects are still owed; take the lock over and finish them.
    Lapsed,
    /// It was stored for another payload: never overwrite it.
    Conflict,
}

/// Classifies a stored item against `ours` at `now_ms`: `same_payload`
/// says whether it was stored for the payload the caller carries, `done`
/// whether its fact is recorded.
pub fn classify(
    stored_lock: Option<&ItemLock>,
    done: bool,
    same_payload: bool,
    ours: &ItemLock,
    now_ms: u64,
) -> Found {
    if !same_payload {
        Found::Conflict
    } else if stored_lock.is_some_and(|l| l.attempt == ours.attempt) {
        Found::Ours
    } else if done {
        Found::Done
    } else if stored_lock.is_some_and(|l| l.is_live(now_ms)) {
        Found::InProgress
    } else {
        Found::Lapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(attempt: &str, until_ms: u64) -> ItemLock {
        ItemLock {
            attempt: attempt.to_owned(),
            until_ms,
        }
    }

    #[test]
    fn another_payload_is_a_conflict_whatever_the_lock_says() {
        let ours = lock("a", 100);
        assert_eq!(
            classify(Some(&ours), false, false, &ours, 0),
            Found::Conflict
        );
        assert_eq!(classify(None, true, false, &ours, 0), Found::Conflict);
    }

    #[test]
    fn our_own_token_is_our_resent_write_even_once_done() {
        let ours = lock("a", 100);
        assert_eq!(classify(Some(&ours), false, true, &ours, 50), Found::Ours);
        assert_eq!(classify(Some(&ours), true, true, &ours, 500), Found::Ours);
    }

    #[test]
    fn a_recorded_fact_is_a_replay_of_any_age() {
        let ours = lock("b", 100);
        assert_eq!(
            classify(Some(&lock("a", 10)), true, true, &ours, 1_000_000),
            Found::Done
        );
        assert_eq!(classify(None, true, true, &ours, 0), Found::Done);
    }

    #[test]
    fn a_live_lock_is_in_progress_until_its_own_deadline_then_lapsed() {
        let ours = lock("b", 100);
        let theirs = lock("a", 50);
        assert_eq!(
            classify(Some(&theirs), false, true, &ours, 50),
            Found::InProgress
        );
        assert_eq!(
            classify(Some(&theirs), false, true, &ours, 51),
            Found::Lapsed
        );
        assert_eq!(classify(None, false, true, &ours, 0), Found::Lapsed);
    }

    #[test]
    fn fresh_locks_have_their_own_tokens_and_last_until_the_deadline() {
        let window = Window {
            now_ms: 1_000,
            deadline_ms: 4_000,
        };
        let (a, b) = (ItemLock::new(window), ItemLock::new(window));
        assert_ne!(a.attempt, b.attempt);
        assert_eq!(a.until_ms, 4_000);
        assert!(a.is_live(4_000) && !a.is_live(4_001));
    }
}
