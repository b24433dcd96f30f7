//! The runner's rules: partial batch responses, timeouts, cold starts, outages.

use super::*;
use aws_lambda_events::sqs::SqsEvent;
use aws_lambda_events::sqs::SqsMessage;
use serde_json::json;

fn event(ids: &[&str]) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = ids
        .iter()
        .map(|id| {
            let mut r = SqsMessage::default();
            r.message_id = Some((*id).to_owned());
            r
        })
        .collect();
    e
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn partial_batch_response_rules_match_lambda() {
    let e = event(&["a", "b", "c"]);
    let f = |v: Value| failed_records(&e, &v, true);
    assert_eq!(f(json!({"batchItemFailures": []})), set(&[]));
    assert_eq!(f(json!({"batchItemFailures": null})), set(&[]));
    assert_eq!(f(Value::Null), set(&[]));
    assert_eq!(f(json!({})), set(&[]));
    assert_eq!(
        f(json!({"batchItemFailures": [{"itemIdentifier": "b"}]})),
        set(&["b"])
    );
    // Unknown or empty identifiers, or a malformed response, fail the whole batch.
    assert_eq!(
        f(json!({"batchItemFailures": [{"itemIdentifier": "zz"}]})),
        set(&["a", "b", "c"])
    );
    assert_eq!(
        f(json!({"batchItemFailures": [{"itemIdentifier": ""}]})),
        set(&["a", "b", "c"])
    );
    assert_eq!(
        f(json!({"batchItemFailures": [{"id": "b"}]})),
        set(&["a", "b", "c"])
    );
    assert_eq!(f(json!("nonsense")), set(&["a", "b", "c"]));
    // Without ReportBatchItemFailures a successful invocation deletes everything.
    assert_eq!(
        failed_records(
            &e,
            &json!({"batchItemFailures": [{"itemIdentifier": "b"}]}),
            false
        ),
        set(&[])
    );
}

/// A function stuck on a call that never returns; records the deadline
/// it was given.
#[derive(Default)]
struct NeverAnswers {
    deadlines: Mutex<Vec<u64>>,
}

impl Invoke for NeverAnswers {
    async fn invoke(
        &self,
        _function: &str,
        _payload: Value,
        deadline_ms: u64,
    ) -> Result<Invocation, InvokeError> {
        self.deadlines.lock().unwrap().push(deadline_ms);
        std::future::pending().await
    }
}

/// A function that answers after the given time; with one instance, one
/// invocation at a time, as under `cargo lambda watch`.
struct AnswersAfter(Duration, Option<tokio::sync::Mutex<()>>);

impl AnswersAfter {
    fn one_instance(after: Duration) -> Self {
        Self(after, Some(tokio::sync::Mutex::new(())))
    }
}

impl Invoke for AnswersAfter {
    async fn invoke(
        &self,
        _function: &str,
        _payload: Value,
        _deadline_ms: u64,
    ) -> Result<Invocation, InvokeError> {
        let _running = match &self.1 {
            Some(instance) => Some(instance.lock().await),
            None => None,
        };
        tokio::time::sleep(self.0).await;
        Ok(Invocation::Response(json!({"batchItemFailures": []})))
    }
}

/// A runner for one function "f" whose timeout is `timeout` (shorter
/// than the manifest's whole seconds, so the tests stay quick).
fn runner<I: Invoke>(invoker: I, timeout: Duration) -> Runner<I> {
    let manifest: Manifest = serde_json::from_value(json!({
        "endpoint": "http://127.0.0.1:1",
        "region": "us-east-1",
        "functions": [{"name": "f", "timeout_seconds": 1}]
    }))
    .unwrap();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build(),
    );
    let mut runner =
        Runner::new(manifest, sqs, invoker, false).with_cold_start_allowance(Duration::ZERO);
    let shared = Arc::get_mut(&mut runner.shared).unwrap();
    shared.timeouts.insert("f".to_owned(), timeout);
    runner
}

