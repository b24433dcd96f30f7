//! Test support: SDK clients pointed at the project's moto server, unique
//! resource names, resource creation, the Lambda-shaped SQS event that a
//! received message becomes, and invoking a function's service with it.
//!
//! The server's endpoint comes from `EVENTLINE_MOTO_ENDPOINT`, which
//! `make test` (scripts/test.sh) sets after starting moto. Tests isolate by
//! unique resource names, never by resetting or sleeping, so they run in
//! parallel against one server.

pub mod fault_proxy;
pub mod local;
pub mod player;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The moto endpoint for this test run.
pub fn endpoint() -> String {
    std::env::var("EVENTLINE_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "EVENTLINE_MOTO_ENDPOINT is not set. These tests talk to a moto server: \
             run `make test`, or `scripts/moto.sh start` and export \
             EVENTLINE_MOTO_ENDPOINT=$(scripts/moto.sh url)"
        )
    })
}

/// SDK configuration for moto: its endpoint, a fixed region, dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(&endpoint()).await
}

/// SDK configuration for the emulator (or proxy) at `endpoint`.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .load()
        .await
}

/// A resource name no other test (or earlier run against the same server) uses.
pub fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t{}-{nanos:x}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates an on-demand table keyed by the string attribute `key`.
pub async fn create_table(sdk: &SdkConfig, name: &str, key: &str) {
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

/// Creates a queue (FIFO when the name ends in `.fifo`) and returns its URL.
pub async fn create_queue(sdk: &SdkConfig, name: &str) -> String {
    let mut request = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(name);
    if name.ends_with(".fifo") {
        request = request.attributes(QueueAttributeName::FifoQueue, "true");
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sdk: &SdkConfig, url: &str) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("queue arn")
}

/// Creates a bucket.
pub async fn create_bucket(sdk: &SdkConfig, name: &str) {
    eventline_aws::s3::client(sdk)
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
}

/// Creates a bus and a rule on it matching `User Created` from `user.service`
/// that delivers to a new SQS queue (a "tap"); returns the tap's URL.
pub async fn create_bus_with_tap(sdk: &SdkConfig, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    events
        .create_event_bus()
        .name(bus)
        .send()
        .await
        .expect("create bus");
    let tap = create_queue(sdk, &format!("{bus}-tap")).await;
    let rule = format!("{bus}-user-created");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(r#"{"source":["user.service"],"detail-type":["User Created"]}"#)
        .send()
        .await
        .expect("put rule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("tap")
                .arn(queue_arn(sdk, &tap).await)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put targets");
    tap
}

/// Receives up to 10 messages as Lambda's event source mapping would and
/// shapes them as the SQS event a function receives.
pub async fn receive_as_lambda(sdk: &SdkConfig, queue_url: &str) -> SqsEvent {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let arn = queue_arn(sdk, queue_url).await;
    let output = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        // Lambda's event source mapping passes every message attribute.
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    eventline_devstack::shape::sqs_event(output.messages.unwrap_or_default(), &arn, "us-east-1")
}

/// Receives every message currently on the queue (several polls) as raw bodies.
pub async fn drain_bodies(sdk: &SdkConfig, queue_url: &str) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut bodies = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
            bodies.extend(m.body);
        }
    }
}

/// Invokes a function's Lambda service (the entrypoint its `main` runs, e.g.
/// `eventline_powertools::sqs::service(...)`) with `payload`, as the runtime
/// would with an invocation that must end at `deadline_ms` (Unix ms).
pub async fn invoke<S, T>(service: S, payload: T, deadline_ms: u64) -> Result<S::Response, S::Error>
where
    S: lambda_runtime::Service<lambda_runtime::LambdaEvent<T>>,
{
    use lambda_runtime::tower::ServiceExt;
    let mut context = lambda_runtime::Context::default();
    context.deadline = deadline_ms;
    service
        .oneshot(lambda_runtime::LambdaEvent::new(payload, context))
        .await
}

/// A function's settings read from `vars` the way its `main` reads them from
/// the environment (e.g. `settings(vars, user_processor::Config::from_env)`).
pub fn settings<C, K: Into<String>, V: Into<String>>(
    vars: impl IntoIterator<Item = (K, V)>,
    read: fn(&mut eventline_powertools::env::Env) -> C,
) -> eventline_app::Settings<C> {
    eventline_app::Settings::from_env(eventline_powertools::env::Env::from_map(vars), read)
        .expect("complete settings")
}

/// Deletes the messages of `event` that the response did not list as failed,
/// as Lambda's event source mapping does with a partial batch response.
pub async fn delete_succeeded(
    sdk: &SdkConfig,
    queue_url: &str,
    event: &SqsEvent,
    response: &aws_lambda_events::sqs::SqsBatchResponse,
) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for record in &event.records {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|f| Some(&f.item_identifier) == record.message_id.as_ref());
        if !failed {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(record.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

/// Reads an object's body as text, or `None` when it does not exist.
pub async fn get_object(sdk: &SdkConfig, bucket: &str, key: &str) -> Option<String> {
    let output = eventline_aws::s3::client(sdk)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = output
        .body
        .collect()
        .await
        .expect("object body")
        .into_bytes();
    Some(String::from_utf8(bytes.to_vec()).expect("utf-8 object"))
}

/// Lists the keys under `prefix`.
pub async fn list_keys(sdk: &SdkConfig, bucket: &str, prefix: &str) -> Vec<String> {
    let output = eventline_aws::s3::client(sdk)
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list objects");
    output
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect()
}

/// GETs a path of moto's own API (e.g. `/moto-api/data.json`) and parses it
/// as JSON. Used only to observe what no AWS read API shows (sent SES mail).
pub async fn moto_api_json(path: &str) -> serde_json::Value {
    let url = format!("{}{path}", endpoint().trim_end_matches('/'));
    reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .expect("moto API JSON")
}

/// Reads an item by its string key, consistently; panics when it is absent.
pub async fn get_item(
    sdk: &SdkConfig,
    table: &str,
    key: &str,
    value: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key(
            key,
            aws_sdk_dynamodb::types::AttributeValue::S(value.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
        .unwrap_or_else(|| panic!("no item {key}={value} in {table}"))
}
