//! AWS adapters for the eventline ports, over the official AWS SDK for Rust.
//!
//! | port | adapter | feature |
//! |---|---|---|
//! | `UserStore`, `ProfileStore` | [`dynamodb::DynamoUserStore`], [`dynamodb::DynamoProfileStore`] | `dynamodb` |
//! | `NotificationQueue` | [`sqs::SqsNotificationQueue`] | `sqs` |
//! | `EventPublisher` | [`eventbridge::EventBridgePublisher`] | `eventbridge` |
//! | `BlobStore` | [`s3::S3BlobStore`] | `s3` |
//! | `Mailer` (SES) | [`ses::SesMailer`] | `sesv2` |
//! | `IdempotencyStore` | [`idempotency::DynamoIdempotencyStore`] | `dynamodb` |
//!
//! Each service is a cargo feature so a function links only the clients it
//! uses (smaller binary, faster cold start). Clients are built once per cold
//! start from one [`aws_config::SdkConfig`] ([`load_sdk_config`]); the SDK
//! honours `AWS_ENDPOINT_URL`, which is how local runs reach the emulator.
//!
//! Error messages carry AWS error codes and messages, never item contents;
//! for SES, whose messages can quote addresses, only the code.
#![warn(missing_docs)]

#[cfg(any(
    feature = "dynamodb",
    feature = "sqs",
    feature = "eventbridge",
    feature = "s3",
    feature = "sesv2"
))]
mod error;
#[cfg(any(
    feature = "dynamodb",
    feature = "sqs",
    feature = "eventbridge",
    feature = "s3",
    feature = "sesv2"
))]
pub(crate) use error::{sdk_error, Detail};

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
#[cfg(feature = "dynamodb")]
pub mod idempotency;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sesv2")]
pub mod ses;
#[cfg(feature = "sqs")]
pub mod sqs;

pub use aws_config::SdkConfig;

/// What every function sets up once per cold start before its own wiring.
pub struct ColdStart<C> {
    /// The function's own settings.
    pub config: C,
    /// The idempotency settings every function shares.
    pub idempotency: eventline_app::IdempotencyConfig,
    /// The function's metrics, flushed after each invocation.
    pub metrics: std::sync::Arc<eventline_powertools::metrics::Metrics>,
    /// Region, credentials and endpoint for the SDK clients.
    pub sdk: SdkConfig,
}

/// Starts logging, reads the function's settings with `read` plus the
/// idempotency settings (failing with one message naming every missing or
/// invalid variable), and loads metrics and the SDK configuration.
pub async fn cold_start<C>(
    read: impl FnOnce(&mut eventline_powertools::env::Env) -> C,
) -> Result<ColdStart<C>, eventline_powertools::env::ConfigError> {
    eventline_powertools::logging::init();
    let mut env = eventline_powertools::env::Env::from_process();
    let config = read(&mut env);
    let idempotency = eventline_app::IdempotencyConfig::from_env(&mut env);
    env.finish()?;
    Ok(ColdStart {
        config,
        idempotency,
        metrics: std::sync::Arc::new(eventline_powertools::metrics::Metrics::from_env()),
        sdk: load_sdk_config().await,
    })
}

/// Loads region, credentials and endpoint from the environment (once per cold start).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The mailer [`eventline_app::mail::MailConfig`] asks for: the S3 outbox or SES v2.
#[cfg(all(feature = "s3", feature = "sesv2"))]
pub fn mailer(
    sdk: &SdkConfig,
    config: eventline_app::mail::MailConfig,
) -> eventline_app::mail::EitherMailer<
    eventline_app::mail::OutboxMailer<s3::S3BlobStore>,
    ses::SesMailer,
> {
    use eventline_app::mail::{EitherMailer, MailTransport, OutboxMailer};
    match config.transport {
        MailTransport::Outbox { bucket } => EitherMailer::Left(OutboxMailer::new(
            s3::S3BlobStore::new(s3::client(sdk), bucket),
            config.from,
        )),
        MailTransport::Ses => {
            EitherMailer::Right(ses::SesMailer::new(ses::client(sdk), config.from))
        }
    }
}
