//! user-processor's behaviour, record by record and batch by batch, over
//! the in-memory adapters.

use super::*;
use crate::memory::{FixedClock, MemoryDeadLetters, MemoryEventBus, MemoryQueue, MemoryUserStore};
use crate::PortError;
use eventline_domain::Timestamp;
use eventline_domain::{Region, Signup};
use eventline_powertools::env::Env;
use eventline_powertools::item_lock::{Claim, Finish};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The in-memory ports a test inspects.
struct Fixture {
    users: Arc<MemoryUserStore>,
    queue: Arc<MemoryQueue>,
    bus: Arc<MemoryEventBus>,
}

/// The use case on the fixture's queue and clock, with these users and events.
type ProcessorOn<U, P = Arc<MemoryEventBus>> = UserProcessor<U, Arc<MemoryQueue>, P, FixedClock>;

type Processor = ProcessorOn<Arc<MemoryUserStore>>;

impl Fixture {
    fn new() -> Self {
        Self {
            users: Arc::default(),
            queue: Arc::default(),
            bus: Arc::default(),
        }
    }

    /// The fixture's queue and clock at `now`, with `users` and `events`.
    fn ports<U, P>(
        &self,
        users: U,
        events: P,
        now: u64,
    ) -> Ports<U, Arc<MemoryQueue>, P, FixedClock> {
        Ports {
            users,
            notifications: self.queue.clone(),
            events,
            clock: FixedClock(Timestamp::from_unix_millis(now)),
        }
    }

    fn processor(&self, now: u64) -> Processor {
        self.processor_on(self.users.clone(), BatchProcessor::new(), now)
    }

    fn processor_on<U: UserStore>(
        &self,
        users: U,
        batch: BatchProcessor,
        now: u64,
    ) -> ProcessorOn<U> {
        UserProcessor::new(
            self.ports(users, self.bus.clone(), now),
            batch.with_concurrency(crate::DEFAULT_CONCURRENCY),
            Duration::from_secs(3),
        )
    }

    async fn handle(&self, now: u64, records: Vec<Message>) -> Result<BatchReport, BatchError> {
        self.processor(now).handle(records, now + 3_000).await
    }

    /// The use case with a dead-letter queue, whose letters the test reads.
    fn with_dead_letters(&self, now: u64) -> (Arc<MemoryDeadLetters>, Processor) {
        let sink = Arc::new(MemoryDeadLetters::default());
        let processor = self.processor_on(
            self.users.clone(),
            BatchProcessor::new().with_dead_letters(sink.clone()),
            now,
        );
        (sink, processor)
    }

    /// A user stored by an earlier attempt at `at`, not announced, with a
    /// lock that lapsed long ago (or none).
    fn stored_unannounced(&self, id: &str, email: &str, at: u64, lock: Option<u64>) -> User {
        let user = User::from_signup(
            Signup::parse(&signup(id, email)).unwrap(),
            Timestamp::from_unix_millis(at),
        );
        let lock = lock.map(|until_ms| ItemLock {
            attempt: "an-earlier-attempt".into(),
            until_ms,
        });
        self.users.seed(user.clone(), lock);
        user
    }

    fn effects(&self) -> (usize, usize) {
        (self.queue.sent().len(), self.bus.published().len())
    }
}

fn signup(id: &str, email: &str) -> String {
    serde_json::json!({"user_id": id, "email": email, "name": "Ada"}).to_string()
}

fn codes(sink: &MemoryDeadLetters) -> Vec<(String, &'static str)> {
    sink.letters()
        .iter()
        .map(|l| (l.source_message_id.clone(), l.reason.code))
        .collect()
}

/// Users over a memory store that note every call, and can hang the
/// create of one user, or resend every conditional write as the SDK does
/// when the first answer is lost (the resend's condition then fails on the
/// item the first one wrote).
#[derive(Default)]
struct TestUsers {
    inner: Arc<MemoryUserStore>,
    calls: Mutex<Vec<&'static str>>,
    hang_for: Option<&'static str>,
    resend: bool,
    faulted: AtomicUsize,
}

