//! profile-creator: EventBridge `User Created` → ProfilesTable + profile document.
//! Wiring only; the behaviour is `eventline_app::profile_creator`.

// The handler future nests the event span, idempotency guard and SDK
// calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::profile_creator::{Config, Ports, ProfileCreator, IDEMPOTENCY_SCOPE};
use eventline_aws::{dead_letter, dynamodb, idempotency, s3, sqs, ColdStart};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ColdStart {
        config,
        idempotency: idempotency_config,
        metrics,
        sdk,
    } = eventline_aws::cold_start(Config::from_env).await?;

    let metrics = &metrics;
    let dynamodb = dynamodb::client(&sdk);
    let timeout = idempotency_config.function_timeout;
    let handler = &ProfileCreator::new(
        Ports {
            profiles: dynamodb::DynamoProfileStore::new(dynamodb.clone(), config.profiles_table),
            documents: s3::S3BlobStore::new(s3::client(&sdk), config.bucket),
            clock: SystemClock,
            idempotency: idempotency::guard(
                dynamodb,
                idempotency_config,
                IDEMPOTENCY_SCOPE,
                metrics,
            ),
            dead_letters: Some(Arc::new(dead_letter::SqsDeadLetters::new(
                sqs::client(&sdk),
                config.dead_letter_queue_url,
                IDEMPOTENCY_SCOPE,
            ))),
        },
        timeout,
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        metrics.around(async move {
            let result = handler.handle(event.payload, event.context.deadline).await;
            metrics.record_outcome(&result);
            result
        })
    }))
    .await
}
