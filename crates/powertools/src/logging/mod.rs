//! Structured logs for Lambda, in the shape Powertools for AWS Lambda uses.
//!
//! [`init`] installs the `tracing` subscriber [`subscriber`] builds,
//! configured from the environment the way Lambda's advanced logging
//! controls and Powertools expect ([`LogConfig::from_env`]:
//! `AWS_LAMBDA_LOG_LEVEL`, `POWERTOOLS_LOG_LEVEL`, `RUST_LOG`,
//! `AWS_LAMBDA_LOG_FORMAT`, `POWERTOOLS_LOGGER_SAMPLE_RATE`, `POWERTOOLS_DEV`).
//! In JSON mode every line starts with Powertools' keys (`level`,
//! `timestamp`, `message`, `service`, `cold_start`, `function_request_id`,
//! `correlation_id`…), so one Logs Insights query works across functions.
//!
//! What it guarantees: targets that log payloads (the runtime's raw events,
//! the SDK's requests and responses) are capped whatever the level asks, so
//! no personal data reaches the logs; the context spans (invocation, record,
//! event) are kept at any level; the panic hook logs a panic's message only
//! when it is a literal. The key table, the sampling rule and what each cap
//! drops are in docs/observability.md ("The log line contract").
//!
//! Roles: `config` (the variables), `format` and `fields` (the JSON line),
//! `cold_start`, `sampling`, `caps`; `Capture` (tests, feature `test-util`).

mod caps;
#[cfg(any(test, feature = "test-util"))]
mod capture;
mod cold_start;
mod config;
mod fields;
mod format;
mod sampling;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "test-util"))]
pub use capture::Capture;
pub use config::{LogConfig, LogFormat};

use std::io;
use std::sync::{Arc, OnceLock};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, DynFilterFn, EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Registry;

use crate::batch::RECORD_SPAN;
use caps::within_cap;
use cold_start::FirstRequest;
use format::{PowertoolsJson, SpanFields};
use sampling::{in_sampled_invocation, Sampler};

/// The span `lambda_runtime` opens around each invocation.
const INVOKE_SPAN: &str = "Lambda runtime invoke";
/// The span an EventBridge handler may open around its event.
const EVENT_SPAN: &str = "event";
/// The span [`crate::invocation_layer`] opens around each handler call, with the
/// invoked function ARN in its [`FUNCTION_ARN`] field.
pub const INVOCATION_SPAN: &str = "invocation";
/// The `function_arn` key, and the field of [`INVOCATION_SPAN`] that fills it.
pub const FUNCTION_ARN: &str = "function_arn";

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
/// and a `Capture` (feature `test-util`) to read what was logged.
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
