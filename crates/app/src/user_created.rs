//! What the two `User Created` consumers share: unwrapping the EventBridge
//! event into a validated [`UserCreated`] inside the event's log span, and
//! the payload hash their idempotency records use.

use crate::Error;
use eventline_domain::UserCreated;
use eventline_powertools::eventbridge::unwrap_event;
use eventline_powertools::idempotency::payload_hash;
use serde_json::Value;
use std::future::Future;
use tracing::Instrument;

/// Runs `work` on the `User Created` event in `payload`. Every log line of
/// the work carries the event id as its correlation id.
pub(crate) async fn on_user_created<F, Fut>(payload: Value, work: F) -> Result<(), Error>
where
    F: FnOnce(UserCreated) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let envelope = unwrap_event(payload, UserCreated::SOURCE, UserCreated::DETAIL_TYPE)?;
    let span = tracing::info_span!("event", event_id = envelope.id.as_deref().unwrap_or(""));
    async move { work(UserCreated::from_detail(&envelope.detail)?).await }
        .instrument(span)
        .await
}

/// The payload hash of a `User Created` event: every field of its detail.
pub(crate) fn detail_hash(event: &UserCreated) -> String {
    let created_at = event.created_at.to_string();
    payload_hash([
        event.user_id.as_str(),
        event.email.as_str(),
        event.name.as_str(),
        created_at.as_str(),
    ])
}
