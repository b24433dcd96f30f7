//! Caps on the targets that log payloads: no directive can lift them.

use tracing::Metadata;
use tracing_subscriber::filter::LevelFilter;

/// Targets that log payloads, and the most verbose level kept from each
/// (docs/observability.md, "The log line contract", says why).
pub(super) const PAYLOAD_CAPS: &[(&str, LevelFilter)] = &[
    ("lambda_runtime::layers::api_response", LevelFilter::DEBUG),
    ("lambda_runtime::requests", LevelFilter::DEBUG),
    ("aws_smithy_runtime", LevelFilter::INFO),
    ("aws_smithy_runtime_api", LevelFilter::INFO),
    (
        "aws_smithy_runtime_api::client::interceptors::context",
        LevelFilter::OFF,
    ),
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_runtime", LevelFilter::DEBUG),
    ("aws_smithy_http", LevelFilter::DEBUG),
];

/// The cap on `target`: that of the longest capped target it is, or is a
/// submodule of; `None` if it is not capped. (`Targets` would match by plain
/// prefix, so `aws_sigv4` would also cap a crate named `aws_sigv4x`.)
pub(super) fn payload_cap(target: &str) -> Option<LevelFilter> {
    PAYLOAD_CAPS
        .iter()
        .filter(|(capped, _)| {
            target
                .strip_prefix(capped)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
        .max_by_key(|(capped, _)| capped.len())
        .map(|(_, cap)| *cap)
}

pub(super) fn within_cap(meta: &Metadata<'_>) -> bool {
    payload_cap(meta.target()).is_none_or(|cap| cap >= *meta.level())
}
