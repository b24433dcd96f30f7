//! The local stand-in for Lambda's event source mappings and asynchronous
//! invocation. See the crate docs for the semantics it reproduces.
//!
//! Every invocation is bounded by the function's `timeout_seconds`, as
//! Lambda bounds it: one that runs longer is cut off (its future dropped,
//! as Lambda stops the sandbox) and counts as a failed invocation. For an
//! SQS mapping the whole batch stays on the queue and comes back after the
//! visibility timeout, its receive counted; for an asynchronous invoke it
//! is a failed attempt, retried, then sent to `OnFailure`. Lambda does not
//! count the init phase (up to 10 s) against the timeout, so a function's
//! invocations get that much more until it has answered once
//! ([`Runner::with_cold_start_allowance`] changes it).

use crate::invoke::{Invocation, Invoke, InvokeError};
use crate::manifest::{AsyncInvoke, EventSource, Manifest, SqsSource};
use crate::shape::{receive_count, sqs_event};
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Counters for one function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Invocations made.
    pub invocations: u64,
    /// Records (SQS messages or events) handed to the function.
    pub received: u64,
    /// Records that succeeded.
    pub succeeded: u64,
    /// Records that failed (each failed attempt counts).
    pub failed: u64,
    /// Records received again after a failure or timeout.
    pub retried: u64,
    /// Events sent to the OnFailure destination after the last async retry.
    pub sent_to_failure_destination: u64,
    /// Invocations cut off at the function's timeout.
    pub timed_out: u64,
}

struct Shared<I> {
    sqs: aws_sdk_sqs::Client,
    invoker: I,
    deliver_twice: bool,
    region: String,
    stats: Mutex<BTreeMap<String, FunctionStats>>,
    in_flight: AtomicUsize,
    stop: AtomicBool,
    verbose: bool,
    timeouts: BTreeMap<String, Duration>,
    cold_start_allowance: Duration,
    /// Functions that have answered once (their init phase is over).
    warm: Mutex<HashSet<String>>,
    /// Events delivered (first attempts), by function and `detail.origin_region`.
    origins: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Put before each progress line (a region, when several run at once).
    label: String,
    /// One instance per function, when the invoker has one
    /// ([`Runner::served_by_one_watch`]): an invocation waits for it before
    /// its timeout starts, as Lambda gives each concurrent invocation its own.
    instances: Option<BTreeMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Cold invocations running: while there is one, a watch that holds
    /// every invocation during a start gives them all the cold-start allowance.
    starting: AtomicUsize,
    /// When the run started (its first [`Runner::run_until`]).
    started: OnceLock<Instant>,
    /// A window, from the start, in which nothing is invoked ([`Runner::with_outage`]).
    outage: Option<Outage>,
}

