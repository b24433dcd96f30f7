//! Structured logs for Lambda, in the shape Powertools for AWS Lambda uses.
//!
//! [`init`] installs a `tracing` subscriber configured the way Lambda's
//! advanced logging controls expect:
//!
//! - `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `ERROR`, `FATAL` meaning `ERROR`), else
//!   `POWERTOOLS_LOG_LEVEL` (`DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`
//!   meaning `ERROR`; also `TRACE`), else `RUST_LOG` (any `EnvFilter`
//!   directives), else `INFO`, sets what is logged. That is Powertools'
//!   priority: Lambda's advanced logging controls first, because Lambda drops
//!   the lines below their level anyway;
//! - `POWERTOOLS_LOGGER_SAMPLE_RATE` (`0` to `1`) logs a share of the
//!   invocations at `DEBUG` on top of that level (see "Debug sampling");
//! - `AWS_LAMBDA_LOG_FORMAT=JSON` (what the template configures) writes one JSON
//!   object per line to stdout; anything else writes readable text;
//! - `POWERTOOLS_DEV` (true: `1`, `true`, `yes`, `on`, `y`, `t`) indents the
//!   JSON by 4 spaces, as Powertools does; CloudWatch then shows one event per
//!   line of it, so it is for local runs (a warning is logged when it is on).
//!
//! In JSON mode every line starts with the same keys, so CloudWatch Logs
//! Insights queries work across all functions:
//!
//! | key | value |
//! |---|---|
//! | `level` | `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR` (Lambda filters JSON logs on it) |
//! | `timestamp` | RFC 3339, UTC, milliseconds: `2024-05-01T12:00:00.123Z` |
//! | `message` | the event's message (`""` if it has none) |
//! | `service` | `POWERTOOLS_SERVICE_NAME`, else `AWS_LAMBDA_FUNCTION_NAME`, else `service_undefined` |
//! | `cold_start` | `true` on lines of the process's first invocation (and before it), `false` after |
//! | `function_name` | `AWS_LAMBDA_FUNCTION_NAME` (absent if unset) |
//! | `function_memory_size` | `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, a number of MB (absent if unset) |
//! | `function_arn` | the invoked ARN (qualified by the alias, `…:function:<name>:live`, when invoked through it), from the `invocation` span [`crate::layer`] opens |
//! | `function_request_id` | `requestId` of the runtime's `Lambda runtime invoke` span |
//! | `xray_trace_id` | `xrayTraceId` of that span |
//! | `correlation_id` | the `correlation_id` field of the batch processor's `record` span or of an `event` span; else the span's `message_id` (the SQS `messageId`) or `event_id` |
//! | `sampling_rate` | `POWERTOOLS_LOGGER_SAMPLE_RATE` when above 0 (absent otherwise) |
//!
//! `function_arn`, `function_request_id`, `xray_trace_id` and
//! `correlation_id` are present on lines logged inside those spans. The
//! runtime's span also carries `tenantId` when there is one (`tenant_id`).
//! A `record` or `event` span with a `correlation_id` of its own (the chain
//! of work it belongs to, e.g. the signup that caused a notification) keeps
//! its `message_id` or `event_id` under that name.
//! Then come the fields of any other enclosing span (outermost first) and the
//! event's own fields, flattened at the top level (`"user_id":"u-1"`); an
//! inner field replaces an outer one of the same name, and a field named like
//! one of the fixed keys that do not come from spans (`level`, `timestamp`,
//! `service`, `cold_start`, `function_name`, `function_memory_size`,
//! `sampling_rate`) is dropped.
//!
//! `cold_start` needs no call from function code: the first `requestId` the
//! process sees is the cold one.
//!
//! The four context spans are kept whatever the level (with
//! `AWS_LAMBDA_LOG_LEVEL=WARN` a warning still names its request and
//! message); every other span and event obeys the level.
//!
//! # Debug sampling
//!
//! With `POWERTOOLS_LOGGER_SAMPLE_RATE=0.1`, one invocation in ten logs its
//! `DEBUG` lines and spans too (libraries' included, within the caps below),
//! whatever the level; the others log at the level. The decision is made per
//! invocation, when the runtime opens its `Lambda runtime invoke` span, from
//! the request id: the invocation is sampled when the first 8 bytes of
//! SHA-256(request id), as a fraction of 2^64, are below the rate. Request ids
//! are random, so that is the rate's share of invocations; the same request
//! id always gets the same answer (a retried async event gets a new one).
//! Powertools for Python decides the same per invocation (with
//! `inject_lambda_context`), by a random draw. Lines outside any invocation
//! (init) are never sampled. A value that is not a number from 0 to 1 is
//! ignored, with a warning. Under Lambda's advanced logging controls at
//! `INFO` (the template), Lambda drops `DEBUG` lines, sampled or not, exactly
//! as it does Powertools'.
//!
//! Fields are structured; callers log ids and counts, never personal data.
//!
//! # Libraries that log payloads are capped
//!
//! Some dependencies log whole requests, responses or invocation bodies at
//! their most verbose levels: emails and names, from the signups and from
//! the items, events and outbox objects written for them. Whatever
//! `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` ask for (a `RUST_LOG` directive naming
//! one of these targets does not lift its cap), the subscriber drops their
//! events and spans above the level shown. A cap covers the target and its
//! submodules (`aws_smithy_runtime` covers `aws_smithy_runtime::client::…`,
//! not `aws_smithy_runtime_api`); the longest matching target wins.
//!
//! | target | most verbose level kept | what the dropped levels log |
//! |---|---|---|
//! | `lambda_runtime::layers::api_response` | `DEBUG` | `TRACE`: every raw invocation body (`raw JSON event received from Lambda`) |
//! | `lambda_runtime::requests` | `DEBUG` | `TRACE`: a streamed response's metadata prelude (headers the handler chose) |
//! | `aws_smithy_runtime` | `INFO` | `TRACE`: every HTTP request and response with its body, every operation's input and output (PutItem items, PutEvents entries, PutObject bodies); `DEBUG`: operation errors, including the item a failed conditional PutItem returns (`ALL_OLD`: a duplicate signup's stored email and name) |
//! | `aws_smithy_runtime_api` | `INFO` | `DEBUG`: errors being retried; `TRACE`: phase changes |
//! | `aws_smithy_runtime_api::client::interceptors::context` | nothing | `ERROR`: an operation error replaced by another, printed in full (it may carry a returned item) |
//! | `aws_sigv4` | `DEBUG` | `TRACE`: the request being signed, the canonical request and the string to sign (headers, query strings, object keys) |
//! | `aws_runtime` | `DEBUG` | `TRACE`: the chunks of an `aws-chunked` upload body (S3 objects sent with a trailing checksum) |
//! | `aws_smithy_http` | `DEBUG` | `TRACE`: event-stream messages |
//!
//! What is lost: the SDK's own account of retries, attempts, endpoint and
//! identity resolution (its `DEBUG` lines), and the wire-level view of calls
//! and invocations. The rest stays at every level: `lambda_runtime`'s
//! polling, `aws_config`'s credential and region loading, the SDK's `INFO`
//! and above, and the function's own lines. Checked against lambda_runtime
//! 1.5, aws-smithy-runtime 1.16, aws-smithy-runtime-api 1.20, aws-sigv4 1.6,
//! aws-runtime 1.10, aws-smithy-http 0.64, h2 0.4 (its frame logs leave out
//! header values and data) and hyper 1.x (its `tracing` output is not
//! compiled in); rustls logs through the `log` crate, which nothing here
//! forwards. Re-read them when upgrading.
//!
//! Two `ERROR` lines stay uncapped and depend on function code: the runtime
//! logs a handler's `Err` with `{:?}`, so handler errors must not carry
//! personal data (`eventline-app`'s `log_privacy` test checks them), and it
//! logs why an invocation body did not deserialize, which names a value
//! only when the event type is stricter than the payload (the functions take
//! `SqsEvent`, whose body is a plain string, or `serde_json::Value`).
//!
//! [`init`] also replaces the panic hook: the default one prints the panic
//! message to stderr, and a message formatted at run time (a slicing panic
//! quotes the string it sliced) can hold input. The hook logs an `ERROR`
//! line with the location and only a message that is a literal.
//!
//! # Capturing logs in tests
//!
//! [`subscriber`] builds the same subscriber over any writer, and [`Capture`]
//! is a writer that keeps what it is given:
//!
//! ```rust
//! use eventline_powertools::logging::{self, Capture, LogConfig};
//!
//! let logs = Capture::new();
//! let subscriber = logging::subscriber(&LogConfig::json("user-processor"), logs.clone());
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(user_id = "u-1", "user stored");
//! });
//! let lines = logs.json_lines();
//! assert_eq!(lines[0]["message"], "user stored");
//! assert_eq!(lines[0]["user_id"], "u-1");
//! assert!(!logs.text().contains("ada@example.com"));
//! ```
//!
//! In an async test, keep the subscriber for the whole test with
//! `let _guard = tracing::subscriber::set_default(subscriber);` on a
//! current-thread runtime (plain `#[tokio::test]`): the default is per thread,
//! so a multi-thread runtime's workers would not see it.

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::io::{self, Write};
use std::num::NonZeroU8;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;
use time::format_description::well_known::iso8601::{Config, EncodedConfig, TimePrecision};
use time::format_description::well_known::Iso8601;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{filter_fn, DynFilterFn, EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Registry;

use crate::batch::RECORD_SPAN;

/// The span `lambda_runtime` opens around each invocation.
const INVOKE_SPAN: &str = "Lambda runtime invoke";
/// The span an EventBridge handler may open around its event.
const EVENT_SPAN: &str = "event";
/// The span [`crate::layer`] opens around each handler call, with the
/// invoked function ARN in its [`FUNCTION_ARN`] field.
pub const INVOCATION_SPAN: &str = "invocation";
/// The `function_arn` key, and the field of [`INVOCATION_SPAN`] that fills it.
pub const FUNCTION_ARN: &str = "function_arn";

const REQUEST_ID: &str = "function_request_id";
const TRACE_ID: &str = "xray_trace_id";
const CORRELATION_ID: &str = "correlation_id";
/// Keys the line sets itself; a field of the same name is dropped.
const FIXED_KEYS: [&str; 7] = [
    "level",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "sampling_rate",
];

/// Installs the global `tracing` subscriber configured from the environment
/// ([`LogConfig::from_env`]), writing to stdout. Call once, first thing in
/// `main`; if a global subscriber is already installed, this does nothing.
pub fn init() {
    let config = LogConfig::from_env();
    let subscriber = subscriber(&config, io::stdout);
    // Only fails if a subscriber is already installed, which is then kept.
    let _ = crate::otel::set_global_default(subscriber);
    for warning in &config.warnings {
        tracing::warn!(problem = %warning, "logging configuration");
    }
    if config.pretty {
        // Powertools warns too: POWERTOOLS_DEV is for non-production use.
        tracing::warn!(
            "POWERTOOLS_DEV is on: log lines are indented and metrics are not written; not for production"
        );
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        tracing::error!(
            panic_message = literal_panic_message(info.payload()),
            location,
            "panicked"
        );
    }));
}