#[test]
fn an_outage_stops_invoking_inside_its_window_only() {
    let outage = Outage {
        from: Duration::from_secs(10),
        length: Duration::from_secs(20),
    };
    let runner = runner(NeverAnswers::default(), Duration::from_secs(1)).with_outage(outage);
    assert!(!runner.shared.out(), "not started: no outage yet");
    assert_eq!(runner.recovers_at(), None);
    let now = Instant::now();
    let out_at = |since_start: Duration| {
        let runner = runner_started(since_start, outage);
        (runner.shared.out(), runner.recovers_at().unwrap())
    };
    let (before, _) = out_at(Duration::from_secs(5));
    let (during, recovers) = out_at(Duration::from_secs(15));
    let (after, _) = out_at(Duration::from_secs(31));
    assert_eq!((before, during, after), (false, true, false));
    // Started 15 s ago, recovers 30 s after the start: 15 s from now.
    assert!(recovers >= now + Duration::from_secs(14) && recovers <= now + Duration::from_secs(16));
}

/// A runner with `outage` whose run started `since_start` ago.
fn runner_started(since_start: Duration, outage: Outage) -> Runner<NeverAnswers> {
    let runner = runner(NeverAnswers::default(), Duration::from_secs(1)).with_outage(outage);
    runner
        .shared
        .started
        .set(Instant::now() - since_start)
        .unwrap();
    runner
}

#[tokio::test]
async fn an_invocation_that_never_answers_is_cut_at_the_function_timeout() {
    let timeout = Duration::from_millis(200);
    let runner = runner(NeverAnswers::default(), timeout);
    let before = epoch_ms_after(Duration::ZERO);
    let outcome = runner.shared.invoke("f", json!({})).await;
    let after = epoch_ms_after(Duration::ZERO);
    assert!(
        matches!(outcome, Ok(Invocation::TimedOut { after }) if after == timeout),
        "{outcome:?}"
    );
    // The function was told the deadline Lambda would give it.
    let deadlines = runner.shared.invoker.deadlines.lock().unwrap().clone();
    assert_eq!(deadlines.len(), 1);
    assert!((before + 200..=after + 200).contains(&deadlines[0]));
}

#[tokio::test]
async fn a_cold_start_allowance_covers_only_invocations_before_the_first_answer() {
    let runner = runner(
        AnswersAfter(Duration::from_millis(300), None),
        Duration::from_millis(100),
    )
    .with_cold_start_allowance(Duration::from_secs(60));
    // Cold: 300 ms fits in 100 ms + 60 s of init allowance.
    let first = runner.shared.invoke("f", json!({})).await;
    assert!(matches!(first, Ok(Invocation::Response(_))), "{first:?}");
    // Warm: the same 300 ms is past the 100 ms timeout.
    let second = runner.shared.invoke("f", json!({})).await;
    assert!(
        matches!(second, Ok(Invocation::TimedOut { .. })),
        "{second:?}"
    );
}

#[tokio::test]
async fn waiting_for_the_functions_one_instance_does_not_count_against_its_timeout() {
    // 15 invocations at once of 100 ms each on one instance: 1.5 s in all, a 1 s timeout each.
    let invoke_all = |runner: Runner<AnswersAfter>| async move {
        let outcomes =
            futures::future::join_all((0..15).map(|_| runner.shared.invoke("f", json!({})))).await;
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Invocation::TimedOut { .. })))
            .count()
    };
    let one_instance = || AnswersAfter::one_instance(Duration::from_millis(100));
    let timeout = Duration::from_secs(1);
    // Counted from the invoke, the wait behind the others times the last ones out...
    assert!(invoke_all(runner(one_instance(), timeout)).await > 0);
    // ...counted from the instance's start, none runs past its timeout.
    let waiting = runner(one_instance(), timeout).served_by_one_watch();
    assert_eq!(invoke_all(waiting).await, 0);
}

