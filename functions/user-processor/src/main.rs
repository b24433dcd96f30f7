//! user-processor: SQS (SignupQueue) → users, notifications, `User Created`.
//! Wiring only; the behaviour is `eventline_app::user_processor`.

use eventline_app::{compose, user_processor::Config};
use eventline_powertools::sqs;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let wiring = startup.adapters().user_processor_wiring(&startup.settings);
    let handler = compose::user_processor(wiring, &startup.settings);
    let service = sqs::service(|messages, deadline_ms| handler.handle(messages, deadline_ms));
    eventline_powertools::otel::run(startup.layer().layer(service)).await
}
