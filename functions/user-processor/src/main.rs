//! user-processor: SQS (SignupQueue) → users, notifications, `User Created`.
//! Wiring only; the behaviour is `eventline_app::user_processor`.

// The staged batch pipeline is one deeply nested future type; rustc needs
// more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::user_processor::{Config, Ports, UserProcessor, IDEMPOTENCY_SCOPE};
use eventline_app::IdempotencyConfig;
use eventline_aws::{dynamodb, eventbridge, idempotency, sqs};
use eventline_powertools::batch::{BatchProcessor, SqsEvent};
use eventline_powertools::{env::Env, logging, metrics::Metrics};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let mut env = Env::from_process();
    let config = Config::from_env(&mut env);
    let idempotency_config = IdempotencyConfig::from_env(&mut env);
    env.finish()?;

    let metrics = &Arc::new(Metrics::from_env());
    let sdk = eventline_aws::load_sdk_config().await;
    let dynamodb = dynamodb::client(&sdk);
    let handler = &UserProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb.clone(), config.users_table),
            notifications: sqs::SqsNotificationQueue::new(
                sqs::client(&sdk),
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
            .with_metrics(metrics.clone()),
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        metrics.around(handler.handle(event.payload, event.context.deadline))
    }))
    .await
}