/// Two functions behind one watch: the first invocation of "slow" keeps
/// the watch starting it for the given time, holding "f" as well.
struct OneWatch(Duration, tokio::sync::Mutex<bool>);

impl Invoke for OneWatch {
    async fn invoke(
        &self,
        function: &str,
        _payload: Value,
        _deadline_ms: u64,
    ) -> Result<Invocation, InvokeError> {
        let mut started = self.1.lock().await;
        if function == "slow" && !*started {
            tokio::time::sleep(self.0).await;
            *started = true;
        }
        Ok(Invocation::Response(Value::Null))
    }
}

#[tokio::test]
async fn behind_one_watch_an_invocation_held_by_another_functions_start_is_not_timed_out() {
    let manifest: Manifest = serde_json::from_value(json!({
        "endpoint": "http://127.0.0.1:1",
        "region": "us-east-1",
        "functions": [{"name": "f", "timeout_seconds": 1}, {"name": "slow", "timeout_seconds": 1}]
    }))
    .unwrap();
    let runner = |one_watch: bool| {
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .build(),
        );
        let watch = OneWatch(Duration::from_secs(2), Default::default());
        let runner = Runner::new(manifest.clone(), sqs, watch, false)
            .with_cold_start_allowance(Duration::from_secs(60));
        runner.shared.warm.lock().unwrap().insert("f".to_owned());
        if one_watch {
            runner.served_by_one_watch()
        } else {
            runner
        }
    };
    // slow starts for 2 s, longer than warm f's 1 s timeout; f is invoked meanwhile.
    let f_during_slows_start = |runner: Runner<OneWatch>| async move {
        let slow = runner.shared.invoke("slow", json!({}));
        let f = async {
            tokio::task::yield_now().await;
            runner.shared.invoke("f", json!({})).await
        };
        futures::future::join(slow, f).await.1
    };
    let plain = f_during_slows_start(runner(false)).await;
    assert!(
        matches!(plain, Ok(Invocation::TimedOut { .. })),
        "{plain:?}"
    );
    let held = f_during_slows_start(runner(true)).await;
    assert!(matches!(held, Ok(Invocation::Response(_))), "{held:?}");
}

#[test]
fn a_timed_out_batch_fails_every_record_even_with_partial_responses_on() {
    let e = event(&["a", "b", "c"]);
    let (failed, note) = batch_outcome(
        &e,
        &Ok(Invocation::TimedOut {
            after: Duration::from_secs(3),
        }),
        true,
    );
    assert_eq!(failed, set(&["a", "b", "c"]));
    assert_eq!(note, " (Task timed out after 3.00 seconds)");
}

#[test]
fn a_timed_out_async_attempt_is_a_failed_attempt_reported_as_lambda_does() {
    let outcome = attempt_outcome(Ok(Invocation::TimedOut {
        after: Duration::from_secs(3),
    }));
    let Some((false, Some((error_type, message)))) = outcome else {
        panic!("a timeout must be a failed attempt: {outcome:?}");
    };
    assert_eq!(error_type, "Sandbox.Timedout");
    let record = failure_record(
        "us-east-1",
        "welcome-email",
        3,
        &json!({"id": "e1"}),
        &error_type,
        &message,
    );
    assert_eq!(record["responsePayload"]["errorType"], "Sandbox.Timedout");
    assert_eq!(
        record["responsePayload"]["errorMessage"],
        "Task timed out after 3.00 seconds"
    );
    // An invoke that never reached the function is not an attempt.
    let not_delivered = attempt_outcome(Err(InvokeError {
        function: "welcome-email".into(),
        reason: "connection refused".into(),
    }));
    assert_eq!(not_delivered, None);
}

#[test]
fn failure_record_has_the_destination_shape() {
    let record = failure_record(
        "us-east-1",
        "welcome-email",
        3,
        &json!({"id": "e1"}),
        "InvalidInput",
        "email: not a valid address",
    );
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"]["id"], "e1");
    assert_eq!(record["responsePayload"]["errorType"], "InvalidInput");
}