/// The panic's message if it is a literal (`panic!("…")`); anything
/// formatted at run time may quote input, so it is withheld.
fn literal_panic_message(payload: &(dyn std::any::Any + Send)) -> &'static str {
    match payload.downcast_ref::<&'static str>() {
        Some(literal) => literal,
        None => "(withheld: formatted at run time, may quote input)",
    }
}

/// Builds the subscriber [`init`] installs, writing to `writer` instead of
/// stdout. Use it with `tracing::subscriber::with_default` or `set_default`,
/// and a [`Capture`] to read what was logged.
pub fn subscriber<W>(
    config: &LogConfig,
    writer: W,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let levels = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(&config.filter);
    // Without a rate the sampled branch enables nothing, and its level hint
    // stays off so that DEBUG callsites cost nothing.
    let sampling_hint = if config.sampling_rate.is_some() {
        LevelFilter::DEBUG
    } else {
        LevelFilter::OFF
    };
    // The caps come after the level filter, so no directive can lift one.
    let filter = filter_fn(is_context_span)
        .with_max_level_hint(LevelFilter::INFO)
        .or(levels)
        .or(DynFilterFn::new(in_sampled_invocation).with_max_level_hint(sampling_hint))
        .and(filter_fn(within_cap).with_max_level_hint(LevelFilter::TRACE));
    let sampler = Sampler(config.sampling_rate);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match config.format {
        LogFormat::Json => {
            let first_request = Arc::new(OnceLock::new());
            tracing_subscriber::fmt::layer()
                .fmt_fields(SpanFields)
                .event_format(PowertoolsJson {
                    service: config.service.clone(),
                    function_name: config.function_name.clone(),
                    function_memory_size: config.function_memory_size,
                    sampling_rate: config.sampling_rate,
                    pretty: config.pretty,
                    first_request: Arc::clone(&first_request),
                })
                .with_writer(writer)
                .and_then(FirstRequest(first_request))
                .and_then(sampler)
                .with_filter(filter)
                .boxed()
        }
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer)
            .and_then(sampler)
            .with_filter(filter)
            .boxed(),
    };
    Registry::default().with(layer)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with the keys listed in the [module docs](self).
    Json,
    /// `tracing`'s readable text format, spans and fields included, no colours.
    Text,
}

