//! **fixed-latency-aws**: a stand-in for the AWS APIs the four functions
//! call, for benchmarks. Every call is answered in AWS's wire shape after a
//! fixed latency per operation ([`latency`]: `--latency-ms` for a
//! single-item DynamoDB write, more for a transaction, a batch by its
//! entries, S3 and SES; spent half before and half after the call takes
//! effect, like a network round trip), all calls concurrently and with no
//! emulator cost, so a batch's wall time measures the code's own critical
//! path: the round trips' latencies + CPU. `--latency-model uniform`
//! answers every call after `--latency-ms`.
//!
//! | service | protocol | operations |
//! |---|---|---|
//! | DynamoDB | JSON 1.0 | `PutItem`, `GetItem`, `UpdateItem`, `DeleteItem`, `BatchWriteItem`, `TransactWriteItems` |
//! | SQS | JSON 1.0 | `SendMessage`, `SendMessageBatch` |
//! | EventBridge | JSON 1.1 | `PutEvents` |
//! | S3 | REST-XML, path style | `PutObject`, `GetObject`, `HeadObject` |
//! | SES v2 | REST-JSON | `SendEmail` |
//!
//! DynamoDB keeps an item map per declared table (`--table NAME=KEY`), so
//! conditional writes, the idempotency lock and reads behave as on AWS; S3
//! keeps objects; SQS and EventBridge keep what they accepted, per queue
//! and per bus, until it is drained, but deliver nothing (no event source
//! mapping polls, no rule runs); SES keeps nothing. `--fail-entry-rate R`
//! fails a seeded-random share R of the entries of `SendMessageBatch`,
//! `PutEvents` and `BatchWriteItem`, in the per-entry form each API uses;
//! `--conflict-rate R` cancels that share of `TransactWriteItems` with a
//! `TransactionConflict` reason; `--throttle-rate R` answers that share of
//! all calls with the service's throttling error, without effect
//! (DynamoDB `ProvisionedThroughputExceededException`, or a transaction
//! cancelled with a `ThrottlingError` reason; SQS `RequestThrottled`;
//! EventBridge `ThrottlingException`; S3 503 `SlowDown`; SES
//! `TooManyRequestsException`); their draws run on from the backend's
//! start, across resets. Each call counts its billable units
//! ([`units`]: DynamoDB write and read units from item sizes, SQS
//! requests, events, S3 requests, emails).
//!
//! Control endpoints (not counted, not delayed):
//! `GET /__backend/stats` (calls by operation, items carried by batch
//! calls, total, round trips, span, errors, injected entry failures,
//! conflicts and throttles, billable units overall, by operation and by
//! SDK app name, the modelled latency by operation, calls by SDK app name,
//! calls, round trips and write units per invocation, items per table,
//! objects, messages and events waiting), `POST /__backend/reset`
//! (counters; `?data=1` also forgets items, objects, messages and events),
//! `POST /__backend/latency?ms=N[&model=aws|uniform]`,
//! `POST /__backend/faults?entries=R&conflicts=R&throttles=R` (any of the
//! three rates), `GET /__backend/drain?queue=NAME_OR_URL`
//! (the messages sent to that queue, as ReceiveMessage answers them, and
//! forgets them) or `?bus=NAME_OR_ARN` (the events put on that bus),
//! `GET /__backend/objects?prefix=P[&bucket=B]` (how many objects).
#![warn(missing_docs)]

mod dynamodb;
mod eventbridge;
mod faults;
pub mod latency;
mod mailbox;
mod random;
mod reply;
mod request;
mod s3;
mod ses;
mod sqs;
mod stats;
mod timer;
mod units;

pub use dynamodb::TableSpec;
pub use latency::Model as LatencyModel;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reply::{JsonService, Reply, DYNAMODB, EVENTBRIDGE, SQS};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the backend answers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time from a request's arrival to its answer for a single-item
    /// DynamoDB write: the base of the per-operation table.
    pub latency: Duration,
    /// Per operation ([`latency::TABLE`]), or the base for every call.
    pub latency_model: LatencyModel,
    /// Share of batch entries that fail (0 to 1).
    pub fail_entry_rate: f64,
    /// Share of transactions cancelled with `TransactionConflict`.
    pub conflict_rate: f64,
    /// Share of calls answered with the service's throttling error.
    pub throttle_rate: f64,
    /// Seed of the injected faults and of the ids handed out.
    pub seed: u64,
    /// The DynamoDB tables served.
    pub tables: Vec<TableSpec>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            latency_model: LatencyModel::Aws,
            fail_entry_rate: 0.0,
            conflict_rate: 0.0,
            throttle_rate: 0.0,
            seed: 1,
            tables: Vec::new(),
        }
    }
}

