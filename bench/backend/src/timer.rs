//! Waits with sub-millisecond precision. tokio's timer rounds every
//! deadline up to its next 1 ms tick, which would add up to a millisecond
//! to each call (a tenth of a 10 ms latency, and ~1 ms to every call at 0
//! ms); one thread sleeping on a channel with a timeout (a futex wait with
//! a nanosecond deadline) wakes each waiter within tens of microseconds.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;
use tokio::sync::oneshot;

struct Due {
    at: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// The earliest deadline first out of the (max-)heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// The timer thread's mailbox; the thread ends when this is dropped.
pub(crate) struct Timer {
    requests: mpsc::Sender<Due>,
}

impl Timer {
    pub fn start() -> Self {
        let (requests, inbox) = mpsc::channel::<Due>();
        std::thread::Builder::new()
            .name("latency-timer".into())
            .spawn(move || run(inbox))
            .map(drop)
            .unwrap_or_else(|e| {
                eprintln!("fixed-latency-aws: no timer thread ({e}); answers come at once")
            });
        Self { requests }
    }

    /// Returns at `deadline` (at once if it has passed).
    pub async fn sleep_until(&self, deadline: Instant) {
        if deadline <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        if self.requests.send(Due { at: deadline, wake }).is_ok() {
            let _ = woken.await;
        }
    }
}

fn run(inbox: mpsc::Receiver<Due>) {
    let mut due = BinaryHeap::new();
    loop {
        let received = match due.peek() {
            Some(Due { at, .. }) => {
                inbox.recv_timeout(at.saturating_duration_since(Instant::now()))
            }
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(request) => due.push(request),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while due.peek().is_some_and(|d| d.at <= now) {
            if let Some(d) = due.pop() {
                let _ = d.wake.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_wake_no_earlier_than_their_deadlines() {
        let timer = Timer::start();
        let start = Instant::now();
        let late = timer.sleep_until(start + Duration::from_millis(30));
        let early = async {
            timer.sleep_until(start + Duration::from_millis(10)).await;
            Instant::now()
        };
        let (early_at, ()) = tokio::join!(early, late);
        let late_at = Instant::now();
        assert!(early_at >= start + Duration::from_millis(10));
        assert!(late_at >= start + Duration::from_millis(30));
        // A past deadline does not wait for anything.
        timer.sleep_until(start).await;
    }
}
