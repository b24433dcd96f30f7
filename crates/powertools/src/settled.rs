//! One `INFO` line per record or event when its handling ends, inside its
//! `record` or `event` span (so it carries the `correlation_id`):
//! `"message":"record settled"` with `outcome` and `duration_ms`. With the
//! function and request id every line has, that is one hop of a signup's
//! journey (`scripts/journey.py`, docs/observability.md "Following one
//! signup"). Ids and counts only, never the payload.

use crate::batch::RecordOutcome;
use std::time::Instant;

/// The line's message.
pub const SETTLED: &str = "record settled";

impl RecordOutcome {
    /// The outcome's name in logs: `succeeded`, `failed`, `deferred`,
    /// `dead_lettered` or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed(_) => "failed",
            Self::Deferred(_) => "deferred",
            Self::DeadLettered(_) => "dead_lettered",
            Self::Skipped => "skipped",
        }
    }
}

/// Logs the line for a handling that began at `started` and ended with
/// `outcome` (a [`RecordOutcome::label`], or the same words for an event).
pub fn log(outcome: &'static str, started: Instant) {
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(outcome, duration_ms, "{SETTLED}");
}

#[cfg(test)]
mod tests {
    use crate::batch::{BatchProcessor, Message};
    use crate::deadline::Deadline;
    use crate::logging::{self, Capture, LogConfig};
    use std::time::Duration;

    #[tokio::test]
    async fn each_record_logs_its_outcome_and_duration_once() {
        let logs = Capture::new();
        let _guard = tracing::subscriber::set_default(logging::subscriber(
            &LogConfig::json("svc"),
            logs.clone(),
        ));
        let messages = vec![Message::new("m-1", "ok"), Message::new("m-2", "bad")];
        let _ = BatchProcessor::new()
            .process(
                messages,
                Deadline::after(Duration::from_secs(5)),
                |m| async move {
                    match m.body.as_deref() {
                        Some("ok") => Ok(()),
                        _ => Err("bad record".to_owned()),
                    }
                },
            )
            .await;
        let settled: Vec<_> = logs
            .json_lines()
            .into_iter()
            .filter(|l| l["message"] == super::SETTLED)
            .collect();
        assert_eq!(settled.len(), 2);
        assert_eq!(settled[0]["correlation_id"], "m-1");
        assert_eq!(settled[0]["outcome"], "succeeded");
        assert_eq!(settled[1]["correlation_id"], "m-2");
        assert_eq!(settled[1]["outcome"], "failed");
        assert!(settled.iter().all(|l| l["duration_ms"].is_u64()));
    }
}
