//! notification-processor: SQS (NotificationQueue) → mail transport.
//! Wiring only; the behaviour is `eventline_app::notification_processor`.

// The handler future nests the batch processor, idempotency guard and SDK
// calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::notification_processor::{
    Config, NotificationProcessor, Ports, IDEMPOTENCY_SCOPE,
};
use eventline_app::ports::SystemClock;
use eventline_aws::{dead_letter, dynamodb, idempotency, mail_ledger, sqs, ColdStart};
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
    let mail = config.mail.ok_or("mail settings are invalid")?;

    let metrics = &metrics;
    let dynamodb = dynamodb::client(&sdk);
    let (daily_cap, timeout) = (mail.daily_cap, idempotency_config.function_timeout);
    let handler = &NotificationProcessor::new(
        Ports {
            users: dynamodb::DynamoUserStore::new(dynamodb.clone(), config.users_table),
            mailer: eventline_aws::mailer(&sdk, mail),
            ledger: mail_ledger::DynamoMailLedger::new(dynamodb.clone(), &idempotency_config.table),
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
                sqs::client(&sdk),
                config.dead_letter_queue_url,
                IDEMPOTENCY_SCOPE,
            )))
            .with_metrics(metrics.clone()),
        daily_cap,
        timeout,
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        metrics.around(handler.handle(event.payload, event.context.deadline))
    }))
    .await
}
