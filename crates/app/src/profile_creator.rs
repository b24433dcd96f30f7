//! profile-creator: EventBridge `User Created` → ProfilesTable + `profiles/<user_id>.json`.
//!
//! The profile row is its own lock and fact (eventline_powertools::item_lock):
//! three round trips in the common case. The row is created carrying the
//! attempt's lock and the event's payload hash (one conditional write); the
//! document is written create-if-absent (`If-None-Match: *`: a document
//! already there is success, never replaced); the row then records
//! `document_written` under the lock. That fact is durable: a duplicate of
//! any age finds it and writes nothing. A row without it is an attempt in
//! progress (retry later) or one that died before the document: if the row
//! is still the default profile, its lock is taken over and the identical
//! document written and recorded; if the user has edited the profile since,
//! nothing is touched, so a late duplicate can never clobber a user's
//! changes. A row made for another payload is a conflict. Events that can
//! never succeed are dead-lettered with their reason.

use crate::ports::{BlobStore, Clock, ProfileStore, Put, StoredProfile};
use crate::user_created::{detail_hash, on_user_created};
use crate::{Error, Invocation};
use eventline_domain::{Profile, UserCreated};
use eventline_powertools::batch::DeadLetterSink;
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::IdempotencyError;
use eventline_powertools::item_lock::{classify, Claim, Finish, Found, ItemLock, Locked};
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

/// The function's name (its dead letters say it).
pub const FUNCTION: &str = "profile-creator";

/// The ports profile-creator drives.
pub struct Ports<P, B, C> {
    /// The ProfilesTable.
    pub profiles: P,
    /// The bucket for profile documents.
    pub documents: B,
    /// The time.
    pub clock: C,
}

/// The profile-creator use case.
pub struct ProfileCreator<P, B, C> {
    ports: Ports<P, B, C>,
    /// Where events that can never succeed go (none: they are errors).
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    timeout: Duration,
}

impl<P: ProfileStore, B: BlobStore, C: Clock> ProfileCreator<P, B, C> {
    /// Wires the use case to its ports and its failure queue (none: events
    /// that can never succeed are errors); `timeout` is the function's
    /// (used when the deadline is unknown).
    pub fn new(
        ports: Ports<P, B, C>,
        dead_letters: Option<Arc<dyn DeadLetterSink>>,
        timeout: Duration,
    ) -> Self {
        Self {
            ports,
            dead_letters,
            timeout,
        }
    }

    /// Handles one EventBridge event (raw payload), at most once per user.
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<(), Error> {
        let invocation = Invocation::start(&self.ports.clock, deadline_ms, self.timeout);
        on_user_created(payload, invocation, self.dead_letters.as_deref(), |event| {
            self.create(event, invocation)
        })
        .await
    }

    async fn create(&self, event: UserCreated, invocation: Invocation) -> Result<(), Error> {
        let ports = &self.ports;
        let profile = Profile::default_for(&event);
        let hash = detail_hash(&event);
        let lock = ItemLock::new(invocation.window);
        let claim = ports.profiles.create(&profile, &hash, &lock).await?;
        let now_ms = ports.clock.now().unix_millis();
        let Some(lock) = self.settle(&event, &hash, lock, claim, now_ms).await? else {
            return Ok(());
        };
        let written = ports
            .documents
            .put_new(
                &Profile::document_key(&profile.user_id),
                profile.to_json(),
                "application/json",
            )
            .await;
        match written {
            Ok(Put::Created) => {}
            Ok(Put::Exists) => {
                tracing::info!(user_id = %event.user_id, "profile document already written; recording it");
            }
            Err(e) => {
                if let Err(release) = ports.profiles.release(&profile.user_id, &lock).await {
                    tracing::warn!(user_id = %event.user_id, error = %release, "could not release a profile lock; it lapses at its deadline");
                }
                return Err(e.into());
            }
        }
        if let Finish::NotHeld(_) = ports
            .profiles
            .record_document(&profile.user_id, &lock)
            .await?
        {
            // Taken over after it lapsed: the holder writes the same document and records it.
            tracing::warn!(user_id = %event.user_id, "profile lock was taken over before the document was recorded");
        }
        tracing::info!(user_id = %event.user_id, "profile created");
        Ok(())
    }

