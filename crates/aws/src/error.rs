//! SDK errors turned into port errors without leaking request data.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use eventline_app::PortError;

/// Whether to quote the service's error message in a [`PortError`].
#[derive(Clone, Copy, PartialEq, Eq)]
// Which variants are used depends on the enabled services (features).
#[allow(dead_code)]
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
