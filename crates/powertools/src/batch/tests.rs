use super::*;
use futures::future::BoxFuture;
use std::sync::Mutex;

fn record(id: &str, body: &str, group: Option<&str>) -> Message {
    Message {
        group: group.map(str::to_owned),
        ..Message::new(id, body)
    }
}

fn soon() -> Deadline {
    Deadline::after(std::time::Duration::from_secs(30))
}

#[test]
fn a_message_correlates_by_its_attribute_or_else_by_its_own_id() {
    assert_eq!(Message::new("m-2", "x").correlation_id(), "m-2");
    let caused = Message::new("m-2", "x").with_attribute(CORRELATION_ATTRIBUTE, "m-1");
    assert_eq!(caused.correlation_id(), "m-1");
    let long = "x".repeat(129);
    for not_an_id in ["", "ada@example.com", "Ada Lovelace", long.as_str()] {
        let message = Message::new("m-2", "x").with_attribute(CORRELATION_ATTRIBUTE, not_an_id);
        assert_eq!(
            message.correlation_id(),
            "m-2",
            "{not_an_id:?} is not logged"
        );
    }
}

#[tokio::test]
async fn every_line_of_a_record_names_its_message_and_its_correlation_id() {
    use crate::logging::{self, Capture, LogConfig};
    let logs = Capture::new();
    let _guard = tracing::subscriber::set_default(logging::subscriber(
        &LogConfig::json("svc"),
        logs.clone(),
    ));
    let messages = vec![
        Message::new("m-1", "ok"),
        Message::new("m-2", "bad").with_attribute(CORRELATION_ATTRIBUTE, "m-1"),
    ];
    BatchProcessor::new()
        .process(messages, soon(), |m| async move {
            tracing::info!("working");
            handler(m).await
        })
        .await
        .unwrap();
    let lines: Vec<_> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l.get("message_id").is_some())
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            (text("message_id"), text("correlation_id"), text("message"))
        })
        .collect();
    let line = |id: &str, correlation: &str, message: &str| {
        (id.to_owned(), correlation.to_owned(), message.to_owned())
    };
    assert_eq!(
        lines,
        [
            line("m-1", "m-1", "working"),
            line("m-1", "m-1", "record settled"),
            line("m-2", "m-1", "working"),
            line("m-2", "m-1", "record failed"),
            line("m-2", "m-1", "record settled"),
        ]
    );
}

/// Fails bodies starting with "bad", panics on "panic".
async fn handler(record: Message) -> Result<(), String> {
    let body = record.body.unwrap_or_default();
    if body.starts_with("panic") {
        panic!("boom");
    }
    if body.starts_with("bad") {
        return Err("bad body".to_owned());
    }
    Ok(())
}

#[tokio::test]
async fn bad_record_fails_alone() {
    let e = vec![
        record("1", "ok", None),
        record("2", "bad", None),
        record("3", "ok", None),
    ];
    let response = BatchProcessor::new()
        .process(e, soon(), handler)
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["2"]);
}

#[tokio::test]
async fn panicking_record_fails_alone() {
    let e = vec![record("1", "panic", None), record("2", "ok", None)];
    let report = BatchProcessor::new().run(e, soon(), handler).await;
    assert_eq!(
        report.records,
        [
            (
                "1".to_owned(),
                RecordOutcome::Failed("record handler panicked".to_owned())
            ),
            ("2".to_owned(), RecordOutcome::Succeeded)
        ]
    );
}

#[tokio::test]
async fn all_good_reports_an_empty_failure_list() {
    let e = vec![record("1", "ok", None), record("2", "ok", None)];
    let response = BatchProcessor::new()
        .process(e, soon(), handler)
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
}

#[tokio::test]
async fn all_failed_errors_by_default_and_reports_on_request() {
    let e = || vec![record("1", "bad", None), record("2", "bad", None)];
    let err = BatchProcessor::new()
        .process(e(), soon(), handler)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BatchError::AllFailed {
            count: 2,
            first_error: "bad body".to_owned()
        }
    );
    let response = BatchProcessor::new()
        .on_all_failed(AllFailed::Report)
        .process(e(), soon(), handler)
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["1", "2"]);
}

#[tokio::test]
async fn batch_handler_results_map_back_to_their_records() {
    let e = vec![
        record("1", "ok", None),
        record("2", "bad", None),
        record("3", "ok", None),
    ];
    let response = BatchProcessor::new()
        .process_batch(e, soon(), |records| async move {
            records
                .iter()
                .map(|r| match r.body.as_deref() {
                    Some("bad") => Err("bad body".to_owned()),
                    _ => Ok(()),
                })
                .collect()
        })
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["2"]);
}