impl TestUsers {
    fn over(inner: &Arc<MemoryUserStore>) -> Self {
        Self {
            inner: inner.clone(),
            ..Self::default()
        }
    }
    fn count(&self, kind: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|k| **k == kind)
            .count()
    }
    fn note(&self, kind: &'static str) {
        self.calls.lock().unwrap().push(kind);
    }
}

impl UserStore for TestUsers {
    async fn create(&self, user: &User, lock: &ItemLock) -> Result<Claim<User>, PortError> {
        self.note("create");
        if self.hang_for == Some(user.id.as_str()) {
            self.faulted.fetch_add(1, SeqCst);
            return std::future::pending().await;
        }
        if self.resend {
            self.inner.create(user, lock).await?;
            self.faulted.fetch_add(1, SeqCst);
        }
        self.inner.create(user, lock).await
    }
    async fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        self.note("take_over");
        self.inner.take_over(id, lock, now_ms).await
    }
    async fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        self.note("announce");
        if self.resend {
            self.inner.announce(id, lock, at).await?;
            self.faulted.fetch_add(1, SeqCst);
        }
        self.inner.announce(id, lock, at).await
    }
    async fn release(&self, id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        self.note("release");
        self.inner.release(id, lock).await
    }
    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.inner.get(id).await
    }
}

