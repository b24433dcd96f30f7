//! welcome-email: EventBridge `User Created` → welcome email.
//! Wiring only; the behaviour is `eventline_app::welcome_email`.

use eventline_app::mail::MailConfig;
use eventline_app::ports::SystemClock;
use eventline_app::welcome_email::{Ports, WelcomeEmail, IDEMPOTENCY_SCOPE};
use eventline_app::IdempotencyConfig;
use eventline_aws::dynamodb;
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_powertools::idempotency::Idempotency;
use eventline_powertools::{env::Env, logging};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let mut env = Env::from_process();
    let mail = MailConfig::from_env(&mut env);
    let idempotency = IdempotencyConfig::from_env(&mut env);
    env.finish()?;
    let mail = mail.ok_or("mail settings are invalid")?;

    let sdk = eventline_aws::load_sdk_config().await;
    let handler = &WelcomeEmail::new(Ports {
        mailer: eventline_aws::mailer(&sdk, mail),
        clock: SystemClock,
        idempotency: Idempotency::new(
            DynamoIdempotencyStore::new(dynamodb::client(&sdk), idempotency.table),
            IDEMPOTENCY_SCOPE,
            idempotency.expires_after,
        ),
    });

    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handler.handle(event.payload, event.context.deadline)
    }))
    .await
}