#[tokio::test]
async fn batch_handler_missing_results_and_panics_fail_records() {
    let e = || vec![record("1", "ok", None), record("2", "ok", None)];
    let short = BatchProcessor::new()
        .process_batch(e(), soon(), |_| async { vec![Ok::<(), String>(())] })
        .await
        .unwrap();
    assert_eq!(short.unhandled(), ["2"]);
    let fifo = || vec![record("a1", "ok", Some("A")), record("a2", "ok", Some("A"))];
    let empty = BatchProcessor::new()
        .on_all_failed(AllFailed::Report)
        .process_batch(fifo(), soon(), |_| async {
            Vec::<Result<(), String>>::new()
        })
        .await
        .unwrap();
    assert_eq!(
        empty.unhandled(),
        ["a1", "a2"],
        "FIFO: no result is a failure too"
    );
    let panicked = BatchProcessor::new()
        .on_all_failed(AllFailed::Report)
        .process_batch(e(), soon(), |_| async {
            panic!("boom");
            #[allow(unreachable_code)]
            Vec::<Result<(), String>>::new()
        })
        .await
        .unwrap();
    assert_eq!(panicked.unhandled(), ["1", "2"]);
}

#[tokio::test]
async fn batch_handler_on_fifo_keeps_group_order() {
    let e = vec![
        record("a1", "ok", Some("A")),
        record("a2", "bad", Some("A")),
        record("a3", "ok", Some("A")),
        record("b1", "ok", Some("B")),
    ];
    let calls = Mutex::new(Vec::new());
    let response = BatchProcessor::new()
        .process_batch(e, soon(), |records| {
            calls.lock().unwrap().push(records.len());
            async move {
                records
                    .iter()
                    .map(|r| {
                        if r.body.as_deref() == Some("bad") {
                            Err("bad")
                        } else {
                            Ok(())
                        }
                    })
                    .collect()
            }
        })
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["a2", "a3"]);
    assert!(
        calls.into_inner().unwrap().iter().all(|n| *n == 1),
        "one record per call on FIFO"
    );
}

#[tokio::test]
async fn empty_batch_succeeds() {
    let response = BatchProcessor::new()
        .process(vec![], soon(), handler)
        .await
        .unwrap();
    assert!(response.unhandled().is_empty());
}

#[tokio::test]
async fn fifo_failure_skips_the_rest_of_its_group_only() {
    let e = vec![
        record("a1", "ok", Some("A")),
        record("b1", "ok", Some("B")),
        record("a2", "bad", Some("A")),
        record("b2", "ok", Some("B")),
        record("a3", "ok", Some("A")),
        record("b3", "ok", Some("B")),
    ];
    let ran = Mutex::new(Vec::new());
    let report = BatchProcessor::new()
        .with_concurrency(NonZeroUsize::new(4).unwrap())
        .run(e, soon(), |r| {
            ran.lock().unwrap().push(r.id.clone());
            handler(r)
        })
        .await;
    assert_eq!(report.unhandled(), ["a2", "a3"]);
    assert_eq!(report.skipped(), 1);
    let ran = ran.into_inner().unwrap();
    assert!(
        !ran.contains(&"a3".to_owned()),
        "a3 must not run after a2 failed: {ran:?}"
    );
    let order_b: Vec<_> = ran.iter().filter(|id| id.starts_with('b')).collect();
    assert_eq!(order_b, ["b1", "b2", "b3"]);
}

#[tokio::test]
async fn standard_queue_runs_records_concurrently_up_to_the_bound() {
    let in_flight = Mutex::new((0usize, 0usize)); // (current, max)
    let e = (0..8).map(|i| record(&i.to_string(), "ok", None)).collect();
    BatchProcessor::new()
        .with_concurrency(NonZeroUsize::new(3).unwrap())
        .process(e, soon(), |_| async {
            {
                let mut g = in_flight.lock().unwrap();
                g.0 += 1;
                g.1 = g.1.max(g.0);
            }
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            in_flight.lock().unwrap().0 -= 1;
            Ok::<(), String>(())
        })
        .await
        .unwrap();
    assert_eq!(in_flight.into_inner().unwrap().1, 3);
}

/// Rejects bodies starting with "poison", defers "busy", fails "bad".
#[derive(Debug)]
enum Classified {
    Poison,
    Busy,
    Bad,
}

impl Display for Classified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl RecordError for Classified {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Poison => Disposition::Reject(Rejection {
                code: "InvalidFields",
                fields: vec!["email"],
            }),
            Self::Busy => Disposition::Expected,
            Self::Bad => Disposition::Retry,
        }
    }
}

