//! Generic helpers of the stages: each call bounded by its stage's cut-off
//! with a panic turned into an error, and how a failed record's outcome and
//! lock are recorded.

use super::{Held, Outcomes};
use crate::{Error, PortError};
use eventline_domain::UserId;
use eventline_powertools::deadline::{Deadline, DeadlineExceeded, Ran};
use eventline_powertools::idempotency::IdempotencyError;
use eventline_powertools::item_lock::ItemLock;
use futures::future::join_all;
use std::future::Future;

/// The outcome of a copy that must wait for another attempt (or record)
/// holding the same signup: an expected retry, not an alarm.
pub(super) fn in_progress(key: impl std::fmt::Display) -> Error {
    Error::Idempotency(IdempotencyError::InProgress {
        key: format!("signup.{key}"),
    })
}

/// Runs `work` until `cut_off`, with a panic turned into an error.
pub(super) async fn stage<F: Future>(cut_off: Deadline, work: F) -> Result<F::Output, Error> {
    match cut_off.run(work).await {
        Ran::Done(output) => Ok(output),
        // The message may quote input: the panic hook logged it already.
        Ran::Panicked(_) => {
            tracing::error!("work panicked");
            Err(Error::Panicked)
        }
        Ran::OutOfTime => {
            tracing::warn!("work was still running at its cut-off");
            Err(Error::Deadline(DeadlineExceeded))
        }
    }
}

/// Runs one stage's work for many records at once, each bounded on its
/// own: a record whose call hangs or panics fails alone, and the others
/// keep their results. One result per future, in order.
pub(super) async fn each<F: Future>(
    cut_off: Deadline,
    work: impl IntoIterator<Item = F>,
) -> Vec<Result<F::Output, Error>> {
    join_all(work.into_iter().map(|w| stage(cut_off, w))).await
}

/// Records `error` as the record's outcome. Its lock goes to `release`
/// unless the error is the cut-off: a call we stopped waiting for may still
/// land, and no time is left, so that lock lapses at its own deadline.
pub(super) fn fail(
    held: Held,
    error: Error,
    outcomes: &mut Outcomes,
    release: &mut Vec<(UserId, ItemLock)>,
) {
    if !matches!(error, Error::Deadline(_)) {
        release.push((held.user.id, held.lock));
    }
    outcomes[held.index] = Some(Err(error));
}

/// The batch API's answer for entry `position`; no answer is a failure.
pub(super) fn confirmed(
    results: &[Result<(), PortError>],
    position: usize,
    operation: &'static str,
) -> Result<(), PortError> {
    results
        .get(position)
        .cloned()
        .unwrap_or_else(|| Err(PortError::new(operation, "no result for this entry")))
}
