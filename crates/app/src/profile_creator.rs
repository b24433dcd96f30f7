//! profile-creator: EventBridge `User Created` → ProfilesTable + `profiles/<user_id>.json`.
//!
//! The profile row is written with create-if-absent, then the document is
//! written to the bucket, then the row records that the document was
//! written. That record is the durable fact: a duplicate of any age (after
//! the idempotency window, a redriven event) finds it and writes nothing.
//! A row without it is a first attempt that died before the document: if
//! the row is still the default profile, the identical document is written
//! and recorded; if the user has edited the profile since, nothing is
//! touched, so a late duplicate can never clobber a user's changes.
//! Events that can never succeed are dead-lettered with their reason.

use crate::ports::{BlobStore, Clock, Inserted, ProfileStore};
use crate::user_created::{detail_hash, on_user_created};
use crate::{Error, Invocation};
use eventline_domain::{Profile, UserCreated};
use eventline_powertools::batch::DeadLetterSink;
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{Idempotency, IdempotencyStore};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Settings: `PROFILES_TABLE`, `BUCKET_NAME`, `PROFILE_CREATOR_DLQ_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of profiles.
    pub profiles_table: String,
    /// Bucket for profile documents.
    pub bucket: String,
    /// Where events that can never succeed go, with their reason.
    pub dead_letter_queue_url: String,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            profiles_table: env.required("PROFILES_TABLE"),
            bucket: env.required("BUCKET_NAME"),
            dead_letter_queue_url: env.required("PROFILE_CREATOR_DLQ_URL"),
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
    /// Where events that can never succeed go (none: they are errors).
    pub dead_letters: Option<Arc<dyn DeadLetterSink>>,
}

/// The profile-creator use case.
pub struct ProfileCreator<P, B, C, I> {
    ports: Ports<P, B, C, I>,
    timeout: Duration,
}

impl<P: ProfileStore, B: BlobStore, C: Clock, I: IdempotencyStore> ProfileCreator<P, B, C, I> {
    /// Wires the use case to its ports; `timeout` is the function's (used
    /// when the deadline is unknown).
    pub fn new(ports: Ports<P, B, C, I>, timeout: Duration) -> Self {
        Self { ports, timeout }
    }

    /// Handles one EventBridge event (raw payload), at most once per user.
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<(), Error> {
        let invocation = Invocation::start(&self.ports.clock, deadline_ms, self.timeout);
        on_user_created(
            payload,
            invocation,
            self.ports.dead_letters.as_deref(),
            |event| self.create_once(event, invocation),
        )
        .await
    }

    async fn create_once(&self, event: UserCreated, invocation: Invocation) -> Result<(), Error> {
        let key = format!("profile.{}", event.user_id);
        let run = self
            .ports
            .idempotency
            .once(
                &key,
                detail_hash(&event),
                invocation.window,
                invocation.deadline,
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
            Inserted::Existing(stored) if stored.document_written => {
                tracing::info!(user_id = %event.user_id, "profile and document already written");
                return Ok(());
            }
            Inserted::Existing(stored) if stored.is_default_for(event) => {}
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
        self.ports
            .profiles
            .mark_document_written(&profile.user_id)
            .await?;
        tracing::info!(user_id = %event.user_id, "profile created");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryBlobStore, MemoryDeadLetters, MemoryProfileStore};
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

    fn creator_at(
        profiles: &Arc<MemoryProfileStore>,
        blobs: &Arc<MemoryBlobStore>,
        dead_letters: &Arc<MemoryDeadLetters>,
        now: u64,
    ) -> Creator {
        ProfileCreator::new(
            Ports {
                profiles: profiles.clone(),
                documents: blobs.clone(),
                clock: FixedClock(Timestamp::from_unix_millis(now)),
                // A fresh store: as if every idempotency record had expired.
                idempotency: Idempotency::new(
                    Arc::new(MemoryStore::default()),
                    IDEMPOTENCY_SCOPE,
                    Duration::from_secs(3600),
                ),
                dead_letters: Some(dead_letters.clone()),
            },
            Duration::from_secs(3),
        )
    }

    fn fixture() -> (Arc<MemoryProfileStore>, Arc<MemoryBlobStore>, Creator) {
        let profiles = Arc::new(MemoryProfileStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let creator = creator_at(&profiles, &blobs, &Arc::default(), 1);
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
        let late = creator_at(&profiles, &blobs, &Arc::default(), 10_000_000);
        late.handle(event(), 10_003_000).await.unwrap();
        assert_eq!(profiles.profiles(), [edited]);
        assert_eq!(blobs.puts(), 1);
    }

    #[tokio::test]
    async fn a_duplicate_of_any_age_writes_nothing_again() {
        let (profiles, blobs, creator) = fixture();
        creator.handle(event(), 3_000).await.unwrap();
        assert!(profiles.profiles()[0].document_written);
        // Days later, its idempotency record long gone, the event is redriven.
        let days_later = 5 * 86_400_000;
        let late = creator_at(&profiles, &blobs, &Arc::default(), days_later);
        late.handle(event(), days_later + 3_000).await.unwrap();
        assert_eq!(blobs.puts(), 1, "no second document write");
    }

    #[tokio::test]
    async fn a_forwarded_copy_without_created_at_is_the_same_event() {
        let (profiles, blobs, creator) = fixture();
        creator.handle(event(), 3_000).await.unwrap();
        let mut forwarded = event();
        forwarded["id"] = json!("e-forwarded");
        forwarded["time"] = json!("2026-11-27T09:30:00Z");
        forwarded["detail"]
            .as_object_mut()
            .unwrap()
            .remove("created_at");
        creator.handle(forwarded, 3_000).await.unwrap();
        assert_eq!((profiles.profiles().len(), blobs.puts()), (1, 1));
    }

    #[tokio::test]
    async fn an_invalid_event_is_dead_lettered_with_its_reason_and_not_retried() {
        let profiles = Arc::new(MemoryProfileStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let dead_letters = Arc::new(MemoryDeadLetters::default());
        let creator = creator_at(&profiles, &blobs, &dead_letters, 1);
        let mut bad = event();
        bad["detail"]["email"] = json!("not-an-address");
        creator.handle(bad.clone(), 3_000).await.unwrap();
        let letters = dead_letters.letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].source_message_id, "e-1");
        assert_eq!(letters[0].reason.fields, ["email"]);
        assert_eq!(
            serde_json::from_str::<Value>(&letters[0].body).unwrap(),
            bad
        );
        assert!(profiles.profiles().is_empty());
    }
}
