//! The time an invocation has left, so work stops waiting before Lambda
//! kills the process.
//!
//! A Lambda invocation that runs past its timeout is killed: every record of
//! its batch fails, including those whose effects already happened. A
//! [`Deadline`] is built **once per invocation**, from Lambda's deadline
//! less a safety margin, on the monotonic clock, and carried to every call:
//!
//! - [`Deadline::bound`] stops waiting for a future when it passes; every
//!   port call, including those *after* the work (idempotency completions,
//!   releases, dead-letter sends), is bounded by it, so none outlives the
//!   time left, whatever the SDK's own operation timeout (dropping the
//!   future cancels the call);
//! - work followed by such a call is cut one [step](Deadline::for_work)
//!   earlier, so the call after it has time to run;
//! - a caller wrapping a callee that honours the deadline itself bounds it
//!   by the [backstop](Deadline::backstop), half a margin later: the
//!   callee's outcomes, reached at the deadline, are kept, and a callee that
//!   ignores it is still cut before Lambda's own deadline.
//!
//! So the batch processor fails only the records still pending and returns
//! its partial batch response before Lambda would kill the invocation.
//! [`Deadline::run`] also catches a panic, so one piece of work that panics
//! or overruns costs its own outcome, not the invocation.

use futures::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio::time::Instant;

/// When work must stop waiting. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    stop: Instant,
    /// What is kept after `stop` to answer and flush (a tenth of the
    /// invocation's time, at most one second); also the step reserved
    /// before `stop` for the call that follows work ([`Deadline::for_work`]).
    margin: Duration,
}

/// The work did not finish before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped waiting at the invocation's deadline")]
pub struct DeadlineExceeded;

/// How bounded work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran<T> {
    /// It finished, with this output.
    Done(T),
    /// It panicked, with this message ([`panic_message`]). A message
    /// formatted at run time may quote input: do not log it as it is.
    Panicked(String),
    /// The deadline passed first; the work was dropped.
    OutOfTime,
}

impl Deadline {
    /// A deadline `budget` from now, its margin a tenth of `budget` (at
    /// most one second).
    pub fn after(budget: Duration) -> Self {
        Self {
            stop: Instant::now() + budget,
            margin: margin_of(budget),
        }
    }

    /// The deadline of an invocation that must end at `deadline_ms` (Unix
    /// milliseconds, from the Lambda context), seen at `now_ms`, less a
    /// safety margin (a tenth of the time, at most one second) to answer
    /// and flush. An unknown or past deadline (local emulators pass one in
    /// 1970) falls back to `timeout`, the function's configured timeout.
    /// Build it once, when the invocation starts, and pass it on: built
    /// again later it would count the whole time again from then.
    pub fn for_invocation(deadline_ms: u64, now_ms: u64, timeout: Duration) -> Self {
        let budget = match deadline_ms.checked_sub(now_ms) {
            Some(left) if left > 0 => Duration::from_millis(left),
            _ => timeout,
        };
        let margin = margin_of(budget);
        Self {
            stop: Instant::now() + (budget - margin),
            margin,
        }
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
            margin: self.margin,
        }
    }

    /// The cut-off of work that one more call follows (a completion, a
    /// release, a dead-letter send): one margin earlier, so that call has
    /// time before the deadline.
    pub fn for_work(&self) -> Self {
        self.earlier_by(self.margin)
    }

    /// The bound a caller puts around a callee that stops at this deadline
    /// itself: half a margin later. The callee's answer at the deadline is
    /// kept; a callee that overruns is cut with half the margin still left
    /// to answer.
    pub fn backstop(&self) -> Self {
        Self {
            stop: self.stop + self.margin / 2,
            margin: self.margin,
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.stop
    }

    /// Runs `work` until it finishes or the deadline passes, whichever is first.
    ///
    /// The work is boxed: bounds nest (a handler's, its guard's, each call's),
    /// and the work they wrap is often a pipeline of SDK calls whose future
    /// is kilobytes; inline, every level would carry it again, and debug
    /// builds overflowed a tokio worker's stack. One allocation per bound
    /// costs nothing next to the network call it bounds.
    pub async fn bound<F: Future>(&self, work: F) -> Result<F::Output, DeadlineExceeded> {
        tokio::time::timeout_at(self.stop, Box::pin(work))
            .await
            .map_err(|_| DeadlineExceeded)
    }

    /// Runs `work` like [`Deadline::bound`], and catches a panic in it:
    /// whatever happens, the caller gets an answer by the deadline.
    pub async fn run<F: Future>(&self, work: F) -> Ran<F::Output> {
        // The work's state is never observed after a panic (the future is
        // dropped), hence AssertUnwindSafe.
        match self.bound(AssertUnwindSafe(work).catch_unwind()).await {
            Ok(Ok(output)) => Ran::Done(output),
            Ok(Err(payload)) => Ran::Panicked(panic_message(payload.as_ref()).to_owned()),
            Err(DeadlineExceeded) => Ran::OutOfTime,
        }
    }
}

/// A panic's message: its `&str` or `String` payload (what `panic!` gives),
/// else a fixed text.
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(literal) = payload.downcast_ref::<&'static str>() {
        literal
    } else if let Some(formatted) = payload.downcast_ref::<String>() {
        formatted
    } else {
        "(a panic without a message)"
    }
}

/// A tenth of `budget`, at most one second.
fn margin_of(budget: Duration) -> Duration {
    (budget / 10).min(Duration::from_secs(1))
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

    #[tokio::test(start_paused = true)]
    async fn work_stops_a_step_early_and_a_wrapper_waits_half_a_margin_longer() {
        // 10 s left: a 1 s margin, so the deadline is 9 s away.
        let deadline = Deadline::for_invocation(10_000, 0, Duration::from_secs(3));
        assert_eq!(deadline.for_work().remaining(), Duration::from_secs(8));
        assert_eq!(
            deadline.backstop().remaining(),
            Duration::from_millis(9_500)
        );
        let short = Deadline::for_invocation(2_000, 0, Duration::from_secs(3));
        assert_eq!(short.remaining(), Duration::from_millis(1_800));
        assert_eq!(short.for_work().remaining(), Duration::from_millis(1_600));
        assert_eq!(short.backstop().remaining(), Duration::from_millis(1_900));
    }

    #[tokio::test(start_paused = true)]
    async fn run_returns_what_the_work_returned() {
        let deadline = Deadline::after(Duration::from_secs(1));
        assert_eq!(deadline.run(async { 7 }).await, Ran::Done(7));
    }

    #[tokio::test(start_paused = true)]
    async fn run_turns_a_panic_into_its_message() {
        let deadline = Deadline::after(Duration::from_secs(1));
        let literal = deadline.run(async { panic!("boom") }).await;
        assert_eq!(literal, Ran::<()>::Panicked("boom".to_owned()));
        let id = 42;
        let formatted = deadline.run(async move { panic!("no record {id}") }).await;
        assert_eq!(formatted, Ran::<()>::Panicked("no record 42".to_owned()));
        let other = deadline.run(async { std::panic::panic_any(7_u8) }).await;
        assert_eq!(
            other,
            Ran::<()>::Panicked("(a panic without a message)".to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_work_still_going_at_the_deadline() {
        let deadline = Deadline::after(Duration::from_secs(1));
        let slow = deadline
            .run(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                7
            })
            .await;
        assert_eq!(slow, Ran::OutOfTime);
        assert!(deadline.passed());
    }
}
