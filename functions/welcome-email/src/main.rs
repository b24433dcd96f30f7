//! welcome-email: EventBridge `User Created` → welcome email.
//! Wiring only; the behaviour is `eventline_app::welcome_email`.

// The handler's future nests the idempotency guard, the mailer choice and the
// SDK calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::welcome_email::{Config, Ports, WelcomeEmail, IDEMPOTENCY_SCOPE};
use eventline_aws::{dead_letter, dynamodb, idempotency, mail_ledger, sqs, ColdStart};
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
    let mail = config.mail.ok_or("mail settings are invalid")?;

    let metrics = &metrics;
    let dynamodb = dynamodb::client(&sdk);
    let (daily_cap, timeout) = (mail.daily_cap, idempotency_config.function_timeout);
    let handler = &WelcomeEmail::new(
        Ports {
            mailer: eventline_aws::mailer(&sdk, mail),
            ledger: mail_ledger::DynamoMailLedger::new(dynamodb.clone(), &idempotency_config.table),
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
        daily_cap,
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
