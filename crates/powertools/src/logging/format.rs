//! The JSON line: Powertools' keys first, then span and event fields flattened.

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::num::NonZeroU8;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;
use time::format_description::well_known::iso8601::{Config, EncodedConfig, TimePrecision};
use time::format_description::well_known::Iso8601;
use time::OffsetDateTime;
use tracing::{span, Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::cold_start::is_cold_start;
use super::fields::Fields;
use super::{EVENT_SPAN, FUNCTION_ARN, INVOKE_SPAN};
use crate::batch::RECORD_SPAN;

pub(super) const REQUEST_ID: &str = "function_request_id";
pub(super) const TRACE_ID: &str = "xray_trace_id";
pub(super) const CORRELATION_ID: &str = "correlation_id";
/// Keys the line sets itself; a field of the same name is dropped.
pub(super) const FIXED_KEYS: [&str; 7] = [
    "level",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "sampling_rate",
];

/// Keeps a span's fields (in [`FormattedFields`]) as a JSON array of
/// `[name, value]` pairs, in the order recorded, for [`PowertoolsJson`].
pub(super) struct SpanFields;

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
pub(super) struct PowertoolsJson {
    pub(super) service: String,
    pub(super) function_name: Option<String>,
    pub(super) function_memory_size: Option<u64>,
    pub(super) sampling_rate: Option<f64>,
    /// Indented by 4 spaces, as Powertools does under `POWERTOOLS_DEV`.
    pub(super) pretty: bool,
    /// Set by [`FirstRequest`](super::cold_start::FirstRequest).
    pub(super) first_request: Arc<OnceLock<String>>,
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
            cold_start: is_cold_start(
                &self.first_request,
                function_request_id.as_ref().and_then(Value::as_str),
            ),
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
}

/// One log line; the keys in the order of the table in docs/observability.md.
#[derive(Serialize)]
pub(super) struct Line<'a> {
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
pub(super) struct OtherFields(Fields);

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
pub(super) fn log_key(span: &str, field: String, correlated: bool) -> String {
    let renamed = match (span, field.as_str()) {
        (INVOKE_SPAN, "requestId") => REQUEST_ID,
        (INVOKE_SPAN, "xrayTraceId") => TRACE_ID,
        (INVOKE_SPAN, "tenantId") => "tenant_id",
        (RECORD_SPAN, "message_id") | (EVENT_SPAN, "event_id") if !correlated => CORRELATION_ID,
        _ => return field,
    };
    renamed.to_owned()
}

/// ISO 8601 as RFC 3339 profiles it, to the millisecond; UTC is written `Z`.
pub(super) const MILLISECONDS: EncodedConfig = Config::DEFAULT
    .set_time_precision(TimePrecision::Second {
        decimal_digits: NonZeroU8::new(3),
    })
    .encode();

/// `2024-05-01T12:00:00.123Z`.
pub(super) fn rfc3339_millis(time: SystemTime) -> String {
    // Fails only past the year 9999; an empty timestamp beats no line.
    OffsetDateTime::from(time)
        .format(&Iso8601::<MILLISECONDS>)
        .unwrap_or_default()
}
