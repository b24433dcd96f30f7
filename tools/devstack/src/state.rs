//! What the pipeline left in the emulator: table items, bucket objects and
//! dead-letter queues, read back through the SDK for the closing summary.

use crate::manifest::Manifest;
use crate::runner::queue_depth;
use crate::DevstackError;
use aws_sdk_dynamodb::types::Select;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Counts of what the pipeline produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackState {
    /// Items per DynamoDB table (by environment variable, e.g. `USERS_TABLE`).
    pub tables: BTreeMap<String, (String, u64)>,
    /// Objects per key prefix kind in the bucket (`outbox/welcome`, `outbox/signup_confirmation`, `profiles`).
    pub objects: BTreeMap<String, u64>,
    /// The bucket name.
    pub bucket: Option<String>,
    /// Messages per dead-letter or failure queue, by a readable label.
    pub dead_letters: BTreeMap<String, (String, u64)>,
    /// A few message bodies from each non-empty dead-letter queue, to show what failed.
    pub dead_letter_samples: BTreeMap<String, Vec<String>>,
}

impl StackState {
    /// Reads the state of the stack described by `manifest`.
    pub async fn read(
        manifest: &Manifest,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, DevstackError> {
        let mut state = Self::default();
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let env: BTreeMap<&String, &String> = manifest
            .functions
            .iter()
            .flat_map(|f| f.environment.iter())
            .collect();
        for (var, table) in env
            .iter()
            .filter(|(k, _)| k.ends_with("_TABLE") && k.as_str() != "IDEMPOTENCY_TABLE")
        {
            let mut count = 0u64;
            let mut start = None;
            loop {
                let page = dynamodb
                    .scan()
                    .table_name(*table)
                    .select(Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| DevstackError::aws("DynamoDB Scan", e))?;
                count += page.count as u64;
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            state
                .tables
                .insert((*var).clone(), ((*table).clone(), count));
        }
        if let Some(bucket) = env
            .iter()
            .find(|(k, _)| k.as_str() == "BUCKET_NAME")
            .map(|(_, v)| (*v).clone())
        {
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk)
                    .force_path_style(true)
                    .build(),
            );
            let mut pages = s3.list_objects_v2().bucket(&bucket).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| DevstackError::aws("S3 ListObjectsV2", e))?;
                for key in page.contents().iter().filter_map(|o| o.key()) {
                    *state.objects.entry(object_kind(key)).or_default() += 1;
                }
            }
            state.bucket = Some(bucket);
        }
        let mut queues_of_functions = Vec::new();
        for function in &manifest.functions {
            let queues = function
                .sqs_sources
                .iter()
                .filter_map(|s| {
                    s.dead_letter_queue_url
                        .as_ref()
                        .map(|u| (format!("{} DLQ", function.name), u))
                })
                .chain(function.event_sources.iter().filter_map(|e| {
                    e.dead_letter_queue_url
                        .as_ref()
                        .map(|u| (format!("{} rule DLQ", function.name), u))
                }))
                .chain(function.async_invoke.iter().filter_map(|a| {
                    a.on_failure_queue_url
                        .as_ref()
                        .map(|u| (format!("{} OnFailure", function.name), u))
                }));
            queues_of_functions.extend(queues.map(|(label, url)| (label, url.clone())));
        }
        // Dead-letter queues of no function (the forwarding rules' in a stack of several regions).
        let others: Vec<(String, String)> = manifest
            .resources
            .iter()
            .filter(|(lid, _)| lid.ends_with("DLQ"))
            .filter_map(|(lid, url)| Some((lid.clone(), url.clone()?)))
            .filter(|(_, url)| !queues_of_functions.iter().any(|(_, u)| u == url))
            .collect();
        for (label, url) in queues_of_functions.into_iter().chain(others) {
            let depth = queue_depth(&sqs, &url).await.unwrap_or(0);
            if depth > 0 {
                state
                    .dead_letter_samples
                    .insert(label.clone(), peek(&sqs, &url).await);
            }
            state.dead_letters.insert(label, (url, depth));
        }
        Ok(state)
    }

    /// The number of objects of a kind (see [`object_kind`]).
    pub fn objects_of(&self, kind: &str) -> u64 {
        self.objects.get(kind).copied().unwrap_or(0)
    }

    /// Items in the table behind environment variable `var`.
    pub fn items_in(&self, var: &str) -> u64 {
        self.tables.get(var).map_or(0, |(_, n)| *n)
    }

    /// Messages in the dead-letter queue labelled `label`.
    pub fn dead_letters_in(&self, label: &str) -> u64 {
        self.dead_letters.get(label).map_or(0, |(_, n)| *n)
    }

    /// A readable report with where to look.
    pub fn render(&self, endpoint: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Stack state (moto at {endpoint}):");
        for (var, (table, n)) in &self.tables {
            let _ = writeln!(out, "  {n:>5} items    in table {table} ({var})");
        }
        if let Some(bucket) = &self.bucket {
            for (kind, n) in &self.objects {
                let _ = writeln!(out, "  {n:>5} objects  s3://{bucket}/{kind}*");
            }
        }
        for (label, (url, n)) in &self.dead_letters {
            let _ = writeln!(out, "  {n:>5} messages in {label}: {url}");
            for body in self.dead_letter_samples.get(label).into_iter().flatten() {
                let _ = writeln!(out, "          {body}");
            }
        }
        let _ = writeln!(out, "Browse everything at {endpoint}/moto-api/ or with `cargo run -p eventline-devstack -- summary`.");
        out
    }
}

/// Up to three bodies from `url`, left visible (visibility timeout 0) so
/// looking does not delay a redrive; long bodies are cut at 120 characters.
async fn peek(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let Ok(output) = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(3)
        .visibility_timeout(0)
        .send()
        .await
    else {
        return Vec::new();
    };
    output
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .map(|body| match body.char_indices().nth(120) {
            Some((cut, _)) => format!("{}…", &body[..cut]),
            None => body,
        })
        .collect()
}

/// Groups a key: `outbox/welcome.u-1.json` → `outbox/welcome`,
/// `profiles/u-1.json` → `profiles/`.
pub fn object_kind(key: &str) -> String {
    match key.split_once('/') {
        Some(("outbox", rest)) => format!("outbox/{}", rest.split('.').next().unwrap_or_default()),
        Some((prefix, _)) => format!("{prefix}/"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::object_kind;

    #[test]
    fn groups_objects_by_purpose() {
        assert_eq!(object_kind("outbox/welcome.u-1.json"), "outbox/welcome");
        assert_eq!(
            object_kind("outbox/signup_confirmation.u-1.json"),
            "outbox/signup_confirmation"
        );
        assert_eq!(object_kind("profiles/u-1.json"), "profiles/");
    }
}
