//! [`MemoryUserStore`]: the UsersTable in memory.

use super::{lock, Faults};
use crate::ports::{PortError, UserStore};
use eventline_domain::{Timestamp, User, UserId};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// [`UserStore`] over a map of users and the locks they carry, each write
/// atomic over its item as DynamoDB's conditional writes are.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: Mutex<BTreeMap<UserId, Locked<User>>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
    writes: AtomicU64,
}

impl MemoryUserStore {
    /// Every stored user, by id.
    pub fn users(&self) -> Vec<User> {
        lock(&self.users)
            .values()
            .map(|u| u.value.clone())
            .collect()
    }

    /// How many creates actually stored a user.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Stores `user` as an earlier attempt left it (carrying `lock`, or
    /// none): what a test starts from.
    pub fn seed(&self, user: User, lock: Option<ItemLock>) {
        let held = lock;
        self::lock(&self.users).insert(
            user.id.clone(),
            Locked {
                value: user,
                lock: held,
            },
        );
    }
}

impl UserStore for MemoryUserStore {
    async fn create(&self, user: &User, held: &ItemLock) -> Result<Claim<User>, PortError> {
        self.faults
            .check("memory users create", user.id.as_str())
            .await?;
        let mut users = lock(&self.users);
        if let Some(existing) = users.get(&user.id) {
            return Ok(Claim::Found(existing.clone()));
        }
        users.insert(
            user.id.clone(),
            Locked {
                value: user.clone(),
                lock: Some(held.clone()),
            },
        );
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(Claim::Held)
    }

    async fn take_over(
        &self,
        id: &UserId,
        held: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        self.faults
            .check("memory users take over", id.as_str())
            .await?;
        let mut users = lock(&self.users);
        let stored = users
            .get_mut(id)
            .ok_or_else(|| PortError::new("memory users take over", "no such user"))?;
        let free = stored
            .lock
            .as_ref()
            .is_none_or(|l| !l.is_live(now_ms) || l.attempt == held.attempt);
        if stored.value.is_announced() || !free {
            return Ok(Claim::Found(stored.clone()));
        }
        stored.lock = Some(held.clone());
        Ok(Claim::Held)
    }

    async fn announce(
        &self,
        id: &UserId,
        held: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        self.faults
            .check("memory users announce", id.as_str())
            .await?;
        let mut users = lock(&self.users);
        let stored = users
            .get_mut(id)
            .ok_or_else(|| PortError::new("memory users announce", "no such user"))?;
        if stored.lock.as_ref().map(|l| &l.attempt) != Some(&held.attempt) {
            return Ok(Finish::NotHeld(stored.clone()));
        }
        stored.value.announced_at.get_or_insert(at);
        Ok(Finish::Recorded)
    }

    async fn release(&self, id: &UserId, held: &ItemLock) -> Result<(), PortError> {
        self.faults
            .check("memory users release", id.as_str())
            .await?;
        if let Some(stored) = lock(&self.users).get_mut(id) {
            let ours = stored
                .lock
                .as_ref()
                .is_some_and(|l| l.attempt == held.attempt);
            if ours && !stored.value.is_announced() {
                stored.lock = None;
            }
        }
        Ok(())
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.faults.check("memory users get", id.as_str()).await?;
        Ok(lock(&self.users).get(id).map(|u| u.value.clone()))
    }
}