#[tokio::test]
async fn good_bad_good_reports_exactly_the_bad_record() {
    let f = Fixture::new();
    let response = f
        .handle(
            1,
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", r#"{"user_id":"u2","email":"nope","name":"Bob"}"#),
                Message::new("m3", signup("u3", "c@d.io")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["m2"]);
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
    let mut empty = Message::new("m3", "");
    empty.body = None;
    let response = f
        .handle(
            1,
            vec![
                Message::new("m1", "{not json"),
                Message::new("m2", signup("u2", "a@b.io")),
                empty,
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["m1", "m3"]);
    assert_eq!(f.users.users().len(), 1);
}

#[tokio::test]
async fn a_batch_of_new_signups_writes_each_user_once_before_its_effects_and_once_after() {
    let f = Fixture::new();
    let users = Arc::new(TestUsers::over(&f.users));
    let response = f
        .processor_on(users.clone(), BatchProcessor::new(), 1)
        .handle(
            (0..10)
                .map(|i| Message::new(format!("m{i}"), signup(&format!("u{i}"), "a@b.io")))
                .collect(),
            3_001,
        )
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
    assert_eq!(
        (users.count("create"), users.count("announce")),
        (10, 10),
        "one conditional write per user before, one after"
    );
    assert_eq!((users.count("take_over"), users.count("release")), (0, 0));
    assert_eq!(f.effects(), (10, 10));
    assert!(users.inner.users().iter().all(User::is_announced));
}

#[tokio::test]
async fn duplicate_signup_as_a_new_message_replays_without_side_effects() {
    let f = Fixture::new();
    f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
        .await
        .unwrap();
    let response = f
        .handle(99, vec![Message::new("m1-again", signup("u1", " a@B.io"))])
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
    assert_eq!(f.users.writes(), 1);
    assert_eq!(
        f.users.users()[0].created_at,
        Timestamp::from_unix_millis(1)
    );
    assert_eq!(f.effects(), (1, 1), "the duplicate announces nothing again");
}

#[tokio::test]
async fn a_late_duplicate_of_an_announced_user_announces_nothing_again() {
    let f = Fixture::new();
    f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
        .await
        .unwrap();
    // Days later the message is redriven from the DLQ: no replay window to
    // expire, the fact lives on the user.
    let days_later = 4 * 86_400_000;
    let response = f
        .handle(
            days_later,
            vec![Message::new("m1-redriven", signup("u1", "a@b.io"))],
        )
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
    assert_eq!(f.effects(), (1, 1));
}

#[tokio::test]
async fn the_same_signup_twice_in_one_batch_runs_once_and_both_succeed() {
    let f = Fixture::new();
    let response = f
        .handle(
            1,
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u1", "a@b.io")),
            ],
        )
        .await
        .unwrap();
    assert!(
        response.unhandled().is_empty(),
        "the copy is settled by what m1 wrote"
    );
    assert_eq!((f.users.writes(), f.effects()), (1, (1, 1)));
}

#[tokio::test]
async fn a_copy_whose_leader_failed_is_retried_not_settled() {
    let f = Fixture::new();
    f.queue.faults.fail("u1", 1);
    let response = f
        .handle(
            1,
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u1", "a@b.io")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["m1", "m2"], "m2 waits for a retry");
    let retry = f
        .handle(2, vec![Message::new("m2", signup("u1", "a@b.io"))])
        .await
        .unwrap();
    assert!(retry.unhandled().is_empty(), "the retry takes its own path");
    assert!(f.users.users()[0].is_announced());
}

/// The review's case: a later copy was settled against what the first copy
/// *tried* to write. u1 is stored by an attempt that died before announcing
/// it (its lock lapsed); A is another signup for u1, B exactly the stored one.
#[tokio::test]
async fn a_later_copy_is_settled_only_by_what_was_written() {
    let f = Fixture::new();
    f.stored_unannounced("u1", "a@b.io", 1, Some(500));
    let (sink, processor) = f.with_dead_letters(10_000);
    let response = processor
        .handle(
            vec![
                Message::new("A", signup("u1", "mallory@evil.io")),
                Message::new("B", signup("u1", "a@b.io")),
            ],
            13_000,
        )
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
    assert_eq!(codes(&sink), [("A".to_owned(), "UserIdConflict")]);
    assert_eq!(f.effects(), (1, 1), "B announces u1, once");
    let user = &f.users.users()[0];
    assert!(user.is_announced());
    assert_eq!(user.email.as_str(), "a@b.io");
    assert_eq!(
        f.bus.published()[0].created_at,
        Timestamp::from_unix_millis(1)
    );
}

#[tokio::test]
async fn a_transient_failure_of_the_first_copy_never_dead_letters_a_differing_one() {
    let f = Fixture::new();
    f.stored_unannounced("u1", "a@b.io", 1, None);
    f.users.faults.fail("u1", 1);
    let (sink, processor) = f.with_dead_letters(10_000);
    let response = processor
        .handle(
            vec![
                Message::new("A", signup("u1", "a@b.io")),
                Message::new("B", signup("u1", "b@b.io")),
            ],
            13_000,
        )
        .await
        .unwrap();
    assert_eq!(
        response.unhandled(),
        ["A", "B"],
        "both retried: nothing was learnt"
    );
    assert!(sink.letters().is_empty());
}

#[tokio::test]
async fn a_different_signup_for_the_same_id_in_the_same_batch_is_rejected_without_a_write() {
    let f = Fixture::new();
    let users = Arc::new(TestUsers::over(&f.users));
    let sink = Arc::new(MemoryDeadLetters::default());
    let response = f
        .processor_on(
            users.clone(),
            BatchProcessor::new().with_dead_letters(sink.clone()),
            1,
        )
        .handle(
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u1", "mallory@evil.io")),
                Message::new("m3", signup("u1", "a@b.io")),
            ],
            3_001,
        )
        .await
        .unwrap();
    assert!(
        response.unhandled().is_empty(),
        "m3 is settled by m1's write"
    );
    assert_eq!(codes(&sink), [("m2".to_owned(), "UserIdConflict")]);
    assert_eq!(users.count("create"), 1, "one write for the user id");
    assert_eq!(users.inner.users()[0].email.as_str(), "a@b.io");
}

#[tokio::test]
async fn a_different_signup_for_a_taken_id_of_any_age_fails_and_changes_nothing() {
    let f = Fixture::new();
    f.handle(1, vec![Message::new("m1", signup("u1", "a@b.io"))])
        .await
        .unwrap();
    for now in [2, 1 + 3_601_000] {
        let err = f
            .handle(
                now,
                vec![Message::new("m2", signup("u1", "mallory@evil.io"))],
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("user_id: already taken by a different signup"),
            "{err}"
        );
        assert!(!err.to_string().contains("mallory"), "{err}");
    }
    assert_eq!(f.users.users()[0].email.as_str(), "a@b.io");
    assert_eq!(f.effects(), (1, 1));
}

#[tokio::test]
async fn records_whose_user_was_there_take_their_own_path_and_the_rest_is_written() {
    let f = Fixture::new();
    // u1: another invocation holds its lock right now.
    f.stored_unannounced("u1", "a@b.io", 1, Some(10_000));
    // u2: stored by an attempt that died before announcing it (an item
    // written before locks lived on users: no lock at all).
    f.stored_unannounced("u2", "b@b.io", 1, None);
    // u3: announced long ago.
    f.handle(1, vec![Message::new("m0", signup("u3", "c@d.io"))])
        .await
        .unwrap();
    let before = f.effects();

    let users = Arc::new(TestUsers::over(&f.users));
    let response = f
        .processor_on(users.clone(), BatchProcessor::new(), 2)
        .handle(
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u2", "b@b.io")),
                Message::new("m3", signup("u3", "c@d.io")),
                Message::new("m4", signup("u4", "d@d.io")),
                Message::new("m5", signup("u5", "e@d.io")),
            ],
            3_002,
        )
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["m1"], "u1 is in progress elsewhere");
    assert_eq!(users.count("create"), 5);
    assert_eq!(users.count("take_over"), 1, "u2 alone takes a detour");
    let mut announced: Vec<_> = f.queue.sent()[before.0..]
        .iter()
        .map(|n| n.user_id.to_string())
        .collect();
    announced.sort();
    assert_eq!(announced, ["u2", "u4", "u5"]);
    assert_eq!(f.bus.published().len() - before.1, 3);
    let u2_event = f
        .bus
        .published()
        .into_iter()
        .find(|e| e.user_id.as_str() == "u2")
        .unwrap();
    assert_eq!(
        u2_event.created_at,
        Timestamp::from_unix_millis(1),
        "u2 goes on with its stored data"
    );
    let stored = users.inner.users();
    assert!(!stored[0].is_announced(), "u1 is left to its holder");
    assert!(stored[1..].iter().all(User::is_announced));
}