/// What [`subscriber`] logs, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// `EnvFilter` directives: a level (`info`) or per-target ones (`info,aws_smithy_runtime=warn`).
    pub filter: String,
    /// The `service` key.
    pub service: String,
    /// The `function_name` key (omitted when `None`).
    pub function_name: Option<String>,
    /// The `function_memory_size` key, in MB (omitted when `None`).
    pub function_memory_size: Option<u64>,
    /// Share of invocations logged at `DEBUG` (above 0, at most 1), also the
    /// `sampling_rate` key; `None`: no sampling.
    pub sampling_rate: Option<f64>,
    /// JSON indented by 4 spaces (`POWERTOOLS_DEV`).
    pub pretty: bool,
    /// Problems with the variables, which [`init`] logs once it is set up.
    pub warnings: Vec<String>,
}

impl LogConfig {
    /// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`,
    /// `POWERTOOLS_LOG_LEVEL`, `RUST_LOG`, `POWERTOOLS_LOGGER_SAMPLE_RATE`,
    /// `POWERTOOLS_DEV`, `POWERTOOLS_SERVICE_NAME`, `AWS_LAMBDA_FUNCTION_NAME`
    /// and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();
        let format = match var("AWS_LAMBDA_LOG_FORMAT") {
            Some(f) if f.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let filter = match (
            var("AWS_LAMBDA_LOG_LEVEL"),
            var("POWERTOOLS_LOG_LEVEL"),
            var("RUST_LOG"),
        ) {
            (Some(level), _, _) | (None, Some(level), _) => level_directive(&level).to_owned(),
            (None, None, Some(directives)) => directives,
            (None, None, None) => "info".to_owned(),
        };
        let sampling_rate =
            var("POWERTOOLS_LOGGER_SAMPLE_RATE").and_then(|raw| match raw.trim().parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => (rate > 0.0).then_some(rate),
                _ => {
                    warnings.push(format!(
                        "POWERTOOLS_LOGGER_SAMPLE_RATE={raw:?} ignored: not a number from 0 to 1"
                    ));
                    None
                }
            });
        let pretty = match crate::env::flag(&var, "POWERTOOLS_DEV") {
            Ok(dev) => dev.unwrap_or(false),
            Err(problem) => {
                warnings.push(problem);
                false
            }
        };
        Self {
            format,
            filter,
            service: crate::env::service_name(&var),
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            function_memory_size: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .and_then(|mb| mb.trim().parse().ok()),
            sampling_rate,
            pretty,
            warnings,
        }
    }

    /// JSON lines at `INFO` for `service`, without a function name: a start for tests.
    pub fn json(service: impl Into<String>) -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".to_owned(),
            service: service.into(),
            function_name: None,
            function_memory_size: None,
            sampling_rate: None,
            pretty: false,
            warnings: Vec::new(),
        }
    }

    /// Replaces the filter directives (`"debug"`, `"warn,user_processor=info"`).
    pub fn with_filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = directives.into();
        self
    }
}

/// Lambda's and Powertools' log levels as `EnvFilter` directives; an
/// unknown level means `info`.
fn level_directive(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" | "CRITICAL" => "error",
        _ => "info",
    }
}

/// A writer for tests that keeps every byte logged; clones share the buffer.
///
/// Pass a clone to [`subscriber`], log, then read [`Capture::json_lines`] or
/// [`Capture::text`].
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Every line written so far, parsed as JSON.
    ///
    /// # Panics
    ///
    /// If a line is not JSON (the subscriber was not in [`LogFormat::Json`]).
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Targets that log payloads, and the most verbose level kept from each
/// (the table in the [module docs](self) says why).
const PAYLOAD_CAPS: &[(&str, LevelFilter)] = &[
    ("lambda_runtime::layers::api_response", LevelFilter::DEBUG),
    ("lambda_runtime::requests", LevelFilter::DEBUG),
    ("aws_smithy_runtime", LevelFilter::INFO),
    ("aws_smithy_runtime_api", LevelFilter::INFO),
    (
        "aws_smithy_runtime_api::client::interceptors::context",
        LevelFilter::OFF,
    ),
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_runtime", LevelFilter::DEBUG),
    ("aws_smithy_http", LevelFilter::DEBUG),
];

