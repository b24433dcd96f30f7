//! user-processor: SQS (SignupQueue) → users, notifications, `User Created`.
//! Wiring only; the behaviour is `eventline_app::user_processor`.

// The staged batch pipeline is one deeply nested future type; rustc needs
// more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::user_processor::{Config, Ports, UserProcessor, IDEMPOTENCY_SCOPE};
use eventline_aws::{dead_letter, dynamodb, eventbridge, idempotency, sqs, ColdStart};
use eventline_powertools::batch::{BatchProcessor, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
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
    let sqs = sqs::client(&sdk);
    let timeout = idempotency_config.function_timeout;
    let handler = &UserProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb.clone(), config.users_table),
            notifications: sqs::SqsNotificationQueue::new(
                sqs.clone(),
                config.notification_queue_url,
            ),
            events: eventbridge::EventBridgePublisher::new(
                eventbridge::client(&sdk),
                config.event_bus_name,
            ),
            clock: SystemClock,
            idempotency: idempotency::guard(
                dynamodb,
                idempotency_config,
                IDEMPOTENCY_SCOPE,
                metrics,
            ),
        },
        BatchProcessor::new()
            .with_concurrency(config.concurrency)
            .with_dead_letters(Arc::new(dead_letter::SqsDeadLetters::new(
                sqs,
                config.dead_letter_queue_url,
                IDEMPOTENCY_SCOPE,
            )))
            .with_metrics(metrics.clone()),
        timeout,
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        metrics.around(handler.handle(event.payload, event.context.deadline))
    }))
    .await
}
