use super::caps::*;
use super::format::*;
use super::sampling::*;
use super::*;
use serde_json::Value;
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
        let _outer = tracing::info_span!("handle", user_id = "u-outer", step = "store").entered();
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
fn the_capture_doc_example_holds() {
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
    let _invoke = tracing::info_span!("Lambda runtime invoke", requestId = request_id).entered();
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
        let _invocation = tracing::info_span!(INVOCATION_SPAN, function_arn = "arn:x").entered();
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
