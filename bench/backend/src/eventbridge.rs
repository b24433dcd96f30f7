//! EventBridge (AWS JSON 1.1, `X-Amz-Target: AWSEvents.PutEvents`): one
//! result per entry, in request order, with an `EventId` or an
//! `ErrorCode`, and `FailedEntryCount`.
//!
//! Any bus is accepted and no rule runs: accepted entries are kept per bus,
//! with their `EventId`, until a benchmark drains them ([`crate::mailbox`]).
//! Checked as EventBridge does: 1–10 entries; an entry without `Source`,
//! `DetailType` or `Detail` fails with `InvalidArgument`, one whose
//! `Detail` is not a JSON object with `MalformedDetail`. Entries picked by
//! `--fail-entry-rate` fail with `InternalFailure`. Each accepted entry is
//! billed one event per 64 KiB chunk of its size as EventBridge counts it
//! (Time 14 bytes if set, Source, DetailType, Detail and each Resource in
//! UTF-8 bytes); failed entries are not billed.

use crate::mailbox::Mailboxes;
use crate::random::{EntryFaults, Ids};
use crate::reply::{parse, Answer, ApiError};
use crate::units::{chunks, Units};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    event_bus_name: Option<String>,
    resources: Option<Vec<String>>,
    time: Option<Value>,
}

/// The bus an entry names (`default` when none).
fn bus_of(e: &Entry) -> &str {
    e.event_bus_name
        .as_deref()
        .filter(|b| !b.is_empty())
        .unwrap_or("default")
}

/// An entry's size as EventBridge's PutEvents billing counts it.
fn entry_size(e: &Entry) -> usize {
    let text = |v: &Option<String>| v.as_ref().map_or(0, String::len);
    let time = if e.time.is_some() { 14 } else { 0 };
    time + text(&e.source)
        + text(&e.detail_type)
        + text(&e.detail)
        + e.resources.iter().flatten().map(String::len).sum::<usize>()
}

/// An accepted entry as kept for a drain: what was sent, and its id.
fn kept(e: &Entry, event_id: &Value) -> Value {
    json!({
        "EventId": event_id,
        "EventBusName": bus_of(e),
        "Source": e.source,
        "DetailType": e.detail_type,
        "Detail": e.detail,
        "Resources": e.resources.clone().unwrap_or_default(),
        "Time": e.time,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEvents {
    entries: Vec<Entry>,
}

fn entry_error(code: &str, message: &str) -> Value {
    json!({ "ErrorCode": code, "ErrorMessage": message })
}

pub(crate) fn handle(
    faults: &EntryFaults,
    ids: &Ids,
    sent: &Mailboxes,
    operation: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    if operation != "PutEvents" {
        return Err(ApiError::new(
            400,
            "UnknownOperationException",
            format!("the fixed-latency backend does not implement EventBridge {operation}"),
        ));
    }
    let request: PutEvents = parse(body)?;
    let n = request.entries.len();
    if n == 0 || n > 10 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10, has {n}"
        )));
    }
    let mut injected = 0;
    let entries: Vec<Value> = request
        .entries
        .iter()
        .map(|e| {
            let required = |v: &Option<String>, name: &str| {
                v.as_deref().is_some_and(|s| !s.is_empty()).then_some(()).ok_or_else(|| {
                    entry_error(
                        "InvalidArgument",
                        &format!("Parameter {name} is not valid. Reason: {name} is a required argument."),
                    )
                })
            };
            let checked = required(&e.source, "Source")
                .and_then(|()| required(&e.detail_type, "DetailType"))
                .and_then(|()| required(&e.detail, "Detail"))
                .and_then(|()| {
                    let detail = serde_json::from_str::<Value>(e.detail.as_deref().unwrap_or(""));
                    match detail {
                        Ok(Value::Object(_)) => Ok(()),
                        _ => Err(entry_error("MalformedDetail", "Detail is malformed.")),
                    }
                });
            match checked {
                Err(error) => error,
                Ok(()) if faults.next_fails() => {
                    injected += 1;
                    entry_error(
                        "InternalFailure",
                        "injected by the fixed-latency backend (--fail-entry-rate)",
                    )
                }
                Ok(()) => json!({ "EventId": ids.uuid() }),
            }
        })
        .collect();
    let failed = entries
        .iter()
        .filter(|e| e.get("ErrorCode").is_some())
        .count();
    let mut events = 0.0;
    for (entry, result) in request.entries.iter().zip(&entries) {
        if let Some(id) = result.get("EventId") {
            events += chunks(entry_size(entry));
            sent.push(bus_of(entry), [kept(entry, id)]);
        }
    }
    Ok(Answer {
        json: json!({ "FailedEntryCount": failed, "Entries": entries }),
        entries_failed: injected,
        entries: n as u64,
        units: Units {
            events,
            ..Units::default()
        },
    })
}
