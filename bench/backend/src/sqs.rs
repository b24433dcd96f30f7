//! SQS (AWS JSON 1.0, `X-Amz-Target: AmazonSQS.<Op>`): `SendMessage` and
//! `SendMessageBatch`, with the MD5s of body and attributes SQS answers
//! (some SDKs check them) and a sequence number on FIFO queues.
//!
//! Any queue URL is accepted. Accepted messages are kept per queue, in
//! ReceiveMessage's shape, until a benchmark drains them
//! ([`crate::mailbox`]); nothing is delivered by itself. Checked as SQS does: batch size (1–10), distinct and well-formed entry
//! ids, message size (1 MiB per message and per batch), the characters a
//! body may hold, the group id a FIFO queue needs. Batch entries picked by
//! `--fail-entry-rate` come back in `Failed` (`InternalError`, not the
//! sender's fault). A call is billed one request per 64 KiB chunk of the
//! messages it carries.

use crate::mailbox::Mailboxes;
use crate::random::{EntryFaults, Ids};
use crate::reply::{parse, Answer, ApiError};
use crate::units::{chunks, Units};
use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageAttribute {
    data_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    message_body: String,
    message_attributes: Option<BTreeMap<String, MessageAttribute>>,
    message_system_attributes: Option<BTreeMap<String, MessageAttribute>>,
    message_group_id: Option<String>,
    message_deduplication_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessage {
    queue_url: String,
    #[serde(flatten)]
    message: Message,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchEntry {
    id: String,
    #[serde(flatten)]
    message: Message,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageBatch {
    queue_url: String,
    entries: Vec<BatchEntry>,
}

fn error(code: &'static str, query_code: &'static str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::new(400, code, message);
    e.query_code = Some(query_code);
    e
}

fn invalid_parameter(message: impl Into<String>) -> ApiError {
    error("InvalidParameterValue", "InvalidParameterValue", message)
}

/// The queues: FIFO sequence numbers and the messages sent.
pub(crate) struct Queues {
    sequence: AtomicU64,
    /// Accepted messages by queue name, until drained.
    pub sent: Mailboxes,
}

fn hex_md5(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for p in parts {
        md5.update(p);
    }
    hex::encode(md5.finalize())
}

/// SQS's MD5 of message attributes: for each attribute by name, the
/// length-prefixed name and data type, a transport byte (1 string, 2
/// binary) and the length-prefixed value.
fn attributes_md5(attributes: &BTreeMap<String, MessageAttribute>) -> Result<String, ApiError> {
    fn prefixed(md5: &mut Md5, bytes: &[u8]) {
        md5.update((bytes.len() as u32).to_be_bytes());
        md5.update(bytes);
    }
    let mut encoded = Vec::new();
    for (name, attr) in attributes {
        let (transport, value) = match (&attr.string_value, &attr.binary_value) {
            (Some(s), _) => (1u8, s.as_bytes().to_vec()),
            (None, Some(b)) => (
                2u8,
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| {
                        invalid_parameter(format!(
                            "The message attribute '{name}' has an invalid binary value"
                        ))
                    })?,
            ),
            (None, None) => {
                return Err(invalid_parameter(format!(
                "The message attribute '{name}' must contain a non-empty message attribute value."
            )))
            }
        };
        encoded.push((name, attr, transport, value));
    }
    let mut md5 = Md5::new();
    for (name, attr, transport, value) in encoded {
        prefixed(&mut md5, name.as_bytes());
        prefixed(&mut md5, attr.data_type.as_bytes());
        md5.update([transport]);
        prefixed(&mut md5, &value);
    }
    Ok(hex::encode(md5.finalize()))
}

fn check_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Result<(), ApiError> {
    if attributes.len() > 10 {
        return Err(invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            attributes.len()
        )));
    }
    for (name, attr) in attributes {
        let valid_name = !name.is_empty()
            && name.len() <= 256
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..");
        if !valid_name {
            return Err(invalid_parameter(format!(
                "The message attribute name '{name}' is invalid."
            )));
        }
        let base = attr.data_type.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(invalid_parameter(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
    }
    Ok(())
}

/// The characters SQS allows in a body: #x9 | #xA | #xD | #x20 to #xD7FF |
/// #xE000 to #xFFFD | #x10000 to #x10FFFF.
fn valid_body(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
}

fn message_size(m: &Message) -> usize {
    let attrs = m.message_attributes.iter().flatten().map(|(name, a)| {
        name.len()
            + a.data_type.len()
            + a.string_value.as_ref().map_or(0, String::len)
            + a.binary_value.as_ref().map_or(0, String::len)
    });
    m.message_body.len() + attrs.sum::<usize>()
}

impl Queues {
    pub fn new() -> Self {
        Self {
            sequence: AtomicU64::new(1),
            sent: Mailboxes::new(),
        }
    }

    pub fn handle(
        &self,
        faults: &EntryFaults,
        ids: &Ids,
        operation: &str,
        body: &[u8],
    ) -> Result<Answer, ApiError> {
        match operation {
            "SendMessage" => {
                let request: SendMessage = parse(body)?;
                let fifo = fifo(&request.queue_url)?;
                let out = self.accept(ids, &request.message, fifo)?;
                self.sent
                    .push(&request.queue_url, [received(&request.message, &out)]);
                let units = Units {
                    sqs_requests: chunks(message_size(&request.message)),
                    ..Units::default()
                };
                Ok(Answer::from(Value::Object(out)).consumed(units))
            }
            "SendMessageBatch" => self.send_batch(faults, ids, parse(body)?),
            other => Err(error(
                "UnsupportedOperation",
                "AWS.SimpleQueueService.UnsupportedOperation",
                format!("the fixed-latency backend does not implement SQS {other}"),
            )),
        }
    }

    /// Checks one message and answers its ids and MD5s.
    fn accept(&self, ids: &Ids, m: &Message, fifo: bool) -> Result<Map<String, Value>, ApiError> {
        if m.message_body.is_empty() {
            return Err(error(
                "MissingParameter",
                "MissingParameter",
                "The request must contain the parameter MessageBody.",
            ));
        }
        if !valid_body(&m.message_body) {
            return Err(error(
                "InvalidMessageContents",
                "InvalidMessageContents",
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            ));
        }
        if message_size(m) > MAX_BYTES {
            return Err(invalid_parameter(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {MAX_BYTES} bytes."
            )));
        }
        if fifo && m.message_group_id.is_none() {
            return Err(error(
                "MissingParameter",
                "MissingParameter",
                "The request must contain the parameter MessageGroupId.",
            ));
        }
        let mut out = Map::new();
        out.insert("MessageId".into(), json!(ids.uuid()));
        out.insert(
            "MD5OfMessageBody".into(),
            json!(hex_md5(&[m.message_body.as_bytes()])),
        );
        for (member, attributes) in [
            ("MD5OfMessageAttributes", &m.message_attributes),
            ("MD5OfMessageSystemAttributes", &m.message_system_attributes),
        ] {
            if let Some(attributes) = attributes.as_ref().filter(|a| !a.is_empty()) {
                check_attributes(attributes)?;
                out.insert(member.into(), json!(attributes_md5(attributes)?));
            }
        }
        if fifo {
            let n = self.sequence.fetch_add(1, Ordering::Relaxed);
            out.insert("SequenceNumber".into(), json!(format!("{n:020}")));
        }
        Ok(out)
    }

    fn send_batch(
        &self,
        faults: &EntryFaults,
        ids: &Ids,
        request: SendMessageBatch,
    ) -> Result<Answer, ApiError> {
        let fifo = fifo(&request.queue_url)?;
        match request.entries.len() {
            0 => {
                return Err(error(
                    "EmptyBatchRequest",
                    "AWS.SimpleQueueService.EmptyBatchRequest",
                    "There should be at least one SendMessageBatchRequestEntry in the request.",
                ))
            }
            n if n > 10 => {
                return Err(error(
                    "TooManyEntriesInBatchRequest",
                    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                    format!("Maximum number of entries per request are 10. You have sent {n}."),
                ))
            }
            _ => {}
        }
        let mut seen = HashSet::new();
        for entry in &request.entries {
            let valid = !entry.id.is_empty()
                && entry.id.len() <= 80
                && entry
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(error(
                    "InvalidBatchEntryId",
                    "AWS.SimpleQueueService.InvalidBatchEntryId",
                    "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
                ));
            }
            if !seen.insert(entry.id.as_str()) {
                return Err(error(
                    "BatchEntryIdsNotDistinct",
                    "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                    format!("Id {} repeated.", entry.id),
                ));
            }
        }
        let total: usize = request
            .entries
            .iter()
            .map(|e| message_size(&e.message))
            .sum();
        if total > MAX_BYTES {
            return Err(error(
                "BatchRequestTooLong",
                "AWS.SimpleQueueService.BatchRequestTooLong",
                format!("Batch requests cannot be longer than {MAX_BYTES} bytes. You have sent {total} bytes."),
            ));
        }
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        let mut kept = Vec::new();
        let mut injected = 0;
        for entry in &request.entries {
            if faults.next_fails() {
                injected += 1;
                failed.push(json!({
                    "Id": entry.id,
                    "SenderFault": false,
                    "Code": "InternalError",
                    "Message": "injected by the fixed-latency backend (--fail-entry-rate)",
                }));
                continue;
            }
            // A bad entry fails alone, as SQS answers it.
            match self.accept(ids, &entry.message, fifo) {
                Ok(mut out) => {
                    kept.push(received(&entry.message, &out));
                    out.insert("Id".into(), json!(entry.id));
                    successful.push(Value::Object(out));
                }
                Err(e) => failed.push(json!({
                    "Id": entry.id,
                    "SenderFault": true,
                    "Code": e.code,
                    "Message": e.message,
                })),
            }
        }
        self.sent.push(&request.queue_url, kept);
        Ok(Answer {
            json: json!({ "Successful": successful, "Failed": failed }),
            entries_failed: injected,
            entries: request.entries.len() as u64,
            units: Units {
                sqs_requests: chunks(total),
                ..Units::default()
            },
        })
    }
}

