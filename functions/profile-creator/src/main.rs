//! profile-creator: EventBridge `User Created` → ProfilesTable + profile document.
//! Wiring only; the behaviour is `eventline_app::profile_creator`.

// The handler future nests the event span, idempotency guard and SDK
// calls; rustc needs more than the default depth to compute its layout.
#![recursion_limit = "256"]

use eventline_app::ports::SystemClock;
use eventline_app::profile_creator::{Config, Ports, ProfileCreator, IDEMPOTENCY_SCOPE as SCOPE};
use eventline_aws::{dynamodb, s3};
use eventline_powertools::eventbridge;
use lambda_runtime::{tower::Layer, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let startup = eventline_aws::startup(Config::from_env).await?;
    let (config, sdk) = (&startup.config, &startup.sdk);

    let handler = &ProfileCreator::new(
        Ports {
            profiles: dynamodb::DynamoProfileStore::new(
                dynamodb::client(sdk),
                &config.profiles_table,
            ),
            documents: s3::S3BlobStore::new(s3::client(sdk), &config.bucket),
            clock: SystemClock,
            idempotency: startup.guard(SCOPE),
            dead_letters: Some(startup.dead_letters(&config.dead_letter_queue_url, SCOPE)),
        },
        startup.idempotency.function_timeout,
    );

    let service = eventbridge::service(|payload, deadline_ms| handler.handle(payload, deadline_ms));
    lambda_runtime::run(startup.layer().layer(service)).await
}
