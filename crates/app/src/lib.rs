//! The eventline use cases, one module per Lambda function, and the ports
//! (small traits) they drive.
//!
//! ```text
//! entrypoint (powertools sqs / eventbridge)
//!      │ messages or payload, deadline
//!      ▼
//! use cases (this crate)  ──call──►  ports (traits)
//!      │ report or Result                   ▲ implement
//!      ▼                                    │
//! eventline-domain               eventline-aws / memory
//! ```
//!
//! A use case speaks in transport-neutral terms: the SQS ones take the
//! batch's [`Message`](eventline_powertools::batch::Message)s and answer a
//! [`BatchReport`](eventline_powertools::batch::BatchReport), the EventBridge
//! ones take the raw payload and answer a `Result`; the entrypoints in
//! `eventline-powertools` map Lambda's events and answers, so this crate
//! depends on no Lambda type. Each use case takes its ports as generic
//! parameters, so the same code runs against AWS in production and against
//! `memory` (feature `test-util`) in tests. Nothing here knows which AWS
//! service sits behind a port.
//!
//! [`compose`] builds each use case from its [`Settings`] and the ports
//! an adapter set wires for it (the AWS ones in `eventline-aws`,
//! `memory::MemoryAdapters`): the functions' `main`s, the tests and the
//! benchmark all build their use cases through it.
#![warn(missing_docs)]

pub mod compose;
pub mod error;
#[cfg(test)]
mod log_privacy;
pub mod mail;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod notification_processor;
pub mod ports;
pub mod profile_creator;
#[cfg(test)]
mod round_trips;
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

/// What a function reads at cold start: its own settings and the
/// idempotency settings every function shares. The composition functions
/// ([`compose`]) build a use case from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings<C> {
    /// The function's own settings (its use case module's `Config`).
    pub config: C,
    /// The idempotency settings.
    pub idempotency: IdempotencyConfig,
}

impl<C> Settings<C> {
    /// Reads the function's settings with `read` (e.g.
    /// `user_processor::Config::from_env`) and the idempotency settings
    /// from `env`; fails with one message naming every missing or invalid
    /// variable.
    pub fn from_env(
        mut env: eventline_powertools::env::Env,
        read: impl FnOnce(&mut eventline_powertools::env::Env) -> C,
    ) -> Result<Self, eventline_powertools::env::ConfigError> {
        let config = read(&mut env);
        let idempotency = IdempotencyConfig::from_env(&mut env);
        env.finish()?;
        Ok(Self {
            config,
            idempotency,
        })
    }
}

/// Settings every function shares: `IDEMPOTENCY_TABLE`, optional
/// `IDEMPOTENCY_TTL_SECONDS` (how long a completed record replays; default
/// 3600, as in Powertools) and `FUNCTION_TIMEOUT_SECONDS` (the function's
/// timeout: Lambda does not tell the process, so the template passes it).
/// A time to live that could not cover one invocation is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// DynamoDB table of idempotency records.
    pub table: String,
    /// Lifetime of a completed record.
    pub expires_after: std::time::Duration,
    /// The function's timeout.
    pub function_timeout: std::time::Duration,
}

impl IdempotencyConfig {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut eventline_powertools::env::Env) -> Self {
        let config = Self {
            table: env.required("IDEMPOTENCY_TABLE"),
            expires_after: std::time::Duration::from_secs(
                env.parsed_or("IDEMPOTENCY_TTL_SECONDS", 3600),
            ),
            function_timeout: std::time::Duration::from_secs(
                env.parsed_or("FUNCTION_TIMEOUT_SECONDS", 0),
            ),
        };
        if config.function_timeout.is_zero() {
            if env.optional("FUNCTION_TIMEOUT_SECONDS").is_none() {
                env.required("FUNCTION_TIMEOUT_SECONDS");
            } else {
                env.reject("FUNCTION_TIMEOUT_SECONDS", "must be at least 1");
            }
        } else if let Err(e) = eventline_powertools::idempotency::check_ttl(
            config.expires_after,
            config.function_timeout,
        ) {
            env.reject("IDEMPOTENCY_TTL_SECONDS", e.to_string());
        }
        config
    }
}

/// One invocation's time: the idempotency window (now until the deadline)
/// and the deadline at which work stops waiting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Invocation {
    pub(crate) window: eventline_powertools::idempotency::Window,
    pub(crate) deadline: eventline_powertools::deadline::Deadline,
    /// A tenth of the time (at most 1 s): what a staged handler reserves
    /// for each stage after the current one.
    pub(crate) slice: std::time::Duration,
}

impl Invocation {
    /// The cut-off of a stage followed by `later` stages: it leaves each of
    /// them a slice, so a slow call in one stage cannot starve the rest.
    pub(crate) fn stage_cut_off(&self, later: u32) -> eventline_powertools::deadline::Deadline {
        self.deadline.earlier_by(self.slice * later)
    }
}

impl Invocation {
    /// An invocation that started now (by `clock`) and must end at
    /// `deadline_ms` (Lambda context, Unix milliseconds); an unknown or past
    /// deadline (local emulators pass one in 1970) means `timeout` from now.
    pub(crate) fn start(
        clock: &impl ports::Clock,
        deadline_ms: u64,
        timeout: std::time::Duration,
    ) -> Self {
        let now_ms = clock.now().unix_millis();
        let deadline_ms = if deadline_ms > now_ms {
            deadline_ms
        } else {
            now_ms + timeout.as_millis() as u64
        };
        let deadline =
            eventline_powertools::deadline::Deadline::for_invocation(deadline_ms, now_ms, timeout);
        Self {
            window: eventline_powertools::idempotency::Window {
                now_ms,
                deadline_ms,
            },
            slice: (deadline.remaining() / 10).min(std::time::Duration::from_secs(1)),
            deadline,
        }
    }
}
