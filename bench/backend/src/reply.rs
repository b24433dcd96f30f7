//! Answers in the wire shapes of the protocols the functions speak: AWS
//! JSON 1.0/1.1 (DynamoDB, SQS, EventBridge), REST-JSON (SES v2) and
//! REST-XML (S3), errors included.

use crate::units::Units;
use bytes::Bytes;
use serde_json::{Map, Value};

/// One answer, and what the counters should record about it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// The error code, when the answer is an error.
    pub error: Option<String>,
    /// Entries of a batch call failed on purpose (`--fail-entry-rate`).
    pub entries_failed: u64,
    /// Items a successful batch call carried (0 for single-item calls).
    pub entries: u64,
    /// What the call is billed (a failed conditional write included).
    pub units: Units,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            error: None,
            entries_failed: 0,
            entries: 0,
            units: Units::default(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A successful JSON answer; `entries_failed` counts injected entry
/// failures, `entries` the items a batch call carried (what its price is
/// counted in).
#[derive(Debug)]
pub(crate) struct Answer {
    pub json: Value,
    pub entries_failed: u64,
    pub entries: u64,
    pub units: Units,
}

impl From<Value> for Answer {
    fn from(json: Value) -> Self {
        Self {
            json,
            entries_failed: 0,
            entries: 0,
            units: Units::default(),
        }
    }
}

impl Answer {
    pub fn consumed(mut self, units: Units) -> Self {
        self.units = units;
        self
    }
}

/// An error of an AWS API, whatever the protocol.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// More members of the error structure (DynamoDB's `Item`,
    /// `CancellationReasons`).
    pub extra: Map<String, Value>,
    /// SQS's legacy (query) error code, sent in `x-amzn-query-error`.
    pub query_code: Option<&'static str>,
    /// Write units the failed call is still billed (a failed conditional
    /// write consumes the units of the item it would have written).
    pub wru: f64,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
            query_code: None,
            wru: 0.0,
        }
    }

    pub fn consumed(mut self, units: Units) -> Self {
        self.wru = units.wru;
        self
    }

    /// The 400 `ValidationException` DynamoDB, EventBridge and others answer
    /// to a request they refuse to run.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    pub fn with(mut self, member: &str, value: Value) -> Self {
        self.extra.insert(member.to_owned(), value);
        self
    }
}

/// One AWS JSON protocol service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonService {
    /// Prefix of the operation names in the counters (`DynamoDB.PutItem`).
    pub label: &'static str,
    /// Shape namespace of the `__type` of errors (empty: the bare code).
    pub namespace: &'static str,
    pub content_type: &'static str,
}

pub(crate) const DYNAMODB: JsonService = JsonService {
    label: "DynamoDB",
    namespace: "com.amazonaws.dynamodb.v20120810",
    content_type: "application/x-amz-json-1.0",
};
pub(crate) const SQS: JsonService = JsonService {
    label: "SQS",
    namespace: "com.amazonaws.sqs",
    content_type: "application/x-amz-json-1.0",
};
pub(crate) const EVENTBRIDGE: JsonService = JsonService {
    label: "EventBridge",
    namespace: "",
    content_type: "application/x-amz-json-1.1",
};

impl JsonService {
    pub fn reply(&self, result: Result<Answer, ApiError>) -> Reply {
        match result {
            Ok(answer) => {
                let mut reply = Reply::new(200, answer.json.to_string())
                    .header("content-type", self.content_type);
                reply.entries_failed = answer.entries_failed;
                reply.entries = answer.entries;
                reply.units = answer.units;
                reply
            }
            Err(e) => {
                let mut body = Map::new();
                let kind = if self.namespace.is_empty() {
                    e.code.to_owned()
                } else {
                    format!("{}#{}", self.namespace, e.code)
                };
                body.insert("__type".into(), Value::String(kind));
                body.insert("message".into(), Value::String(e.message.clone()));
                body.extend(e.extra.clone());
                let mut reply = Reply::new(e.status, Value::Object(body).to_string())
                    .header("content-type", self.content_type)
                    .header("x-amzn-errortype", e.code);
                if let Some(code) = e.query_code {
                    let fault = if e.status < 500 { "Sender" } else { "Receiver" };
                    reply = reply.header("x-amzn-query-error", format!("{code};{fault}"));
                }
                reply.error = Some(e.code.to_owned());
                reply.units = Units::wru(e.wru);
                reply
            }
        }
    }
}

/// A REST-JSON answer (SES v2): errors name their type in a header.
pub(crate) fn rest_json(result: Result<Value, ApiError>) -> Reply {
    match result {
        Ok(json) => Reply::new(200, json.to_string()).header("content-type", "application/json"),
        Err(e) => {
            let body = serde_json::json!({ "message": e.message });
            let mut reply = Reply::new(e.status, body.to_string())
                .header("content-type", "application/json")
                .header("x-amzn-errortype", e.code);
            reply.error = Some(e.code.to_owned());
            reply
        }
    }
}

/// A REST-XML error (S3).
pub(crate) fn xml_error(e: &ApiError, request_id: &str) -> Reply {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
        e.code,
        xml_escape(&e.message)
    );
    let mut reply = Reply::new(e.status, body).header("content-type", "application/xml");
    reply.error = Some(e.code.to_owned());
    reply
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Reads a JSON request body into its typed request, failing as the
/// services do: malformed JSON is a `SerializationException`, a missing or
/// mistyped member a `ValidationException`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::new(400, "SerializationException", e.to_string())
        } else {
            ApiError::validation(format!("1 validation error detected: {e}"))
        }
    })
}
