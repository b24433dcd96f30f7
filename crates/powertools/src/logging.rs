//! Logging set-up for Lambda.
//!
//! Honours Lambda's advanced logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON`
//! switches to one JSON object per line (what the template configures), and
//! `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else `INFO`) sets the level.
//! Fields are structured; callers log ids and counts, never personal data.

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