/// The cap on `target`: that of the longest capped target it is, or is a
/// submodule of; `None` if it is not capped. (`Targets` would match by plain
/// prefix, so `aws_sigv4` would also cap a crate named `aws_sigv4x`.)
fn payload_cap(target: &str) -> Option<LevelFilter> {
    PAYLOAD_CAPS
        .iter()
        .filter(|(capped, _)| {
            target
                .strip_prefix(capped)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
        .max_by_key(|(capped, _)| capped.len())
        .map(|(_, cap)| *cap)
}

fn within_cap(meta: &Metadata<'_>) -> bool {
    payload_cap(meta.target()).is_none_or(|cap| cap >= *meta.level())
}

/// The spans whose ids every line inside them carries; kept whatever the
/// level. They are `INFO` spans (the filter's level hint relies on it).
fn is_context_span(meta: &Metadata<'_>) -> bool {
    meta.is_span()
        && *meta.level() <= Level::INFO
        && matches!(
            meta.name(),
            INVOKE_SPAN | RECORD_SPAN | EVENT_SPAN | INVOCATION_SPAN
        )
}

/// Marks an invocation span whose invocation is sampled.
struct Sampled;

/// Decides, when the runtime opens an invocation's span, whether the
/// invocation is sampled ([`is_sampled`]), and marks the span if so.
struct Sampler(Option<f64>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Sampler {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(rate) = self.0 else { return };
        if attrs.metadata().name() != INVOKE_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let sampled =
            matches!(fields.take("requestId"), Some(Value::String(id)) if is_sampled(&id, rate));
        if let (true, Some(span)) = (sampled, ctx.span(id)) {
            span.extensions_mut().insert(Sampled);
        }
    }
}

/// Whether the invocation `request_id` is among the `rate` share logged at
/// `DEBUG`: the first 8 bytes of SHA-256(request id) as a fraction of 2^64.
fn is_sampled(request_id: &str, rate: f64) -> bool {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(request_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // u64 -> f64 rounds, which moves the boundary by far less than a rate can say.
    (u64::from_be_bytes(first) as f64 / 2f64.powi(64)) < rate
}

/// `DEBUG` spans and events inside a sampled invocation.
fn in_sampled_invocation<S: Subscriber + for<'a> LookupSpan<'a>>(
    meta: &Metadata<'_>,
    cx: &Context<'_, S>,
) -> bool {
    *meta.level() == Level::DEBUG
        && cx.lookup_current().is_some_and(|current| {
            current
                .scope()
                .any(|span| span.extensions().get::<Sampled>().is_some())
        })
}

/// Notes the request id of the process's first invocation: the cold one.
/// A layer, because the first invocation may log nothing.
struct FirstRequest(Arc<OnceLock<String>>);

impl<S: Subscriber> Layer<S> for FirstRequest {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        if attrs.metadata().name() != INVOKE_SPAN || self.0.get().is_some() {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(Value::String(request_id)) = fields.take("requestId") {
            // Only the first one is kept.
            let _ = self.0.set(request_id);
        }
    }
}

/// Keeps a span's fields (in [`FormattedFields`]) as a JSON array of
/// `[name, value]` pairs, in the order recorded, for [`PowertoolsJson`].
struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut collected = Fields::default();
        fields.record(&mut collected);
        writer.write_str(&collected.to_json()?)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        let mut collected = Fields::from_json(&current.fields);
        fields.record(&mut collected);
        current.fields = collected.to_json()?;
        Ok(())
    }
}

/// Writes events as Powertools-shaped JSON lines.
struct PowertoolsJson {
    service: String,
    function_name: Option<String>,
    function_memory_size: Option<u64>,
    sampling_rate: Option<f64>,
    /// Indented by 4 spaces, as Powertools does under `POWERTOOLS_DEV`.
    pretty: bool,
    /// Set by [`FirstRequest`].
    first_request: Arc<OnceLock<String>>,
}

impl<S> FormatEvent<S, SpanFields> for PowertoolsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        for span in ctx
            .event_scope()
            .into_iter()
            .flat_map(|scope| scope.from_root())
        {
            if let Some(stored) = span.extensions().get::<FormattedFields<SpanFields>>() {
                let span_fields = Fields::from_json(&stored.fields);
                let correlated = span_fields.0.iter().any(|(k, _)| k == CORRELATION_ID);
                for (name, value) in span_fields.0 {
                    fields.set(log_key(span.name(), name, correlated), value);
                }
            }
        }
        event.record(&mut fields);
        let line = self.line(*event.metadata().level(), SystemTime::now(), fields);
        let text = if self.pretty {
            let mut out = Vec::new();
            let indented = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            line.serialize(&mut serde_json::Serializer::with_formatter(
                &mut out, indented,
            ))
            .map_err(|_| fmt::Error)?;
            String::from_utf8(out).map_err(|_| fmt::Error)?
        } else {
            serde_json::to_string(&line).map_err(|_| fmt::Error)?
        };
        // The fmt layer buffers the line and writes it at once, so lines never interleave.
        writeln!(writer, "{text}")
    }
}

impl PowertoolsJson {
    fn line(&self, level: Level, now: SystemTime, mut fields: Fields) -> Line<'_> {
        let function_request_id = fields.take(REQUEST_ID);
        Line {
            level: level.as_str(),
            timestamp: rfc3339_millis(now),
            message: fields.take("message").unwrap_or_else(|| Value::from("")),
            service: &self.service,
            cold_start: self.is_cold_start(function_request_id.as_ref().and_then(Value::as_str)),
            function_name: self.function_name.as_deref(),
            function_memory_size: self.function_memory_size,
            function_arn: fields.take(FUNCTION_ARN),
            function_request_id,
            xray_trace_id: fields.take(TRACE_ID),
            correlation_id: fields.take(CORRELATION_ID),
            sampling_rate: self.sampling_rate,
            fields: OtherFields(fields),
        }
    }

    fn is_cold_start(&self, request_id: Option<&str>) -> bool {
        match (request_id, self.first_request.get()) {
            (Some(id), Some(first)) => id == first,
            // Before the first invocation: the init phase, part of the cold start.
            (_, None) => true,
            // Outside any invocation, after the first one.
            (None, Some(_)) => false,
        }
    }
}

/// One log line; the keys in the order of the module doc's table.
#[derive(Serialize)]
struct Line<'a> {
    level: &'static str,
    timestamp: String,
    message: Value,
    service: &'a str,
    cold_start: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_memory_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_arn: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_request_id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xray_trace_id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sampling_rate: Option<f64>,
    #[serde(flatten)]
    fields: OtherFields,
}

/// The span and event fields after the fixed keys, without any that would
/// repeat one.
struct OtherFields(Fields);

impl Serialize for OtherFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            (self.0)
                .0
                .iter()
                .filter(|(key, _)| !FIXED_KEYS.contains(&key.as_str()))
                .map(|(key, value)| (key, value)),
        )
    }
}

/// The log key of a span's field: the context spans' ids are renamed. A
/// record's or event's id is its correlation id unless the span has one of
/// its own (`correlated`); then the id keeps its name.
fn log_key(span: &str, field: String, correlated: bool) -> String {
    let renamed = match (span, field.as_str()) {
        (INVOKE_SPAN, "requestId") => REQUEST_ID,
        (INVOKE_SPAN, "xrayTraceId") => TRACE_ID,
        (INVOKE_SPAN, "tenantId") => "tenant_id",
        (RECORD_SPAN, "message_id") | (EVENT_SPAN, "event_id") if !correlated => CORRELATION_ID,
        _ => return field,
    };
    renamed.to_owned()
}

