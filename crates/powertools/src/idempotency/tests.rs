use super::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const HOUR: Duration = Duration::from_secs(3600);

fn at(now_ms: u64) -> Window {
    Window {
        now_ms,
        deadline_ms: now_ms + 3_000,
    }
}

fn soon() -> crate::deadline::Deadline {
    crate::deadline::Deadline::after(Duration::from_secs(3))
}

fn guard() -> (Arc<MemoryStore>, Idempotency<Arc<MemoryStore>>) {
    let store = Arc::new(MemoryStore::default());
    (store.clone(), Idempotency::new(store, "fn", HOUR))
}

async fn count(runs: &AtomicU32) -> Result<u32, String> {
    Ok(runs.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test]
async fn second_call_replays_the_stored_result_without_running() {
    let (store, idem) = guard();
    let runs = AtomicU32::new(0);
    let first = idem
        .once("k", payload_hash(["a"]), at(1_000), soon(), || count(&runs))
        .await
        .unwrap();
    let second = idem
        .once("k", payload_hash(["a"]), at(2_000), soon(), || count(&runs))
        .await
        .unwrap();
    assert_eq!(first, Run::Fresh(1));
    assert_eq!(second, Run::Replayed(1));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let record = store.get("fn#k").unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.expiration, 1 + 3600);
}

