//! Powertools-style building blocks for Rust Lambda functions, the pieces
//! Powertools for AWS Lambda (Python, TypeScript, Java, .NET) gives those
//! languages and Rust lacks:
//!
//! - [`batch`]: one batch processor that turns per-record results into a
//!   report of every record's outcome (what a partial batch response lists),
//!   keeps FIFO message groups in order, bounds concurrency and turns a
//!   panicking record into a failed record instead of a failed invocation.
//!   It knows no transport.
//! - [`sqs`], [`eventbridge`]: the entrypoints. An SQS event becomes
//!   messages for the batch processor and its report becomes
//!   `batchItemFailures`; an EventBridge payload is handed over as it came
//!   (with checked unwrapping of its envelope). Each builds the Lambda
//!   service around a handler, so the use cases need no Lambda types.
//! - [`env`]: configuration from environment variables, validated once at
//!   cold start, reporting every missing variable by name.
//! - [`logging`]: `tracing` set up the way Lambda's advanced logging controls
//!   expect (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`).
//! - [`idempotency`]: at-most-once work per key over at-least-once delivery,
//!   with one conditional write per lock (DynamoDB store in `eventline-aws`).
//! - [`item_lock`]: the same lock carried by the item the work concerns, so
//!   the item holds its lock and the fact that its effects happened.
//! - [`metrics`]: CloudWatch metrics in the Embedded Metric Format.
//! - [`otel`]: AWS calls and invocations as OpenTelemetry spans when an
//!   OTLP endpoint is configured (cargo feature `otel`), nothing otherwise.
//! - [`layer`]: one tower layer around each handler that records the cold
//!   start and the invocation's outcome as metrics and flushes them.
//!
//! The modules form no cycle: `batch`, `idempotency` and `metrics` know
//! nothing of each other (the processor returns a report, the guard reports
//! events to an observer); only `layer` joins them, with the metric names.
//!
//! Nothing here knows about the eventline domain; only the entrypoints and
//! `layer` depend on the Lambda event types and the runtime.
#![warn(missing_docs)]

pub mod batch;
pub mod deadline;
pub mod env;
pub mod eventbridge;
pub mod idempotency;
pub mod item_lock;
pub mod layer;
pub mod logging;
pub mod metrics;
pub mod otel;
pub mod settled;
pub mod sqs;
