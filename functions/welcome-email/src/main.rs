//! welcome-email: EventBridge `User Created` → welcome email.
//! Wiring only; the behaviour is `eventline_app::welcome_email`.

// The handler's future nests the mail marker's lock, the mailer choice and the
// SDK calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::{compose, welcome_email::Config};
use eventline_powertools::eventbridge;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let handler = compose::welcome_email(&startup.adapters(), &startup.settings);
    let service = eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
    eventline_powertools::otel::run(startup.layer().layer(service)).await
}
