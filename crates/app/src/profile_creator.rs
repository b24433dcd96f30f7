//! profile-creator: EventBridge `User Created` → ProfilesTable + `profiles/<user_id>.json`.
//!
//! The profile row is written with create-if-absent, then the document is
//! written to the bucket. On a re-delivered event the row exists: if it is
//! still the default profile (the first attempt may have died before the
//! document was written) the identical document is written again; if the
//! user has edited the profile since, nothing is touched, so a late duplicate
//! can never clobber a user's changes.

use crate::ports::{BlobStore, Clock, Inserted, ProfileStore};
use crate::user_created::{detail_hash, on_user_created};
use crate::{window, Error};
use eventline_domain::{Profile, UserCreated};
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{Idempotency, IdempotencyStore};
use serde_json::Value;

/// Settings: `PROFILES_TABLE`, `BUCKET_NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of profiles.
    pub profiles_table: String,
    /// Bucket for profile documents.
    pub bucket: String,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            profiles_table: env.required("PROFILES_TABLE"),
            bucket: env.required("BUCKET_NAME"),
        }
    }
}

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "profile-creator";

/// The ports profile-creator drives.
pub struct Ports<P, B, C, I> {
    /// The ProfilesTable.
    pub profiles: P,
    /// The bucket for profile documents.
    pub documents: B,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
}

/// The profile-creator use case.
pub struct ProfileCreator<P, B, C, I> {
    ports: Ports<P, B, C, I>,
}

impl<P: ProfileStore, B: BlobStore, C: Clock, I: IdempotencyStore> ProfileCreator<P, B, C, I> {
    /// Wires the use case to its ports.
    pub fn new(ports: Ports<P, B, C, I>) -> Self {
        Self { ports }
    }

    /// Handles one EventBridge event (raw payload), at most once per user.
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<(), Error> {
        on_user_created(payload, |event| self.create_once(event, deadline_ms)).await
    }

    async fn create_once(&self, event: UserCreated, deadline_ms: u64) -> Result<(), Error> {
        let key = format!("profile.{}", event.user_id);
        let run = self
            .ports
            .idempotency
            .once(
                &key,
                detail_hash(&event),
                window(&self.ports.clock, deadline_ms),
                || self.create(&event),
            )
            .await?;
        if run.is_replay() {
            tracing::info!(user_id = %event.user_id, "duplicate event; profile already created");
        }
        Ok(())
    }

    async fn create(&self, event: &UserCreated) -> Result<(), Error> {
        let profile = Profile::default_for(event);
        match self.ports.profiles.insert(&profile).await? {
            Inserted::New => {}
            Inserted::Existing(stored) if stored == profile => {}
            Inserted::Existing(_) => {
                tracing::info!(user_id = %event.user_id, "profile already edited; leaving it alone");
                return Ok(());
            }
        }
        self.ports
            .documents
            .put(
                &Profile::document_key(&profile.user_id),
                profile.to_json(),
                "application/json",
            )
            .await?;
        tracing::info!(user_id = %event.user_id, "profile created");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryBlobStore, MemoryProfileStore};
    use eventline_domain::Timestamp;
    use eventline_powertools::idempotency::MemoryStore;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn event() -> Value {
        json!({"version":"0","id":"e-1","detail-type":"User Created","source":"user.service",
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1","resources":[],
               "detail":{"user_id":"u1","email":"a@b.io","name":"Ada","created_at":"2026-11-27T09:24:26.123Z"}})
    }

    type Creator =
        ProfileCreator<Arc<MemoryProfileStore>, Arc<MemoryBlobStore>, FixedClock, Arc<MemoryStore>>;

    fn fixture() -> (Arc<MemoryProfileStore>, Arc<MemoryBlobStore>, Creator) {
        let profiles = Arc::new(MemoryProfileStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let creator = ProfileCreator::new(Ports {
            profiles: profiles.clone(),
            documents: blobs.clone(),
            clock: FixedClock(Timestamp::from_unix_millis(1)),
            idempotency: Idempotency::new(
                Arc::new(MemoryStore::default()),
                IDEMPOTENCY_SCOPE,
                Duration::from_secs(3600),
            ),
        });
        (profiles, blobs, creator)
    }

    #[tokio::test]
    async fn creates_the_row_and_the_document_once() {
        let (profiles, blobs, creator) = fixture();
        creator.handle(event(), 3_000).await.unwrap();
        creator.handle(event(), 3_000).await.unwrap();
        assert_eq!(profiles.profiles().len(), 1);
        assert_eq!(blobs.puts(), 1, "the duplicate event replays");
        let doc: Value = serde_json::from_str(&blobs.get("profiles/u1.json").unwrap()).unwrap();
        assert_eq!(doc["display_name"], "Ada");
        assert_eq!(doc["marketing_opt_in"], false);
    }

    #[tokio::test]
    async fn retry_after_a_failed_document_write_completes_it() {
        let (profiles, blobs, creator) = fixture();
        blobs.faults.fail("profiles/u1.json", 1);
        assert!(creator.handle(event(), 3_000).await.is_err());
        assert_eq!(profiles.profiles().len(), 1);
        assert_eq!(blobs.get("profiles/u1.json"), None);
        creator.handle(event(), 3_000).await.unwrap();
        assert!(blobs.get("profiles/u1.json").is_some());
    }

    #[tokio::test]
    async fn late_duplicate_never_clobbers_an_edited_profile() {
        let (profiles, blobs, creator) = fixture();
        creator.handle(event(), 3_000).await.unwrap();
        let mut edited = profiles.profiles()[0].clone();
        edited.bio = "Analyst".to_owned();
        profiles.overwrite(edited.clone());
        // Long after the idempotency record expired, the event comes once more.
        let late = ProfileCreator::new(Ports {
            profiles: profiles.clone(),
            documents: blobs.clone(),
            clock: FixedClock(Timestamp::from_unix_millis(10_000_000)),
            idempotency: Idempotency::new(
                Arc::new(MemoryStore::default()),
                IDEMPOTENCY_SCOPE,
                Duration::from_secs(3600),
            ),
        });
        late.handle(event(), 10_003_000).await.unwrap();
        assert_eq!(profiles.profiles(), [edited]);
        assert_eq!(blobs.puts(), 1);
    }
}
