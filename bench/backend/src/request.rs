//! What a request is, read before it is answered: the operation it names
//! (as the counters label it) and the items it carries, which set its
//! latency; the caller's SDK app name and its invocation's trace id, which
//! group the counters.

use crate::reply::{DYNAMODB, EVENTBRIDGE, SQS};
use bytes::Bytes;
use hyper::http::request::Parts;
use serde_json::Value;

/// The operation a request names, as the counters label it, and how many
/// items it carries (0 for single-item calls), read before it is answered
/// to know its latency.
pub(crate) fn classify(parts: &Parts, body: &Bytes) -> (String, usize) {
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    if let Some(target) = target {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let label = match prefix {
            "DynamoDB_20120810" => DYNAMODB.label,
            "AmazonSQS" => SQS.label,
            "AWSEvents" => EVENTBRIDGE.label,
            _ => return (format!("unknown.{target}"), 0),
        };
        let member = match op {
            "TransactWriteItems" => "TransactItems",
            "BatchWriteItem" => "RequestItems",
            "SendMessageBatch" | "PutEvents" => "Entries",
            _ => return (format!("{label}.{op}"), 0),
        };
        let items = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|json| match json.get(member)? {
                Value::Array(a) => Some(a.len()),
                // BatchWriteItem: requests per table
                Value::Object(tables) => Some(
                    tables
                        .values()
                        .filter_map(Value::as_array)
                        .map(Vec::len)
                        .sum(),
                ),
                _ => None,
            })
            .unwrap_or(0);
        return (format!("{label}.{op}"), items);
    }
    if parts.uri.path().starts_with("/v2/email/") {
        return ("SESv2.SendEmail".to_owned(), 0);
    }
    (crate::s3::operation(&parts.method).to_owned(), 0)
}

/// The caller's SDK app name (`app/<name>` in its user agent).
pub(crate) fn app_name(parts: &Parts) -> Option<String> {
    ["x-amz-user-agent", "user-agent"]
        .iter()
        .filter_map(|h| parts.headers.get(*h)?.to_str().ok())
        .flat_map(str::split_whitespace)
        .find_map(|token| token.strip_prefix("app/").map(str::to_owned))
}

/// The invocation a call belongs to: the `Root` of its X-Ray trace header
/// (the whole header when it has none).
pub(crate) fn trace_root(parts: &Parts) -> Option<String> {
    let header = parts.headers.get("x-amzn-trace-id")?.to_str().ok()?;
    let root = header
        .split(';')
        .find_map(|field| field.trim().strip_prefix("Root="))
        .unwrap_or(header);
    Some(root.to_owned())
}
