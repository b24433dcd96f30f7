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
//! | `MailLedger` | [`mail_ledger::DynamoMailLedger`] | `dynamodb` |
//! | `DeadLetterSink` (batch) | [`dead_letter::SqsDeadLetters`] | `sqs` |
//!
//! [`AwsAdapters`] builds each function's ports from them for
//! `eventline_app::compose`.
//! Each service is a cargo feature so a function links only the clients it
//! uses (smaller binary, faster cold start). Clients are built once per cold
//! start from one [`aws_config::SdkConfig`] ([`load_sdk_config`]); the SDK
//! honours `AWS_ENDPOINT_URL`, which is how local runs reach the emulator.
//! They share one HTTPS client, which loads the system trust store on the
//! first request rather than at init ([`http`]).
//! Every call has a connect, attempt and operation timeout and a bounded
//! number of attempts ([`configure`]), so a hanging dependency fails a call
//! in seconds instead of running the invocation into its timeout.
//!
//! Batch APIs are read fail-closed: an entry counts as done only when the
//! answer says so explicitly; anything missing or malformed fails it.
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

mod adapters;
#[cfg(feature = "sqs")]
pub mod dead_letter;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
pub mod http;
#[cfg(feature = "dynamodb")]
pub mod idempotency;
#[cfg(feature = "dynamodb")]
pub(crate) mod item_lock;
#[cfg(feature = "dynamodb")]
pub mod mail_ledger;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sesv2")]
pub mod ses;
#[cfg(feature = "sqs")]
pub mod sqs;

pub use adapters::AwsAdapters;
pub use aws_config::SdkConfig;
use std::time::Duration;

/// What every function sets up once, before its first invocation and its
/// own wiring. (Named for what it holds, not "cold start": that name belongs
/// to the `ColdStart` metric and the `cold_start` log field.)
pub struct Startup<C> {
    /// The function's settings and the idempotency settings.
    pub settings: eventline_app::Settings<C>,
    /// The function's metrics, flushed after each invocation by
    /// `eventline_powertools::invocation_layer`.
    pub metrics: std::sync::Arc<eventline_powertools::metrics::Metrics>,
    /// Region, credentials and endpoint for the SDK clients.
    pub sdk: SdkConfig,
}

/// Starts logging, reads the function's settings with `read` plus the
/// idempotency settings (failing with one message naming every missing or
/// invalid variable), and loads metrics and the SDK configuration.
pub async fn startup<C>(
    read: impl FnOnce(&mut eventline_powertools::env::Env) -> C,
) -> Result<Startup<C>, eventline_powertools::env::ConfigError> {
    eventline_powertools::logging::init();
    let settings =
        eventline_app::Settings::from_env(eventline_powertools::env::Env::from_process(), read)?;
    Ok(Startup {
        settings,
        metrics: std::sync::Arc::new(eventline_powertools::metrics::Metrics::from_env()),
        sdk: load_sdk_config().await,
    })
}

impl<C> Startup<C> {
    /// The layer to wrap the handler service in: cold start, outcome and
    /// the EMF flush of every invocation, in the function's metrics.
    pub fn layer(&self) -> eventline_powertools::invocation_layer::MetricsLayer {
        eventline_powertools::invocation_layer::MetricsLayer::new(self.metrics.clone())
    }

    /// The function's adapters: its SDK clients, from which
    /// `AwsAdapters::<function>_wiring` builds its ports.
    pub fn adapters(&self) -> AwsAdapters {
        AwsAdapters::new(&self.sdk)
    }
}

/// Connecting to an AWS endpoint takes milliseconds; one that does not
/// accept within this time is unreachable, and a retry (a new connection)
/// does better than waiting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of one call. Every call the functions make answers in tens of
/// milliseconds when AWS is healthy (p99 well under 1 s), so 2 s means the
/// attempt hangs; cutting it lets a retry go to a healthy host.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// One call, retries and backoff included. The functions run with a 10 s
/// timeout and a call is usually one of two or three sequential stages of a
/// batch: 4 s leaves the invocation time to fail only the records still
/// pending and return its partial batch response (the use cases also bound
/// each stage by the invocation's deadline).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// Standard retries (exponential backoff with jitter, retry quota); at most
/// this many attempts per call, all within [`OPERATION_TIMEOUT`].
pub const MAX_ATTEMPTS: u32 = 3;

/// The timeouts every SDK client of the functions uses (see the constants).
pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The retry policy every SDK client of the functions uses.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Applies the functions' SDK settings to `loader`: [`timeout_config`],
/// [`retry_config`], one HTTPS client for every service client made from
/// the loaded config ([`http::https_client`]; `loader` is expected at
/// `BehaviorVersion::latest()`) and, when `function_name` is a valid SDK app
/// name, that name as the app name (`app/<name>` in the User-Agent, which the
/// IAM check uses to tell which function made a call). Tests use it to point
/// the same settings at a stub endpoint.
pub fn configure(
    loader: aws_config::ConfigLoader,
    function_name: Option<&str>,
) -> aws_config::ConfigLoader {
    let loader = loader
        .timeout_config(timeout_config())
        .retry_config(retry_config());
    let loader = match http::https_client(aws_config::BehaviorVersion::latest()) {
        Some(client) => loader.http_client(client),
        None => loader,
    };
    match function_name.and_then(|name| aws_config::AppName::new(name.to_owned()).ok()) {
        Some(app) => loader.app_name(app),
        None => loader,
    }
}

/// Loads region, credentials and endpoint from the environment (once per
/// cold start), with the functions' timeouts, retries and app name
/// (`AWS_LAMBDA_FUNCTION_NAME`) from [`configure`].
pub async fn load_sdk_config() -> SdkConfig {
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
    configure(
        aws_config::defaults(aws_config::BehaviorVersion::latest()),
        function_name.as_deref(),
    )
    .load()
    .await
}