/// Field values in the order first recorded; a later value of a name
/// replaces the earlier one in place (fields are few).
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn set(&mut self, key: String, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key, value)),
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }

    fn to_json(&self) -> Result<String, fmt::Error> {
        serde_json::to_string(&self.0).map_err(|_| fmt::Error)
    }

    /// What [`Fields::to_json`] wrote; empty if it is not that.
    fn from_json(json: &str) -> Self {
        Self(serde_json::from_str(json).unwrap_or_default())
    }

    fn put(&mut self, field: &Field, value: Value) {
        self.set(field.name().to_owned(), value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.put(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            u64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field, Value::from(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

/// ISO 8601 as RFC 3339 profiles it, to the millisecond; UTC is written `Z`.
const MILLISECONDS: EncodedConfig = Config::DEFAULT
    .set_time_precision(TimePrecision::Second {
        decimal_digits: NonZeroU8::new(3),
    })
    .encode();

/// `2024-05-01T12:00:00.123Z`.
fn rfc3339_millis(time: SystemTime) -> String {
    // Fails only past the year 9999; an empty timestamp beats no line.
    OffsetDateTime::from(time)
        .format(&Iso8601::<MILLISECONDS>)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    fn capture(config: LogConfig, log: impl FnOnce()) -> Capture {
        let logs = Capture::new();
        tracing::subscriber::with_default(subscriber(&config, logs.clone()), log);
        logs
    }

    /// Text lines at `INFO` for `service`.
    fn text(service: &str) -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            ..LogConfig::json(service)
        }
    }

    fn config() -> LogConfig {
        LogConfig {
            function_name: Some("eventline-user-processor".to_owned()),
            ..LogConfig::json("user-processor")
        }
    }

    /// Logs `message` as the runtime and the batch processor would: inside
    /// the invocation span of `request_id` and the record span of `message_id`.
    fn log_in_record(request_id: &str, message_id: &str, message: &str) {
        let invoke = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = request_id,
            xrayTraceId = "Root=1-abc"
        );
        let _invoke = invoke.enter();
        let record = tracing::info_span!("record", message_id = %message_id);
        let _record = record.enter();
        tracing::warn!(
            user_id = "u-1",
            error = "email: not an address",
            "{message}"
        );
    }

    #[test]
    fn json_line_has_every_powertools_key() {
        let logs = capture(config(), || log_in_record("r1", "m-1", "record failed"));
        let lines = logs.json_lines();
        assert_eq!(lines.len(), 1, "{}", logs.text());
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "record failed");
        assert_eq!(line["service"], "user-processor");
        assert_eq!(line["cold_start"], true);
        assert_eq!(line["function_name"], "eventline-user-processor");
        assert_eq!(line["function_request_id"], "r1");
        assert_eq!(line["xray_trace_id"], "Root=1-abc");
        assert_eq!(line["correlation_id"], "m-1");
        assert_eq!(line["user_id"], "u-1");
        assert_eq!(line["error"], "email: not an address");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert_eq!(
            timestamp.len(),
            "2024-05-01T12:00:00.123Z".len(),
            "{timestamp}"
        );
        assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
        // The runtime's and processor's own field names are not repeated.
        for raw in ["requestId", "xrayTraceId", "message_id"] {
            assert!(line.get(raw).is_none(), "{raw} in {line}");
        }
    }

    #[test]
    fn fixed_keys_come_first_in_a_stable_order() {
        let logs = capture(config(), || log_in_record("r1", "m-1", "record failed"));
        let text = logs.text();
        let position = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        let order = [
            "level",
            "timestamp",
            "message",
            "service",
            "cold_start",
            "function_name",
            "function_request_id",
            "xray_trace_id",
            "correlation_id",
            "user_id",
        ];
        assert!(text.starts_with("{\"level\":\"WARN\""), "{text}");
        assert!(
            order.windows(2).all(|w| position(w[0]) < position(w[1])),
            "{text}"
        );
    }

    #[test]
    fn cold_start_is_true_for_the_first_request_only() {
        let logs = capture(config(), || {
            tracing::info!("initialising");
            log_in_record("r1", "m-1", "first");
            log_in_record("r2", "m-2", "second");
            tracing::info!("between invocations");
        });
        let cold: Vec<_> = logs
            .json_lines()
            .iter()
            .map(|l| (l["message"].clone(), l["cold_start"].clone()))
            .collect();
        assert_eq!(
            cold,
            [
                ("initialising".into(), true.into()),
                ("first".into(), true.into()),
                ("second".into(), false.into()),
                ("between invocations".into(), false.into()),
            ]
        );
    }

    #[test]
    fn first_request_is_cold_even_if_it_logged_nothing() {
        let logs = capture(config(), || {
            drop(tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "r1"
            ));
            let _r2 = tracing::info_span!("Lambda runtime invoke", requestId = "r2").entered();
            tracing::info!("second");
        });
        assert_eq!(logs.json_lines()[0]["cold_start"], false);
    }

    #[tokio::test]
    async fn ids_come_from_the_real_runtime_and_batch_processor_spans() {
        use crate::batch::{BatchProcessor, Message};
        use tracing::Instrument;

        let logs = Capture::new();
        let _guard = tracing::subscriber::set_default(subscriber(&config(), logs.clone()));
        let mut context = lambda_runtime::Context::default();
        context.request_id = "r1".to_owned();
        context.xray_trace_id = Some("Root=1-abc".to_owned());

        BatchProcessor::new()
            .process(
                vec![Message::new("m-1", "")],
                crate::deadline::Deadline::after(std::time::Duration::from_secs(30)),
                |_| async {
                    tracing::info!(user_id = "u-1", "user stored");
                    Ok::<(), String>(())
                },
            )
            .instrument(lambda_runtime::layers::trace::request_span(&context))
            .await
            .unwrap();

        let lines = logs.json_lines();
        let stored = lines
            .iter()
            .find(|l| l["message"] == "user stored")
            .unwrap();
        assert_eq!(stored["function_request_id"], "r1");
        assert_eq!(stored["xray_trace_id"], "Root=1-abc");
        assert_eq!(stored["correlation_id"], "m-1");
        assert_eq!(stored["cold_start"], true);
        // The batch summary is logged outside any record.
        let summary = lines
            .iter()
            .find(|l| l["message"] == "batch processed")
            .unwrap();
        assert_eq!(summary["function_request_id"], "r1");
        assert!(summary.get("correlation_id").is_none(), "{summary}");
    }

    #[test]
    fn eventbridge_event_id_is_the_correlation_id() {
        let logs = capture(config(), || {
            let _event = tracing::info_span!("event", event_id = "e-1").entered();
            tracing::info!("user created");
        });
        assert_eq!(logs.json_lines()[0]["correlation_id"], "e-1");
    }

    #[test]
    fn a_span_with_its_own_correlation_id_keeps_its_message_or_event_id() {
        let logs = capture(config(), || {
            let record = tracing::info_span!("record", message_id = "m-2", correlation_id = "m-1");
            record.in_scope(|| tracing::info!("notification delivered"));
            let event = tracing::info_span!(
                "event",
                event_id = "e-1",
                correlation_id = tracing::field::Empty
            );
            event.in_scope(|| tracing::info!("before the detail is read"));
            event.record("correlation_id", "m-1");
            event.in_scope(|| tracing::info!("profile created"));
        });
        let lines = logs.json_lines();
        let ids = |i: usize, key: &str| lines[i].get(key).cloned().unwrap_or_default();
        assert_eq!(
            (ids(0, "correlation_id"), ids(0, "message_id")),
            ("m-1".into(), "m-2".into())
        );
        assert_eq!(
            (ids(1, "correlation_id"), ids(1, "event_id")),
            ("e-1".into(), Value::Null)
        );
        assert_eq!(
            (ids(2, "correlation_id"), ids(2, "event_id")),
            ("m-1".into(), "e-1".into())
        );
    }

    #[test]
    fn context_keys_are_absent_outside_their_spans() {
        let logs = capture(LogConfig::json("svc"), || {
            tracing::info!(count = 3, "started")
        });
        let line = &logs.json_lines()[0];
        for key in [
            "function_name",
            "function_request_id",
            "xray_trace_id",
            "correlation_id",
        ] {
            assert!(line.get(key).is_none(), "{key} in {line}");
        }
        assert_eq!(line["count"], 3);
    }

    #[test]
    fn other_span_fields_are_flattened_and_inner_values_win() {
        let logs = capture(config(), || {
            let _outer =
                tracing::info_span!("handle", user_id = "u-outer", step = "store").entered();
            let _inner = tracing::info_span!("write", user_id = tracing::field::Empty).entered();
            tracing::Span::current().record("user_id", "u-inner");
            tracing::info!(attempt = 2, ok = true, ratio = 0.5, "written");
        });
        let line = &logs.json_lines()[0];
        assert_eq!(line["user_id"], "u-inner");
        assert_eq!(line["step"], "store");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ratio"], 0.5);
    }

    #[test]
    fn fields_cannot_overwrite_fixed_keys() {
        let logs = capture(config(), || {
            tracing::info!(service = "spoofed", level = "none", "hello")
        });
        let text = logs.text();
        let line = &logs.json_lines()[0];
        assert_eq!(line["service"], "user-processor");
        assert_eq!(line["level"], "INFO");
        assert_eq!(text.matches("\"service\"").count(), 1, "{text}");
    }

    #[test]
    fn errors_are_logged_with_their_causes() {
        let error = Wrapped(io::Error::other("connection reset"));
        let logs = capture(config(), || {
            tracing::error!(
                error = &error as &(dyn std::error::Error + 'static),
                "put failed"
            )
        });
        assert_eq!(
            logs.json_lines()[0]["error"],
            "store unavailable: connection reset"
        );
    }

    #[derive(Debug)]
    struct Wrapped(io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("store unavailable")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn level_filter_drops_lower_levels_but_keeps_context() {
        let logs = capture(config().with_filter("warn"), || {
            log_in_record("r1", "m-1", "kept");
            tracing::info!("dropped");
            let _handler = tracing::info_span!("handle", step = "dropped span").entered();
            tracing::error!("also kept");
        });
        let lines = logs.json_lines();
        let messages: Vec<_> = lines.iter().map(|l| l["message"].clone()).collect();
        assert_eq!(messages, ["kept", "also kept"]);
        assert_eq!(lines[0]["function_request_id"], "r1");
        assert_eq!(lines[0]["correlation_id"], "m-1");
        assert!(lines[1].get("step").is_none(), "{}", lines[1]);
    }

    /// One event per (target, level) pair, as the libraries log them, each
    /// carrying an address so a leak would show.
    fn log_as_libraries() {
        macro_rules! at {
            ($level:ident, $target:literal) => {
                tracing::$level!(
                    target: $target,
                    body = "{\"email\":\"ada@example.com\"}",
                    "{} {}",
                    $target,
                    stringify!($level)
                )
            };
        }
        at!(trace, "lambda_runtime::layers::api_response");
        at!(debug, "lambda_runtime::layers::api_response");
        at!(trace, "lambda_runtime::requests");
        at!(trace, "lambda_runtime::runtime");
        at!(trace, "aws_smithy_runtime::client::orchestrator");
        at!(debug, "aws_smithy_runtime::client::orchestrator");
        at!(info, "aws_smithy_runtime::client::orchestrator");
        at!(debug, "aws_smithy_runtime_api::client::retries");
        at!(warn, "aws_smithy_runtime_api::http::request");
        at!(
            error,
            "aws_smithy_runtime_api::client::interceptors::context"
        );
        at!(trace, "aws_sigv4::http_request::sign");
        at!(debug, "aws_sigv4::http_request::sign");
        at!(trace, "aws_runtime::content_encoding::body::http_body_1_x");
        at!(trace, "aws_smithy_http::event_stream::sender");
        at!(trace, "aws_config::meta::region");
        at!(trace, "user_processor");
    }

    const KEPT_FROM_LIBRARIES: [&str; 7] = [
        "lambda_runtime::layers::api_response debug",
        "lambda_runtime::runtime trace",
        "aws_smithy_runtime::client::orchestrator info",
        "aws_smithy_runtime_api::http::request warn",
        "aws_sigv4::http_request::sign debug",
        "aws_config::meta::region trace",
        "user_processor trace",
    ];

    fn messages(logs: &Capture) -> Vec<String> {
        logs.json_lines()
            .iter()
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn payload_bearing_targets_are_capped_at_trace() {
        let lambda_trace = from_vars(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]);
        assert_eq!(lambda_trace.filter, "trace");
        let logs = capture(config().with_filter(lambda_trace.filter), log_as_libraries);
        assert_eq!(messages(&logs), KEPT_FROM_LIBRARIES, "{}", logs.text());
    }

    #[test]
    fn rust_log_directives_cannot_lift_a_cap() {
        let rust_log = "trace,aws_smithy_runtime=trace,aws_sigv4=trace,\
                        lambda_runtime::layers::api_response=trace,\
                        aws_smithy_runtime_api::client::interceptors::context=trace";
        let logs = capture(config().with_filter(rust_log), log_as_libraries);
        assert_eq!(messages(&logs), KEPT_FROM_LIBRARIES, "{}", logs.text());
    }

    #[test]
    fn caps_hold_in_text_format_and_for_spans() {
        let logs = capture(text("svc").with_filter("trace"), || {
            let _span = tracing::debug_span!(
                target: "aws_smithy_runtime::client::orchestrator",
                "invoke",
                input = "ada@example.com"
            )
            .entered();
            tracing::trace!(target: "aws_sigv4::http_request::sign", "ada@example.com");
            tracing::info!("kept");
        });
        let text = logs.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("kept"), "{text}");
        assert!(!text.contains("ada@example.com"), "{text}");
    }

    #[test]
    fn a_cap_covers_submodules_and_the_longest_target_wins() {
        assert_eq!(payload_cap("aws_smithy_runtime"), Some(LevelFilter::INFO));
        assert_eq!(
            payload_cap("aws_smithy_runtime::client::orchestrator::http"),
            Some(LevelFilter::INFO)
        );
        // Another crate whose name merely starts the same way.
        assert_eq!(
            payload_cap("aws_smithy_runtime_api::client::retries"),
            Some(LevelFilter::INFO)
        );
        assert_eq!(
            payload_cap("aws_smithy_runtime_api::client::interceptors::context"),
            Some(LevelFilter::OFF)
        );
        assert_eq!(payload_cap("aws_sigv4x"), None);
        assert_eq!(payload_cap("lambda_runtime::runtime"), None);
        assert_eq!(payload_cap("aws_config"), None);
    }

    #[test]
    fn panic_messages_are_kept_only_when_literal() {
        let literal: Box<dyn std::any::Any + Send> = Box::new("invariant broken");
        let formatted: Box<dyn std::any::Any + Send> = Box::new(format!(
            "byte index 3 is not a char boundary of `{}`",
            "Adé"
        ));
        assert_eq!(literal_panic_message(literal.as_ref()), "invariant broken");
        assert!(!literal_panic_message(formatted.as_ref()).contains("Adé"));
    }

    #[test]
    fn debug_filter_lets_debug_through() {
        let logs = capture(config().with_filter("debug"), || {
            tracing::debug!("visible");
            tracing::trace!("hidden");
        });
        let lines = logs.json_lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["level"], "DEBUG");
    }

    #[test]
    fn text_format_is_readable_and_shows_context() {
        let logs = capture(text("svc"), || {
            log_in_record("r1", "m-1", "record failed");
            tracing::debug!("hidden");
        });
        let text = logs.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(" WARN "), "{text}");
        assert!(text.contains("record failed"), "{text}");
        assert!(text.contains("requestId=\"r1\""), "{text}");
        assert!(text.contains("message_id=m-1"), "{text}");
        assert!(text.contains("user_id=\"u-1\""), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes: {text:?}");
        assert!(serde_json::from_str::<Value>(text.trim()).is_err());
    }

    #[test]
    fn module_doc_example_holds() {
        let logs = Capture::new();
        let subscriber = subscriber(&LogConfig::json("user-processor"), logs.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(user_id = "u-1", "user stored");
        });
        let lines = logs.json_lines();
        assert_eq!(lines[0]["message"], "user stored");
        assert_eq!(lines[0]["user_id"], "u-1");
        assert!(!logs.text().contains("ada@example.com"));
    }

    #[tokio::test]
    async fn set_default_captures_an_async_handler() {
        let logs = Capture::new();
        let _guard = tracing::subscriber::set_default(subscriber(&config(), logs.clone()));
        async {
            tokio::task::yield_now().await;
            tracing::info!("in async handler");
        }
        .await;
        assert_eq!(logs.json_lines()[0]["message"], "in async handler");
    }

    fn from_vars(vars: &[(&str, &str)]) -> LogConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn config_follows_lambda_logging_controls() {
        let config = from_vars(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "FATAL"),
            ("RUST_LOG", "trace"),
            ("AWS_LAMBDA_FUNCTION_NAME", "eventline-user-processor"),
        ]);
        assert_eq!(
            config,
            LogConfig {
                format: LogFormat::Json,
                filter: "error".to_owned(),
                service: "eventline-user-processor".to_owned(),
                function_name: Some("eventline-user-processor".to_owned()),
                function_memory_size: None,
                sampling_rate: None,
                pretty: false,
                warnings: Vec::new(),
            }
        );
    }

    #[test]
    fn config_defaults_to_text_at_info_for_an_undefined_service() {
        assert_eq!(
            from_vars(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]),
            text("service_undefined")
        );
        let config = from_vars(&[
            ("RUST_LOG", "warn,user_processor=debug"),
            ("POWERTOOLS_SERVICE_NAME", "signups"),
            ("AWS_LAMBDA_FUNCTION_NAME", "eventline-user-processor"),
            ("AWS_LAMBDA_LOG_LEVEL", ""),
        ]);
        assert_eq!(config.filter, "warn,user_processor=debug");
        assert_eq!(config.service, "signups");
    }

    #[test]
    fn powertools_log_level_comes_after_lambdas_and_before_rust_log() {
        let level = |vars: &[(&str, &str)]| from_vars(vars).filter;
        let lambda = ("AWS_LAMBDA_LOG_LEVEL", "WARN");
        let powertools = ("POWERTOOLS_LOG_LEVEL", "DEBUG");
        let rust_log = ("RUST_LOG", "trace,aws_config=info");
        assert_eq!(level(&[lambda, powertools, rust_log]), "warn");
        assert_eq!(level(&[powertools, rust_log]), "debug");
        assert_eq!(level(&[rust_log]), "trace,aws_config=info");
        assert_eq!(level(&[("POWERTOOLS_LOG_LEVEL", "critical")]), "error");
        assert_eq!(level(&[("POWERTOOLS_LOG_LEVEL", "WARNING")]), "warn");
        assert_eq!(level(&[("POWERTOOLS_LOG_LEVEL", "verbose")]), "info");
    }

    #[test]
    fn config_reads_sampling_memory_size_and_dev_mode() {
        let config = from_vars(&[
            ("POWERTOOLS_LOGGER_SAMPLE_RATE", "0.25"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("POWERTOOLS_DEV", "True"),
        ]);
        assert_eq!(config.sampling_rate, Some(0.25));
        assert_eq!(config.function_memory_size, Some(128));
        assert!(config.pretty);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            from_vars(&[("POWERTOOLS_LOGGER_SAMPLE_RATE", "0")]).sampling_rate,
            None
        );
        for bad in ["1.5", "-0.1", "ten", "NaN"] {
            let config = from_vars(&[("POWERTOOLS_LOGGER_SAMPLE_RATE", bad)]);
            assert_eq!(config.sampling_rate, None, "{bad}");
            assert_eq!(config.warnings.len(), 1, "{bad}");
        }
        let config = from_vars(&[("POWERTOOLS_DEV", "perhaps")]);
        assert!(!config.pretty);
        assert_eq!(config.warnings.len(), 1);
    }

    /// One invocation of `request_id` logging a debug and an info line, as the
    /// runtime would (its span, with the request id).
    fn invocation(request_id: &str) {
        let _invoke =
            tracing::info_span!("Lambda runtime invoke", requestId = request_id).entered();
        tracing::debug!(request = request_id, "debug detail");
        let _inner = tracing::debug_span!("step", step = "store").entered();
        tracing::info!(request = request_id, "stored");
    }

    #[test]
    fn a_sampled_invocation_logs_debug_lines_and_spans_and_only_it() {
        let ids: Vec<String> = (0..40).map(|n| format!("req-{n}")).collect();
        let sampled: Vec<&String> = ids.iter().filter(|id| is_sampled(id, 0.5)).collect();
        assert!(
            !sampled.is_empty() && sampled.len() < ids.len(),
            "both kinds present"
        );
        let config = LogConfig {
            sampling_rate: Some(0.5),
            ..config()
        };
        let logs = capture(config, || {
            tracing::debug!("init detail");
            ids.iter().for_each(|id| invocation(id));
        });
        let lines = logs.json_lines();
        let debug_requests: Vec<&str> = lines
            .iter()
            .filter(|l| l["level"] == "DEBUG")
            .map(|l| l["request"].as_str().unwrap())
            .collect();
        assert_eq!(debug_requests, sampled, "{}", logs.text());
        // Every invocation logs its info line; a sampled one also shows its debug span's field.
        let stored: Vec<&Value> = lines.iter().filter(|l| l["message"] == "stored").collect();
        assert_eq!(stored.len(), ids.len());
        for line in stored {
            let was_sampled = sampled.iter().any(|id| line["request"] == id.as_str());
            assert_eq!(line.get("step").is_some(), was_sampled, "{line}");
            assert_eq!(line["sampling_rate"], 0.5);
        }
    }

    #[test]
    fn without_a_rate_nothing_is_sampled_and_no_rate_is_shown() {
        let logs = capture(config(), || invocation("req-1"));
        let lines = logs.json_lines();
        assert_eq!(lines.len(), 1, "{}", logs.text());
        assert!(lines[0].get("sampling_rate").is_none());
        let all = LogConfig {
            sampling_rate: Some(1.0),
            ..config()
        };
        let logs = capture(all, || invocation("req-1"));
        assert_eq!(logs.json_lines().len(), 2, "{}", logs.text());
    }

    #[test]
    fn sampling_caps_still_hold() {
        let all = LogConfig {
            sampling_rate: Some(1.0),
            ..config()
        };
        let logs = capture(all, || {
            let _invoke = tracing::info_span!("Lambda runtime invoke", requestId = "r1").entered();
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "ada@example.com");
            tracing::debug!(target: "aws_sigv4::http_request::sign", "kept");
        });
        assert_eq!(messages(&logs), ["kept"], "{}", logs.text());
    }

    #[test]
    fn the_sampled_share_follows_the_rate() {
        let sampled = (0..10_000)
            .filter(|n| is_sampled(&format!("8f2c4e1a-0000-4000-8000-{n:012}"), 0.1))
            .count();
        assert!((900..=1100).contains(&sampled), "{sampled} of 10000 at 0.1");
        assert!(!is_sampled("any", 0.0));
        assert!(is_sampled("any", 1.0));
    }

    #[test]
    fn memory_size_and_function_arn_are_fixed_keys_in_order() {
        let config = LogConfig {
            function_memory_size: Some(128),
            sampling_rate: Some(1.0),
            ..config()
        };
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:eventline-user-processor:live";
        let logs = capture(config, || {
            let _invoke = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "r1",
                xrayTraceId = "Root=1-abc"
            )
            .entered();
            let _invocation = tracing::info_span!(INVOCATION_SPAN, function_arn = arn).entered();
            let _record = tracing::info_span!("record", message_id = "m-1").entered();
            tracing::info!(function_memory_size = 1, sampling_rate = 9, "stored");
        });
        let text = logs.text();
        let line = &logs.json_lines()[0];
        assert_eq!(line["function_memory_size"], 128);
        assert_eq!(line["function_arn"], arn);
        assert_eq!(line["sampling_rate"], 1.0);
        let position = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        let order = [
            "cold_start",
            "function_name",
            "function_memory_size",
            "function_arn",
            "function_request_id",
            "xray_trace_id",
            "correlation_id",
            "sampling_rate",
        ];
        assert!(
            order.windows(2).all(|w| position(w[0]) < position(w[1])),
            "{text}"
        );
        assert_eq!(text.matches("\"sampling_rate\"").count(), 1, "{text}");
        assert_eq!(
            text.matches("\"function_memory_size\"").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn the_invocation_span_is_kept_at_any_level() {
        let logs = capture(config().with_filter("warn"), || {
            let _invocation =
                tracing::info_span!(INVOCATION_SPAN, function_arn = "arn:x").entered();
            tracing::warn!("slow");
        });
        assert_eq!(logs.json_lines()[0]["function_arn"], "arn:x");
    }

    #[test]
    fn dev_mode_indents_json_by_four_spaces() {
        let pretty = LogConfig {
            pretty: true,
            ..config()
        };
        let logs = capture(pretty, || tracing::info!(user_id = "u-1", "stored"));
        let text = logs.text();
        assert!(text.starts_with("{\n    \"level\": \"INFO\","), "{text}");
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["user_id"], "u-1");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = |ms: u64| rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_210_096_123), "2024-02-29T12:34:56.123Z");
        assert_eq!(at(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(at(253_402_300_799_000), "9999-12-31T23:59:59.000Z");
    }
}
