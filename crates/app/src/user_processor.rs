//! user-processor: SignupQueue → UsersTable, NotificationQueue, EventBridge.
//!
//! For each SQS record: parse and validate the signup, store the user with a
//! create-if-absent write, enqueue a `signup_confirmation` notification and
//! publish `User Created`. Each record succeeds or fails alone.
//!
//! Retries are safe, in two layers:
//!
//! - The idempotency layer keys each signup by `signup.<user_id>` with a
//!   hash of the validated signup: a duplicate of a completed signup (same
//!   message redelivered, or the same signup sent again as a new message)
//!   replays without side effects; one still in progress fails and is
//!   retried; a different signup for the same id is refused.
//! - Below it, the steps themselves are idempotent. If an attempt dies
//!   between the user write and the notification, its retry finds the user
//!   stored, recognises the same signup ([`User::reconcile`]) and completes
//!   the missing steps *with the stored user's data*, so the notification
//!   and event are identical to the first attempt's and carry the same
//!   deterministic ids. There is no second user write.

use crate::ports::{Clock, EventPublisher, Inserted, NotificationQueue, UserStore};
use crate::{window, Error};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use eventline_domain::{Notification, NotificationKind, Signup, User, UserCreated};
use eventline_powertools::batch::{BatchError, BatchProcessor};
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::{
    payload_hash, Begin, Idempotency, IdempotencyStore, Lock, Window,
};
use futures::future::{join, join_all};
use std::num::NonZeroUsize;
use tracing::Instrument;

/// Settings: `USERS_TABLE`, `NOTIFICATION_QUEUE_URL`, `EVENT_BUS_NAME`,
/// optional `BATCH_CONCURRENCY` (records processed at once, default 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of users.
    pub users_table: String,
    /// SQS queue for notifications.
    pub notification_queue_url: String,
    /// EventBridge bus name.
    pub event_bus_name: String,
    /// Records processed at once.
    pub concurrency: NonZeroUsize,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            users_table: env.required("USERS_TABLE"),
            notification_queue_url: env.required("NOTIFICATION_QUEUE_URL"),
            event_bus_name: env.required("EVENT_BUS_NAME"),
            concurrency: env.parsed_or(
                "BATCH_CONCURRENCY",
                NonZeroUsize::new(10).unwrap_or(NonZeroUsize::MIN),
            ),
        }
    }
}

/// Scope of this function's idempotency keys.
pub const IDEMPOTENCY_SCOPE: &str = "user-processor";

/// The ports user-processor drives.
pub struct Ports<U, Q, P, C, I> {
    /// The UsersTable.
    pub users: U,
    /// The NotificationQueue.
    pub notifications: Q,
    /// The event bus.
    pub events: P,
    /// The time.
    pub clock: C,
    /// The idempotency guard.
    pub idempotency: Idempotency<I>,
}

/// The user-processor use case.
pub struct UserProcessor<U, Q, P, C, I> {
    ports: Ports<U, Q, P, C, I>,
    batch: BatchProcessor,
}

