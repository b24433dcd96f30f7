//! Powertools-style building blocks for Rust Lambda functions: what
//! Powertools for AWS Lambda gives Python, TypeScript, Java and .NET, and
//! Rust lacks. Nothing here knows the eventline domain.
//!
//! - [`batch`]: per-record outcomes of a batch (partial failures, FIFO
//!   groups, dead letters, panics), whatever the transport;
//! - [`sqs`], [`eventbridge`]: the Lambda entrypoints around a handler;
//! - [`deadline`]: the invocation's deadline, and [`deadline::Deadline::run`]
//!   for work bounded by it with its panic caught;
//! - [`idempotency`], [`item_lock`]: at-most-once work per key, in a record
//!   of its own or on the item the work concerns;
//! - [`mod@env`]: configuration from environment variables, checked at cold start;
//! - [`logging`]: `tracing` set up for Lambda's logging controls, in
//!   Powertools' JSON shape;
//! - [`metrics`]: CloudWatch metrics in the Embedded Metric Format;
//! - [`otel`]: AWS calls and invocations as OpenTelemetry spans when an
//!   OTLP endpoint is configured (cargo feature `otel`), nothing otherwise.
//! - [`invocation_layer`]: the tower layer that records each invocation's
//!   cold start and outcome as metrics and flushes them.
//!
//! `batch`, `idempotency` and `metrics` know nothing of each other; only
//! `invocation_layer` joins them, with the metric names. Test helpers
//! (`logging::Capture`) are behind the `test-util` feature.
#![warn(missing_docs)]

pub mod batch;
pub mod deadline;
pub mod env;
pub mod eventbridge;
pub mod idempotency;
pub mod invocation_layer;
pub mod item_lock;
pub mod logging;
pub mod metrics;
pub mod otel;
pub mod settled;
pub mod sqs;