#[tokio::test]
async fn a_disabled_guard_runs_the_work_every_time_and_writes_no_record() {
    let store = Arc::new(MemoryStore::default());
    let idem = Idempotency::new(store.clone(), "fn", HOUR).disabled(true);
    let runs = AtomicU32::new(0);
    for now in [1_000, 2_000] {
        idem.once("k", payload_hash(["a"]), at(now), soon(), || count(&runs))
            .await
            .unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(store.get("fn#k"), None);
}

#[tokio::test]
async fn same_key_with_a_different_payload_is_an_error() {
    let (_, idem) = guard();
    let runs = AtomicU32::new(0);
    idem.once("k", payload_hash(["a"]), at(1_000), soon(), || count(&runs))
        .await
        .unwrap();
    let err = idem
        .once("k", payload_hash(["b"]), at(2_000), soon(), || count(&runs))
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdempotencyError::PayloadMismatch { .. }),
        "{err}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn in_progress_duplicate_fails_until_the_lock_lapses() {
    let (store, idem) = guard();
    // A crashed attempt left its lock, valid until its deadline (1_000 + 3_000).
    let crashed = Record {
        id: "fn#k".into(),
        status: Status::InProgress,
        expiration: 3_601,
        in_progress_expiration: 4_000,
        payload_hash: payload_hash(["a"]),
        result: None,
        attempt: "crashed".into(),
    };
    assert_eq!(
        store.acquire(&crashed, 1_000).await.unwrap(),
        Acquire::Acquired
    );
    let runs = AtomicU32::new(0);
    let err = idem
        .once("k", payload_hash(["a"]), at(3_999), soon(), || count(&runs))
        .await
        .unwrap_err();
    assert!(matches!(err, IdempotencyError::InProgress { .. }), "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let retry = idem
        .once("k", payload_hash(["a"]), at(4_001), soon(), || count(&runs))
        .await
        .unwrap();
    assert_eq!(retry, Run::Fresh(1));
}

#[tokio::test]
async fn failed_work_releases_the_lock_for_an_immediate_retry() {
    let (store, idem) = guard();
    let err = idem
        .once("k", payload_hash(["a"]), at(1_000), soon(), || async {
            Err::<u32, _>("boom")
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "boom");
    assert_eq!(store.get("fn#k"), None);
    let runs = AtomicU32::new(0);
    assert_eq!(
        idem.once("k", payload_hash(["a"]), at(1_001), soon(), || count(&runs))
            .await
            .unwrap(),
        Run::Fresh(1)
    );
}

#[tokio::test]
async fn completed_records_expire() {
    let (_, idem) = guard();
    let runs = AtomicU32::new(0);
    idem.once("k", payload_hash(["a"]), at(0), soon(), || count(&runs))
        .await
        .unwrap();
    let later = idem
        .once("k", payload_hash(["a"]), at(3_601_000), soon(), || {
            count(&runs)
        })
        .await
        .unwrap();
    assert_eq!(later, Run::Fresh(2));
}

#[tokio::test]
async fn concurrent_duplicates_run_the_work_once() {
    let (_, idem) = guard();
    let runs = AtomicU32::new(0);
    let attempts = (0..8).map(|_| {
        idem.once("k", payload_hash(["a"]), at(1_000), soon(), || async {
            tokio::task::yield_now().await;
            count(&runs).await
        })
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let fresh = results
        .iter()
        .filter(|r| matches!(r, Ok(Run::Fresh(_))))
        .count();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(IdempotencyError::InProgress { .. })))
        .count();
    assert_eq!((fresh, busy), (1, 7));
}

#[tokio::test]
async fn a_deadline_in_the_past_still_locks_for_the_fallback_time() {
    let (store, idem) = guard();
    let lock = match idem
        .begin::<u32>(
            "k",
            payload_hash(["a"]),
            Window {
                now_ms: 50_000,
                deadline_ms: 600_000 - 599_000,
            },
        )
        .await
        .unwrap()
    {
        Begin::Acquired(lock) => lock,
        Begin::Replayed(_) => panic!("nothing to replay"),
    };
    assert_eq!(store.get("fn#k").unwrap().in_progress_expiration, 60_000);
    let busy = idem
        .begin::<u32>("k", payload_hash(["a"]), at(59_999))
        .await
        .unwrap_err();
    assert!(matches!(busy, IdempotencyError::InProgress { .. }));
    idem.release(lock).await;
}

fn acquired(begin: Begin<u32>) -> Lock {
    match begin {
        Begin::Acquired(lock) => lock,
        Begin::Replayed(_) => panic!("nothing to replay"),
    }
}

#[tokio::test]
async fn an_in_progress_lock_is_freed_only_by_its_own_deadline_not_by_the_ttl() {
    // A 5 s time to live with a 10 s invocation: the lock's expiration must
    // still cover the deadline, and a duplicate after 5 s must not get in.
    let store = Arc::new(MemoryStore::default());
    let idem = Idempotency::new(store.clone(), "fn", Duration::from_secs(5));
    let window = Window {
        now_ms: 1_000,
        deadline_ms: 11_000,
    };
    let _live = acquired(idem.begin("k", payload_hash(["a"]), window).await.unwrap());
    assert!(store.get("fn#k").unwrap().expiration * 1000 > 11_000);
    let duplicate = idem
        .begin::<u32>("k", payload_hash(["a"]), at(7_000))
        .await
        .unwrap_err();
    assert!(matches!(duplicate, IdempotencyError::InProgress { .. }));
    let after_deadline = idem
        .begin::<u32>("k", payload_hash(["a"]), at(11_001))
        .await;
    assert!(matches!(after_deadline, Ok(Begin::Acquired(_))));
}

#[tokio::test]
async fn a_stale_attempt_can_neither_release_nor_complete_a_newer_lock() {
    let (store, idem) = guard();
    let stale = acquired(
        idem.begin("k", payload_hash(["a"]), at(1_000))
            .await
            .unwrap(),
    );
    // The stale attempt's deadline (4_000) passes; a retry takes the lock.
    let fresh = acquired(
        idem.begin("k", payload_hash(["a"]), at(5_000))
            .await
            .unwrap(),
    );
    let fresh_attempt = fresh.record().attempt.clone();
    let stale_again = acquired(
        idem.begin("other", payload_hash(["a"]), at(5_000))
            .await
            .unwrap(),
    );
    idem.release(stale).await;
    assert_eq!(
        store.get("fn#k").unwrap().attempt,
        fresh_attempt,
        "release kept the live lock"
    );
    let stale = Lock {
        record: Record {
            id: "fn#k".into(),
            attempt: "stale".into(),
            ..stale_again.record().clone()
        },
    };
    let completion = idem.complete_all(vec![(stale, &1u32)], soon()).await;
    assert_eq!(completion.lost, ["fn#k"]);
    let record = store.get("fn#k").unwrap();
    assert_eq!(
        (record.status, record.attempt),
        (Status::InProgress, fresh_attempt)
    );
    let completion = idem.complete_all(vec![(fresh, &2u32)], soon()).await;
    assert_eq!(completion.completed, 1);
    idem.release(stale_again).await;
}

#[tokio::test]
async fn a_lock_the_caller_writes_itself_behaves_as_one_begin_takes() {
    let (store, idem) = guard();
    let prepared = idem.prepare("k", payload_hash(["a"]), at(1_000));
    assert_eq!(prepared.record().id, "fn#k");
    assert_eq!(prepared.record().status, Status::InProgress);
    assert_eq!(prepared.record().in_progress_expiration, 4_000);
    // The caller's own write of the record, under the lock condition.
    assert_eq!(
        store.acquire(prepared.record(), 1_000).await.unwrap(),
        Acquire::Acquired
    );
    let lock = prepared.acquired();

    // A duplicate's write finds the live lock: in progress.
    let duplicate = idem.prepare("k", payload_hash(["a"]), at(1_500));
    let Acquire::Existing(live) = store.acquire(duplicate.record(), 1_500).await.unwrap() else {
        panic!("the lock is live");
    };
    let busy = idem.resolve::<u32>(&duplicate, live.clone()).unwrap_err();
    assert!(
        matches!(busy, IdempotencyError::InProgress { .. }),
        "{busy}"
    );
    let other = idem.prepare("k", payload_hash(["b"]), at(1_500));
    let mismatch = idem.resolve::<u32>(&other, live).unwrap_err();
    assert!(
        matches!(mismatch, IdempotencyError::PayloadMismatch { .. }),
        "{mismatch}"
    );

    // Completed by the caller's own write of `completed`: later duplicates replay.
    let completed = lock.completed(&7u32);
    assert_eq!(
        (completed.status, completed.result.as_deref()),
        (Status::Completed, Some("7"))
    );
    assert_eq!(
        store.complete_all(std::slice::from_ref(&completed)).await,
        [Ok(())]
    );
    assert_eq!(
        idem.resolve::<u32>(&duplicate, store.get("fn#k").unwrap()),
        Ok(7)
    );
    assert!(matches!(
        idem.take::<u32>(idem.prepare("k", payload_hash(["a"]), at(2_000)), 2_000)
            .await,
        Ok(Begin::Replayed(7))
    ));
}

#[tokio::test]
async fn a_panicking_work_releases_its_lock() {
    let (store, idem) = guard();
    let panicked = soon()
        .run(
            idem.once("k", payload_hash(["a"]), at(1_000), soon(), || async {
                if store.get("fn#k").is_some() {
                    panic!("boom");
                }
                Ok::<u32, String>(1)
            }),
        )
        .await;
    assert!(
        matches!(panicked, Ran::Panicked(message) if message == "boom"),
        "the panic reaches the caller"
    );
    assert_eq!(store.get("fn#k"), None, "and the lock is gone");
}

/// Fails the first `n` completions of each call with a store error.
struct Flaky {
    inner: MemoryStore,
    failures: AtomicU32,
}

impl IdempotencyStore for Flaky {
    async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
        self.inner.acquire(record, now_ms).await
    }
    async fn complete_all(&self, records: &[Record]) -> Vec<Result<(), CompleteError>> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return vec![Err(CompleteError::Store(StoreError("throttled".into())))];
        }
        self.inner.complete_all(records).await
    }
    async fn release(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.release(record).await
    }
}