impl<U, Q, P, C, I> UserProcessor<U, Q, P, C, I>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
    I: IdempotencyStore,
{
    /// Wires the use case to its ports.
    pub fn new(ports: Ports<U, Q, P, C, I>, batch: BatchProcessor) -> Self {
        Self { ports, batch }
    }

    /// Handles one SQS event; failed records are listed in the response.
    /// `deadline_ms` is the invocation's deadline (Lambda context).
    pub async fn handle(
        &self,
        event: SqsEvent,
        deadline_ms: u64,
    ) -> Result<SqsBatchResponse, BatchError> {
        self.batch
            .process_batch(event, |records| self.process_all(records, deadline_ms))
            .await
    }

    /// Handles records in four stages, each one round trip for all records
    /// at once: take the idempotency locks; store the users; enqueue every
    /// notification in one `SendMessageBatch` while publishing every event
    /// in one `PutEvents`; complete the locks in one batch write. A record
    /// that fails at any stage fails alone (its lock is released); a batch
    /// API's partial failure fails exactly the records it names.
    pub async fn process_all(
        &self,
        records: Vec<SqsMessage>,
        deadline_ms: u64,
    ) -> Vec<Result<(), Error>> {
        let window = window(&self.ports.clock, deadline_ms);
        let mut results: Vec<Option<Result<(), Error>>> = records.iter().map(|_| None).collect();

        // Each record's log lines carry its message id as correlation id.
        let spans: Vec<tracing::Span> = records
            .iter()
            .map(|r| {
                tracing::info_span!("record", message_id = r.message_id.as_deref().unwrap_or(""))
            })
            .collect();

        // 1. Parse and lock.
        let begun = join_all(
            records
                .iter()
                .zip(&spans)
                .map(|(r, span)| self.begin(r, window).instrument(span.clone())),
        )
        .await;
        let mut locked = Vec::new();
        for (i, begun) in begun.into_iter().enumerate() {
            match begun {
                Ok(Some((lock, signup))) => locked.push((i, lock, signup)),
                Ok(None) => results[i] = Some(Ok(())),
                Err(e) => results[i] = Some(Err(e)),
            }
        }

        // 2. Store the users.
        let stored = join_all(locked.into_iter().map(|(i, lock, signup)| {
            let stored = self.store_user(signup).instrument(spans[i].clone());
            async move { (i, lock, stored.await) }
        }))
        .await;
        let mut ready = Vec::new();
        let mut released = Vec::new();
        for (i, lock, result) in stored {
            match result {
                Ok(user) => ready.push((i, lock, user)),
                Err(e) => {
                    results[i] = Some(Err(e));
                    released.push(lock);
                }
            }
        }

        // 3. Side effects, batched.
        let notifications: Vec<Notification> = ready
            .iter()
            .map(|(_, _, user)| {
                Notification::new(user.id.clone(), NotificationKind::SignupConfirmation)
            })
            .collect();
        let events: Vec<UserCreated> = ready
            .iter()
            .map(|(_, _, user)| UserCreated::from_user(user))
            .collect();
        let (sent, published) = join(
            self.ports.notifications.enqueue_all(&notifications),
            self.ports.events.publish_all(&events),
        )
        .await;

        // 4. Complete or release the locks.
        let mut completed = Vec::new();
        for (((i, lock, user), sent), published) in ready.into_iter().zip(sent).zip(published) {
            match sent.and(published) {
                Ok(()) => {
                    let _record = spans[i].enter();
                    tracing::info!(user_id = %user.id, "signup processed");
                    completed.push((lock, &()));
                    results[i] = Some(Ok(()));
                }
                Err(e) => {
                    results[i] = Some(Err(e.into()));
                    released.push(lock);
                }
            }
        }
        let idempotency = &self.ports.idempotency;
        join(
            idempotency.complete_all(completed),
            join_all(released.into_iter().map(|lock| idempotency.release(lock))),
        )
        .await;
        results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
    }

    /// Parses a record and takes its lock; `None` when it is a duplicate of
    /// a signup already processed.
    async fn begin(
        &self,
        record: &SqsMessage,
        window: Window,
    ) -> Result<Option<(Lock, Signup)>, Error> {
        let body = record.body.as_deref().ok_or(Error::NoBody)?;
        let signup = Signup::parse(body)?;
        let key = format!("signup.{}", signup.user_id);
        let hash = payload_hash([
            signup.user_id.as_str(),
            signup.email.as_str(),
            signup.name.as_str(),
        ]);
        match self.ports.idempotency.begin::<()>(&key, hash, window).await {
            Ok(Begin::Acquired(lock)) => Ok(Some((lock, signup))),
            Ok(Begin::Replayed(())) => {
                tracing::info!(user_id = %signup.user_id, "duplicate signup; already processed");
                Ok(None)
            }
            Err(e) => Err(Error::Idempotency(e.to_string())),
        }
    }

    /// Stores the user, or recognises the same signup stored by an earlier
    /// attempt (whose side effects may not have happened) and returns the
    /// stored user, so what follows is identical to that attempt's.
    async fn store_user(&self, signup: Signup) -> Result<User, Error> {
        let candidate = User::from_signup(signup, self.ports.clock.now());
        match self.ports.users.insert(&candidate).await? {
            Inserted::New => {
                tracing::info!(user_id = %candidate.id, "user created");
                Ok(candidate)
            }
            Inserted::Existing(stored) => {
                stored.reconcile(&candidate)?;
                tracing::info!(user_id = %stored.id, "signup already stored; completing its side effects");
                Ok(stored)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryEventBus, MemoryQueue, MemoryUserStore};
    use eventline_domain::Timestamp;
    use eventline_powertools::idempotency::MemoryStore;
    use std::sync::Arc;
    use std::time::Duration;

    struct Fixture {
        users: Arc<MemoryUserStore>,
        queue: Arc<MemoryQueue>,
        bus: Arc<MemoryEventBus>,
        records: Arc<MemoryStore>,
    }

    type Processor = UserProcessor<
        Arc<MemoryUserStore>,
        Arc<MemoryQueue>,
        Arc<MemoryEventBus>,
        FixedClock,
        Arc<MemoryStore>,
    >;

    impl Fixture {
        fn new() -> Self {
            Self {
                users: Arc::default(),
                queue: Arc::default(),
                bus: Arc::default(),
                records: Arc::default(),
            }
        }

        fn processor(&self, now: u64) -> Processor {
            UserProcessor::new(
                Ports {
                    users: self.users.clone(),
                    notifications: self.queue.clone(),
                    events: self.bus.clone(),
                    clock: FixedClock(Timestamp::from_unix_millis(now)),
                    idempotency: Idempotency::new(
                        self.records.clone(),
                        IDEMPOTENCY_SCOPE,
                        Duration::from_secs(3600),
                    ),
                },
                BatchProcessor::new().with_concurrency(crate::DEFAULT_CONCURRENCY),
            )
        }

        async fn handle(
            &self,
            now: u64,
            records: Vec<SqsMessage>,
        ) -> Result<SqsBatchResponse, BatchError> {
            self.processor(now)
                .handle(event(records), now + 3_000)
                .await
        }
    }

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.to_owned());
        r.body = Some(body.to_owned());
        r
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn signup(id: &str, email: &str) -> String {
        serde_json::json!({"user_id": id, "email": email, "name": "Ada"}).to_string()
    }

    fn failures(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn good_bad_good_reports_exactly_the_bad_record() {
        let f = Fixture::new();
        let response = f
            .handle(
                1,
                vec![
                    record("m1", &signup("u1", "a@b.io")),
                    record("m2", r#"{"user_id":"u2","email":"nope","name":"Bob"}"#),
                    record("m3", &signup("u3", "c@d.io")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m2"]);
        let ids: Vec<_> = f.users.users().iter().map(|u| u.id.to_string()).collect();
        assert_eq!(ids, ["u1", "u3"]);
        let mut queued: Vec<_> = f
            .queue
            .sent()
            .iter()
            .map(|n| n.notification_id.clone())
            .collect();
        queued.sort();
        assert_eq!(queued, ["signup_confirmation.u1", "signup_confirmation.u3"]);
        assert_eq!(f.bus.published().len(), 2);
    }

    #[tokio::test]
    async fn unparsable_and_empty_records_fail_alone() {
        let f = Fixture::new();
        let mut empty = record("m3", "");
        empty.body = None;
        let response = f
            .handle(
                1,
                vec![
                    record("m1", "{not json"),
                    record("m2", &signup("u2", "a@b.io")),
                    empty,
                ],
            )
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m1", "m3"]);
        assert_eq!(f.users.users().len(), 1);
    }

    #[tokio::test]
    async fn duplicate_signup_as_a_new_message_replays_without_side_effects() {
        let f = Fixture::new();
        f.handle(1, vec![record("m1", &signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let response = f
            .handle(99, vec![record("m1-again", &signup("u1", " a@B.io"))])
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(f.users.writes(), 1);
        assert_eq!(
            f.users.users()[0].created_at,
            Timestamp::from_unix_millis(1)
        );
        assert_eq!(
            f.queue.sent().len(),
            1,
            "the duplicate sends no second notification"
        );
        assert_eq!(f.bus.published().len(), 1, "and publishes no second event");
    }

    #[tokio::test]
    async fn concurrent_duplicates_in_one_batch_run_once_and_the_other_is_retried() {
        let f = Fixture::new();
        let response = f
            .handle(
                1,
                vec![
                    record("m1", &signup("u1", "a@b.io")),
                    record("m2", &signup("u1", "a@b.io")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            failures(&response),
            ["m2"],
            "the in-progress duplicate fails, to be retried"
        );
        assert_eq!(
            (
                f.users.writes(),
                f.queue.sent().len(),
                f.bus.published().len()
            ),
            (1, 1, 1)
        );
        let retry = f
            .handle(5_000, vec![record("m2", &signup("u1", "a@b.io"))])
            .await
            .unwrap();
        assert!(retry.batch_item_failures.is_empty(), "the retry replays");
        assert_eq!(
            (
                f.users.writes(),
                f.queue.sent().len(),
                f.bus.published().len()
            ),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn different_signup_for_a_taken_id_fails_and_changes_nothing() {
        let f = Fixture::new();
        f.handle(1, vec![record("m1", &signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let err = f
            .handle(2, vec![record("m2", &signup("u1", "mallory@evil.io"))])
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("already processed with a different payload"),
            "{err}"
        );
        assert!(!err.to_string().contains("mallory"), "{err}");
        assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
        assert_eq!(f.queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn conflict_is_caught_by_the_store_when_idempotency_records_have_expired() {
        let f = Fixture::new();
        f.handle(1, vec![record("m1", &signup("u1", "a@b.io"))])
            .await
            .unwrap();
        let much_later = 1 + 3_601_000;
        let err = f
            .handle(
                much_later,
                vec![record("m2", &signup("u1", "mallory@evil.io"))],
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("user_id: already taken by a different signup"),
            "{err}"
        );
        assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
    }

    #[tokio::test]
    async fn crash_after_the_user_write_is_healed_by_the_retry() {
        let f = Fixture::new();
        f.queue.faults.fail("u1", 1);
        let first = f
            .handle(
                1,
                vec![
                    record("m1", &signup("u1", "a@b.io")),
                    record("m2", &signup("u2", "b@b.io")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            failures(&first),
            ["m1"],
            "the batch send failed for u1's entry only"
        );
        assert_eq!(
            f.users.users().len(),
            2,
            "the user write happened before the failure"
        );
        assert_eq!(
            f.records.get("user-processor#signup.u1"),
            None,
            "u1's lock was released"
        );

        let retry = f
            .handle(2, vec![record("m1", &signup("u1", "a@b.io"))])
            .await
            .unwrap();
        assert!(retry.batch_item_failures.is_empty());
        assert_eq!(f.users.writes(), 2, "no second write for u1");
        let queued: Vec<_> = f
            .queue
            .sent()
            .iter()
            .map(|n| n.user_id.to_string())
            .collect();
        assert_eq!(queued, ["u2", "u1"]);
        // The event went out in the failed attempt (publish ran beside the
        // send) and again on the retry: identical, so consumers dedupe it.
        let u1_events: Vec<_> = f
            .bus
            .published()
            .into_iter()
            .filter(|e| e.user_id.as_str() == "u1")
            .collect();
        assert_eq!(u1_events.len(), 2);
        assert_eq!(u1_events[0], u1_events[1]);
        assert_eq!(
            f.records.get("user-processor#signup.u1").map(|r| r.status),
            Some(eventline_powertools::idempotency::Status::Completed)
        );
    }

    #[test]
    fn config_names_every_missing_variable() {
        let mut env = Env::from_map([("USERS_TABLE", "t"), ("BATCH_CONCURRENCY", "0")]);
        Config::from_env(&mut env);
        assert_eq!(
            env.finish().unwrap_err().to_string(),
            "missing environment variables: NOTIFICATION_QUEUE_URL, EVENT_BUS_NAME; \
             invalid environment variables: BATCH_CONCURRENCY: number would be zero for non-zero type"
        );
    }
}
