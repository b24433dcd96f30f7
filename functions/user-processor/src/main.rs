//! user-processor: SQS (SignupQueue) → users, notifications, `User Created`.
//! Wiring only; the behaviour is `eventline_app::user_processor`.

// The staged batch pipeline is one deeply nested future type; rustc needs
// more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::user_processor::{Config, Ports, UserProcessor, IDEMPOTENCY_SCOPE as SCOPE};
use eventline_aws::{dynamodb, eventbridge, sqs};
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let (config, sdk) = (&startup.config, &startup.sdk);

    let handler = &UserProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb::client(sdk), &config.users_table),
            notifications: sqs::SqsNotificationQueue::new(
                sqs::client(sdk),
                &config.notification_queue_url,
            ),
            events: eventbridge::EventBridgePublisher::new(
                eventbridge::client(sdk),
                &config.event_bus_name,
            ),
            clock: SystemClock,
            idempotency: startup.guard(SCOPE),
        },
        startup.batch(config.concurrency, &config.dead_letter_queue_url, SCOPE),
        startup.idempotency.function_timeout,
    );

    let service = eventline_powertools::sqs::service(|messages, deadline_ms| {
        handler.handle(messages, deadline_ms)
    });
    lambda_runtime::run(startup.layer().layer(service)).await
}
