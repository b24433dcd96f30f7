//! profile-creator: EventBridge `User Created` → ProfilesTable + profile document.
//! Wiring only; the behaviour is `eventline_app::profile_creator`.

// The handler future nests the event span, the profile's item lock and SDK
// calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::{compose, profile_creator::Config};
use eventline_powertools::eventbridge;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let handler = compose::profile_creator(&startup.adapters(), &startup.settings);
    let service = eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
    eventline_powertools::otel::run(startup.layer().layer(service)).await
}
