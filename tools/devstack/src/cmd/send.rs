//! `devstack send`: messages from files onto a function's SQS trigger.

use super::Stacks;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::DevstackError;
use std::path::{Path, PathBuf};

/// `devstack send`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The function whose queue receives the messages.
    #[arg(long, value_name = "FUNCTION", default_value = "user-processor")]
    pub to: String,
    /// Files of messages: a JSON array (one message per element) or JSON lines.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Sends the messages of `args.files` to `args.to`'s queue, in the one region given.
pub async fn run(stacks: &Stacks, args: Args) -> Result<(), DevstackError> {
    let [(manifest, sdk)] = &stacks[..] else {
        return Err(DevstackError::Usage(
            "send takes one --manifest: the region the messages go to".to_owned(),
        ));
    };
    send(manifest, sdk, &args.to, &args.files).await
}

async fn send(
    manifest: &Manifest,
    sdk: &aws_config::SdkConfig,
    to: &str,
    files: &[PathBuf],
) -> Result<(), DevstackError> {
    let function = manifest
        .function(to)
        .ok_or_else(|| DevstackError::Usage(format!("no function named {to} in the manifest")))?;
    let queue = function
        .sqs_sources
        .first()
        .ok_or_else(|| DevstackError::Usage(format!("{to} has no SQS trigger")))?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut sent = 0;
    for file in files {
        for body in read_messages(file)? {
            sqs.send_message()
                .queue_url(&queue.queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| DevstackError::aws("SQS SendMessage", e))?;
            sent += 1;
        }
    }
    println!("devstack: sent {sent} messages to {}", queue.queue_url);
    Ok(())
}

/// Messages in a file: a JSON array (each element one message) or JSON lines.
fn read_messages(path: &Path) -> Result<Vec<String>, DevstackError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DevstackError::Usage(format!("{}: {e}", path.display())))?;
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) {
        return Ok(items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect());
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
