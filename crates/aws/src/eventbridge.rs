//! EventBridge adapter: publishes domain events on the bus.
//!
//! `PutEvents` succeeds as a call even when entries fail. Its result entries
//! are in request order; this adapter fails closed on them: an entry counts
//! as published only when its result has an `EventId` and no `ErrorCode`.
//! A result list shorter than the request fails the entries it leaves out,
//! and one longer than the request fails them all (the pairing is lost),
//! whatever `FailedEntryCount` says.
//!
//! Every entry carries the invocation's X-Ray trace header (`TraceHeader`,
//! [`crate::sqs::TraceHeader`]), so that X-Ray links the publisher's trace to
//! the rule targets' invocations.

use crate::sqs::TraceHeader;
use crate::{sdk_error, Detail};
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use aws_sdk_eventbridge::Client;
use eventline_app::ports::EventPublisher;
use eventline_app::PortError;
use eventline_domain::UserCreated;

const OP: &str = "EventBridge PutEvents";

/// Builds the EventBridge client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Publishes to one bus, ten events per `PutEvents` call.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
    trace_header: TraceHeader,
}

impl EventBridgePublisher {
    /// Adapter for the bus named `bus_name`, sending the invocation's trace
    /// header ([`TraceHeader::from_lambda_env`]).
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            trace_header: TraceHeader::default(),
        }
    }

    /// The same adapter, taking the trace header from `source`.
    pub fn with_trace_header(mut self, source: TraceHeader) -> Self {
        self.trace_header = source;
        self
    }
}

impl EventBridgePublisher {
    /// One `PutEvents` of at most 10 events.
    async fn put_chunk(&self, chunk: &[UserCreated]) -> Vec<Result<(), PortError>> {
        let trace = self.trace_header.current();
        let entries: Vec<PutEventsRequestEntry> = chunk
            .iter()
            .map(|event| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(UserCreated::SOURCE)
                    .detail_type(UserCreated::DETAIL_TYPE)
                    .detail(event.to_detail_json())
                    .set_trace_header(trace.clone())
                    .build()
            })
            .collect();
        let output = match self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let error = sdk_error(OP, &e, Detail::CodeAndMessage);
                return chunk.iter().map(|_| Err(error.clone())).collect();
            }
        };
        outcomes(output.entries(), chunk.len())
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish_all(&self, events: &[UserCreated]) -> Vec<Result<(), PortError>> {
        let chunks = events.chunks(10).map(|chunk| self.put_chunk(chunk));
        futures::future::join_all(chunks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Pairs `PutEvents` result entries with the `len` requested events.
fn outcomes(results: &[PutEventsResultEntry], len: usize) -> Vec<Result<(), PortError>> {
    if results.len() > len {
        let error = PortError::new(OP, "more results than entries in the answer");
        return vec![Err(error); len];
    }
    (0..len)
        .map(|i| match results.get(i) {
            None => Err(PortError::new(OP, "no result for this entry in the answer")),
            Some(entry) => match (entry.error_code(), entry.event_id()) {
                // Codes and messages name the problem, never the detail.
                (Some(code), _) => Err(PortError::new(
                    OP,
                    format!("{code}: {}", entry.error_message().unwrap_or("")),
                )),
                (None, Some(id)) if !id.is_empty() => Ok(()),
                (None, _) => Err(PortError::new(
                    OP,
                    "result for this entry has neither an event id nor an error code",
                )),
            },
        })
        .collect()
}