/// The command line, parsed.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How to answer.
    pub config: Config,
}

/// The command line's help.
pub const USAGE: &str = "\
usage: fixed-latency-aws [--host 127.0.0.1] [--port 0] [--latency-ms 10] [--latency-model aws]
                         [--fail-entry-rate 0] [--conflict-rate 0] [--throttle-rate 0]
                         [--seed 1] [--table NAME=HASH_KEY[,RANGE_KEY]]...

Answers the AWS calls of the eventline functions (DynamoDB, SQS, EventBridge, S3, SES v2) in AWS's
shapes after a fixed latency per operation, all calls concurrently, and counts what each call is
billed. Point AWS_ENDPOINT_URL at it. Prints `PORT <n>` once listening (--port 0: a free port).
  --latency-ms MS        latency of a single-item DynamoDB write, the base of the per-operation
                         table (default 10)
  --latency-model M      aws: per operation (a transaction 2x + 0.1x per item beyond the first,
                         S3 and SES 2x, batches + 0.04-0.05x per entry; bench/README.md);
                         uniform: every call after --latency-ms (default aws)
  --fail-entry-rate R    share of SendMessageBatch / PutEvents / BatchWriteItem entries that fail (0-1)
  --conflict-rate R      share of TransactWriteItems cancelled with TransactionConflict (0-1)
  --throttle-rate R      share of calls answered with the service's throttling error (0-1)
  --seed N               seed of those faults and of the ids handed out (default 1)
  --table NAME=KEY[,K2]  a DynamoDB table and its key attributes (repeat per table)
Control: GET /__backend/stats, POST /__backend/reset[?data=1],
POST /__backend/latency?ms=N[&model=aws|uniform], POST /__backend/faults?entries=R&conflicts=R&throttles=R,
GET /__backend/drain?queue=NAME|bus=NAME, GET /__backend/objects?prefix=P[&bucket=B]";

fn rate(flag: &str, value: &str) -> Result<f64, String> {
    let rate: f64 = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{flag} {value}: must be between 0 and 1"));
    }
    Ok(rate)
}

/// Parses the command line (without the program name); `None` for `--help`.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 0u16;
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value.parse().map_err(|e| bad(&e))?,
            "--latency-ms" => {
                let ms: f64 = value.parse().map_err(|e| bad(&e))?;
                config.latency = Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| bad(&e))?;
            }
            "--latency-model" => config.latency_model = value.parse()?,
            "--fail-entry-rate" => config.fail_entry_rate = rate(&flag, &value)?,
            "--conflict-rate" => config.conflict_rate = rate(&flag, &value)?,
            "--throttle-rate" => config.throttle_rate = rate(&flag, &value)?,
            "--seed" => config.seed = value.parse().map_err(|e| bad(&e))?,
            "--table" => config.tables.push(value.parse()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let addr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("--host {host}: {e}"))?;
    Ok(Some(Args { addr, config }))
}

struct Shared {
    latency_ns: AtomicU64,
    uniform: AtomicBool,
    faults: random::EntryFaults,
    conflicts: random::EntryFaults,
    throttles: random::EntryFaults,
    ids: random::Ids,
    dynamodb: dynamodb::Store,
    sqs: sqs::Queues,
    /// Events accepted by `PutEvents`, by bus, until drained.
    events: mailbox::Mailboxes,
    s3: s3::Buckets,
    stats: Mutex<stats::Stats>,
    started: Instant,
    timer: timer::Timer,
}

