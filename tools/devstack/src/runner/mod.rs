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

mod async_invoke;
mod queue;
mod sqs_mapping;

pub use async_invoke::{attempt_outcome, failure_record};
pub use queue::queue_depth;
pub use sqs_mapping::{batch_outcome, failed_records};

use async_invoke::poll_event_source;
use sqs_mapping::poll_sqs_source;

use crate::invoke::{Invocation, Invoke, InvokeError};
use crate::manifest::{AsyncInvoke, Manifest};
use serde_json::Value;
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

#[cfg(test)]
mod tests;
