//! The eventline use cases, one module per Lambda function, and the ports
//! (small traits) they drive.
//!
//! ```text
//! functions/*  ──wire──►  use cases (this crate)  ──call──►  ports (traits)
//!                                │                              ▲
//!                                ▼                              │ implement
//!                        eventline-domain            eventline-aws / memory
//! ```
//!
//! Each use case takes its ports as generic parameters, so the same code runs
//! against AWS in production and against [`memory`] in tests. Nothing here
//! knows which AWS service sits behind a port.
#![warn(missing_docs)]

pub mod error;
#[cfg(test)]
mod log_privacy;
pub mod mail;
pub mod memory;
pub mod notification_processor;
pub mod ports;
pub mod profile_creator;
mod user_created;
pub mod user_processor;
pub mod welcome_email;

pub use error::Error;
pub use ports::PortError;

/// Records of one SQS batch processed at once unless `BATCH_CONCURRENCY` says
/// otherwise: a full standard-queue batch (10) runs in one wave.
pub const DEFAULT_CONCURRENCY: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(10) {
    Some(n) => n,
    None => std::num::NonZeroUsize::MIN,
};

/// Idempotency settings every function shares: `IDEMPOTENCY_TABLE` and
/// optional `IDEMPOTENCY_TTL_SECONDS` (how long a completed record replays;
/// default 3600, as in Powertools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// DynamoDB table of idempotency records.
    pub table: String,
    /// Lifetime of a completed record.
    pub expires_after: std::time::Duration,
}

impl IdempotencyConfig {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut eventline_powertools::env::Env) -> Self {
        Self {
            table: env.required("IDEMPOTENCY_TABLE"),
            expires_after: std::time::Duration::from_secs(
                env.parsed_or("IDEMPOTENCY_TTL_SECONDS", 3600),
            ),
        }
    }
}

/// The idempotency window of an attempt starting now and ending at the
/// invocation's deadline (Lambda context, Unix milliseconds).
pub(crate) fn window(
    clock: &impl ports::Clock,
    deadline_ms: u64,
) -> eventline_powertools::idempotency::Window {
    eventline_powertools::idempotency::Window {
        now_ms: clock.now().unix_millis(),
        deadline_ms,
    }
}