#[tokio::test(start_paused = true)]
async fn unwritten_completions_are_retried_with_backoff_and_a_final_loss_is_reported() {
    let flaky = Arc::new(Flaky {
        inner: MemoryStore::default(),
        failures: AtomicU32::new(2),
    });
    let idem = Idempotency::new(flaky.clone(), "fn", HOUR);
    let lock = acquired(idem.begin("k", payload_hash(["a"]), at(0)).await.unwrap());
    let completion = idem.complete_all(vec![(lock, &1u32)], soon()).await;
    assert_eq!(
        flaky.failures.load(Ordering::SeqCst),
        0,
        "both faults fired"
    );
    assert_eq!(completion.completed, 1, "the third try wrote it");

    flaky.failures.store(1_000, Ordering::SeqCst);
    let lock = acquired(idem.begin("j", payload_hash(["a"]), at(0)).await.unwrap());
    let completion = idem.complete_all(vec![(lock, &1u32)], soon()).await;
    assert!(flaky.failures.load(Ordering::SeqCst) < 1_000);
    assert_eq!(
        completion.failed,
        ["fn#j"],
        "lost at the deadline, and said so"
    );
    assert_eq!(flaky.inner.get("fn#j").unwrap().status, Status::InProgress);
}

#[tokio::test(start_paused = true)]
async fn the_observer_is_told_of_replays_and_lost_completions_only() {
    let flaky = Arc::new(Flaky {
        inner: MemoryStore::default(),
        failures: AtomicU32::new(0),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let idem = Idempotency::new(flaky.clone(), "fn", HOUR)
        .observed_by(move |event| seen.lock().unwrap().push(event));
    let runs = AtomicU32::new(0);
    idem.once("k", payload_hash(["a"]), at(1_000), soon(), || count(&runs))
        .await
        .unwrap();
    assert!(events.lock().unwrap().is_empty(), "a fresh run is no event");
    idem.once("k", payload_hash(["a"]), at(2_000), soon(), || count(&runs))
        .await
        .unwrap();
    flaky.failures.store(1_000, Ordering::SeqCst);
    let lock = acquired(idem.begin("j", payload_hash(["a"]), at(0)).await.unwrap());
    let completion = idem.complete_all(vec![(lock, &1u32)], soon()).await;
    assert!(
        flaky.failures.load(Ordering::SeqCst) < 1_000,
        "the fault fired"
    );
    assert_eq!(completion.failed, ["fn#j"]);
    assert_eq!(
        *events.lock().unwrap(),
        [Event::Replayed, Event::CompletionsLost { records: 1 }]
    );
}

/// Item 1 of issue 16: the completion after the work must end by the
/// invocation's deadline, counted from its start, not from the end of
/// the work. A 3 s invocation whose work takes 2 s, against a store that
/// never writes completions: the guard must give up at the deadline,
/// report the loss, and return the work's result before the caller's
/// own bound (as the handlers put around it) cuts everything off.
#[tokio::test(start_paused = true)]
async fn a_completion_after_slow_work_stops_at_the_invocations_deadline_and_is_counted_lost() {
    let flaky = Arc::new(Flaky {
        inner: MemoryStore::default(),
        failures: AtomicU32::new(1_000),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let idem = Idempotency::new(flaky.clone(), "fn", HOUR)
        .observed_by(move |event| seen.lock().unwrap().push(event));
    let window = at(0);
    let deadline =
        crate::deadline::Deadline::for_invocation(window.deadline_ms, window.now_ms, FALLBACK_LOCK);
    let run = deadline
        .backstop()
        .bound(
            idem.once("k", payload_hash(["a"]), window, deadline, || async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok::<u32, String>(7)
            }),
        )
        .await;
    assert!(
        flaky.failures.load(Ordering::SeqCst) < 1_000,
        "the store refused completions"
    );
    assert_eq!(
        run.expect("answered within the invocation's time")
            .expect("the work's result"),
        Run::Fresh(7)
    );
    assert_eq!(
        *events.lock().unwrap(),
        [Event::CompletionsLost { records: 1 }]
    );
    assert_eq!(flaky.inner.get("fn#k").unwrap().status, Status::InProgress);
}

/// The first completion call is bounded too: a store that never answers
/// is cut at the deadline, and the loss is still reported.
#[tokio::test(start_paused = true)]
async fn a_completion_the_store_never_answers_is_cut_at_the_deadline_and_reported() {
    struct Hangs(MemoryStore);
    impl IdempotencyStore for Hangs {
        async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
            self.0.acquire(record, now_ms).await
        }
        async fn complete_all(&self, _: &[Record]) -> Vec<Result<(), CompleteError>> {
            std::future::pending().await
        }
        async fn release(&self, record: &Record) -> Result<(), StoreError> {
            self.0.release(record).await
        }
    }
    let idem = Idempotency::new(Hangs(MemoryStore::default()), "fn", HOUR);
    let lock = acquired(idem.begin("k", payload_hash(["a"]), at(0)).await.unwrap());
    let deadline = soon();
    let completion = deadline
        .backstop()
        .bound(idem.complete_all(vec![(lock, &1u32)], deadline))
        .await
        .expect("complete_all answers by its deadline");
    assert_eq!(completion.failed, ["fn#k"]);
}

#[test]
fn a_ttl_that_cannot_cover_an_invocation_is_refused() {
    let ten = Duration::from_secs(10);
    assert!(check_ttl(Duration::from_secs(3600), ten).is_ok());
    let err = check_ttl(Duration::from_secs(5), ten).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "IDEMPOTENCY_TTL_SECONDS (5) must be greater than FUNCTION_TIMEOUT_SECONDS (10)"
        ),
        "{err}"
    );
    assert!(check_ttl(Duration::ZERO, ten).is_err());
}

#[test]
fn payload_hash_separates_parts() {
    assert_ne!(payload_hash(["ab", "c"]), payload_hash(["a", "bc"]));
    assert_eq!(payload_hash(["a"]).len(), 64);
}
