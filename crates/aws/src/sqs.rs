//! SQS adapter: the NotificationQueue.
//!
//! A notification's correlation id goes with it as the String message
//! attribute `correlation_id` ([`CORRELATION_ATTRIBUTE`]), which the SQS
//! entrypoint hands notification-processor's record span.
//!
//! Every entry also carries the invocation's X-Ray trace header as the
//! `AWSTraceHeader` system attribute ([`TraceHeader`]), so that X-Ray links
//! the sender's trace to notification-processor's: one trace per signup.
//!
//! `SendMessageBatch` answers one call for many entries; this adapter fails
//! closed on that answer: an entry counts as sent only when exactly one
//! `Successful` result names its Id (with a message id) and no `Failed`
//! result does. An entry the answer leaves out, names twice or names in both
//! lists fails, so a short or malformed answer can never delete a record
//! whose notification was not queued.

use crate::{sdk_error, Detail};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use eventline_app::ports::NotificationQueue;
use eventline_app::PortError;
use eventline_domain::Notification;
use eventline_powertools::batch::CORRELATION_ATTRIBUTE;
use std::sync::Arc;

/// Builds the SQS client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Where the X-Ray trace header of the current invocation comes from; the
/// SQS and EventBridge adapters put it on what they send (`AWSTraceHeader`,
/// `TraceHeader`). Read at each send, since it changes per invocation.
#[derive(Clone)]
pub struct TraceHeader(Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl TraceHeader {
    /// `_X_AMZN_TRACE_ID`, which `lambda_runtime` sets before each
    /// invocation from the `Lambda-Runtime-Trace-Id` header (not in its
    /// concurrent mode, where it stays unset) and the X-Ray SDKs read.
    pub fn from_lambda_env() -> Self {
        Self(Arc::new(|| {
            std::env::var("_X_AMZN_TRACE_ID")
                .ok()
                .filter(|h| !h.trim().is_empty())
        }))
    }

    /// Always `header` (tests).
    pub fn fixed(header: impl Into<String>) -> Self {
        let header = header.into();
        Self(Arc::new(move || Some(header.clone())))
    }

    /// The header to send now, if any.
    pub fn current(&self) -> Option<String> {
        (self.0)()
    }
}

impl std::fmt::Debug for TraceHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TraceHeader").field(&self.current()).finish()
    }
}

impl Default for TraceHeader {
    fn default() -> Self {
        Self::from_lambda_env()
    }
}

/// Sends notifications to one queue, ten per `SendMessageBatch` call. On a
/// FIFO queue (`.fifo` URL) the user
/// id is the message group (one user's notifications stay in order) and the
/// notification id is the deduplication id (SQS drops a duplicate sent
/// within 5 minutes).
#[derive(Debug, Clone)]
pub struct SqsNotificationQueue {
    client: Client,
    queue_url: String,
    trace_header: TraceHeader,
}

impl SqsNotificationQueue {
    /// Adapter for `queue_url`, sending the invocation's trace header
    /// ([`TraceHeader::from_lambda_env`]).
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            trace_header: TraceHeader::default(),
        }
    }

    /// The same adapter, taking the trace header from `source`.
    pub fn with_trace_header(mut self, source: TraceHeader) -> Self {
        self.trace_header = source;
        self
    }
}

/// The `AWSTraceHeader` system attribute carrying `header`.
fn trace_attribute(
    header: Option<String>,
) -> Result<Option<MessageSystemAttributeValue>, PortError> {
    header
        .map(|h| {
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(h)
                .build()
                .map_err(|e| PortError::new(OP, e))
        })
        .transpose()
}

const OP: &str = "SQS SendMessageBatch notifications";

/// What one `SendMessageBatch` answer says about one requested entry.
#[derive(Default)]
struct Seen {
    /// `Successful` results naming it with a message id.
    sent: u32,
    /// `Successful` results naming it without a message id.
    malformed: u32,
    /// The first `Failed` result naming it, as a port error.
    failed: Option<PortError>,
    /// `Failed` results naming it.
    failures: u32,
}