    /// What a profile found in place of the create means: `Some(lock)`
    /// when this attempt holds it (also after taking over a lapsed one),
    /// `None` when there is nothing to do (written before, or edited since:
    /// then even a live lock is no reason to retry).
    async fn settle(
        &self,
        event: &UserCreated,
        hash: &str,
        lock: ItemLock,
        claim: Claim<StoredProfile>,
        now_ms: u64,
    ) -> Result<Option<ItemLock>, Error> {
        let stored = match claim {
            Claim::Held => return Ok(Some(lock)),
            Claim::Found(stored) => stored,
        };
        let found = match judge(&stored, hash, &lock, now_ms) {
            // Whoever holds it, this copy would write nothing over an edit.
            Found::Lapsed | Found::InProgress if !stored.value.profile.is_default_for(event) => {
                tracing::info!(user_id = %event.user_id, "profile already edited; leaving it alone");
                return Ok(None);
            }
            Found::Lapsed => {
                match self
                    .ports
                    .profiles
                    .take_over(&event.user_id, &lock, now_ms)
                    .await?
                {
                    Claim::Held => {
                        tracing::info!(user_id = %event.user_id, "an earlier attempt's profile lock lapsed; taking it over");
                        return Ok(Some(lock));
                    }
                    Claim::Found(now) => match judge(&now, hash, &lock, now_ms) {
                        Found::Lapsed => Found::InProgress,
                        other => other,
                    },
                }
            }
            other => other,
        };
        let key = || format!("profile#{}", event.user_id);
        match found {
            Found::Ours => Ok(Some(lock)),
            Found::Done => {
                tracing::info!(user_id = %event.user_id, "profile and document already written");
                Ok(None)
            }
            Found::Conflict => Err(Error::Idempotency(IdempotencyError::PayloadMismatch {
                key: key(),
            })),
            Found::InProgress | Found::Lapsed => {
                Err(Error::Idempotency(IdempotencyError::InProgress {
                    key: key(),
                }))
            }
        }
    }
}

