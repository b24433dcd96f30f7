//! welcome-email: EventBridge `User Created` → welcome email.
//! Wiring only; the behaviour is `eventline_app::welcome_email`.

// The handler's future nests the idempotency guard, the mailer choice and the
// SDK calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::welcome_email::{Config, Ports, WelcomeEmail, IDEMPOTENCY_SCOPE as SCOPE};
use eventline_aws::{dynamodb, mail_ledger};
use eventline_powertools::eventbridge;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let (config, sdk) = (&startup.config, &startup.sdk);
    let mail = config.mail.clone().ok_or("mail settings are invalid")?;

    let handler = &WelcomeEmail::new(
        Ports {
            mailer: eventline_aws::mailer(sdk, mail.clone()),
            ledger: mail_ledger::DynamoMailLedger::new(
                dynamodb::client(sdk),
                &startup.idempotency.table,
            ),
            clock: SystemClock,
            idempotency: startup.guard(SCOPE),
            dead_letters: Some(startup.dead_letters(&config.dead_letter_queue_url, SCOPE)),
        },
        mail.daily_cap,
        startup.idempotency.function_timeout,
    );

    let service = eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
    lambda_runtime::run(startup.layer().layer(service)).await
}
