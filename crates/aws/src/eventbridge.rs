//! EventBridge adapter: publishes domain events on the bus.

use crate::{sdk_error, Detail};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use eventline_app::ports::EventPublisher;
use eventline_app::PortError;
use eventline_domain::UserCreated;

pub use aws_sdk_eventbridge::Client as EventBridgeClient;

/// Builds the EventBridge client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Publishes to one bus, ten events per `PutEvents` call.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// Adapter for the bus named `bus_name`.
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

impl EventBridgePublisher {
    /// One `PutEvents` of at most 10 events.
    async fn put_chunk(&self, chunk: &[UserCreated]) -> Vec<Result<(), PortError>> {
        const OP: &str = "EventBridge PutEvents";
        let entries: Vec<PutEventsRequestEntry> = chunk
            .iter()
            .map(|event| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(UserCreated::SOURCE)
                    .detail_type(UserCreated::DETAIL_TYPE)
                    .detail(event.to_detail_json())
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
        // PutEvents succeeds as a call even when entries fail; result entries
        // are in request order, and a failed one carries an error code.
        let entries = output.entries();
        chunk
            .iter()
            .enumerate()
            .map(|(i, _)| match entries.get(i) {
                Some(entry) => match entry.error_code() {
                    None => Ok(()),
                    Some(code) => Err(PortError::new(
                        OP,
                        format!("{code}: {}", entry.error_message().unwrap_or("")),
                    )),
                },
                None if output.failed_entry_count == 0 => Ok(()),
                None => Err(PortError::new(OP, "no result for this entry")),
            })
            .collect()
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