/// A stored profile's answer to an attempt ([`classify`]): its fact is
/// `document_written`; a profile without a payload hash (written before
/// hashes lived on profiles) is the same payload.
fn judge(stored: &Locked<StoredProfile>, hash: &str, ours: &ItemLock, now_ms: u64) -> Found {
    let same = stored
        .value
        .payload_hash
        .as_deref()
        .is_none_or(|h| h == hash);
    let done = stored.value.profile.document_written;
    classify(stored.lock.as_ref(), done, same, ours, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryBlobStore, MemoryDeadLetters, MemoryProfileStore};
    use crate::round_trips::{Trace, Traced};
    use eventline_domain::{Timestamp, UserId};
    use eventline_powertools::batch::{Disposition, RecordError};
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn event() -> Value {
        json!({"version":"0","id":"e-1","detail-type":"User Created","source":"user.service",
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1","resources":[],
               "detail":{"user_id":"u1","email":"a@b.io","name":"Ada","created_at":"2026-11-27T09:24:26.123Z"}})
    }

    fn user_created() -> UserCreated {
        UserCreated::from_detail(&event()["detail"]).unwrap()
    }

    type Creator =
        ProfileCreator<Traced<Arc<MemoryProfileStore>>, Traced<Arc<MemoryBlobStore>>, FixedClock>;

    /// What every creator of a test shares.
    #[derive(Default)]
    struct World {
        profiles: Arc<MemoryProfileStore>,
        blobs: Arc<MemoryBlobStore>,
        dead_letters: Arc<MemoryDeadLetters>,
        trace: Trace,
    }

    impl World {
        /// A creator at `now`, dead-lettering into the world.
        fn creator(&self, now: u64) -> Creator {
            ProfileCreator::new(
                Ports {
                    profiles: self.trace.wrap(self.profiles.clone()),
                    documents: self.trace.wrap(self.blobs.clone()),
                    clock: FixedClock(Timestamp::from_unix_millis(now)),
                },
                Some(self.dead_letters.clone()),
                Duration::from_secs(3),
            )
        }

        async fn handle(&self, now: u64, payload: Value) -> Result<(), Error> {
            self.creator(now).handle(payload, now + 3_000).await
        }
    }

    fn foreign_lock(until_ms: u64) -> ItemLock {
        ItemLock {
            attempt: "another-attempt".into(),
            until_ms,
        }
    }

    #[tokio::test]
    async fn creates_the_row_and_the_document_once_in_three_round_trips() {
        let world = World::default();
        world.handle(1, event()).await.unwrap();
        assert_eq!(
            world.trace.round_trips(),
            [
                vec!["profiles.create"],
                vec!["blobs.put_new"],
                vec!["profiles.record_document"],
            ]
        );
        world.trace.clear();
        world.handle(2, event()).await.unwrap();
        assert_eq!(world.trace.round_trips(), [vec!["profiles.create"]]);
        assert_eq!(world.profiles.profiles().len(), 1);
        assert!(world.profiles.profiles()[0].document_written);
        assert_eq!(world.blobs.puts(), 1, "the duplicate writes nothing");
        let doc: Value =
            serde_json::from_str(&world.blobs.get("profiles/u1.json").unwrap()).unwrap();
        assert_eq!(doc["display_name"], "Ada");
        assert_eq!(doc["marketing_opt_in"], false);
    }

    #[tokio::test]
    async fn retry_after_a_failed_document_write_completes_it_at_once() {
        let world = World::default();
        world.blobs.faults.fail("profiles/u1.json", 1);
        assert!(world.handle(1, event()).await.is_err());
        assert_eq!(world.profiles.profiles().len(), 1);
        assert_eq!(world.blobs.get("profiles/u1.json"), None);
        // The lock was given up: the retry need not wait for it to lapse.
        assert_eq!(world.profiles.lock_of("u1"), None);
        world.handle(2, event()).await.unwrap();
        assert!(world.blobs.get("profiles/u1.json").is_some());
        assert!(world.profiles.profiles()[0].document_written);
    }

    #[tokio::test]
    async fn a_document_already_in_the_bucket_is_kept_and_recorded() {
        let world = World::default();
        // The first attempt wrote the document and died before recording it.
        let profile = Profile::default_for(&user_created());
        world.profiles.seed(
            profile,
            Some(&detail_hash(&user_created())),
            Some(foreign_lock(500)),
        );
        world.blobs.seed("profiles/u1.json", "first");
        world.handle(1_000, event()).await.unwrap();
        assert_eq!(
            world.blobs.get("profiles/u1.json").as_deref(),
            Some("first")
        );
        assert!(world.profiles.profiles()[0].document_written);
        assert_eq!(
            world.trace.round_trips(),
            [
                vec!["profiles.create"],
                vec!["profiles.take_over"],
                vec!["blobs.put_new"],
                vec!["profiles.record_document"],
            ]
        );
    }

    #[tokio::test]
    async fn a_profile_of_the_old_layout_without_its_document_is_finished() {
        let world = World::default();
        // Written before profiles carried locks and hashes.
        world
            .profiles
            .seed(Profile::default_for(&user_created()), None, None);
        world.handle(1, event()).await.unwrap();
        assert!(world.blobs.get("profiles/u1.json").is_some());
        assert!(world.profiles.profiles()[0].document_written);
    }

    #[tokio::test]
    async fn late_duplicate_never_clobbers_an_edited_profile() {
        let world = World::default();
        world.handle(1, event()).await.unwrap();
        let mut edited = world.profiles.profiles()[0].clone();
        edited.bio = "Analyst".to_owned();
        world.profiles.overwrite(edited.clone());
        world.handle(10_000_000, event()).await.unwrap();
        assert_eq!(world.profiles.profiles(), [edited]);
        assert_eq!(world.blobs.puts(), 1);

        // An edited profile whose document was never written (an attempt
        // that died before it): left alone, no document.
        let world = World::default();
        let mut edited = Profile::default_for(&user_created());
        edited.bio = "Analyst".to_owned();
        world.profiles.seed(edited.clone(), None, None);
        world.handle(10_000_000, event()).await.unwrap();
        assert_eq!(world.profiles.profiles(), [edited]);
        assert_eq!(
            (world.blobs.puts(), world.profiles.lock_of("u1")),
            (0, None)
        );
    }

    #[tokio::test]
    async fn a_duplicate_of_any_age_writes_nothing_again() {
        let world = World::default();
        world.handle(1, event()).await.unwrap();
        let days_later = 5 * 86_400_000;
        world.handle(days_later, event()).await.unwrap();
        assert_eq!(world.blobs.puts(), 1, "no second document write");
    }

    #[tokio::test]
    async fn a_copy_whose_first_is_in_progress_is_an_expected_retry() {
        let world = World::default();
        world.profiles.seed(
            Profile::default_for(&user_created()),
            Some(&detail_hash(&user_created())),
            Some(foreign_lock(60_000)),
        );
        let err = world.handle(1, event()).await.unwrap_err();
        assert_eq!(err.kind(), "InProgress");
        assert_eq!(err.disposition(), Disposition::Expected);
        assert_eq!(world.blobs.puts(), 0);
        assert_eq!(world.profiles.lock_of("u1"), Some(foreign_lock(60_000)));
    }

    #[tokio::test]
    async fn a_profile_made_for_another_payload_is_a_conflict_dead_lettered() {
        let world = World::default();
        world.profiles.seed(
            Profile::default_for(&user_created()),
            Some("another payload"),
            None,
        );
        world.handle(1, event()).await.unwrap();
        let letters = world.dead_letters.letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].reason.code, "PayloadConflict");
        assert_eq!(world.blobs.puts(), 0);
    }

    #[tokio::test]
    async fn a_forwarded_copy_without_created_at_is_the_same_event() {
        let world = World::default();
        world.handle(1, event()).await.unwrap();
        let mut forwarded = event();
        forwarded["id"] = json!("e-forwarded");
        forwarded["time"] = json!("2026-11-27T09:30:00Z");
        forwarded["detail"]
            .as_object_mut()
            .unwrap()
            .remove("created_at");
        world.handle(2, forwarded).await.unwrap();
        assert_eq!(
            (world.profiles.profiles().len(), world.blobs.puts()),
            (1, 1)
        );
        assert!(world.dead_letters.letters().is_empty());
    }

    #[tokio::test]
    async fn an_invalid_event_is_dead_lettered_with_its_reason_and_not_retried() {
        let world = World::default();
        let mut bad = event();
        bad["detail"]["email"] = json!("not-an-address");
        world.handle(1, bad.clone()).await.unwrap();
        let letters = world.dead_letters.letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].source_message_id, "e-1");
        assert_eq!(letters[0].reason.fields, ["email"]);
        assert_eq!(
            serde_json::from_str::<Value>(&letters[0].body).unwrap(),
            bad
        );
        assert!(world.profiles.profiles().is_empty());
        let _ = UserId::parse("u1");
    }
}
