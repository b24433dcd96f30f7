//! What a guard reports to its owner, who may count it.

/// How the completions of one [`Idempotency::complete_all`](super::Idempotency::complete_all) call ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// Records marked completed.
    pub completed: usize,
    /// Ids whose lock another attempt holds now (their work ran; a
    /// duplicate may run it again, so effects must be idempotent).
    pub lost: Vec<String>,
    /// Ids the store would not complete before the deadline (they stay in
    /// progress until their deadline, then a retry re-runs idempotent steps).
    pub failed: Vec<String>,
}

/// Something the guard did that its owner may want to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A duplicate found a completed record and replayed its result.
    Replayed,
    /// Completions the store never wrote before the deadline (see
    /// [`Completion::failed`]); their records stay in progress until then.
    CompletionsLost {
        /// How many.
        records: usize,
    },
}

/// Told of every [`Event`]; called inline, so it must be quick.
pub type Observer = std::sync::Arc<dyn Fn(Event) + Send + Sync>;
