//! AWS adapters for the eventline ports, over the official AWS SDK for Rust.
//!
//! | port | adapter | feature |
//! |---|---|---|
//! | `UserStore`, `ProfileStore` | [`dynamodb::DynamoUserStore`], [`dynamodb::DynamoProfileStore`] | `dynamodb` |
//! | `NotificationQueue` | [`sqs::SqsNotificationQueue`] | `sqs` |
//! | `EventPublisher` | [`eventbridge::EventBridgePublisher`] | `eventbridge` |
//! | `BlobStore` | [`s3::S3BlobStore`] | `s3` |
//! | `Mailer` (SES) | [`ses::SesMailer`] | `sesv2` |
//!
//! Each service is a cargo feature so a function links only the clients it
//! uses (smaller binary, faster cold start). Clients are built once per cold
//! start from one [`aws_config::SdkConfig`] ([`load_sdk_config`]); the SDK
//! honours `AWS_ENDPOINT_URL`, which is how local runs reach the emulator.
//!
//! Error messages carry AWS error codes and messages, never item contents;
//! for SES, whose messages can quote addresses, only the code.
#![warn(missing_docs)]

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use eventline_app::PortError;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sesv2")]
pub mod ses;
#[cfg(feature = "sqs")]
pub mod sqs;

pub use aws_config::SdkConfig;

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

/// Whether to quote the service's error message in a [`PortError`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Code and message (messages of this service never quote data).
    CodeAndMessage,
    /// Code only (messages may quote personal data).
    CodeOnly,
}

/// Turns an SDK error into a [`PortError`] without leaking request data.
pub(crate) fn sdk_error<E, R>(
    operation: &'static str,
    err: &SdkError<E, R>,
    detail: Detail,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("UnknownError");
            match (detail, e.message()) {
                (Detail::CodeAndMessage, Some(m)) => format!("{code}: {m}"),
                _ => code.to_owned(),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(f) if f.is_io() => "network error (I/O)".to_owned(),
        SdkError::DispatchFailure(f) if f.is_timeout() => "network error (timeout)".to_owned(),
        SdkError::DispatchFailure(_) => "network error".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_owned(),
        _ => "unknown SDK error".to_owned(),
    };
    PortError::new(operation, message)
}
