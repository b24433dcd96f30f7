//! The faults injected into whole calls: a throttled call answered as its
//! service answers throttling, and telling an injected transaction conflict
//! from the backend's other cancellations. (Entry failures and conflicts
//! are drawn where each operation is answered.)

use crate::random::{EntryFaults, Ids};
use crate::reply::{self, Reply, DYNAMODB, EVENTBRIDGE, SQS};
use serde_json::{json, Value};

/// The throttling answer of the service an operation belongs to; nothing
/// happens. A transaction of `items` actions is cancelled with one
/// `ThrottlingError` reason, as DynamoDB answers a throttled transaction.
pub(crate) fn throttled(ids: &Ids, draws: &EntryFaults, operation: &str, items: usize) -> Reply {
    let request_id = ids.uuid();
    let (service, _) = operation.split_once('.').unwrap_or((operation, ""));
    let reply = match service {
        "DynamoDB" if operation == "DynamoDB.TransactWriteItems" && items > 0 => {
            let mut reasons = vec![json!({ "Code": "None" }); items];
            reasons[draws.pick(items)] = json!({
                "Code": "ThrottlingError",
                "Message": "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly.",
            });
            DYNAMODB.reply(Err(crate::dynamodb::cancelled(reasons)))
        }
        "DynamoDB" => DYNAMODB.reply(Err(reply::ApiError::new(
            400,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        ))),
        "SQS" => {
            let mut e = reply::ApiError::new(
                400,
                "RequestThrottled",
                "The request was denied due to request throttling.",
            );
            e.query_code = Some("RequestThrottled");
            SQS.reply(Err(e))
        }
        "EventBridge" => EVENTBRIDGE.reply(Err(reply::ApiError::new(
            400,
            "ThrottlingException",
            "Rate exceeded",
        ))),
        "SESv2" => reply::rest_json(Err(reply::ApiError::new(
            429,
            "TooManyRequestsException",
            "Too many requests",
        ))),
        _ => {
            let id = request_id.replace('-', "")[..16].to_ascii_uppercase();
            return reply::xml_error(
                &reply::ApiError::new(503, "SlowDown", "Please reduce your request rate."),
                &id,
            )
            .header("x-amz-request-id", id.clone())
            .header("x-amz-id-2", id);
        }
    };
    reply.header("x-amzn-requestid", request_id)
}

/// Whether a transaction's answer is a cancellation by an (injected)
/// conflict: the backend has no transactions in flight of its own.
pub(crate) fn is_conflict(reply: &Reply) -> bool {
    reply.error.as_deref() == Some("TransactionCanceledException")
        && serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|b| {
                let reasons = b.get("CancellationReasons")?.as_array()?.clone();
                Some(reasons.iter().any(|r| r["Code"] == "TransactionConflict"))
            })
            .unwrap_or(false)
}
