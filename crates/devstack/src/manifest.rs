//! The description of a deployed local stack that `scripts/provision.py`
//! writes to `.local/stack.json`, read back from the emulator after deploy.

use crate::DevstackError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A deployed stack.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The emulator's endpoint.
    pub endpoint: String,
    /// Region the stack was deployed in.
    pub region: String,
    /// CloudFormation stack name.
    pub stack_name: String,
    /// Every function with its triggers.
    pub functions: Vec<Function>,
    /// Stack outputs.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// What the local deploy changed from the translated template, and why.
    #[serde(default)]
    pub local_rewrites: Vec<String>,
}

/// One function and what triggers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    /// The cargo binary name, which is also the name `cargo lambda watch` serves it under.
    pub name: String,
    /// Configured timeout.
    pub timeout_seconds: u64,
    /// Resolved environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// SQS event source mappings.
    #[serde(default)]
    pub sqs_sources: Vec<SqsSource>,
    /// EventBridge rules targeting the function (through their taps).
    #[serde(default)]
    pub event_sources: Vec<EventSource>,
    /// Asynchronous-invoke settings (EventInvokeConfig), if any.
    #[serde(default)]
    pub async_invoke: Option<AsyncInvoke>,
}

/// An SQS event source mapping.
#[derive(Debug, Clone, Deserialize)]
pub struct SqsSource {
    /// The queue.
    pub queue_url: String,
    /// Its ARN (put in each record's `eventSourceARN`).
    pub queue_arn: String,
    /// Records per invocation at most.
    pub batch_size: i32,
    /// How long to gather a batch.
    #[serde(default)]
    pub maximum_batching_window_seconds: u64,
    /// Whether the function reports partial batch failures.
    #[serde(default)]
    pub report_batch_item_failures: bool,
    /// Where messages go after maxReceiveCount receives.
    #[serde(default)]
    pub dead_letter_queue_url: Option<String>,
    /// Whether the mapping is enabled in the template (a disabled one is not polled).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// An EventBridge rule whose Lambda target is served through a tap queue.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSource {
    /// The rule's name.
    pub rule_name: String,
    /// The SQS queue the rule delivers to locally.
    pub tap_queue_url: String,
    /// The rule target's DLQ (events EventBridge could not deliver).
    #[serde(default)]
    pub dead_letter_queue_url: Option<String>,
}

/// Lambda's asynchronous-invoke configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct AsyncInvoke {
    /// Retries after the first failed attempt (0–2).
    pub maximum_retry_attempts: u32,
    /// Where failed events go after the last retry.
    #[serde(default)]
    pub on_failure_queue_url: Option<String>,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn load(path: &Path) -> Result<Self, DevstackError> {
        let error = |reason: String| DevstackError::Manifest {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(e.to_string()))
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}