/// A window in which a region's functions are not invoked: from `from`
/// after the run starts, for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// When it begins, after the run starts.
    pub from: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl<I> Shared<I> {
    /// Whether the outage window is open now: the pollers then neither
    /// receive nor invoke, and the triggers keep accumulating.
    fn out(&self) -> bool {
        match (self.outage, self.started.get()) {
            (Some(o), Some(started)) => {
                let t = started.elapsed();
                t >= o.from && t < o.from + o.length
            }
            _ => false,
        }
    }

    fn record(&self, function: &str, update: impl FnOnce(&mut FunctionStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        update(stats.entry(function.to_owned()).or_default());
    }

    fn say(&self, line: String) {
        if self.verbose {
            println!("{}{line}", self.label);
        }
    }
}

impl<I: Invoke> Shared<I> {
    /// Invokes `function` as Lambda would: bounded by its timeout (plus the
    /// cold-start allowance until it has answered once).
    async fn invoke(&self, function: &str, payload: Value) -> Result<Invocation, InvokeError> {
        let instance = match self.instances.as_ref().and_then(|i| i.get(function)) {
            Some(instances) => instances.clone().acquire_owned().await.ok(),
            None => None,
        };
        let timeout = self
            .timeouts
            .get(function)
            .copied()
            .unwrap_or(DEFAULT_TIMEOUT);
        let cold = !self
            .warm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(function);
        let held_by_a_start = self.instances.is_some() && self.starting.load(Ordering::SeqCst) > 0;
        let allowance = if cold || held_by_a_start {
            self.cold_start_allowance
        } else {
            Duration::ZERO
        };
        self.starting.fetch_add(usize::from(cold), Ordering::SeqCst);
        let outcome = invoke_bounded(&self.invoker, function, payload, timeout, allowance).await;
        self.starting.fetch_sub(usize::from(cold), Ordering::SeqCst);
        if matches!(
            outcome,
            Ok(Invocation::Response(_) | Invocation::FunctionError { .. })
        ) {
            self.warm
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(function.to_owned());
        }
        drop(instance);
        outcome
    }
}

/// How long Lambda lets a function initialise, outside its timeout.
const LAMBDA_INIT_LIMIT: Duration = Duration::from_secs(10);

/// How often a poller in an outage looks whether it is over.
const OUTAGE_POLL: Duration = Duration::from_millis(100);

/// Lambda's default function timeout, for a function the manifest gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Milliseconds since the Unix epoch, `after` from now.
fn epoch_ms_after(after: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from((now + after).as_millis()).unwrap_or(u64::MAX)
}

/// Runs one invocation with `timeout` (plus `allowance` for the init phase),
/// handing the invoker the deadline Lambda would; past it the invocation is
/// dropped and reported as [`Invocation::TimedOut`].
pub async fn invoke_bounded<I: Invoke>(
    invoker: &I,
    function: &str,
    payload: Value,
    timeout: Duration,
    allowance: Duration,
) -> Result<Invocation, InvokeError> {
    let limit = timeout + allowance;
    let deadline_ms = epoch_ms_after(limit);
    match tokio::time::timeout(limit, invoker.invoke(function, payload, deadline_ms)).await {
        Ok(outcome) => outcome,
        Err(_) => Ok(Invocation::TimedOut { after: timeout }),
    }
}

/// The message Lambda reports for an invocation cut off after `after`.
fn timed_out_message(after: Duration) -> String {
    format!("Task timed out after {:.2} seconds", after.as_secs_f64())
}

/// Drives every function of a [`Manifest`] from its triggers.
pub struct Runner<I> {
    shared: Arc<Shared<I>>,
    manifest: Manifest,
}

impl<I: Invoke> Runner<I> {
    /// A runner for `manifest`, invoking through `invoker`; `verbose` prints
    /// a progress line per invocation.
    pub fn new(manifest: Manifest, sqs: aws_sdk_sqs::Client, invoker: I, verbose: bool) -> Self {
        let stats = manifest
            .functions
            .iter()
            .map(|f| (f.name.clone(), FunctionStats::default()))
            .collect();
        Self {
            shared: Arc::new(Shared {
                sqs,
                invoker,
                deliver_twice: false,
                region: manifest.region.clone(),
                stats: Mutex::new(stats),
                in_flight: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
                verbose,
                timeouts: manifest
                    .functions
                    .iter()
                    .map(|f| {
                        (
                            f.name.clone(),
                            Duration::from_secs(f.timeout_seconds.max(1)),
                        )
                    })
                    .collect(),
                cold_start_allowance: LAMBDA_INIT_LIMIT,
                warm: Mutex::new(HashSet::new()),
                origins: Mutex::new(BTreeMap::new()),
                label: String::new(),
                instances: None,
                starting: AtomicUsize::new(0),
                started: OnceLock::new(),
                outage: None,
            }),
            manifest,
        }
    }

    /// Fault injection: every message and event that succeeds is delivered
    /// once more (it is deleted only after its second success), as
    /// at-least-once delivery may do. Call before running.
    pub fn deliver_everything_twice(mut self) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.deliver_twice = true;
        }
        self
    }

    /// Gives each function's invocations, until it has answered once, this
    /// much time beyond its timeout (default 10 s, Lambda's init limit):
    /// Lambda does not count the init phase, and under `cargo lambda watch`
    /// the first invocation also starts (or builds) the binary. In-process
    /// functions have no init phase: give them zero. Call before running.
    pub fn with_cold_start_allowance(mut self, allowance: Duration) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.cold_start_allowance = allowance;
        }
        self
    }

    /// Puts `label` before each progress line (e.g. the region, when several
    /// regions run at once). Call before running.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.label = label.into();
        }
        self
    }

    /// The functions are served by one `cargo lambda watch`, which has one
    /// instance of each and holds every invocation while it starts one
    /// (`cargo run`, which may wait for cargo's lock). Waiting is not running:
    /// an invocation waits for its function's instance before its timeout
    /// starts, as Lambda gives each concurrent invocation an environment of
    /// its own; and while any function is starting, every invocation gets
    /// the cold-start allowance. Call before running.
    pub fn served_by_one_watch(mut self) -> Self {
        let instances = self
            .manifest
            .functions
            .iter()
            .map(|f| (f.name.clone(), Arc::new(tokio::sync::Semaphore::new(1))))
            .collect();
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.instances = Some(instances);
        }
        self
    }

    /// Stops invoking the functions during `outage` (a region's Lambda
    /// impaired): its SQS mappings and rule targets pause, so the queues and
    /// rule taps keep what arrives, as on AWS; invocations already running
    /// finish. Call before running.
    pub fn with_outage(mut self, outage: Outage) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.outage = Some(outage);
        }
        self
    }

    /// When the outage ends (once the run has started; `None` without one).
    pub fn recovers_at(&self) -> Option<Instant> {
        let (outage, started) = (self.shared.outage?, self.shared.started.get()?);
        Some(*started + outage.from + outage.length)
    }

    /// Events delivered to each function (first attempts only), by the
    /// `detail.origin_region` they carry (`-` for none): whether an event was
    /// published in this region or forwarded from another.
    pub fn event_origins(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.shared
            .origins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether an invocation is running or a trigger queue holds a message.
    pub async fn busy(&self) -> bool {
        self.shared.in_flight.load(Ordering::SeqCst) > 0 || self.pending_messages().await != 0
    }

    /// Current counters, by function name.
    pub fn stats(&self) -> BTreeMap<String, FunctionStats> {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs until `stop` resolves, then lets in-flight invocations finish.
    pub async fn run_until(&self, stop: impl std::future::Future<Output = ()>) {
        self.shared.started.get_or_init(Instant::now);
        let tasks = self.spawn_pollers();
        stop.await;
        self.shared.stop.store(true, Ordering::SeqCst);
        futures::future::join_all(tasks).await;
    }

    /// Runs until every trigger queue has been empty (nothing visible, in
    /// flight or delayed) for `quiet`, or `limit` has passed. Returns whether
    /// it went idle (false: the limit was hit).
    pub async fn run_until_idle(&self, quiet: Duration, limit: Duration) -> bool {
        let mut idle = false;
        self.run_until(async {
            idle = until_quiet(quiet, limit, || self.busy()).await;
        })
        .await;
        idle
    }

    /// Messages on all trigger queues: visible, in flight and delayed.
    pub async fn pending_messages(&self) -> u64 {
        let mut total = 0;
        for url in self.trigger_queues() {
            total += queue_depth(&self.shared.sqs, &url).await.unwrap_or(1);
        }
        total
    }

    fn trigger_queues(&self) -> Vec<String> {
        self.manifest
            .functions
            .iter()
            .flat_map(|f| {
                f.sqs_sources
                    .iter()
                    .map(|s| s.queue_url.clone())
                    .chain(f.event_sources.iter().map(|e| e.tap_queue_url.clone()))
            })
            .collect()
    }

    fn spawn_pollers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for function in &self.manifest.functions {
            for source in function.sqs_sources.iter().filter(|s| s.enabled) {
                let (shared, name, source) =
                    (self.shared.clone(), function.name.clone(), source.clone());
                tasks.push(tokio::spawn(poll_sqs_source(shared, name, source)));
            }
            for source in &function.event_sources {
                let retries = function.async_invoke.clone().unwrap_or(AsyncInvoke {
                    maximum_retry_attempts: 2,
                    on_failure_queue_url: None,
                });
                let (shared, name, source) =
                    (self.shared.clone(), function.name.clone(), source.clone());
                tasks.push(tokio::spawn(poll_event_source(
                    shared, name, source, retries,
                )));
            }
        }
        tasks
    }
}

