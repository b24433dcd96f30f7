//! A record as the processor and the handlers see it, and the span its
//! work runs in.

use std::collections::BTreeMap;

/// The span every record's work runs in ([`record_span`]): its fields are
/// `message_id` and `correlation_id`, which the logging layer puts on every
/// line logged inside it.
pub const RECORD_SPAN: &str = "record";

/// The string attribute that carries a message's correlation id (the id of
/// the message that started the chain of work it belongs to).
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";

/// One record of a batch, as the processor and the handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Unique within the batch: what the partial batch response names.
    pub id: String,
    /// The payload, if the record carries one.
    pub body: Option<String>,
    /// The FIFO message group. A batch in which any message has one is
    /// processed as FIFO: in order within each group.
    pub group: Option<String>,
    /// When the transport first delivered it (Unix ms), if known.
    pub first_seen_ms: Option<u64>,
    /// The producer's string attributes (SQS message attributes of type
    /// `String`), by name.
    pub attributes: BTreeMap<String, String>,
}

impl Message {
    /// A message of no group and no attributes, first seen at an unknown time.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: Some(body.into()),
            group: None,
            first_seen_ms: None,
            attributes: BTreeMap::new(),
        }
    }

    /// The message with the string attribute `name` set to `value`.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// The chain of work this message belongs to: its
    /// [`CORRELATION_ATTRIBUTE`] when the producer set one that
    /// [`is_correlation_id`], else its own id (it starts a chain).
    pub fn correlation_id(&self) -> &str {
        self.attributes
            .get(CORRELATION_ATTRIBUTE)
            .map(String::as_str)
            .filter(|id| is_correlation_id(id))
            .unwrap_or(&self.id)
    }
}

/// Whether `value` may be logged as a correlation id: 1–128 characters of
/// `[A-Za-z0-9._:-]` (`eventline_domain::CorrelationId`'s rule). Anything
/// else (a sentence, an address) is not logged: the producer's attribute is
/// input.
pub fn is_correlation_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The [`RECORD_SPAN`] of `message`: its id and its correlation id.
pub fn record_span(message: &Message) -> tracing::Span {
    tracing::info_span!(
        RECORD_SPAN,
        message_id = %message.id,
        correlation_id = %message.correlation_id()
    )
}
