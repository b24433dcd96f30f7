//! user-processor: SignupQueue → UsersTable, NotificationQueue, EventBridge.
//!
//! For each SQS record: parse and validate the signup, store the user with a
//! create-if-absent write, enqueue a `signup_confirmation` notification and
//! publish `User Created`. Each record succeeds or fails alone.
//!
//! Retries are safe. A re-delivered signup finds its user stored, is
//! recognised as the same signup ([`User::reconcile`]) and re-sends the
//! notification and event *with the stored user's data*, so both are
//! identical to the first attempt's and carry the same deterministic ids
//! (consumers dedupe on them). This is also how a crash between the user
//! write and the notification heals: the retry completes the missing steps
//! without a second user write. A different signup for a taken id fails.

use crate::ports::{Clock, EventPublisher, Inserted, NotificationQueue, UserStore};
use crate::Error;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use eventline_domain::{Notification, NotificationKind, Signup, User, UserCreated};
use eventline_powertools::batch::{BatchError, BatchProcessor};
use eventline_powertools::env::Env;
use std::num::NonZeroUsize;

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

/// The user-processor use case.
pub struct UserProcessor<U, Q, P, C> {
    users: U,
    notifications: Q,
    events: P,
    clock: C,
    batch: BatchProcessor,
}

impl<U, Q, P, C> UserProcessor<U, Q, P, C>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
{
    /// Wires the use case to its ports.
    pub fn new(users: U, notifications: Q, events: P, clock: C, batch: BatchProcessor) -> Self {
        Self {
            users,
            notifications,
            events,
            clock,
            batch,
        }
    }

    /// Handles one SQS event; failed records are listed in the response.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, BatchError> {
        self.batch
            .process(event, |record| self.process(record))
            .await
    }

    /// Handles one record.
    pub async fn process(&self, record: SqsMessage) -> Result<(), Error> {
        let body = record.body.as_deref().ok_or(Error::NoBody)?;
        let candidate = User::from_signup(Signup::parse(body)?, self.clock.now());
        let user = match self.users.insert(&candidate).await? {
            Inserted::New => {
                tracing::info!(user_id = %candidate.id, "user created");
                candidate
            }
            Inserted::Existing(stored) => {
                stored.reconcile(&candidate)?;
                tracing::info!(user_id = %stored.id, "signup already stored; completing its side effects");
                stored
            }
        };
        let notification = Notification::new(user.id.clone(), NotificationKind::SignupConfirmation);
        self.notifications.enqueue(&notification).await?;
        self.events
            .publish_user_created(&UserCreated::from_user(&user))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{FixedClock, MemoryEventBus, MemoryQueue, MemoryUserStore};
    use eventline_domain::Timestamp;
    use std::sync::Arc;

    struct Fixture {
        users: Arc<MemoryUserStore>,
        queue: Arc<MemoryQueue>,
        bus: Arc<MemoryEventBus>,
    }

    type Processor =
        UserProcessor<Arc<MemoryUserStore>, Arc<MemoryQueue>, Arc<MemoryEventBus>, FixedClock>;

    impl Fixture {
        fn new() -> Self {
            Self {
                users: Arc::default(),
                queue: Arc::default(),
                bus: Arc::default(),
            }
        }

        fn processor(&self, now: u64) -> Processor {
            UserProcessor::new(
                self.users.clone(),
                self.queue.clone(),
                self.bus.clone(),
                FixedClock(Timestamp::from_unix_millis(now)),
                BatchProcessor::new(),
            )
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
            .processor(1)
            .handle(event(vec![
                record("m1", &signup("u1", "a@b.io")),
                record("m2", r#"{"user_id":"u2","email":"nope","name":"Bob"}"#),
                record("m3", &signup("u3", "c@d.io")),
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m2"]);
        let ids: Vec<_> = f.users.users().iter().map(|u| u.id.to_string()).collect();
        assert_eq!(ids, ["u1", "u3"]);
        let queued: Vec<_> = f
            .queue
            .sent()
            .iter()
            .map(|n| n.notification_id.clone())
            .collect();
        assert_eq!(queued.len(), 2);
        assert!(queued.contains(&"signup_confirmation.u1".to_owned()));
        assert!(queued.contains(&"signup_confirmation.u3".to_owned()));
        assert_eq!(f.bus.published().len(), 2);
    }

    #[tokio::test]
    async fn unparsable_and_empty_records_fail_alone() {
        let f = Fixture::new();
        let mut empty = record("m3", "");
        empty.body = None;
        let response = f
            .processor(1)
            .handle(event(vec![
                record("m1", "{not json"),
                record("m2", &signup("u2", "a@b.io")),
                empty,
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m1", "m3"]);
        assert_eq!(f.users.users().len(), 1);
    }

    #[tokio::test]
    async fn redelivered_signup_is_not_an_error_and_keeps_the_first_state() {
        let f = Fixture::new();
        f.processor(1)
            .handle(event(vec![record("m1", &signup("u1", "a@b.io"))]))
            .await
            .unwrap();
        let response = f
            .processor(99)
            .handle(event(vec![record("m1-again", &signup("u1", "a@b.io"))]))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(f.users.writes(), 1);
        assert_eq!(
            f.users.users()[0].created_at,
            Timestamp::from_unix_millis(1)
        );
        let published = f.bus.published();
        assert_eq!(published.len(), 2);
        assert_eq!(
            published[0], published[1],
            "a replay publishes the identical event"
        );
        let sent = f.queue.sent();
        assert_eq!(sent[0].notification_id, sent[1].notification_id);
    }

    #[tokio::test]
    async fn different_signup_for_a_taken_id_fails_and_changes_nothing() {
        let f = Fixture::new();
        f.processor(1)
            .handle(event(vec![record("m1", &signup("u1", "a@b.io"))]))
            .await
            .unwrap();
        let err = f
            .processor(2)
            .handle(event(vec![record("m2", &signup("u1", "mallory@evil.io"))]))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("user_id: already taken by a different signup"),
            "{err}"
        );
        assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
        assert_eq!(f.queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn crash_after_the_user_write_is_healed_by_the_retry() {
        let f = Fixture::new();
        f.queue.faults.fail("u1", 1);
        let first = f
            .processor(1)
            .handle(event(vec![
                record("m1", &signup("u1", "a@b.io")),
                record("m2", &signup("u2", "b@b.io")),
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&first), ["m1"]);
        assert_eq!(
            f.users.users().len(),
            2,
            "the user write happened before the failure"
        );
        assert!(f.bus.published().iter().all(|e| e.user_id.as_str() == "u2"));

        let retry = f
            .processor(2)
            .handle(event(vec![record("m1", &signup("u1", "a@b.io"))]))
            .await
            .unwrap();
        assert!(retry.batch_item_failures.is_empty());
        assert_eq!(f.users.writes(), 2, "no second write for u1");
        assert_eq!(f.queue.sent().len(), 2);
        assert_eq!(f.bus.published().len(), 2);
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
