//! A writer for tests that keeps what is logged.

use serde_json::Value;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use tracing_subscriber::fmt::MakeWriter;

/// A writer for tests that keeps every byte logged; clones share the buffer.
///
/// Pass a clone to [`subscriber`](super::subscriber), log, then read
/// [`Capture::json_lines`] or [`Capture::text`]:
///
/// ```rust
/// use eventline_powertools::logging::{self, Capture, LogConfig};
///
/// let logs = Capture::new();
/// let subscriber = logging::subscriber(&LogConfig::json("user-processor"), logs.clone());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(user_id = "u-1", "user stored");
/// });
/// let lines = logs.json_lines();
/// assert_eq!(lines[0]["message"], "user stored");
/// assert_eq!(lines[0]["user_id"], "u-1");
/// assert!(!logs.text().contains("ada@example.com"));
/// ```
///
/// In an async test, keep the subscriber for the whole test with
/// `let _guard = tracing::subscriber::set_default(subscriber);` on a
/// current-thread runtime (plain `#[tokio::test]`): the default is per
/// thread, so a multi-thread runtime's workers would not see it.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Every line written so far, parsed as JSON.
    ///
    /// # Panics
    ///
    /// If a line is not JSON (the subscriber was not in [`LogFormat::Json`](super::LogFormat::Json)).
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
