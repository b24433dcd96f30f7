//! Checked unwrapping of EventBridge events delivered to a Lambda target.
//!
//! Functions take the raw JSON payload and unwrap it here, so that a payload
//! of the wrong shape or type becomes a clear, typed error (which Lambda's
//! async-invoke retries and the target's DLQ then handle) rather than a
//! runtime deserialisation failure whose message may echo the payload.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

/// Why an EventBridge payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// Not an EventBridge event (e.g. `source` or `detail-type` missing).
    #[error("payload is not an EventBridge event")]
    NotAnEvent,
    /// An EventBridge event, but not the one this function handles.
    #[error("unexpected event: source '{source_name}', detail-type '{detail_type}' (expected '{expected_source}', '{expected_detail_type}')")]
    Unexpected {
        /// The event's `source`.
        source_name: String,
        /// The event's `detail-type`.
        detail_type: String,
        /// The `source` this function handles.
        expected_source: &'static str,
        /// The `detail-type` this function handles.
        expected_detail_type: &'static str,
    },
}

/// An EventBridge event whose source and detail-type have been checked.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The event id (stable across EventBridge's redeliveries of one event;
    /// a forwarded or re-published copy gets a new one).
    pub id: Option<String>,
    /// The envelope's `time` (Unix milliseconds), if it has one.
    pub time_ms: Option<u64>,
    /// The event's `detail`, still raw.
    pub detail: Value,
}

/// Unwraps `payload`, requiring `source` and `detail_type`.
pub fn unwrap_event(
    payload: Value,
    source: &'static str,
    detail_type: &'static str,
) -> Result<Envelope, EnvelopeError> {
    let event =
        EventBridgeEvent::<Value>::deserialize(payload).map_err(|_| EnvelopeError::NotAnEvent)?;
    if event.source != source || event.detail_type != detail_type {
        return Err(EnvelopeError::Unexpected {
            source_name: event.source,
            detail_type: event.detail_type,
            expected_source: source,
            expected_detail_type: detail_type,
        });
    }
    Ok(Envelope {
        id: event.id,
        time_ms: event
            .time
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok()),
        detail: event.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str) -> Value {
        json!({"version":"0","id":"e-1","detail-type":detail_type,"source":source,
               "account":"123456789012","time":"2026-11-27T09:24:26Z","region":"us-east-1",
               "resources":[],"detail":{"k":"v"}})
    }

    #[test]
    fn unwraps_the_expected_event() {
        let env = unwrap_event(
            event("user.service", "User Created"),
            "user.service",
            "User Created",
        )
        .unwrap();
        assert_eq!(env.id.as_deref(), Some("e-1"));
        assert_eq!(env.detail, json!({"k":"v"}));
    }

    #[test]
    fn refuses_other_events_and_non_events() {
        let err = unwrap_event(
            event("user.service", "User Deleted"),
            "user.service",
            "User Created",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected event: source 'user.service', detail-type 'User Deleted' \
             (expected 'user.service', 'User Created')"
        );
        assert_eq!(
            unwrap_event(json!({"Records":[]}), "user.service", "User Created").unwrap_err(),
            EnvelopeError::NotAnEvent
        );
    }
}