#[tokio::test]
async fn a_write_the_sdk_resent_is_recognised_as_our_own() {
    let f = Fixture::new();
    let users = Arc::new(TestUsers {
        resend: true,
        ..TestUsers::over(&f.users)
    });
    let response = f
        .processor_on(users.clone(), BatchProcessor::new(), 1)
        .handle(vec![Message::new("m1", signup("u1", "a@b.io"))], 3_001)
        .await
        .unwrap();
    assert_eq!(
        users.faulted.load(SeqCst),
        2,
        "the create and the announcement were resent"
    );
    assert!(
        response.unhandled().is_empty(),
        "not taken for someone else's lock"
    );
    assert_eq!(f.effects(), (1, 1));
    assert!(users.inner.users()[0].is_announced());
}

#[tokio::test]
async fn crash_after_the_user_write_is_healed_by_the_retry() {
    let f = Fixture::new();
    f.queue.faults.fail("u1", 1);
    let first = f
        .handle(
            1,
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u2", "b@b.io")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        first.unhandled(),
        ["m1"],
        "the batch send failed for u1's entry only"
    );
    assert_eq!(
        f.users.users().len(),
        2,
        "the user write happened before the failure"
    );

    // Released, so a retry need not wait for the lock to lapse.
    let retry = f
        .handle(2, vec![Message::new("m1", signup("u1", "a@b.io"))])
        .await
        .unwrap();
    assert!(retry.unhandled().is_empty());
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
    assert!(f.users.users().iter().all(User::is_announced));
}

/// A bus whose `publish_all` never answers, or answers for fewer events
/// than it was given; counts the calls it faulted.
#[derive(Default)]
struct FaultyBus {
    inner: MemoryEventBus,
    hang: AtomicBool,
    short: AtomicBool,
    faulted: AtomicUsize,
}

impl EventPublisher for FaultyBus {
    async fn publish_all(&self, events: &[UserCreated]) -> Vec<Result<(), PortError>> {
        if self.hang.load(SeqCst) {
            self.faulted.fetch_add(1, SeqCst);
            return std::future::pending().await;
        }
        let mut results = self.inner.publish_all(events).await;
        if self.short.load(SeqCst) && !results.is_empty() {
            self.faulted.fetch_add(1, SeqCst);
            results.pop();
        }
        results
    }
}

