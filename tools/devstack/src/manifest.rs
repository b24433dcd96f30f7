//! The description of a deployed local stack that `scripts/provision.py`
//! writes to `.local/stack.json`, read back from the emulator after deploy
//! (`scripts/stack/manifest.py`). Only the fields the runner and the state
//! summary use are read; the file holds more for iam_check and for people.

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
    /// Every function with its triggers.
    pub functions: Vec<Function>,
    /// The stack's parameter values.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Logical id → physical id of every resource (`null` where moto made none).
    #[serde(default)]
    pub resources: BTreeMap<String, Option<String>>,
    /// Global tables this region holds a replica of (`provision.py --regions`).
    #[serde(default)]
    pub global_tables: Vec<GlobalTable>,
}

/// A global table and the regions of its replicas.
#[derive(Debug, Clone, Deserialize)]
pub struct GlobalTable {
    /// The table name, the same in every region.
    pub table_name: String,
    /// The regions holding a replica.
    pub regions: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_global_tables_of_a_region_of_several() {
        let manifest: Manifest = serde_json::from_value(json!({
            "endpoint": "http://127.0.0.1:5055",
            "region": "eu-west-1",
            "functions": [],
            "resources": {"UsersGlobalTable": null},
            "global_tables": [{
                "logical_id": "UsersGlobalTable",
                "table_name": "eventline-local-users",
                "regions": ["us-west-2", "us-east-1", "eu-west-1"]
            }]
        }))
        .unwrap();
        assert_eq!(
            manifest.global_tables[0].table_name,
            "eventline-local-users"
        );
        assert_eq!(manifest.global_tables[0].regions.len(), 3);
        assert_eq!(manifest.resources["UsersGlobalTable"], None);
    }

    /// The shape `scripts/stack/manifest.py` writes (values shortened),
    /// with the fields only iam_check and people read.
    #[test]
    fn reads_what_provision_writes() {
        let manifest: Manifest = serde_json::from_value(json!({
            "endpoint": "http://127.0.0.1:5055",
            "region": "us-east-1",
            "account_id": "123456789012",
            "stack_name": "eventline-local",
            "parameters": {"Stage": "local"},
            "functions": [
                {
                    "name": "user-processor",
                    "logical_id": "UserProcessorFunction",
                    "function_name": "eventline-local-UserProcessorFunction-X",
                    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:x",
                    "timeout_seconds": 3,
                    "environment": {"USERS_TABLE": "eventline-local-users"},
                    "sqs_sources": [{
                        "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/signups",
                        "queue_arn": "arn:aws:sqs:us-east-1:123456789012:signups",
                        "batch_size": 10,
                        "maximum_batching_window_seconds": 0,
                        "report_batch_item_failures": true,
                        "dead_letter_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/signups-dlq",
                        "enabled": true
                    }],
                    "event_sources": [],
                    "async_invoke": null,
                    "log_group": "/aws/lambda/eventline-local-user-processor"
                },
                {
                    "name": "welcome-email",
                    "logical_id": "WelcomeEmailFunction",
                    "function_name": "eventline-local-WelcomeEmailFunction-Y",
                    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:y",
                    "timeout_seconds": 3,
                    "environment": {},
                    "sqs_sources": [],
                    "event_sources": [{
                        "event_bus_name": "eventline-local-bus",
                        "tap_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/welcome-tap",
                        "pattern": {"source": ["user.service"]},
                        "dead_letter_queue_url": null
                    }],
                    "async_invoke": {
                        "maximum_retry_attempts": 2,
                        "on_failure_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/failures"
                    },
                    "log_group": null
                }
            ],
            "resources": {"SignupQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/signups"},
            "not_emulated": [],
            "local_rewrites": []
        }))
        .unwrap();

        assert!(manifest.global_tables.is_empty());
        assert_eq!(
            manifest.resources["SignupQueue"].as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/signups")
        );
        let processor = manifest.function("user-processor").unwrap();
        assert_eq!(processor.timeout_seconds, 3);
        assert_eq!(
            processor.environment["USERS_TABLE"],
            "eventline-local-users"
        );
        let source = &processor.sqs_sources[0];
        assert!(source.enabled && source.report_batch_item_failures);
        assert_eq!(source.batch_size, 10);
        assert_eq!(
            source.dead_letter_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/signups-dlq")
        );
        let welcome = manifest.function("welcome-email").unwrap();
        assert_eq!(
            welcome.event_sources[0].tap_queue_url,
            "https://sqs.us-east-1.amazonaws.com/123456789012/welcome-tap"
        );
        let retries = welcome.async_invoke.as_ref().unwrap();
        assert_eq!(retries.maximum_retry_attempts, 2);
        assert_eq!(
            retries.on_failure_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/failures")
        );
    }
}
