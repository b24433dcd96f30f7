//! SQS factories shared by the use cases' tests, so no test module keeps its
//! own copy (as Powertools shares `tests/helpers/factories.ts`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// A record as SQS delivers it, with only what the use cases read.
pub(crate) fn record(id: &str, body: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = Some(id.to_owned());
    r.body = Some(body.to_owned());
    r
}

/// The event Lambda passes for `records`.
pub(crate) fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = records;
    e
}

/// The message ids a batch response reports as failed, in its order.
pub(crate) fn failures(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}
