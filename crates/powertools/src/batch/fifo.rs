//! FIFO batches: records run in order within their message group, and the
//! first failure in a group skips the rest of that group.

use futures::{stream, StreamExt};
use std::future::Future;

use super::{BatchProcessor, Deadline, Indexed, Message, RecordError, RecordOutcome};

impl BatchProcessor {
    pub(super) async fn run_fifo<F, Fut, E>(
        &self,
        records: Vec<Indexed>,
        deadline: Deadline,
        handler: &F,
    ) -> Vec<(usize, String, RecordOutcome)>
    where
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: RecordError,
    {
        // Groups in order of first appearance; records keep their order inside a group.
        let mut groups: Vec<(Option<String>, Vec<Indexed>)> = Vec::new();
        for record in records {
            let group = record.message.group.clone();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, members)) => members.push(record),
                None => groups.push((group, vec![record])),
            }
        }
        let per_group: Vec<Vec<(usize, String, RecordOutcome)>> = stream::iter(groups)
            .map(|(_, members)| async move {
                let mut outcomes = Vec::with_capacity(members.len());
                let mut broken = false;
                for r in members {
                    let id = r.message.id.clone();
                    let outcome = if broken {
                        RecordOutcome::Skipped
                    } else {
                        self.run_one(handler, deadline, r.message).await
                    };
                    broken |= !outcome.is_handled();
                    outcomes.push((r.index, id, outcome));
                }
                outcomes
            })
            .buffer_unordered(self.concurrency.get())
            .collect()
            .await;
        per_group.into_iter().flatten().collect()
    }
}

/// Whether `messages` form a FIFO batch.
pub(super) fn is_fifo(messages: &[Message]) -> bool {
    messages.iter().any(|m| m.group.is_some())
}
