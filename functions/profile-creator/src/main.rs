//! profile-creator: EventBridge `User Created` → ProfilesTable + profile document.
//! Wiring only; the behaviour is `eventline_app::profile_creator`.

use eventline_app::profile_creator::{Config, ProfileCreator};
use eventline_aws::{dynamodb, s3};
use eventline_powertools::{env::Env, logging};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let mut env = Env::from_process();
    let config = Config::from_env(&mut env);
    env.finish()?;

    let sdk = eventline_aws::load_sdk_config().await;
    let handler = &ProfileCreator::new(
        dynamodb::DynamoProfileStore::new(dynamodb::client(&sdk), config.profiles_table),
        s3::S3BlobStore::new(s3::client(&sdk), config.bucket),
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handler.handle(event.payload)
    }))
    .await
}