fn processor_with(
    f: &Fixture,
    bus: Arc<FaultyBus>,
    now: u64,
) -> ProcessorOn<Arc<MemoryUserStore>, Arc<FaultyBus>> {
    UserProcessor::new(
        f.ports(f.users.clone(), bus, now),
        BatchProcessor::new()
            .with_concurrency(crate::DEFAULT_CONCURRENCY)
            .on_all_failed(eventline_powertools::batch::AllFailed::Report),
        Duration::from_secs(3),
    )
}

#[tokio::test(start_paused = true)]
async fn a_publish_that_never_answers_fails_its_records_in_time_and_the_retry_completes_them() {
    let f = Fixture::new();
    let bus = Arc::new(FaultyBus::default());
    bus.hang.store(true, SeqCst);
    let started = tokio::time::Instant::now();
    let response = processor_with(&f, bus.clone(), 1)
        .handle(
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", "{not json"),
            ],
            1 + 3_000,
        )
        .await
        .unwrap();
    assert!(bus.faulted.load(SeqCst) > 0, "the call hung");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered before the deadline"
    );
    assert_eq!(
        response.unhandled(),
        ["m1", "m2"],
        "m2 has no dead-letter sink here"
    );
    assert!(!f.users.users()[0].is_announced());
    // The lock lapses at the deadline; the retry (after the visibility
    // timeout) completes the announcement.
    bus.hang.store(false, SeqCst);
    let retry = processor_with(&f, bus.clone(), 10_000)
        .handle(vec![Message::new("m1", signup("u1", "a@b.io"))], 13_000)
        .await
        .unwrap();
    assert!(retry.unhandled().is_empty());
    assert_eq!(bus.inner.published().len(), 1);
    assert!(f.users.users()[0].is_announced());
}

#[tokio::test(start_paused = true)]
async fn a_write_that_never_answers_fails_only_its_record() {
    let f = Fixture::new();
    let users = Arc::new(TestUsers {
        hang_for: Some("u2"),
        ..TestUsers::over(&f.users)
    });
    let started = tokio::time::Instant::now();
    let response = f
        .processor_on(users.clone(), BatchProcessor::new(), 1)
        .handle(
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u2", "b@b.io")),
                Message::new("m3", signup("u3", "c@d.io")),
            ],
            3_001,
        )
        .await
        .unwrap();
    assert_eq!(users.faulted.load(SeqCst), 1, "the write of u2 hung");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(response.unhandled(), ["m2"]);
    let announced: Vec<_> = f
        .users
        .users()
        .iter()
        .filter(|u| u.is_announced())
        .map(|u| u.id.to_string())
        .collect();
    assert_eq!(announced, ["u1", "u3"]);
    assert_eq!(f.effects(), (2, 2));
}

#[tokio::test]
async fn an_entry_the_batch_api_does_not_answer_for_is_failed_and_its_lock_released() {
    let f = Fixture::new();
    let bus = Arc::new(FaultyBus::default());
    bus.short.store(true, SeqCst);
    let response = processor_with(&f, bus.clone(), 1)
        .handle(
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                Message::new("m2", signup("u2", "b@b.io")),
            ],
            3_001,
        )
        .await
        .unwrap();
    assert_eq!(bus.faulted.load(SeqCst), 1);
    assert_eq!(response.unhandled(), ["m2"], "no result for u2's event");
    // Released: a retry right away takes it over instead of waiting.
    let retry = f
        .handle(2, vec![Message::new("m2", signup("u2", "b@b.io"))])
        .await
        .unwrap();
    assert!(retry.unhandled().is_empty());
    assert!(f.users.users().iter().all(User::is_announced));
}

#[tokio::test]
async fn the_seed_shape_with_id_is_accepted() {
    let f = Fixture::new();
    let seed = r#"{"id":"u1","email":"a@b.io","name":"Ada"}"#;
    let response = f.handle(1, vec![Message::new("m1", seed)]).await.unwrap();
    assert!(response.unhandled().is_empty());
    assert_eq!(f.users.users()[0].id.as_str(), "u1");
}

