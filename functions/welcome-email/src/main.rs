//! welcome-email: EventBridge `User Created` → welcome email.
//! Wiring only; the behaviour is `eventline_app::welcome_email`.

// The handler's future (the EventBridge entrypoint around the use case, its
// item lock and the SDK calls) is deeper than rustc's default query depth of
// 128 allows for computing its layout (130 measured); not needed in the SQS
// functions.
#![recursion_limit = "256"]

use eventline_app::{compose, welcome_email::Config};
use eventline_powertools::eventbridge;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let wiring = startup.adapters().welcome_email_wiring(&startup.settings);
    let handler = compose::welcome_email(wiring, &startup.settings);
    let service = eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
    eventline_powertools::otel::run(startup.layer().layer(service)).await
}
