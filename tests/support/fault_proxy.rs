//! An HTTP/1.1 proxy in front of the emulator that injects faults into the
//! calls going through it, and counts every call it faulted, so a fault
//! test can first prove that its fault really happened.
//!
//! Faults are [`Rule`]s matched on the call's operation (its `X-Amz-Target`
//! header, e.g. `AmazonSQS.SendMessageBatch`; S3 has none, so match it with
//! [`Rule::any`]):
//!
//! - [`Fault::Cut`]: the connection is closed with no answer, as when the
//!   path to AWS breaks mid-call;
//! - [`Fault::Outage`]: the call that triggers it starts an outage of a
//!   given length: every call until it ends is cut and every new connection
//!   refused. Tied to traffic, so it always hits a call;
//! - [`Fault::Hang`]: the call never answers (socket open, no bytes), as a
//!   slow dependency does; [`Fault::HangAfterUpstream`] lets the call take
//!   effect first and loses only its answer;
//! - [`Fault::Rewrite`]: the call takes effect and its JSON answer is
//!   replaced by a short or malformed one ([`Rewrite`]), as a batch API may
//!   answer.
//!
//! [`FaultProxy::set_down`] still starts and ends an outage by hand.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A custom rewrite: given the request's and the answer's JSON, the new
/// answer (`None`: leave it as it is).
pub type RewriteFn = Arc<dyn Fn(&Value, &Value) -> Option<Value> + Send + Sync>;

/// A replacement for a batch API's JSON answer.
#[derive(Clone)]
pub enum Rewrite {
    /// SQS `SendMessageBatch`/`DeleteMessageBatch`: the last entry of
    /// `Successful` is dropped, so it is in neither `Successful` nor `Failed`.
    SqsEntryMissing,
    /// SQS batch APIs: the last entry of `Successful` gets an `Id` that was
    /// not in the request.
    SqsUnknownId,
    /// EventBridge `PutEvents`: one result entry fewer than requested, with
    /// `FailedEntryCount` left at 0.
    PutEventsShort,
    /// DynamoDB `BatchWriteItem`: every requested write comes back in
    /// `UnprocessedItems` (although the emulator applied them), as a
    /// throttled table answers.
    DynamoDbAllUnprocessed,
    /// Any other.
    Custom(RewriteFn),
}

impl Rewrite {
    /// The rewritten answer, or `None` when this answer has nothing to rewrite
    /// (e.g. an empty `Successful`).
    fn apply(&self, request: &Value, answer: &Value) -> Option<Value> {
        let mut answer = answer.clone();
        match self {
            Rewrite::SqsEntryMissing => {
                let successful = answer.get_mut("Successful")?.as_array_mut()?;
                successful.pop()?;
            }
            Rewrite::SqsUnknownId => {
                let entry = answer.get_mut("Successful")?.as_array_mut()?.last_mut()?;
                let id = entry.get("Id")?.as_str()?.to_owned();
                entry["Id"] = Value::String(format!("not-in-the-request-{id}"));
            }
            Rewrite::PutEventsShort => {
                let entries = answer.get_mut("Entries")?.as_array_mut()?;
                entries.pop()?;
            }
            Rewrite::DynamoDbAllUnprocessed => {
                let items = request.get("RequestItems")?.clone();
                answer["UnprocessedItems"] = items;
            }
            Rewrite::Custom(f) => return f(request, &answer),
        }
        Some(answer)
    }
}

/// What happens to a call a [`Rule`] matches.
#[derive(Clone)]
pub enum Fault {
    /// The connection is closed with no answer.
    Cut,
    /// The call never answers and is not forwarded.
    Hang,
    /// The call is forwarded (takes effect), then never answers.
    HangAfterUpstream,
    /// The call is forwarded and its answer rewritten.
    Rewrite(Rewrite),
    /// The call starts an outage this long: it and every call until the end
    /// are cut, new connections refused.
    Outage(Duration),
}

/// Which calls get a fault, and how many.
#[derive(Clone)]
pub struct Rule {
    target: Option<String>,
    body_contains: Vec<String>,
    skip: u64,
    times: u64,
    fault: Fault,
}

