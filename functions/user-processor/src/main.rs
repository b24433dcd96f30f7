//! user-processor: SQS (SignupQueue) → users, notifications, `User Created`.
//! Wiring only; the behaviour is `eventline_app::user_processor`.

use eventline_app::ports::SystemClock;
use eventline_app::user_processor::{Config, UserProcessor};
use eventline_aws::{dynamodb, eventbridge, sqs};
use eventline_powertools::batch::{BatchProcessor, SqsEvent};
use eventline_powertools::{env::Env, logging};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let mut env = Env::from_process();
    let config = Config::from_env(&mut env);
    env.finish()?;

    let sdk = eventline_aws::load_sdk_config().await;
    let handler = &UserProcessor::new(
        dynamodb::DynamoUserStore::new(dynamodb::client(&sdk), config.users_table),
        sqs::SqsNotificationQueue::new(sqs::client(&sdk), config.notification_queue_url),
        eventbridge::EventBridgePublisher::new(eventbridge::client(&sdk), config.event_bus_name),
        SystemClock,
        BatchProcessor::new().with_concurrency(config.concurrency),
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        handler.handle(event.payload)
    }))
    .await
}