#[tokio::test]
async fn invalid_signups_and_conflicts_go_to_the_dead_letter_queue_at_once_with_their_reason() {
    let f = Fixture::new();
    f.handle(1, vec![Message::new("m0", signup("u1", "a@b.io"))])
        .await
        .unwrap();
    let (sink, processor) = f.with_dead_letters(2);
    let response = processor
        .handle(
            vec![
                Message::new("m1", r#"{"user_id":"u2","email":"nope","name":""}"#),
                Message::new("m2", signup("u1", "mallory@evil.io")),
                Message::new("m3", signup("u3", "c@d.io")),
            ],
            3_002,
        )
        .await
        .unwrap();
    assert!(
        response.unhandled().is_empty(),
        "handled: stored or dead-lettered"
    );
    let letters = sink.letters();
    let reasons: Vec<_> = letters
        .iter()
        .map(|l| {
            (
                l.source_message_id.as_str(),
                l.reason.code,
                l.reason.fields.clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("m1", "InvalidFields", vec!["email", "name"]),
            ("m2", "UserIdConflict", vec!["user_id"])
        ]
    );
    assert!(letters.iter().all(|l| !l.body.is_empty()));
    assert_eq!(f.users.users().len(), 2);
}

#[tokio::test]
async fn a_batch_of_only_in_progress_duplicates_is_not_an_invocation_error() {
    let f = Fixture::new();
    // Another invocation holds u1's lock right now.
    f.stored_unannounced("u1", "a@b.io", 1, Some(3_001));
    let response = f
        .handle(2, vec![Message::new("m1", signup("u1", "a@b.io"))])
        .await
        .expect("an expected retry, not an error");
    assert_eq!(response.unhandled(), ["m1"]);
    assert_eq!(f.effects(), (0, 0));
}

fn region_set(own: &str, list: &str) -> RegionSet {
    RegionSet::parse(Region::parse(own).unwrap(), list).unwrap()
}

#[tokio::test]
async fn the_event_and_the_confirmation_say_where_whose_home_and_which_signup() {
    let f = Fixture::new();
    let regions = region_set("us-east-1", "us-west-2,us-east-1,eu-west-1");
    let processor = f.processor(1).with_regions(Some(regions.clone()));
    let response = processor
        .handle(
            vec![
                Message::new("m1", signup("u1", "a@b.io")),
                // A producer that passes its own chain along.
                Message::new("m2", signup("u2", "b@b.io"))
                    .with_attribute("correlation_id", "upstream-7"),
            ],
            3_001,
        )
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
    let mut events = f.bus.published();
    events.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let stamped: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.user_id.to_string(),
                e.origin_region.as_ref().map(Region::to_string),
                e.home_region.clone(),
                e.event_key(),
                e.correlation_id.as_ref().map(CorrelationId::to_string),
            )
        })
        .collect();
    let home = |id: &str| {
        Some(
            regions
                .home_region(&eventline_domain::UserId::parse(id).unwrap())
                .clone(),
        )
    };
    assert_eq!(
        stamped,
        [
            (
                "u1".to_owned(),
                Some("us-east-1".to_owned()),
                home("u1"),
                "user-created/u1".to_owned(),
                Some("m1".to_owned())
            ),
            (
                "u2".to_owned(),
                Some("us-east-1".to_owned()),
                home("u2"),
                "user-created/u2".to_owned(),
                Some("upstream-7".to_owned())
            ),
        ]
    );
    let mut confirmations: Vec<_> = f
        .queue
        .sent()
        .into_iter()
        .map(|n| {
            (
                n.user_id.to_string(),
                n.correlation_id.map(|c| c.to_string()),
            )
        })
        .collect();
    confirmations.sort();
    assert_eq!(
        confirmations,
        [
            ("u1".to_owned(), Some("m1".to_owned())),
            ("u2".to_owned(), Some("upstream-7".to_owned()))
        ]
    );
}

