//! A registered user and the rules for signups that arrive more than once.

use crate::{DisplayName, EmailAddress, Signup, Timestamp, UserId};
use thiserror::Error;

/// A user as stored in the UsersTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Contact address.
    pub email: EmailAddress,
    /// Display name.
    pub name: DisplayName,
    /// When the user was first stored. A re-delivered signup keeps the original.
    pub created_at: Timestamp,
    /// When the user's confirmation notification was enqueued and its
    /// `User Created` event published, recorded on the user itself so the
    /// fact outlives every idempotency window. `None` while that has not
    /// happened (a new user, or one stored by an attempt that died before).
    pub announced_at: Option<Timestamp>,
}

/// A signup whose id is already taken by a different person.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("user_id: already taken by a different signup")]
pub struct UserConflict;

impl User {
    /// The user a signup creates at `now`.
    pub fn from_signup(signup: Signup, now: Timestamp) -> Self {
        Self {
            id: signup.user_id,
            email: signup.email,
            name: signup.name,
            created_at: now,
            announced_at: None,
        }
    }

    /// Whether the user's effects (confirmation notification, `User Created`)
    /// already happened. A duplicate signup of any age for an announced user
    /// must cause no effect; for a stored but unannounced user the effects
    /// are still owed and a duplicate completes them.
    pub fn is_announced(&self) -> bool {
        self.announced_at.is_some()
    }

    /// Decides what a new `candidate` means when `self` is already stored under its id.
    ///
    /// SQS delivers at least once and producers retry, so the same signup
    /// arriving again is a replay and succeeds (the stored user, with its
    /// original `created_at`, stays the truth). A *different* signup for a
    /// taken id is a conflict: it must not overwrite someone else's account.
    /// Only the signup's own fields count: `created_at` and `announced_at`
    /// describe the stored user's history, not the request.
    pub fn reconcile(&self, candidate: &User) -> Result<(), UserConflict> {
        if self.id == candidate.id && self.email == candidate.email && self.name == candidate.name {
            Ok(())
        } else {
            Err(UserConflict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str, name: &str, at: u64) -> User {
        let body = serde_json::json!({"user_id":"u1","email":email,"name":name}).to_string();
        User::from_signup(
            Signup::parse(&body).unwrap(),
            Timestamp::from_unix_millis(at),
        )
    }

    #[test]
    fn same_signup_again_is_a_replay() {
        let stored = user("a@b.io", "Ada", 1);
        assert_eq!(stored.reconcile(&user(" a@B.io", "Ada ", 2)), Ok(()));
    }

    #[test]
    fn different_signup_for_a_taken_id_conflicts() {
        let stored = user("a@b.io", "Ada", 1);
        assert_eq!(
            stored.reconcile(&user("other@b.io", "Ada", 1)),
            Err(UserConflict)
        );
        assert_eq!(
            stored.reconcile(&user("a@b.io", "Grace", 1)),
            Err(UserConflict)
        );
    }

    #[test]
    fn a_new_user_is_not_announced_until_recorded() {
        let mut stored = user("a@b.io", "Ada", 1);
        assert_eq!(stored.announced_at, None);
        assert!(!stored.is_announced());
        stored.announced_at = Some(Timestamp::from_unix_millis(2));
        assert!(stored.is_announced());
        assert_eq!(
            stored.reconcile(&user("a@b.io", "Ada", 9)),
            Ok(()),
            "a replay of an announced user is still a replay"
        );
    }
}