/// An accepted message as ReceiveMessage would answer it (without a
/// receipt handle): `accepted` is what the send answered for it.
fn received(m: &Message, accepted: &Map<String, Value>) -> Value {
    let sent_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut attributes = Map::new();
    attributes.insert("SentTimestamp".into(), json!(sent_ms.to_string()));
    for (name, value) in [
        ("MessageGroupId", m.message_group_id.as_ref()),
        (
            "MessageDeduplicationId",
            m.message_deduplication_id.as_ref(),
        ),
    ] {
        if let Some(value) = value {
            attributes.insert(name.into(), json!(value));
        }
    }
    if let Some(sequence) = accepted.get("SequenceNumber") {
        attributes.insert("SequenceNumber".into(), sequence.clone());
    }
    let mut out = Map::new();
    out.insert("MessageId".into(), accepted["MessageId"].clone());
    out.insert("MD5OfBody".into(), accepted["MD5OfMessageBody"].clone());
    out.insert("Body".into(), json!(m.message_body));
    out.insert("Attributes".into(), Value::Object(attributes));
    if let Some(attrs) = m.message_attributes.as_ref().filter(|a| !a.is_empty()) {
        out.insert("MessageAttributes".into(), json!(attrs));
        if let Some(md5) = accepted.get("MD5OfMessageAttributes") {
            out.insert("MD5OfMessageAttributes".into(), md5.clone());
        }
    }
    Value::Object(out)
}

