//! The time an invocation has left, so work stops waiting before Lambda
//! kills the process.
//!
//! A Lambda invocation that runs past its timeout is killed: every record of
//! its batch fails, including those whose effects already happened. A
//! [`Deadline`] is the invocation's deadline minus a safety margin, on the
//! monotonic clock; [`Deadline::bound`] stops waiting for a future when it
//! passes, so the batch processor can fail only the records still pending and
//! return its partial batch response in time.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// When work must stop waiting. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    stop: Instant,
}

/// The work did not finish before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped waiting at the invocation's deadline")]
pub struct DeadlineExceeded;

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            stop: Instant::now() + budget,
        }
    }

    /// The deadline of an invocation that must end at `deadline_ms` (Unix
    /// milliseconds, from the Lambda context), seen at `now_ms`, less a
    /// safety margin (a tenth of the time, at most one second) to answer
    /// and flush. An unknown or past deadline (local emulators pass one in
    /// 1970) falls back to `timeout`, the function's configured timeout.
    pub fn for_invocation(deadline_ms: u64, now_ms: u64, timeout: Duration) -> Self {
        let budget = match deadline_ms.checked_sub(now_ms) {
            Some(left) if left > 0 => Duration::from_millis(left),
            _ => timeout,
        };
        let margin = (budget / 10).min(Duration::from_secs(1));
        Self::after(budget - margin)
    }

    /// Time left before the deadline (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.stop.saturating_duration_since(Instant::now())
    }

    /// The same deadline moved `by` earlier: the cut-off of a step that
    /// must leave `by` for the steps after it.
    pub fn earlier_by(&self, by: Duration) -> Self {
        Self {
            stop: self.stop.checked_sub(by).unwrap_or(self.stop),
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.stop
    }

    /// Runs `work` until it finishes or the deadline passes, whichever is first.
    pub async fn bound<F: Future>(&self, work: F) -> Result<F::Output, DeadlineExceeded> {
        tokio::time::timeout_at(self.stop, work)
            .await
            .map_err(|_| DeadlineExceeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_is_stopped_with_the_margin_kept() {
        let deadline = Deadline::for_invocation(10_000, 0, Duration::from_secs(3));
        assert_eq!(deadline.remaining(), Duration::from_secs(9), "a 1 s margin");
        let slow = deadline
            .bound(tokio::time::sleep(Duration::from_secs(60)))
            .await;
        assert_eq!(slow, Err(DeadlineExceeded));
        assert!(deadline.passed());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_cut_off_leaves_time_for_later_steps() {
        let deadline = Deadline::after(Duration::from_secs(5));
        let step = deadline.earlier_by(Duration::from_secs(2));
        assert_eq!(step.remaining(), Duration::from_secs(3));
        assert_eq!(deadline.remaining(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_deadline_falls_back_to_the_timeout() {
        let deadline = Deadline::for_invocation(1_000, 5_000_000, Duration::from_secs(3));
        assert_eq!(deadline.remaining(), Duration::from_millis(2_700));
        assert_eq!(deadline.bound(async { 7 }).await, Ok(7));
    }
}