async fn classify(record: Message) -> Result<(), Classified> {
    match record.body.as_deref() {
        Some(b) if b.starts_with("poison") => Err(Classified::Poison),
        Some(b) if b.starts_with("busy") => Err(Classified::Busy),
        Some(b) if b.starts_with("bad") => Err(Classified::Bad),
        _ => Ok(()),
    }
}

/// Keeps dead letters; refuses them while `refuse` is set.
#[derive(Default)]
struct Sink {
    letters: Mutex<Vec<DeadLetter>>,
    refuse: std::sync::atomic::AtomicBool,
}

impl DeadLetterSink for Sink {
    fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("queue unavailable".to_owned());
            }
            self.letters.lock().unwrap().push(letter.clone());
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_record_that_can_never_succeed_is_dead_lettered_with_its_reason_and_handled() {
    let sink = Arc::new(Sink::default());
    let mut poison = record("2", "poison body", None);
    poison.first_seen_ms = Some(1_700_000_000_000);
    let e = vec![record("1", "ok", None), poison, record("3", "bad", None)];
    let report = BatchProcessor::new()
        .with_dead_letters(sink.clone())
        .run(e, soon(), classify)
        .await;
    assert_eq!(
        report.unhandled(),
        ["3"],
        "only the transient failure is retried"
    );
    assert_eq!(
        report.records[1].1,
        RecordOutcome::DeadLettered("InvalidFields")
    );
    let letters = sink.letters.lock().unwrap().clone();
    assert_eq!(
        letters,
        [DeadLetter {
            source_message_id: "2".into(),
            body: "poison body".into(),
            message_group_id: None,
            first_seen_ms: Some(1_700_000_000_000),
            reason: Rejection {
                code: "InvalidFields",
                fields: vec!["email"]
            },
        }]
    );
}

#[tokio::test]
async fn a_rejected_record_stays_on_the_retry_path_when_the_dead_letter_queue_refuses_it() {
    let sink = Arc::new(Sink::default());
    sink.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = vec![record("1", "poison", None), record("2", "ok", None)];
    let response = BatchProcessor::new()
        .with_dead_letters(sink.clone())
        .process(e, soon(), classify)
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["1"]);
    assert!(sink.letters.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_of_expected_retries_is_reported_but_is_not_an_invocation_error() {
    let e = vec![record("1", "busy", None), record("2", "busy", None)];
    let response = BatchProcessor::new()
        .process(e, soon(), classify)
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["1", "2"]);
    let e = vec![record("1", "busy", None), record("2", "bad", None)];
    let report = BatchProcessor::new().run(e, soon(), classify).await;
    assert_eq!((report.deferred(), report.failed()), (1, 1));
}

#[tokio::test]
async fn a_dead_lettered_record_does_not_break_its_fifo_group() {
    let sink = Arc::new(Sink::default());
    let e = vec![
        record("a1", "poison", Some("A")),
        record("a2", "ok", Some("A")),
    ];
    let report = BatchProcessor::new()
        .with_dead_letters(sink.clone())
        .run(e, soon(), classify)
        .await;
    assert!(report.unhandled().is_empty());
    assert_eq!(
        sink.letters.lock().unwrap()[0].message_group_id.as_deref(),
        Some("A")
    );
}