/// Whether the queue of `url` is FIFO; refuses what is not a queue URL.
fn fifo(url: &str) -> Result<bool, ApiError> {
    let name = url.rsplit('/').next().unwrap_or("");
    if !url.contains("://") || name.is_empty() {
        return Err(error(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        ));
    }
    Ok(name.ends_with(".fifo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(data_type: &str, value: &str) -> MessageAttribute {
        MessageAttribute {
            data_type: data_type.into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    #[test]
    fn md5s_are_the_ones_sqs_answers() {
        // What moto 5.2 (which follows SQS's algorithm) answers for the same message.
        assert_eq!(hex_md5(&[b"hello"]), "5d41402abc4b2a76b9719d911017c592");
        let attrs = BTreeMap::from([
            (
                "eventline.error_code".to_owned(),
                attribute("String", "INVALID_EMAIL"),
            ),
            ("count".to_owned(), attribute("Number", "3")),
        ]);
        assert_eq!(
            attributes_md5(&attrs).unwrap(),
            "41729be4bc82446d6cc6612afad70e89"
        );
    }

    #[test]
    fn bodies_with_forbidden_characters_are_refused() {
        assert!(valid_body("{\"a\":\"é\t\"}"));
        assert!(!valid_body("a\u{0}b"));
        assert!(!valid_body("\u{FFFE}"));
    }

    #[test]
    fn fifo_queues_are_told_by_their_name() {
        assert!(fifo("https://sqs.us-east-1.amazonaws.com/1/q.fifo").unwrap());
        assert!(!fifo("https://sqs.us-east-1.amazonaws.com/1/q").unwrap());
        assert!(fifo("q").is_err());
    }
}
