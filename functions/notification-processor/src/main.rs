//! notification-processor: SQS (NotificationQueue) → mail transport.
//! Wiring only; the behaviour is `eventline_app::notification_processor`.

// The handler future nests the batch processor, idempotency guard and SDK
// calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::notification_processor::{
    Config, NotificationProcessor, Ports, IDEMPOTENCY_SCOPE,
};
use eventline_app::ports::SystemClock;
use eventline_app::IdempotencyConfig;
use eventline_aws::{dynamodb, idempotency};
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
    let mail = config.mail.ok_or("mail settings are invalid")?;

    let metrics = &Arc::new(Metrics::from_env());
    let sdk = eventline_aws::load_sdk_config().await;
    let dynamodb = dynamodb::client(&sdk);
    let handler = &NotificationProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb.clone(), config.users_table),
            mailer: eventline_aws::mailer(&sdk, mail),
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
