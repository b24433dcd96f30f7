//! Contract: with the OpenTelemetry layer installed (`eventline_powertools::otel`,
//! on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set), an AWS call through an
//! adapter is exported as a span naming the service and operation, with one
//! child span per attempt, and no item contents.
//!
//! A test binary of its own: whether a callsite is enabled is cached across
//! threads, and other tests installing and dropping their own subscribers
//! meanwhile can leave the SDK's spans cached as disabled for this one.

use eventline_app::ports::UserStore;
use eventline_aws::dynamodb::DynamoUserStore;
use eventline_domain::{Signup, Timestamp, User};
use eventline_tests::*;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn user(id: &str, email: &str, name: &str) -> User {
    let body = serde_json::json!({"user_id": id, "email": email, "name": name}).to_string();
    User::from_signup(
        Signup::parse(&body).unwrap(),
        Timestamp::from_unix_millis(1_795_771_466_123),
    )
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[tokio::test]
async fn an_aws_call_is_a_span_naming_service_and_operation() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber =
        Registry::default().with(eventline_powertools::otel::layer::<Registry>(&provider));
    // Current-thread runtime: the default subscriber covers the whole test.
    let _guard = tracing::subscriber::set_default(subscriber);

    let sdk = sdk_config().await;
    let table = unique("users-otel");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    let ada = user("u1", "ada@example.com", "Ada Lovelace");
    let lock = eventline_powertools::item_lock::ItemLock {
        attempt: "a1".into(),
        until_ms: 5_000,
    };
    store.create(&ada, &lock).await.unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let put = spans
        .iter()
        .find(|span| span.name == "DynamoDB.PutItem")
        .unwrap_or_else(|| {
            panic!(
                "no PutItem span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        attribute(put, "rpc.service"),
        Some(&Value::from("DynamoDB"))
    );
    assert_eq!(attribute(put, "rpc.method"), Some(&Value::from("PutItem")));
    let attempts: Vec<_> = spans
        .iter()
        .filter(|span| {
            span.name == "try_attempt" && span.parent_span_id == put.span_context.span_id()
        })
        .collect();
    assert_eq!(attempts.len(), 1, "one attempt against a healthy moto");
    let exported = format!("{spans:?}");
    assert!(
        !exported.contains("ada@example.com"),
        "no item contents in spans"
    );
}
