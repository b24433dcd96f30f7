//! AWS calls as OpenTelemetry spans, only when an exporter is configured.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! set, [`from_env`] gives a `tracing` layer that exports spans over OTLP
//! HTTP/protobuf (the ADOT collector layer listens on `localhost:4318`), and
//! [`run`] wraps each invocation in `lambda_runtime`'s OpenTelemetry span,
//! flushing the spans before Lambda freezes the process. The AWS SDK opens
//! one span per operation (`DynamoDB.PutItem`, with `rpc.service` and
//! `rpc.method`) and one per attempt (`try_attempt`); those, the invocation
//! span and the functions' own spans are exported. Events are not: logs go
//! to CloudWatch, and the SDK's debug events may quote items.
//!
//! Without the variable nothing is built: no layer, no exporter, no thread,
//! and [`run`] is `lambda_runtime::run`. Without the `otel` cargo feature
//! [`run`] is `lambda_runtime::run` whatever the environment.
//! docs/observability.md ("AWS calls as spans") has the cost, measured.

use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::future::Future;

#[cfg(feature = "otel")]
pub use enabled::*;

/// Installs `subscriber` as the global default, with the OTLP export layer
/// on top when [`from_env`] builds one. Fails only if a global subscriber
/// is already installed.
pub fn set_global_default<S>(
    subscriber: S,
) -> Result<(), tracing::subscriber::SetGlobalDefaultError>
where
    S: tracing::Subscriber
        + for<'a> tracing_subscriber::registry::LookupSpan<'a>
        + Send
        + Sync
        + 'static,
{
    #[cfg(feature = "otel")]
    if let Some(otel) = from_env::<S>() {
        use tracing_subscriber::layer::SubscriberExt;
        return tracing::subscriber::set_global_default(subscriber.with(otel));
    }
    tracing::subscriber::set_global_default(subscriber)
}

/// The runtime loop of a function, like `lambda_runtime::run` (the runtime's
/// request span included), with the OpenTelemetry invocation span and
/// flush around each invocation when [`from_env`] built an exporter.
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: lambda_runtime::tower::Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<lambda_runtime::Error> + Send + Debug,
{
    let runtime =
        lambda_runtime::Runtime::new(handler).layer(lambda_runtime::layers::TracingLayer::new());
    #[cfg(feature = "otel")]
    if let Some(provider) = enabled::PROVIDER.get() {
        let provider = provider.clone();
        let flush = move || {
            // A failed export loses spans, not the invocation.
            if let Err(error) = provider.force_flush() {
                tracing::warn!(%error, "OpenTelemetry spans not flushed");
            }
        };
        let layer = lambda_runtime::layers::OpenTelemetryLayer::new(flush)
            .with_trigger(lambda_runtime::layers::OpenTelemetryFaasTrigger::PubSub);
        return runtime.layer(layer).run().await;
    }
    runtime.run().await
}

#[cfg(feature = "otel")]
mod enabled {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::OnceLock;
    use tracing::{Level, Metadata, Subscriber};
    use tracing_subscriber::filter::{filter_fn, LevelFilter};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// The provider [`from_env`] built, flushed by [`super::run`].
    pub(super) static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// Variables that name an OTLP endpoint; either turns the export on.
    pub const ENDPOINT_VARIABLES: [&str; 2] = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ];

    /// Whether `lookup` names an OTLP endpoint (a non-empty value).
    pub fn configured(lookup: impl Fn(&str) -> Option<String>) -> bool {
        ENDPOINT_VARIABLES
            .iter()
            .any(|name| lookup(name).is_some_and(|value| !value.trim().is_empty()))
    }

    /// The OTLP export layer when an endpoint is configured in the process
    /// environment, else `None` (nothing built). The exporter reads the
    /// endpoint, headers and timeout from the standard `OTEL_*` variables.
    /// Called once, by [`super::set_global_default`].
    pub fn from_env<S>() -> Option<impl Layer<S> + Send + Sync>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        if !configured(|name| std::env::var(name).ok()) {
            return None;
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => exporter,
            Err(error) => {
                // The subscriber is not installed yet: stderr is all there is.
                eprintln!("OpenTelemetry export off: {error}");
                return None;
            }
        };
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
                resource = resource.with_service_name(function);
            }
        }
        // The batch processor exports from its own thread; the runtime layer
        // flushes it after each invocation.
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let provider = PROVIDER.get_or_init(|| provider);
        Some(layer(provider))
    }

    /// The `tracing` → OpenTelemetry layer over `provider`, exporting spans
    /// only (see the module docs). [`from_env`] uses it; tests give it a
    /// provider over an in-memory exporter.
    pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("eventline"))
            .with_filter(filter_fn(exported).with_max_level_hint(LevelFilter::DEBUG))
    }

    /// Spans at `INFO` and above, plus the SDK's `DEBUG` operation and
    /// attempt spans; no events.
    fn exported(meta: &Metadata<'_>) -> bool {
        meta.is_span()
            && (*meta.level() <= Level::INFO
                || meta.target().starts_with("aws_sdk_")
                || meta.name() == "try_attempt")
    }
}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Registry;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn an_endpoint_variable_turns_the_export_on() {
        assert!(!configured(lookup(&[])));
        assert!(!configured(lookup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(configured(lookup(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://localhost:4318"
        )])));
        assert!(configured(lookup(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://localhost:4318/v1/traces"
        )])));
    }

    #[test]
    fn without_an_endpoint_no_layer_is_built() {
        if configured(|name| std::env::var(name).ok()) {
            return; // the test process itself exports; nothing to check
        }
        assert!(from_env::<Registry>().is_none());
        assert!(PROVIDER.get().is_none());
    }

    #[test]
    fn spans_are_exported_and_events_are_not() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = Registry::default().with(layer::<Registry>(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let _op = tracing::debug_span!(target: "aws_sdk_dynamodb::operation::put_item", "DynamoDB.PutItem", "rpc.method" = "PutItem").entered();
            let _attempt = tracing::debug_span!(target: "aws_smithy_runtime::client::orchestrator", "try_attempt").entered();
            tracing::debug_span!(target: "aws_smithy_runtime::client::orchestrator", "serialization").in_scope(|| {});
            tracing::info!(email = "ada@example.com", "not exported");
        });
        let spans = exporter.get_finished_spans().unwrap();
        let names: Vec<_> = spans.iter().map(|span| span.name.to_string()).collect();
        assert_eq!(names, ["try_attempt", "DynamoDB.PutItem"]);
        assert!(spans.iter().all(|span| span.events.is_empty()));
    }
}
