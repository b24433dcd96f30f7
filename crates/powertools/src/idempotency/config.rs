//! What a guard is configured with: the attempt's window, the payload's
//! hash and a time to live long enough for one invocation.

use sha2::{Digest, Sha256};
use std::time::Duration;
use thiserror::Error;

/// When an attempt runs and how long its lock may live.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Now, Unix milliseconds.
    pub now_ms: u64,
    /// The invocation's deadline, Unix milliseconds (Lambda context).
    pub deadline_ms: u64,
}

/// SHA-256 of `parts`, each length-prefixed so that ("ab","c") ≠ ("a","bc").
pub fn payload_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// A time to live that cannot cover one invocation (see [`check_ttl`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "IDEMPOTENCY_TTL_SECONDS ({ttl_seconds}) must be greater than FUNCTION_TIMEOUT_SECONDS \
     ({timeout_seconds}): a shorter time to live lets a duplicate take a live lock"
)]
pub struct TtlTooShort {
    /// The configured time to live.
    pub ttl_seconds: u64,
    /// The function's timeout.
    pub timeout_seconds: u64,
}

/// Refuses a time to live that could not cover one invocation. Lambda does
/// not tell a process its timeout, so the template passes it.
pub fn check_ttl(expires_after: Duration, function_timeout: Duration) -> Result<(), TtlTooShort> {
    if expires_after > function_timeout {
        Ok(())
    } else {
        Err(TtlTooShort {
            ttl_seconds: expires_after.as_secs(),
            timeout_seconds: function_timeout.as_secs(),
        })
    }
}
