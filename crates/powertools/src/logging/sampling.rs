//! Debug sampling: a share of the invocations logged at `DEBUG`.

use serde_json::Value;
use tracing::{span, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::fields::Fields;
use super::INVOKE_SPAN;

/// Marks an invocation span whose invocation is sampled.
pub(super) struct Sampled;

/// Decides, when the runtime opens an invocation's span, whether the
/// invocation is sampled ([`is_sampled`]), and marks the span if so.
pub(super) struct Sampler(pub(super) Option<f64>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Sampler {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(rate) = self.0 else { return };
        if attrs.metadata().name() != INVOKE_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let sampled =
            matches!(fields.take("requestId"), Some(Value::String(id)) if is_sampled(&id, rate));
        if let (true, Some(span)) = (sampled, ctx.span(id)) {
            span.extensions_mut().insert(Sampled);
        }
    }
}

/// Whether the invocation `request_id` is among the `rate` share logged at
/// `DEBUG`: the first 8 bytes of SHA-256(request id) as a fraction of 2^64.
pub(super) fn is_sampled(request_id: &str, rate: f64) -> bool {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(request_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // u64 -> f64 rounds, which moves the boundary by far less than a rate can say.
    (u64::from_be_bytes(first) as f64 / 2f64.powi(64)) < rate
}

/// `DEBUG` spans and events inside a sampled invocation.
pub(super) fn in_sampled_invocation<S: Subscriber + for<'a> LookupSpan<'a>>(
    meta: &Metadata<'_>,
    cx: &Context<'_, S>,
) -> bool {
    *meta.level() == Level::DEBUG
        && cx.lookup_current().is_some_and(|current| {
            current
                .scope()
                .any(|span| span.extensions().get::<Sampled>().is_some())
        })
}