#[tokio::test]
async fn a_single_region_stack_is_every_users_home_and_origin() {
    let f = Fixture::new();
    let mut env = Env::from_map([
        ("USERS_TABLE", "t"),
        ("NOTIFICATION_QUEUE_URL", "q"),
        ("EVENT_BUS_NAME", "b"),
        ("SIGNUP_DLQ_URL", "d"),
        ("AWS_REGION", "eu-west-1"),
    ]);
    let config = Config::from_env(&mut env);
    assert_eq!(env.finish(), Ok(()));
    assert_eq!(
        config.regions,
        Some(RegionSet::single(Region::parse("eu-west-1").unwrap())),
        "REGIONS defaults to this region alone"
    );
    f.processor(1)
        .with_regions(config.regions)
        .handle(
            (0..5)
                .map(|i| Message::new(format!("m{i}"), signup(&format!("u{i}"), "a@b.io")))
                .collect(),
            3_001,
        )
        .await
        .unwrap();
    let events = f.bus.published();
    assert_eq!(events.len(), 5);
    for e in events {
        assert_eq!(
            e.origin_region.as_ref().map(Region::as_str),
            Some("eu-west-1")
        );
        assert_eq!(
            e.home_region.as_ref().map(Region::as_str),
            Some("eu-west-1")
        );
    }
}

#[test]
fn the_record_span_and_the_event_agree_on_what_a_correlation_id_is() {
    let long = "x".repeat(CorrelationId::MAX_LEN);
    let too_long = "x".repeat(CorrelationId::MAX_LEN + 1);
    for candidate in [
        "m1",
        "11111111-1111-4111-8111-111111111111",
        "a:b.c_d-E9",
        long.as_str(),
        too_long.as_str(),
        "",
        "a@b.io",
        "Ada Lovelace",
        "a/b",
        "é",
    ] {
        assert_eq!(
            eventline_powertools::batch::is_correlation_id(candidate),
            CorrelationId::parse(candidate).is_ok(),
            "{candidate:?}"
        );
    }
}

#[test]
fn regions_come_from_aws_region_and_regions() {
    let read = |vars: &[(&'static str, &'static str)]| {
        let mut all = vec![
            ("USERS_TABLE", "t"),
            ("NOTIFICATION_QUEUE_URL", "q"),
            ("EVENT_BUS_NAME", "b"),
            ("SIGNUP_DLQ_URL", "d"),
        ];
        all.extend_from_slice(vars);
        let mut env = Env::from_map(all);
        let config = Config::from_env(&mut env);
        env.finish()
            .map(|()| config.regions)
            .map_err(|e| e.to_string())
    };
    assert_eq!(read(&[]), Ok(None), "outside Lambda: no region to stamp");
    assert_eq!(
        read(&[
            ("AWS_REGION", "us-west-2"),
            ("REGIONS", "eu-west-1,us-west-2,,us-east-1")
        ]),
        Ok(Some(region_set(
            "us-west-2",
            "us-east-1,eu-west-1,us-west-2"
        )))
    );
    assert_eq!(
        read(&[("REGIONS", "us-west-2,eu-west-1")]),
        Err("missing environment variables: AWS_REGION".into())
    );
    assert_eq!(
        read(&[("AWS_REGION", "ap-south-1"), ("REGIONS", "us-west-2,eu-west-1")]),
        Err("invalid environment variables: REGIONS: does not list this function's own region ap-south-1".into())
    );
    assert_eq!(
        read(&[("AWS_REGION", "us-west-2"), ("REGIONS", "us-west-2,eu-west")]),
        Err(r#"invalid environment variables: REGIONS: "eu-west" is not a region name (like us-west-2)"#.into())
    );
    assert_eq!(
        read(&[("AWS_REGION", "local")]),
        Err(r#"invalid environment variables: AWS_REGION: "local" is not a region name (like us-west-2)"#.into())
    );
}

#[test]
fn config_names_every_missing_variable() {
    let mut env = Env::from_map([("USERS_TABLE", "t"), ("BATCH_CONCURRENCY", "0")]);
    Config::from_env(&mut env);
    assert_eq!(
        env.finish().unwrap_err().to_string(),
        "missing environment variables: NOTIFICATION_QUEUE_URL, EVENT_BUS_NAME, SIGNUP_DLQ_URL; \
         invalid environment variables: BATCH_CONCURRENCY: number would be zero for non-zero type"
    );
}