impl Rule {
    /// Calls whose `X-Amz-Target` is `target` (e.g. `AWSEvents.PutEvents`).
    pub fn on(target: &str, fault: Fault) -> Self {
        Self {
            target: Some(target.to_owned()),
            body_contains: Vec::new(),
            skip: 0,
            times: u64::MAX,
            fault,
        }
    }

    /// Every call.
    pub fn any(fault: Fault) -> Self {
        Self {
            target: None,
            body_contains: Vec::new(),
            skip: 0,
            times: u64::MAX,
            fault,
        }
    }

    /// Only calls whose request body contains `text` (e.g. one table's
    /// name and one key); several conditions must all hold.
    pub fn body_contains(mut self, text: &str) -> Self {
        self.body_contains.push(text.to_owned());
        self
    }

    /// Lets the first `n` matching calls through untouched.
    pub fn after(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Faults at most `n` matching calls (then lets them through).
    pub fn times(mut self, n: u64) -> Self {
        self.times = n;
        self
    }
}

/// Counters of one rule.
#[derive(Debug, Default)]
pub struct RuleCounts {
    /// Calls the rule matched (faulted or not).
    pub matched: AtomicU64,
    /// Calls it faulted.
    pub faulted: AtomicU64,
}

impl RuleCounts {
    /// Calls it faulted so far.
    pub fn faulted(&self) -> u64 {
        self.faulted.load(Ordering::SeqCst)
    }
}

/// Faulted calls of a proxy, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faulted {
    /// Connections closed at once during an outage.
    pub refused: u64,
    /// Calls cut with no answer (by [`Fault::Cut`] or an outage).
    pub cut: u64,
    /// Calls that never answered.
    pub hung: u64,
    /// Answers rewritten.
    pub rewritten: u64,
}

impl Faulted {
    /// Every faulted call or connection.
    pub fn total(&self) -> u64 {
        self.refused + self.cut + self.hung + self.rewritten
    }
}

#[derive(Default)]
struct Counters {
    refused: AtomicU64,
    cut: AtomicU64,
    hung: AtomicU64,
    rewritten: AtomicU64,
    calls: AtomicU64,
}

struct State {
    upstream: String,
    down: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    rules: Mutex<Vec<(Rule, Arc<RuleCounts>)>>,
    counters: Counters,
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Proxies 127.0.0.1:<free port> to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let endpoint = format!(
            "http://{}",
            listener.local_addr().expect("fault proxy address")
        );
        let state = Arc::new(State {
            upstream,
            down: watch::channel(false).0,
            shutdown: watch::channel(false).0,
            rules: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept(listener, state.clone()));
        Self {
            endpoint,
            state,
            task,
        }
    }

    /// Starts (true) or ends (false) an outage by hand.
    pub fn set_down(&self, down: bool) {
        self.state.down.send_replace(down);
    }

    /// Adds a fault rule (rules are tried in the order added; the first
    /// one that matches and still has faults left applies).
    pub fn inject(&self, rule: Rule) -> Arc<RuleCounts> {
        let counts = Arc::new(RuleCounts::default());
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((rule, counts.clone()));
        counts
    }

    /// Removes every rule (calls in a hang stay hung).
    pub fn clear(&self) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Faulted calls so far.
    pub fn faulted(&self) -> Faulted {
        let c = &self.state.counters;
        Faulted {
            refused: c.refused.load(Ordering::SeqCst),
            cut: c.cut.load(Ordering::SeqCst),
            hung: c.hung.load(Ordering::SeqCst),
            rewritten: c.rewritten.load(Ordering::SeqCst),
        }
    }

