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

/// Publishes to one bus.
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

impl EventPublisher for EventBridgePublisher {
    async fn publish_user_created(&self, event: &UserCreated) -> Result<(), PortError> {
        const OP: &str = "EventBridge PutEvents";
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(UserCreated::SOURCE)
            .detail_type(UserCreated::DETAIL_TYPE)
            .detail(event.to_detail_json())
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &e, Detail::CodeAndMessage))?;
        // PutEvents succeeds as a call even when entries fail: check each one.
        if output.failed_entry_count > 0 {
            let cause = output
                .entries()
                .iter()
                .find_map(|e| e.error_code())
                .unwrap_or("entry failed");
            return Err(PortError::new(OP, cause));
        }
        Ok(())
    }
}