impl Seen {
    fn outcome(self) -> Result<(), PortError> {
        match self {
            Seen {
                sent: 1,
                malformed: 0,
                failures: 0,
                ..
            } => Ok(()),
            Seen {
                failed: Some(error),
                failures: 1,
                sent: 0,
                malformed: 0,
            } => Err(error),
            Seen {
                sent: 0,
                malformed: 0,
                failures: 0,
                ..
            } => Err(PortError::new(OP, "no result for this entry in the answer")),
            _ => Err(PortError::new(
                OP,
                "ambiguous or malformed result for this entry in the answer",
            )),
        }
    }
}

/// Pairs a `SendMessageBatch` answer with the `len` requested entries (Ids
/// `0..len`), failing every entry the answer does not account for exactly.
fn outcomes(
    output: &aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput,
    len: usize,
) -> Vec<Result<(), PortError>> {
    let mut seen: Vec<Seen> = (0..len).map(|_| Seen::default()).collect();
    // An Id that is not one we sent cannot be paired with any entry; the
    // entry it should have named stays unaccounted for and fails below.
    let index = |id: &str| id.parse::<usize>().ok().filter(|i| *i < len);
    for ok in output.successful() {
        if let Some(i) = index(ok.id()) {
            if ok.message_id().is_empty() {
                seen[i].malformed += 1;
            } else {
                seen[i].sent += 1;
            }
        }
    }
    for failed in output.failed() {
        if let Some(i) = index(failed.id()) {
            seen[i].failures += 1;
            // SQS codes and messages name the problem, never the body.
            seen[i].failed.get_or_insert_with(|| {
                PortError::new(
                    OP,
                    format!("{}: {}", failed.code(), failed.message().unwrap_or("")),
                )
            });
        }
    }
    seen.into_iter().map(Seen::outcome).collect()
}

impl SqsNotificationQueue {
    /// One `SendMessageBatch` of at most 10 notifications.
    async fn send_chunk(&self, chunk: &[Notification]) -> Vec<Result<(), PortError>> {
        let fifo = self.queue_url.ends_with(".fifo");
        // One header for the chunk: all of it is sent from this invocation.
        let trace = trace_attribute(self.trace_header.current());
        let mut results: Vec<Option<Result<(), PortError>>> = vec![None; chunk.len()];
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, n) in chunk.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(n.to_json());
            if fifo {
                entry = entry
                    .message_group_id(n.user_id.as_str())
                    .message_deduplication_id(&n.notification_id);
            }
            let correlation = n.correlation_id.as_ref().map(|id| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(id.as_str())
                    .build()
            });
            let built = match correlation {
                Some(Ok(attribute)) => {
                    Ok(entry.message_attributes(CORRELATION_ATTRIBUTE, attribute))
                }
                Some(Err(e)) => Err(e),
                None => Ok(entry),
            };
            let traced = match &trace {
                Ok(Some(header)) => built.map(|entry| {
                    entry.message_system_attributes(
                        MessageSystemAttributeNameForSends::AwsTraceHeader,
                        header.clone(),
                    )
                }),
                Ok(None) => built,
                Err(e) => {
                    results[i] = Some(Err(e.clone()));
                    continue;
                }
            };
            match traced.and_then(|entry| entry.build()) {
                Ok(entry) => entries.push(entry),
                Err(e) => results[i] = Some(Err(PortError::new(OP, e))),
            }
        }
        if entries.is_empty() {
            return results.into_iter().flatten().collect();
        }
        let output = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let error = sdk_error(OP, &e, Detail::CodeAndMessage);
                return chunk.iter().map(|_| Err(error.clone())).collect();
            }
        };
        // The call succeeds even when entries fail: pair each entry with its result.
        results
            .into_iter()
            .zip(outcomes(&output, chunk.len()))
            .map(|(built, answered)| built.unwrap_or(answered))
            .collect()
    }
}

impl NotificationQueue for SqsNotificationQueue {
    async fn enqueue_all(&self, notifications: &[Notification]) -> Vec<Result<(), PortError>> {
        let chunks = notifications.chunks(10).map(|chunk| self.send_chunk(chunk));
        futures::future::join_all(chunks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}