    /// Calls that reached the proxy (faulted or not).
    pub fn calls(&self) -> u64 {
        self.state.counters.calls.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Releases hung calls and in-flight connections too.
        self.state.shutdown.send_replace(true);
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        if *state.down.borrow() {
            state.counters.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            let mut shutdown = state.shutdown.subscribe();
            let service = hyper::service::service_fn({
                let state = state.clone();
                move |request| handle(state.clone(), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(client), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        });
    }
}

/// The fault for a call to `target` with `body`, if a rule has one left for it.
fn fault_for(state: &State, target: Option<&str>, body: &[u8]) -> Option<Fault> {
    let body = String::from_utf8_lossy(body);
    let rules = state.rules.lock().unwrap_or_else(|p| p.into_inner());
    for (rule, counts) in rules.iter() {
        if rule.target.as_deref().is_some_and(|t| Some(t) != target)
            || !rule.body_contains.iter().all(|text| body.contains(text))
        {
            continue;
        }
        let n = counts.matched.fetch_add(1, Ordering::SeqCst);
        // One atomic step, so concurrent calls never exceed the budget.
        let within_budget = n >= rule.skip
            && counts
                .faulted
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| {
                    (f < rule.times).then_some(f + 1)
                })
                .is_ok();
        if within_budget {
            return Some(rule.fault.clone());
        }
    }
    None
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    state.counters.calls.fetch_add(1, Ordering::SeqCst);
    let cut = |state: &State| -> Result<Response<Full<Bytes>>, BoxError> {
        state.counters.cut.fetch_add(1, Ordering::SeqCst);
        Err("cut by the fault proxy".into())
    };
    if *state.down.borrow() {
        return cut(&state);
    }
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let fault = fault_for(&state, target.as_deref(), &body);
    match &fault {
        Some(Fault::Cut) => return cut(&state),
        Some(Fault::Outage(length)) => {
            state.down.send_replace(true);
            let (state2, length) = (state.clone(), *length);
            tokio::spawn(async move {
                tokio::time::sleep(length).await;
                state2.down.send_replace(false);
            });
            return cut(&state);
        }
        Some(Fault::Hang) => return hang(&state).await,
        _ => {}
    }
    let forwarded = Request::from_parts(parts, Full::new(body.clone()));
    let mut down = state.down.subscribe();
    let answer = tokio::select! {
        answer = forward(&state.upstream, forwarded) => answer?,
        _ = down.wait_for(|d| *d) => return cut(&state),
    };
    let (parts, answer) = answer;
    let answer = match fault {
        Some(Fault::HangAfterUpstream) => return hang(&state).await,
        Some(Fault::Rewrite(rewrite)) => rewritten(&state, &rewrite, &body, answer),
        _ => answer,
    };
    Ok(respond(parts, answer))
}

/// An answer with `body`, framed by its length (the upstream's framing does
/// not apply to a body read whole).
fn respond(mut parts: hyper::http::response::Parts, body: Bytes) -> Response<Full<Bytes>> {
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts.headers.insert(
        hyper::header::CONTENT_LENGTH,
        hyper::header::HeaderValue::from(body.len()),
    );
    Response::from_parts(parts, Full::new(body))
}

/// Never answers; gives up only when the proxy is dropped.
async fn hang(state: &State) -> Result<Response<Full<Bytes>>, BoxError> {
    state.counters.hung.fetch_add(1, Ordering::SeqCst);
    let _ = state.shutdown.subscribe().wait_for(|s| *s).await;
    Err("the fault proxy shut down".into())
}

/// `answer` with its JSON rewritten (unchanged when the rewrite finds
/// nothing to change or it is not JSON).
fn rewritten(state: &State, rewrite: &Rewrite, request: &Bytes, answer: Bytes) -> Bytes {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let new_answer = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|answer| rewrite.apply(&request, &answer));
    match new_answer {
        Some(new_answer) => {
            state.counters.rewritten.fetch_add(1, Ordering::SeqCst);
            Bytes::from(new_answer.to_string())
        }
        None => answer,
    }
}

/// Sends `request` to `upstream` on a connection of its own and reads the
/// whole answer.
async fn forward(
    upstream: &str,
    request: Request<Full<Bytes>>,
) -> Result<(hyper::http::response::Parts, Bytes), BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let (parts, body) = sender.send_request(request).await?.into_parts();
    Ok((parts, body.collect().await?.to_bytes()))
}
