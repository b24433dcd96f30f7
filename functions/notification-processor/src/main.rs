//! notification-processor: SQS (NotificationQueue) → mail transport.
//! Wiring only; the behaviour is `eventline_app::notification_processor`.

// The handler future nests the batch processor, idempotency guard and SDK
// calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::notification_processor::{
    Config, NotificationProcessor, Ports, IDEMPOTENCY_SCOPE as SCOPE,
};
use eventline_app::ports::SystemClock;
use eventline_aws::{dynamodb, mail_ledger};
use eventline_powertools::sqs;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let (config, sdk) = (&startup.config, &startup.sdk);
    let mail = config.mail.clone().ok_or("mail settings are invalid")?;
    let ledger_table = &startup.idempotency.table;

    let handler = &NotificationProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb::client(sdk), &config.users_table),
            ledger: mail_ledger::DynamoMailLedger::new(dynamodb::client(sdk), ledger_table),
            clock: SystemClock,
            idempotency: startup.guard(SCOPE),
            mailer: eventline_aws::mailer(sdk, mail.clone()),
        },
        startup.batch(config.concurrency, &config.dead_letter_queue_url, SCOPE),
        mail.daily_cap,
        startup.idempotency.function_timeout,
    );

    let service = sqs::service(|messages, deadline_ms| handler.handle(messages, deadline_ms));
    lambda_runtime::run(startup.layer().layer(service)).await
}