#[tokio::test(start_paused = true)]
async fn records_still_running_at_the_deadline_fail_alone_and_the_answer_comes_in_time() {
    let e = vec![
        record("fast", "ok", None),
        record("slow", "hang", None),
        record("fast2", "ok", None),
    ];
    let (lambda, deadline) = lambda_deadline();
    let processor = BatchProcessor::new().with_concurrency(NonZeroUsize::new(3).unwrap());
    let report = tokio::time::timeout_at(
        lambda,
        processor.run(e, deadline, |r| async move {
            if r.body.as_deref() == Some("hang") {
                std::future::pending::<()>().await;
            }
            Ok::<(), String>(())
        }),
    )
    .await
    .expect("answered before Lambda's deadline");
    assert_eq!(report.unhandled(), ["slow"]);
    assert_eq!(
        report.records[1].1,
        RecordOutcome::Failed("not finished by the invocation's deadline".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_handler_past_the_deadline_fails_every_record_it_did_not_answer() {
    let e = vec![record("1", "ok", None), record("2", "ok", None)];
    let response = BatchProcessor::new()
        .on_all_failed(AllFailed::Report)
        .process_batch(
            e,
            Deadline::after(std::time::Duration::from_secs(1)),
            |_| async {
                std::future::pending::<()>().await;
                vec![Ok::<(), String>(())]
            },
        )
        .await
        .unwrap();
    assert_eq!(response.unhandled(), ["1", "2"]);
}

/// Lambda's deadline, 3 s from now, and the invocation's [`Deadline`]
/// built from it once, as the functions do.
fn lambda_deadline() -> (tokio::time::Instant, Deadline) {
    let lambda = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    (
        lambda,
        Deadline::for_invocation(3_000, 0, std::time::Duration::from_secs(3)),
    )
}

/// An idempotency store that takes locks but never answers a completion.
struct CompletionsHang(crate::idempotency::MemoryStore);

impl crate::idempotency::IdempotencyStore for CompletionsHang {
    async fn acquire(
        &self,
        record: &crate::idempotency::Record,
        now_ms: u64,
    ) -> Result<crate::idempotency::Acquire, crate::idempotency::StoreError> {
        self.0.acquire(record, now_ms).await
    }
    async fn complete_all(
        &self,
        _: &[crate::idempotency::Record],
    ) -> Vec<Result<(), crate::idempotency::CompleteError>> {
        std::future::pending().await
    }
    async fn release(
        &self,
        record: &crate::idempotency::Record,
    ) -> Result<(), crate::idempotency::StoreError> {
        self.0.release(record).await
    }
}

/// Item 2 of issue 16: a batch handler whose last step (completing its
/// locks) is still waiting on the store at the deadline. The
/// completion stops at the deadline, so the handler answers and the
/// batch keeps every outcome it reached (a success, a deferral, a
/// rejection), rather than all becoming failures; the partial batch
/// response is back before Lambda's deadline.
#[tokio::test(start_paused = true)]
async fn a_batch_whose_completions_hang_keeps_its_outcomes_and_answers_before_lambdas_deadline() {
    use crate::idempotency::{payload_hash, Begin, Idempotency, MemoryStore, Window};
    let (lambda, deadline) = lambda_deadline();
    let idem = Idempotency::new(
        CompletionsHang(MemoryStore::default()),
        "fn",
        std::time::Duration::from_secs(3600),
    );
    let sink = Arc::new(Sink::default());
    let e = vec![
        record("1", "ok", None),
        record("2", "busy", None),
        record("3", "poison", None),
    ];
    let processor = BatchProcessor::new().with_dead_letters(sink.clone());
    let answer = tokio::time::timeout_at(
        lambda,
        processor.process_batch(e, deadline, |records| {
            let idem = &idem;
            async move {
                let window = Window {
                    now_ms: 0,
                    deadline_ms: 3_000,
                };
                let Ok(Begin::Acquired(lock)) =
                    idem.begin::<()>("1", payload_hash(["1"]), window).await
                else {
                    panic!("a fresh lock");
                };
                let results: Vec<Result<(), Classified>> =
                    futures::future::join_all(records.into_iter().map(classify)).await;
                let completion = idem.complete_all(vec![(lock, &())], deadline).await;
                assert_eq!(completion.failed, ["fn#1"], "the completion was cut");
                results
            }
        }),
    )
    .await
    .expect("answered before Lambda's deadline")
    .unwrap();
    assert_eq!(
        answer.records,
        [
            ("1".to_owned(), RecordOutcome::Succeeded),
            ("2".to_owned(), RecordOutcome::Deferred("Busy".into())),
            ("3".to_owned(), RecordOutcome::DeadLettered("InvalidFields")),
        ]
    );
    assert_eq!(sink.letters.lock().unwrap().len(), 1);
}

/// Item 2 of issue 16: the dead-letter send runs after the work, in the
/// time left. A dead-letter queue that never answers is cut at the
/// deadline: the record stays on the retry path, the others keep their
/// outcome, and the answer is back before Lambda's deadline.
#[tokio::test(start_paused = true)]
async fn a_dead_letter_send_that_hangs_is_cut_at_the_deadline_and_its_record_retried() {
    struct Hangs;
    impl DeadLetterSink for Hangs {
        fn send<'a>(&'a self, _: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(std::future::pending())
        }
    }
    let (lambda, deadline) = lambda_deadline();
    let e = vec![record("1", "ok", None), record("2", "poison", None)];
    let processor = BatchProcessor::new().with_dead_letters(Arc::new(Hangs));
    let report = tokio::time::timeout_at(lambda, processor.process(e, deadline, classify))
        .await
        .expect("answered before Lambda's deadline")
        .unwrap();
    assert_eq!(report.unhandled(), ["2"]);
    assert_eq!(report.records[0].1, RecordOutcome::Succeeded);
    assert_eq!(report.records[1].1, RecordOutcome::Failed("Poison".into()));
}