/// The per-function table of a run's summary, one line per function.
pub fn stats_table(stats: &BTreeMap<String, FunctionStats>) -> String {
    let mut out = format!(
        "  {:<24} {:>11} {:>9} {:>10} {:>7} {:>9} {:>8} {:>15}\n",
        "function",
        "invocations",
        "received",
        "succeeded",
        "failed",
        "timed out",
        "retried",
        "to OnFailure"
    );
    for (name, s) in stats {
        out += &format!(
            "  {name:<24} {:>11} {:>9} {:>10} {:>7} {:>9} {:>8} {:>15}\n",
            s.invocations,
            s.received,
            s.succeeded,
            s.failed,
            s.timed_out,
            s.retried,
            s.sent_to_failure_destination
        );
    }
    out
}

/// Resolves once `busy` has answered false for `quiet` (true), or after
/// `limit` (false). Asks every 250 ms.
pub async fn until_quiet<F: std::future::Future<Output = bool>>(
    quiet: Duration,
    limit: Duration,
    mut busy: impl FnMut() -> F,
) -> bool {
    let started = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match (busy().await, quiet_since) {
            (true, _) => quiet_since = None,
            (false, None) => quiet_since = Some(Instant::now()),
            (false, Some(t)) if t.elapsed() >= quiet => return true,
            (false, Some(_)) => {}
        }
    }
    false
}

