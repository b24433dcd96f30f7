//! welcome-email: EventBridge `User Created` → welcome email.
//! Wiring only; the behaviour is `eventline_app::welcome_email`.

// The handler's future nests the idempotency guard, the mailer choice and the
// SDK calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::mail::MailConfig;
use eventline_app::ports::SystemClock;
use eventline_app::welcome_email::{Ports, WelcomeEmail, IDEMPOTENCY_SCOPE};
use eventline_aws::{dynamodb, idempotency, ColdStart};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ColdStart {
        config: mail,
        idempotency: idempotency_config,
        metrics,
        sdk,
    } = eventline_aws::cold_start(MailConfig::from_env).await?;
    let mail = mail.ok_or("mail settings are invalid")?;

    let metrics = &metrics;
    let handler = &WelcomeEmail::new(Ports {
        mailer: eventline_aws::mailer(&sdk, mail),
        clock: SystemClock,
        idempotency: idempotency::guard(
            dynamodb::client(&sdk),
            idempotency_config,
            IDEMPOTENCY_SCOPE,
            metrics,
        ),
    });

    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        metrics.around(async move {
            let result = handler.handle(event.payload, event.context.deadline).await;
            metrics.record_outcome(&result);
            result
        })
    }))
    .await
}
