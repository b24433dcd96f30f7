//! Runs the eventline pipeline on a developer's machine, with no Docker and
//! no AWS account, doing the parts of Lambda that no local tool does.
//!
//! `scripts/provision.py` deploys `template.yaml` into a moto server and
//! writes a [`manifest::Manifest`] of what was deployed: each function's SQS
//! event source mappings and EventBridge rules (whose Lambda targets were
//! replaced by SQS "tap" queues, since moto cannot invoke functions). The
//! [`runner::Runner`] then plays Lambda's part for every function:
//!
//! - **SQS event source mapping**: receive up to `BatchSize` messages,
//!   invoke the function with an SQS event of AWS's exact shape, delete
//!   what the partial batch response did not list as failed, and leave the
//!   rest to reappear after the visibility timeout; moto applies the
//!   queue's redrive policy (maxReceiveCount → DLQ) on receive.
//! - **EventBridge rule → Lambda (asynchronous invoke)**: receive the event
//!   from the rule's tap, invoke the function, and on error retry it up to
//!   the function's `MaximumRetryAttempts`, then send an AWS-shaped failure
//!   record to its `OnFailure` destination.
//! - **Function timeout**: an invocation that runs past the function's
//!   `Timeout` is cut off and fails as a whole (the SQS batch comes back
//!   after the visibility timeout; an asynchronous attempt is retried), and
//!   in-process functions are handed the deadline Lambda would give them.
//!
//! Functions run in `cargo lambda watch` and are called through the Lambda
//! Invoke API it serves ([`invoke::Invoker`]), so what runs is the very
//! binary `cargo lambda invoke` and `sam build` use.
//!
//! A stack provisioned in several regions of one moto server
//! (`provision.py --regions`) runs as [`regions::Regions`]: a runner per
//! region, each invoking that region's own function processes, and a
//! [`replicator::Replicator`] emulating the global table moto lacks, by
//! copying each users-table change to the other regions from the streams,
//! last writer wins ([`last_writer_wins`]). [`drill`] stops one region's
//! functions for a while and checks that nothing was lost or done twice.
#![warn(missing_docs)]

pub mod drill;
pub mod invoke;
pub mod last_writer_wins;
pub mod manifest;
pub mod regions;
pub mod replicator;
pub mod runner;
pub mod shape;
pub mod state;

use thiserror::Error;

/// What can go wrong running the local stack.
#[derive(Debug, Error)]
pub enum DevstackError {
    /// The manifest is missing or malformed.
    #[error("cannot read the stack manifest {path}: {reason} (run `make provision` first)")]
    Manifest {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A call to the emulator failed.
    #[error("{operation} failed: {reason}")]
    Aws {
        /// What was attempted.
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// Input given on the command line is unusable.
    #[error("{0}")]
    Usage(String),
}

impl DevstackError {
    /// An emulator call that failed.
    pub fn aws(operation: &'static str, e: impl std::fmt::Debug) -> Self {
        Self::Aws {
            operation,
            reason: format!("{e:?}"),
        }
    }
}

/// SDK configuration for the emulator at `endpoint` (dummy credentials).
pub async fn sdk_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "devstack",
        ))
        .load()
        .await
}
