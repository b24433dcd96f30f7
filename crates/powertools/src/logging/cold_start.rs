//! The `cold_start` key: the first invocation's request id is the cold one.

use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tracing::{span, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::fields::Fields;
use super::INVOKE_SPAN;

/// Notes the request id of the process's first invocation: the cold one.
/// A layer, because the first invocation may log nothing.
pub(super) struct FirstRequest(pub(super) Arc<OnceLock<String>>);

impl<S: Subscriber> Layer<S> for FirstRequest {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        if attrs.metadata().name() != INVOKE_SPAN || self.0.get().is_some() {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(Value::String(request_id)) = fields.take("requestId") {
            // Only the first one is kept.
            let _ = self.0.set(request_id);
        }
    }
}

/// Whether a line of `request_id` (`None`: outside any invocation) belongs
/// to the cold start, the first request being `first_request`.
pub(super) fn is_cold_start(first_request: &OnceLock<String>, request_id: Option<&str>) -> bool {
    match (request_id, first_request.get()) {
        (Some(id), Some(first)) => id == first,
        // Before the first invocation: the init phase, part of the cold start.
        (_, None) => true,
        // Outside any invocation, after the first one.
        (None, Some(_)) => false,
    }
}
