//! Runs the eventline pipeline on a developer's machine, with no Docker and
//! no AWS account, doing the parts of Lambda that no local tool does.
//!
//! `scripts/provision.py` deploys `template.yaml` into a moto server and
//! writes a [`manifest::Manifest`]. The [`runner::Runner`] then plays
//! Lambda for every function: its SQS event source mappings (partial batch
//! responses, redrive to the DLQ), its EventBridge rules as asynchronous
//! invokes (retries, `OnFailure`), and its timeout. Functions run in
//! `cargo lambda watch`, called through its Invoke API ([`invoke::Invoker`]).
//!
//! Several regions of one moto server run as [`regions::Regions`]: a runner
//! per region, and a [`replicator::Replicator`] standing in for the global
//! table moto lacks, under the rule in [`last_writer_wins`]. [`drill`]
//! stops one region's functions for a while and checks that nothing was
//! lost or done twice. docs/local.md and docs/multi-region.md give the
//! semantics in full, and every way they differ from AWS.
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
