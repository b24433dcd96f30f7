//! notification-processor: SQS (NotificationQueue) → mail transport.
//! Wiring only; the behaviour is `eventline_app::notification_processor`.

use eventline_app::notification_processor::{Config, NotificationProcessor};
use eventline_aws::dynamodb;
use eventline_powertools::batch::{BatchProcessor, SqsEvent};
use eventline_powertools::{env::Env, logging};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let mut env = Env::from_process();
    let config = Config::from_env(&mut env);
    env.finish()?;
    let mail = config.mail.ok_or("mail settings are invalid")?;

    let sdk = eventline_aws::load_sdk_config().await;
    let handler = &NotificationProcessor::new(
        dynamodb::DynamoUserStore::new(dynamodb::client(&sdk), config.users_table),
        eventline_aws::mailer(&sdk, mail),
        BatchProcessor::new().with_concurrency(config.concurrency),
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        handler.handle(event.payload)
    }))
    .await
}
