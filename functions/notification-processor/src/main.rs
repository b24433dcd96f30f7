//! notification-processor: SQS (NotificationQueue) → mail transport.
//! Wiring only; the behaviour is `eventline_app::notification_processor`.

use eventline_app::notification_processor::{
    Config, NotificationProcessor, Ports, IDEMPOTENCY_SCOPE,
};
use eventline_app::ports::SystemClock;
use eventline_app::IdempotencyConfig;
use eventline_aws::dynamodb;
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_powertools::batch::{BatchProcessor, SqsEvent};
use eventline_powertools::idempotency::Idempotency;
use eventline_powertools::{env::Env, logging};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let mut env = Env::from_process();
    let config = Config::from_env(&mut env);
    let idempotency = IdempotencyConfig::from_env(&mut env);
    env.finish()?;
    let mail = config.mail.ok_or("mail settings are invalid")?;

    let sdk = eventline_aws::load_sdk_config().await;
    let dynamodb = dynamodb::client(&sdk);
    let handler = &NotificationProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb.clone(), config.users_table),
            mailer: eventline_aws::mailer(&sdk, mail),
            clock: SystemClock,
            idempotency: Idempotency::new(
                DynamoIdempotencyStore::new(dynamodb, idempotency.table),
                IDEMPOTENCY_SCOPE,
                idempotency.expires_after,
            ),
        },
        BatchProcessor::new().with_concurrency(config.concurrency),
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        handler.handle(event.payload, event.context.deadline)
    }))
    .await
}
