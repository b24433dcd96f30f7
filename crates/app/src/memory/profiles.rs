//! [`MemoryProfileStore`]: the ProfilesTable in memory.

use super::{carries, free_for, lock, Faults};
use crate::ports::{PortError, ProfileStore, StoredProfile};
use eventline_domain::{Profile, UserId};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// [`ProfileStore`] over a map of profiles and the locks they carry, each
/// write atomic over its item as DynamoDB's conditional writes are.
#[derive(Debug, Default)]
pub struct MemoryProfileStore {
    profiles: Mutex<BTreeMap<UserId, Locked<StoredProfile>>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryProfileStore {
    /// Every stored profile, by user id.
    pub fn profiles(&self) -> Vec<Profile> {
        lock(&self.profiles)
            .values()
            .map(|p| p.value.profile.clone())
            .collect()
    }

    /// Replaces a stored profile's content, as a user editing it would.
    pub fn overwrite(&self, profile: Profile) {
        let mut profiles = lock(&self.profiles);
        match profiles.get_mut(&profile.user_id) {
            Some(stored) => stored.value.profile = profile,
            None => {
                profiles.insert(
                    profile.user_id.clone(),
                    Locked {
                        value: StoredProfile {
                            profile,
                            payload_hash: None,
                        },
                        lock: None,
                    },
                );
            }
        }
    }

    /// Stores `profile` as an earlier attempt (or an older version) left it:
    /// what a test starts from.
    pub fn seed(&self, profile: Profile, payload_hash: Option<&str>, held: Option<ItemLock>) {
        lock(&self.profiles).insert(
            profile.user_id.clone(),
            Locked {
                value: StoredProfile {
                    profile,
                    payload_hash: payload_hash.map(str::to_owned),
                },
                lock: held,
            },
        );
    }

    /// The lock the profile of `user_id` carries.
    pub fn lock_of(&self, user_id: &str) -> Option<ItemLock> {
        let id = UserId::parse(user_id).ok()?;
        lock(&self.profiles).get(&id)?.lock.clone()
    }
}

impl ProfileStore for MemoryProfileStore {
    async fn create(
        &self,
        profile: &Profile,
        payload_hash: &str,
        held: &ItemLock,
    ) -> Result<Claim<StoredProfile>, PortError> {
        self.faults
            .check("memory profiles create", profile.user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        if let Some(existing) = profiles.get(&profile.user_id) {
            return Ok(Claim::Found(existing.clone()));
        }
        profiles.insert(
            profile.user_id.clone(),
            Locked {
                value: StoredProfile {
                    profile: profile.clone(),
                    payload_hash: Some(payload_hash.to_owned()),
                },
                lock: Some(held.clone()),
            },
        );
        Ok(Claim::Held)
    }

    async fn take_over(
        &self,
        user_id: &UserId,
        held: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<StoredProfile>, PortError> {
        self.faults
            .check("memory profiles take over", user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        let stored = profiles
            .get_mut(user_id)
            .ok_or_else(|| PortError::new("memory profiles take over", "no such profile"))?;
        if stored.value.profile.document_written || !free_for(stored.lock.as_ref(), held, now_ms) {
            return Ok(Claim::Found(stored.clone()));
        }
        stored.lock = Some(held.clone());
        Ok(Claim::Held)
    }

    async fn record_document(
        &self,
        user_id: &UserId,
        held: &ItemLock,
    ) -> Result<Finish<StoredProfile>, PortError> {
        self.faults
            .check("memory profiles record document", user_id.as_str())
            .await?;
        let mut profiles = lock(&self.profiles);
        let stored = profiles
            .get_mut(user_id)
            .ok_or_else(|| PortError::new("memory profiles record document", "no such profile"))?;
        if !carries(stored.lock.as_ref(), held) {
            return Ok(Finish::NotHeld(stored.clone()));
        }
        stored.value.profile.document_written = true;
        Ok(Finish::Recorded)
    }

    async fn release(&self, user_id: &UserId, held: &ItemLock) -> Result<(), PortError> {
        self.faults
            .check("memory profiles release", user_id.as_str())
            .await?;
        if let Some(stored) = lock(&self.profiles).get_mut(user_id) {
            if carries(stored.lock.as_ref(), held) && !stored.value.profile.document_written {
                stored.lock = None;
            }
        }
        Ok(())
    }
}