/// Visible + in-flight + delayed messages of a queue.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<u64> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .ok()?;
    let attributes = output.attributes?;
    let get = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            + get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    )
}

async fn receive<I>(shared: &Shared<I>, url: &str, max: i32) -> Vec<aws_sdk_sqs::types::Message> {
    let result = shared
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await;
    match result {
        Ok(output) => output.messages.unwrap_or_default(),
        Err(e) => {
            shared.say(format!("receive from {url} failed: {e}"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            Vec::new()
        }
    }
}

async fn delete<I>(shared: &Shared<I>, url: &str, receipt_handles: Vec<String>) {
    for chunk in receipt_handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = shared
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            shared.say(format!("delete from {url} failed: {e}"));
        }
    }
}

/// Which records of `event` failed, per Lambda's rules for partial batch
/// responses: an empty or null list means none; an invalid response, or an
/// identifier that is empty or not in the batch, fails the whole batch.
pub fn failed_records(
    event: &SqsEvent,
    response: &Value,
    report_batch_item_failures: bool,
) -> HashSet<String> {
    let all: HashSet<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    if !report_batch_item_failures || response.is_null() {
        return HashSet::new();
    }
    let Some(object) = response.as_object() else {
        return all;
    };
    let failures = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return HashSet::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return all,
    };
    let mut failed = HashSet::new();
    for item in failures {
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if all.contains(id) => {
                failed.insert(id.to_owned());
            }
            _ => return all,
        }
    }
    failed
}