impl Shared {
    fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_ns.load(Ordering::Relaxed))
    }

    fn model(&self) -> LatencyModel {
        if self.uniform.load(Ordering::Relaxed) {
            LatencyModel::Uniform
        } else {
            LatencyModel::Aws
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, stats::Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats_json(&self) -> Value {
        let mut out = self.stats().to_json();
        out["latency_ms"] = json!(self.latency().as_secs_f64() * 1000.0);
        out["latency_model"] = json!(self.model().name());
        out["fail_entry_rate"] = json!(self.faults.rate());
        out["conflict_rate"] = json!(self.conflicts.rate());
        out["throttle_rate"] = json!(self.throttles.rate());
        out["items"] = json!(self.dynamodb.item_counts());
        out["objects"] = json!(self.s3.count());
        out["pending"] = json!({
            "queues": self.sqs.sent.pending(),
            "buses": self.events.pending(),
        });
        out
    }
}

/// A running backend; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Server {
    /// Listens on `addr` (port 0: a free one) and serves in the background.
    pub async fn start(addr: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let latency_ns = u64::try_from(config.latency.as_nanos()).unwrap_or(u64::MAX);
        let shared = Arc::new(Shared {
            latency_ns: AtomicU64::new(latency_ns),
            uniform: AtomicBool::new(config.latency_model == LatencyModel::Uniform),
            faults: random::EntryFaults::new(config.fail_entry_rate, config.seed),
            conflicts: random::EntryFaults::salted(
                config.conflict_rate,
                config.seed,
                random::CONFLICT_SALT,
            ),
            throttles: random::EntryFaults::salted(
                config.throttle_rate,
                config.seed,
                random::THROTTLE_SALT,
            ),
            ids: random::Ids::new(config.seed),
            dynamodb: dynamodb::Store::new(&config.tables),
            sqs: sqs::Queues::new(),
            events: mailbox::Mailboxes::new(),
            s3: s3::Buckets::new(),
            stats: Mutex::new(stats::Stats::default()),
            started: Instant::now(),
            timer: timer::Timer::start(),
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `GET /__backend/stats` answers.
    pub fn stats(&self) -> Value {
        self.shared.stats_json()
    }

    /// Serves until the listener fails.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: try again shortly.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Answers must not wait for Nagle: the latency is the one configured.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| handle(shared.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(response(Reply::new(
            400,
            "the request body could not be read",
        )));
    };
    if parts.uri.path().starts_with("/__backend/") {
        return Ok(response(control(&shared, &parts)));
    }
    let (operation, items) = request::classify(&parts, &body);
    let latency = latency::latency(shared.model(), shared.latency(), &operation, items);
    shared.timer.sleep_until(arrived + latency / 2).await;
    let (operation, reply, injected) = if shared.throttles.next_fails() {
        let reply = faults::throttled(&shared.ids, &shared.throttles, &operation, items);
        (operation, reply, Some(stats::Injected::Throttle))
    } else {
        let (operation, reply) = answer(&shared, &parts, &body);
        let conflict = operation == "DynamoDB.TransactWriteItems" && faults::is_conflict(&reply);
        (
            operation,
            reply,
            conflict.then_some(stats::Injected::Conflict),
        )
    };
    shared.timer.sleep_until(arrived + latency).await;
    shared.stats().record(stats::Call {
        operation,
        app: request::app_name(&parts),
        start: arrived - shared.started,
        end: Instant::now() - shared.started,
        latency,
        error: reply.error.clone(),
        entries_failed: reply.entries_failed,
        entries: reply.entries,
        units: reply.units,
        injected,
        trace: request::trace_root(&parts),
    });
    Ok(response(reply))
}

/// The operation a request names and its answer.
fn answer(shared: &Shared, parts: &Parts, body: &Bytes) -> (String, Reply) {
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    if let Some(target) = target {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let (service, result): (JsonService, _) = match prefix {
            "DynamoDB_20120810" => (
                DYNAMODB,
                shared
                    .dynamodb
                    .handle(&shared.faults, &shared.conflicts, op, body),
            ),
            "AmazonSQS" => (
                SQS,
                shared.sqs.handle(&shared.faults, &shared.ids, op, body),
            ),
            "AWSEvents" => (
                EVENTBRIDGE,
                eventbridge::handle(&shared.faults, &shared.ids, &shared.events, op, body),
            ),
            _ => {
                let e = reply::ApiError::new(
                    400,
                    "UnknownOperationException",
                    format!("the fixed-latency backend does not implement {target}"),
                );
                return (format!("unknown.{target}"), DYNAMODB.reply(Err(e)));
            }
        };
        let reply = service
            .reply(result)
            .header("x-amzn-requestid", shared.ids.uuid());
        return (format!("{}.{op}", service.label), reply);
    }
    let path = parts.uri.path();
    if path == ses::SEND_EMAIL_PATH && parts.method == hyper::Method::POST {
        let reply =
            ses::send_email(&shared.ids, body).header("x-amzn-requestid", shared.ids.uuid());
        return ("SESv2.SendEmail".to_owned(), reply);
    }
    if path.starts_with("/v2/email/") {
        let e = reply::ApiError::new(
            404,
            "NotFoundException",
            "the fixed-latency backend implements SES v2 SendEmail only",
        );
        return ("SESv2.Unsupported".to_owned(), reply::rest_json(Err(e)));
    }
    (
        s3::operation(&parts.method).to_owned(),
        shared.s3.handle(&shared.ids, parts, body),
    )
}

