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
pub mod mail;
pub mod memory;
pub mod notification_processor;
pub mod ports;
pub mod profile_creator;
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
