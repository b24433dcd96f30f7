//! Where records that can never succeed go, with their reason.

use futures::future::BoxFuture;

use super::{Deadline, Rejection};

/// A record that can never succeed, on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's message id (an EventBridge event's id).
    pub source_message_id: String,
    /// The record's body, unchanged, so it can be redriven.
    pub body: String,
    /// The FIFO message group, if any.
    pub message_group_id: Option<String>,
    /// When it was first delivered (Unix ms), if known.
    pub first_seen_ms: Option<u64>,
    /// Why.
    pub reason: Rejection,
}

/// Where rejected records go (the source queue's DLQ, in production the
/// SQS adapter in `eventline-aws`). The sink adds the function's name.
pub trait DeadLetterSink: Send + Sync {
    /// Stores `letter` durably; an error keeps the record on the retry path.
    fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>>;
}

/// Sends `letter` to `sink` and logs the outcome with `error` (the
/// rejection's message); `true` when the sink stored it. Shared by the
/// batch processor and the handlers of single events (EventBridge), so a
/// rejection reads the same in the logs wherever it happened. The send runs
/// after the work, in the time it left: it stops at `deadline`, and one cut
/// off (or not started, the deadline being past) keeps the record on the
/// retry path.
pub async fn dead_letter(
    sink: &dyn DeadLetterSink,
    letter: &DeadLetter,
    error: &str,
    deadline: Deadline,
) -> bool {
    let code = letter.reason.code;
    let sent = if deadline.passed() {
        Err("not sent: the invocation's deadline had passed".to_owned())
    } else {
        deadline
            .bound(sink.send(letter))
            .await
            .unwrap_or_else(|_| Err("cut off at the invocation's deadline".to_owned()))
    };
    match sent {
        Ok(()) => {
            tracing::warn!(error, code, "rejected; sent to the dead-letter queue");
            true
        }
        Err(e) => {
            tracing::error!(error, code, sink_error = %e, "rejected, but the dead-letter queue refused it; it stays on the retry path");
            false
        }
    }
}