async fn poll_sqs_source<I: Invoke>(shared: Arc<Shared<I>>, function: String, source: SqsSource) {
    let window = Duration::from_secs(source.maximum_batching_window_seconds);
    let batch_size = source.batch_size.max(1) as usize;
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.out() {
            tokio::time::sleep(OUTAGE_POLL).await;
            continue;
        }
        let mut messages = receive(&shared, &source.queue_url, batch_size as i32).await;
        if messages.is_empty() {
            continue;
        }
        let gathering = Instant::now();
        while messages.len() < batch_size && gathering.elapsed() < window {
            let more = receive(
                &shared,
                &source.queue_url,
                (batch_size - messages.len()) as i32,
            )
            .await;
            messages.extend(more);
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let event = sqs_event(messages, &source.queue_arn, &shared.region);
        let payload = serde_json::to_value(&event).unwrap_or_default();
        let outcome = shared.invoke(&function, payload).await;
        let (failed, note) = batch_outcome(&event, &outcome, source.report_batch_item_failures);
        let handles = event
            .records
            .iter()
            .filter(|r| r.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .filter(|r| !shared.deliver_twice || receive_count(r) >= 2)
            .filter_map(|r| r.receipt_handle.clone())
            .collect();
        delete(&shared, &source.queue_url, handles).await;
        let retried = event
            .records
            .iter()
            .filter(|r| receive_count(r) > 1)
            .count() as u64;
        let (n, bad) = (event.records.len() as u64, failed.len() as u64);
        let timed_out = matches!(outcome, Ok(Invocation::TimedOut { .. }));
        shared.record(&function, |s| {
            s.invocations += u64::from(outcome.is_ok());
            s.timed_out += u64::from(timed_out);
            s.received += n;
            s.succeeded += n - bad;
            s.failed += bad;
            s.retried += retried;
        });
        shared.say(format!(
            "{function:<24} batch of {n:>2}: {:>2} ok, {bad:>2} failed, {retried:>2} retried{note}",
            n - bad
        ));
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Which records of `event` failed given how its invocation ended, and a
/// note for the progress line. A function error, a timeout or a failed
/// invoke fails the whole batch, as Lambda's event source mapping does.
pub fn batch_outcome(
    event: &SqsEvent,
    outcome: &Result<Invocation, InvokeError>,
    report_batch_item_failures: bool,
) -> (HashSet<String>, String) {
    let all = || {
        event
            .records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect()
    };
    match outcome {
        Ok(Invocation::Response(response)) => (
            failed_records(event, response, report_batch_item_failures),
            String::new(),
        ),
        Ok(Invocation::FunctionError {
            error_type,
            message,
        }) => (all(), format!(" (function error {error_type}: {message})")),
        Ok(Invocation::TimedOut { after }) => (all(), format!(" ({})", timed_out_message(*after))),
        Err(e) => (all(), format!(" ({e})")),
    }
}

/// How one asynchronous attempt ended: `None` when the event never reached
/// the function (EventBridge retries delivery), else whether it succeeded
/// and, if not, the error Lambda would report.
pub fn attempt_outcome(
    outcome: Result<Invocation, InvokeError>,
) -> Option<(bool, Option<(String, String)>)> {
    match outcome {
        Ok(Invocation::Response(_)) => Some((true, None)),
        Ok(Invocation::FunctionError {
            error_type,
            message,
        }) => Some((false, Some((error_type, message)))),
        Ok(Invocation::TimedOut { after }) => Some((
            false,
            Some((
                Invocation::TIMEOUT_ERROR_TYPE.to_owned(),
                timed_out_message(after),
            )),
        )),
        Err(_) => None,
    }
}

async fn poll_event_source<I: Invoke>(
    shared: Arc<Shared<I>>,
    function: String,
    source: EventSource,
    retries: AsyncInvoke,
) {
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.out() {
            tokio::time::sleep(OUTAGE_POLL).await;
            continue;
        }
        let messages = receive(&shared, &source.tap_queue_url, 10).await;
        if messages.is_empty() {
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        // Lambda runs asynchronous invocations concurrently.
        let attempts = messages
            .into_iter()
            .map(|message| deliver_event(&shared, &function, &source, &retries, message));
        futures::future::join_all(attempts).await;
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn deliver_event<I: Invoke>(
    shared: &Shared<I>,
    function: &str,
    source: &EventSource,
    retries: &AsyncInvoke,
    message: aws_sdk_sqs::types::Message,
) {
    let attempt: u32 = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let handle = message.receipt_handle.clone().unwrap_or_default();
    let payload: Value = match message.body.as_deref().map(serde_json::from_str) {
        Some(Ok(payload)) => payload,
        _ => Value::String(message.body.clone().unwrap_or_default()),
    };
    let event_id = payload
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    if attempt == 1 {
        let origin = payload
            .pointer("/detail/origin_region")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned();
        let mut origins = shared.origins.lock().unwrap_or_else(|p| p.into_inner());
        *origins
            .entry(function.to_owned())
            .or_default()
            .entry(origin)
            .or_default() += 1;
    }
    let outcome = shared.invoke(function, payload.clone()).await;
    let timed_out = matches!(outcome, Ok(Invocation::TimedOut { .. }));
    let not_delivered = outcome.as_ref().err().map(ToString::to_string);
    let Some((ok, error)) = attempt_outcome(outcome) else {
        // Not delivered: leave it for the next receive, as EventBridge retries delivery.
        shared.say(format!(
            "{function:<24} event {event_id}: not delivered ({})",
            not_delivered.unwrap_or_default()
        ));
        return;
    };
    let exhausted = !ok && attempt > retries.maximum_retry_attempts;
    shared.record(function, |s| {
        s.invocations += 1;
        s.timed_out += u64::from(timed_out);
        s.received += 1;
        s.succeeded += u64::from(ok);
        s.failed += u64::from(!ok);
        s.retried += u64::from(attempt > 1);
        s.sent_to_failure_destination += u64::from(exhausted);
    });
    if ok {
        shared.say(format!(
            "{function:<24} event {event_id}: ok (attempt {attempt})"
        ));
        if !shared.deliver_twice || attempt >= 2 {
            delete(shared, &source.tap_queue_url, vec![handle]).await;
        }
        return;
    }
    let (error_type, error_message) = error.unwrap_or_default();
    if !exhausted {
        // Left on the tap: it comes back after the visibility timeout, like Lambda's retry.
        shared.say(format!(
            "{function:<24} event {event_id}: failed (attempt {attempt}, will retry): {error_type}: {error_message}"
        ));
        return;
    }
    shared.say(format!(
        "{function:<24} event {event_id}: failed (attempt {attempt}, retries exhausted): {error_type}: {error_message}"
    ));
    if let Some(url) = &retries.on_failure_queue_url {
        let record = failure_record(
            &shared.region,
            function,
            attempt,
            &payload,
            &error_type,
            &error_message,
        );
        if let Err(e) = shared
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(record.to_string())
            .send()
            .await
        {
            shared.say(format!("sending to the OnFailure destination failed: {e}"));
            return;
        }
    }
    delete(shared, &source.tap_queue_url, vec![handle]).await;
}

/// The record Lambda sends to an asynchronous invocation's OnFailure destination.
pub fn failure_record(
    region: &str,
    function: &str,
    attempts: u32,
    payload: &Value,
    error_type: &str,
    error_message: &str,
) -> Value {
    json!({
        "version": "1.0",
        "requestContext": {
            "functionArn": format!("arn:aws:lambda:{region}:123456789012:function:{function}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": error_message}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessage;

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
        assert!(
            recovers >= now + Duration::from_secs(14) && recovers <= now + Duration::from_secs(16)
        );
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
                futures::future::join_all((0..15).map(|_| runner.shared.invoke("f", json!({}))))
                    .await;
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
}