fn control(shared: &Shared, parts: &Parts) -> Reply {
    let query = parts.uri.query().unwrap_or("");
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
    };
    let post = parts.method == hyper::Method::POST;
    match parts.uri.path() {
        "/__backend/stats" => {}
        "/__backend/reset" if post => {
            *shared.stats() = stats::Stats::default();
            // Conflicts and throttles draw on from the start: a reset between batches must
            // not give every batch the same few draws (entry failures keep restarting).
            shared.faults.reset();
            if matches!(param("data").as_deref(), Some("1" | "true")) {
                shared.dynamodb.clear();
                shared.s3.clear();
                shared.sqs.sent.clear();
                shared.events.clear();
            }
        }
        "/__backend/latency" if post => {
            let Some(ms) = param("ms").and_then(|v| v.parse::<f64>().ok()) else {
                return Reply::new(400, "{\"message\":\"latency?ms=N\"}");
            };
            let Ok(latency) = Duration::try_from_secs_f64(ms / 1000.0) else {
                return Reply::new(400, "{\"message\":\"latency must be a non-negative number\"}");
            };
            let model = match param("model").map(|m| m.parse::<LatencyModel>()) {
                None => shared.model(),
                Some(Ok(model)) => model,
                Some(Err(e)) => return Reply::new(400, json!({ "message": e }).to_string()),
            };
            let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
            shared.latency_ns.store(ns, Ordering::Relaxed);
            shared
                .uniform
                .store(model == LatencyModel::Uniform, Ordering::Relaxed);
        }
        "/__backend/faults" if post => {
            let kinds = [
                ("entries", &shared.faults),
                ("conflicts", &shared.conflicts),
                ("throttles", &shared.throttles),
            ];
            let mut rates = Vec::new();
            for (name, faults) in kinds {
                if let Some(value) = param(name) {
                    match rate(name, &value) {
                        Ok(r) => rates.push((faults, r)),
                        Err(e) => return Reply::new(400, json!({ "message": e }).to_string()),
                    }
                }
            }
            for (faults, r) in rates {
                faults.set_rate(r);
            }
        }
        "/__backend/drain" => {
            let drained = match (param("queue"), param("bus")) {
                (Some(queue), None) => json!({ "queue": mailbox::destination_name(&queue), "messages": shared.sqs.sent.drain(&queue) }),
                (None, Some(bus)) => json!({ "bus": mailbox::destination_name(&bus), "events": shared.events.drain(&bus) }),
                _ => return Reply::new(400, "{\"message\":\"drain?queue=NAME_OR_URL or drain?bus=NAME_OR_ARN\"}"),
            };
            return Reply::new(200, drained.to_string()).header("content-type", "application/json");
        }
        "/__backend/objects" => {
            let count = shared.s3.count_under(param("bucket").as_deref(), &param("prefix").unwrap_or_default());
            return Reply::new(200, json!({ "objects": count }).to_string()).header("content-type", "application/json");
        }
        _ => return Reply::new(404, "{\"message\":\"GET /__backend/stats, POST /__backend/reset, POST /__backend/latency?ms=N[&model=aws|uniform], POST /__backend/faults?entries=R&conflicts=R&throttles=R, GET /__backend/drain?queue=Q|bus=B, GET /__backend/objects?prefix=P\"}"),
    }
    Reply::new(200, shared.stats_json().to_string()).header("content-type", "application/json")
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(reply.body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Full::new(Bytes::from_static(b"invalid answer")));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Option<Args>, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_command_line_sets_every_knob() {
        let a = args("--port 0 --latency-ms 2.5 --latency-model uniform --fail-entry-rate 0.1 --conflict-rate 0.2 --throttle-rate 0.3 --seed 9 --table users=user_id --table t=pk,sk")
            .unwrap()
            .unwrap();
        assert_eq!(a.addr.port(), 0);
        assert_eq!(a.config.latency, Duration::from_micros(2500));
        assert_eq!(a.config.latency_model, LatencyModel::Uniform);
        assert_eq!(a.config.fail_entry_rate, 0.1);
        assert_eq!(a.config.conflict_rate, 0.2);
        assert_eq!(a.config.throttle_rate, 0.3);
        assert_eq!(a.config.seed, 9);
        assert_eq!(a.config.tables[1].key, ["pk", "sk"]);
        assert!(args("--help").unwrap().is_none());
        for bad in [
            "--latency-ms",
            "--fail-entry-rate 2",
            "--conflict-rate -0.1",
            "--throttle-rate x",
            "--latency-model fast",
            "--table users",
            "--table =k",
            "--bogus 1",
            "--latency-ms -1",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }
}
