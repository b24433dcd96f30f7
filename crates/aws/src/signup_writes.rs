//! user-processor's writes ([`SignupWrites`]) on DynamoDB: a batch's
//! idempotency locks and new users in one `TransactWriteItems`, its lock
//! completions and announcements in another.
//!
//! Each item keeps the layout and the condition of its single-item
//! adapter ([`crate::idempotency`], [`crate::dynamodb`]): the lock is a
//! `Put` under `FREE`, the user a `Put` under `attribute_not_exists`, the
//! completion a `Put` under `HELD`, the announcement an `Update` of
//! `announced_at` on an existing user. A transaction is all or nothing, so
//! a failed condition cancels it; its `CancellationReasons` (one per
//! action, in order) name the entries whose condition failed, with the
//! stored item (`ReturnValuesOnConditionCheckFailure = ALL_OLD`). Those
//! entries leave with what was found, and the transaction is retried once
//! without them; an entry still unwritten after that, or named for any
//! other reason, is an error for that entry alone (the record is retried).
//! Any other failure of the call fails every entry it carried.
//!
//! A transactional write costs two write units per item where a single
//! `PutItem` costs one (docs/performance.md weighs the calls it saves).

use crate::dynamodb::{s, to_item, unwritable, UserItem, ABSENT, ANNOUNCE, PRESENT};
use crate::idempotency::{free_values, held_names, held_values, RecordItem, FREE, HELD};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{Finish, Finished, LockAndInsert, SignupWrites, UserStore};
use eventline_app::PortError;
use eventline_domain::User;
use eventline_powertools::idempotency::Record;

const LOCK_AND_INSERT: &str = "DynamoDB TransactWriteItems locks and users";
const COMPLETE_AND_ANNOUNCE: &str = "DynamoDB TransactWriteItems completions and announcements";

/// The UsersTable and the IdempotencyTable, written together.
#[derive(Debug, Clone)]
pub struct DynamoSignupWrites {
    client: Client,
    users_table: String,
    records_table: String,
    /// For a stored item a cancellation reason did not carry.
    users: crate::dynamodb::DynamoUserStore,
    records: crate::idempotency::DynamoIdempotencyStore,
}

impl DynamoSignupWrites {
    /// Users in `users_table`, idempotency records in `records_table`.
    pub fn new(
        client: Client,
        users_table: impl Into<String>,
        records_table: impl Into<String>,
    ) -> Self {
        let (users_table, records_table) = (users_table.into(), records_table.into());
        Self {
            users: crate::dynamodb::DynamoUserStore::new(client.clone(), &users_table),
            records: crate::idempotency::DynamoIdempotencyStore::new(
                client.clone(),
                &records_table,
            ),
            client,
            users_table,
            records_table,
        }
    }

    /// The lock and the user of one entry, each with its condition.
    fn lock_and_user(
        &self,
        (record, user): &(Record, User),
        now_ms: u64,
    ) -> Result<Vec<TransactWriteItem>, PortError> {
        let lock = Put::builder()
            .table_name(&self.records_table)
            .set_item(Some(
                RecordItem::item(record).map_err(|e| PortError::new(LOCK_AND_INSERT, e))?,
            ))
            .condition_expression(FREE)
            .set_expression_attribute_names(Some(held_names()))
            .set_expression_attribute_values(Some(free_values(now_ms)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let user = Put::builder()
            .table_name(&self.users_table)
            .set_item(Some(
                to_item(&UserItem::new(user)).map_err(|e| unwritable(LOCK_AND_INSERT, e))?,
            ))
            .condition_expression(ABSENT)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(vec![
            put(lock, LOCK_AND_INSERT)?,
            put(user, LOCK_AND_INSERT)?,
        ])
    }

    /// The announcement (if any) and the completion of one entry.
    fn announce_and_complete(&self, finish: &Finish) -> Result<Vec<TransactWriteItem>, PortError> {
        let mut actions = Vec::with_capacity(2);
        if let Some((id, at)) = &finish.announce {
            let update = Update::builder()
                .table_name(&self.users_table)
                .key("user_id", s(id.as_str()))
                .update_expression(ANNOUNCE)
                .condition_expression(PRESENT)
                .expression_attribute_values(":value", s(at.to_string()))
                .build()
                .map_err(|e| PortError::new(COMPLETE_AND_ANNOUNCE, e))?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        let completion = Put::builder()
            .table_name(&self.records_table)
            .set_item(Some(
                RecordItem::item(&finish.completed)
                    .map_err(|e| PortError::new(COMPLETE_AND_ANNOUNCE, e))?,
            ))
            .condition_expression(HELD)
            .set_expression_attribute_names(Some(held_names()))
            .set_expression_attribute_values(Some(held_values(&finish.completed)));
        actions.push(put(completion, COMPLETE_AND_ANNOUNCE)?);
        Ok(actions)
    }

    /// Writes every entry's actions in one transaction; when it is
    /// cancelled, `judge` reads each entry's reasons, and the transaction is
    /// retried once with the entries it keeps. Per entry: `Ok(None)` if
    /// written, `Ok(Some(_))` if it left with a verdict.
    async fn transact<T>(
        &self,
        operation: &'static str,
        mut entries: Vec<Result<Vec<TransactWriteItem>, PortError>>,
        mut judge: impl FnMut(usize, &[CancellationReason]) -> Verdict<T>,
    ) -> Vec<Result<Option<T>, PortError>> {
        let mut results: Vec<Option<Result<Option<T>, PortError>>> =
            entries.iter().map(|_| None).collect();
        let mut pending = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry {
                Ok(_) => pending.push(i),
                Err(e) => results[i] = Some(Err(e.clone())),
            }
        }
        for _attempt in 0..2 {
            if pending.is_empty() {
                break;
            }
            let actions: Vec<TransactWriteItem> = pending
                .iter()
                .flat_map(|&i| entries[i].iter().flatten().cloned())
                .collect();
            let sent = actions.len();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await;
            let reasons = match result {
                Ok(_) => {
                    for i in pending.drain(..) {
                        results[i] = Some(Ok(None));
                    }
                    break;
                }
                Err(SdkError::ServiceError(e))
                    if matches!(
                        e.err(),
                        TransactWriteItemsError::TransactionCanceledException(_)
                    ) =>
                {
                    match e.into_err() {
                        TransactWriteItemsError::TransactionCanceledException(c) => {
                            c.cancellation_reasons().to_vec()
                        }
                        _ => unreachable!("matched above"),
                    }
                }
                Err(e) => {
                    let e = sdk_error(operation, &e, Detail::CodeAndMessage);
                    for i in pending.drain(..) {
                        results[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            };
            // Fail closed: reasons that do not line up with the actions
            // cannot say which entry they are about.
            if reasons.len() != sent {
                let e = PortError::new(
                    operation,
                    format!(
                        "cancelled with {} reasons for {sent} actions",
                        reasons.len()
                    ),
                );
                for i in pending.drain(..) {
                    results[i] = Some(Err(e.clone()));
                }
                break;
            }
            let mut reasons = reasons.as_slice();
            let mut again = Vec::with_capacity(pending.len());
            for i in pending.drain(..) {
                let Ok(actions) = &mut entries[i] else {
                    continue;
                };
                let (mine, rest) = reasons.split_at(actions.len());
                reasons = rest;
                match judge(i, mine) {
                    Verdict::Again => again.push(i),
                    Verdict::Only(position) => {
                        let kept = actions.swap_remove(position);
                        *actions = vec![kept];
                        again.push(i);
                    }
                    Verdict::Leave(result) => results[i] = Some(result.map(Some)),
                }
            }
            tracing::debug!(
                retried = again.len(),
                "transaction cancelled; retried without the entries its reasons name"
            );
            pending = again;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(PortError::new(
                        operation,
                        "transaction cancelled again on its retry",
                    ))
                })
            })
            .collect()
    }

    /// The live idempotency record a failed lock condition found.
    async fn lock_taken(
        &self,
        returned: Option<crate::dynamodb::Item>,
        id: &str,
    ) -> Result<LockAndInsert, PortError> {
        let record = match returned.filter(|item| !item.is_empty()) {
            Some(item) => Some(RecordItem::read(item)),
            // Some emulators do not return the item: read it.
            None => self.records.read(id).await.transpose(),
        };
        match record {
            Some(record) => record
                .map(LockAndInsert::LockTaken)
                .map_err(|e| PortError::new(LOCK_AND_INSERT, e)),
            // Released or lapsed since: the retry takes it.
            None => Err(PortError::new(
                LOCK_AND_INSERT,
                "the record changed during the write; retry",
            )),
        }
    }

    /// The stored user a failed create-if-absent condition found.
    async fn user_exists(
        &self,
        returned: Option<crate::dynamodb::Item>,
        user: &User,
    ) -> Result<LockAndInsert, PortError> {
        let stored = match returned.filter(|item| !item.is_empty()) {
            Some(item) => Some(UserItem::read(item)?),
            None => self.users.get(&user.id).await?,
        };
        stored.map(LockAndInsert::UserExists).ok_or_else(|| {
            PortError::new(LOCK_AND_INSERT, "condition failed but no item is stored")
        })
    }
}

/// A `Put` as a transaction action.
fn put(
    put: aws_sdk_dynamodb::types::builders::PutBuilder,
    operation: &'static str,
) -> Result<TransactWriteItem, PortError> {
    let put = put.build().map_err(|e| PortError::new(operation, e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// What a cancelled transaction's reasons mean for one entry.
enum Verdict<T> {
    /// Its conditions held: it goes again.
    Again,
    /// It goes again with only its action at this position.
    Only(usize),
    /// It leaves the transaction with this result.
    Leave(Result<T, PortError>),
}

/// What one reason says about its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason<'a> {
    /// The action did not cause the cancellation (`None`).
    Fine,
    /// Its condition failed (`ConditionalCheckFailed`).
    ConditionFailed,
    /// Anything else (a conflicting transaction, throttling, a missing
    /// code): not a fact about the item.
    Other(&'a str),
}

fn reason(r: &CancellationReason) -> Reason<'_> {
    match r.code() {
        Some("None") => Reason::Fine,
        Some("ConditionalCheckFailed") => Reason::ConditionFailed,
        Some(code) => Reason::Other(code),
        None => Reason::Other("no code"),
    }
}

fn cancelled<T>(operation: &'static str, code: &str) -> Verdict<T> {
    Verdict::Leave(Err(PortError::new(
        operation,
        format!("transaction cancelled: {code}"),
    )))
}

/// Which condition of a lock-and-insert entry failed; the stored item.
enum Found {
    Lock(Option<crate::dynamodb::Item>),
    User(Option<crate::dynamodb::Item>),
}

impl SignupWrites for DynamoSignupWrites {
    /// A transaction takes at most 100 actions, two per entry.
    const MAX_ENTRIES: usize = 50;

    async fn lock_and_insert(
        &self,
        entries: &[(Record, User)],
        now_ms: u64,
    ) -> Vec<Result<LockAndInsert, PortError>> {
        let calls = entries.chunks(Self::MAX_ENTRIES).map(|chunk| async move {
            let actions = chunk
                .iter()
                .map(|e| self.lock_and_user(e, now_ms))
                .collect();
            let written = self
                .transact(LOCK_AND_INSERT, actions, |_, r| {
                    match (reason(&r[0]), reason(&r[1])) {
                        (Reason::ConditionFailed, _) => {
                            Verdict::Leave(Ok(Found::Lock(r[0].item().cloned())))
                        }
                        (Reason::Other(code), _) | (_, Reason::Other(code)) => {
                            cancelled(LOCK_AND_INSERT, code)
                        }
                        (Reason::Fine, Reason::ConditionFailed) => {
                            Verdict::Leave(Ok(Found::User(r[1].item().cloned())))
                        }
                        (Reason::Fine, Reason::Fine) => Verdict::Again,
                    }
                })
                .await;
            let found = chunk
                .iter()
                .zip(written)
                .map(|((record, user), w)| async move {
                    match w? {
                        None => Ok(LockAndInsert::Written),
                        Some(Found::Lock(item)) => self.lock_taken(item, &record.id).await,
                        Some(Found::User(item)) => self.user_exists(item, user).await,
                    }
                });
            futures::future::join_all(found).await
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn complete_and_announce(&self, entries: &[Finish]) -> Vec<Result<Finished, PortError>> {
        let calls = entries.chunks(Self::MAX_ENTRIES).map(|chunk| async move {
            let actions = chunk
                .iter()
                .map(|f| self.announce_and_complete(f))
                .collect();
            let mut lost = vec![false; chunk.len()];
            let written = self
                .transact(COMPLETE_AND_ANNOUNCE, actions, |i, r| {
                    let (announce, complete) = match r {
                        [announce, complete] => (Some(reason(announce)), reason(complete)),
                        [complete] => (None, reason(complete)),
                        _ => return cancelled(COMPLETE_AND_ANNOUNCE, "unexpected reasons"),
                    };
                    match (announce, complete) {
                        (Some(Reason::ConditionFailed), _) => Verdict::Leave(Err(PortError::new(
                            COMPLETE_AND_ANNOUNCE,
                            "no user is stored under this id",
                        ))),
                        (Some(Reason::Other(code)), _) | (_, Reason::Other(code)) => {
                            cancelled(COMPLETE_AND_ANNOUNCE, code)
                        }
                        // The lock is no longer this attempt's: record the
                        // announcement alone.
                        (Some(Reason::Fine), Reason::ConditionFailed) => {
                            lost[i] = true;
                            Verdict::Only(0)
                        }
                        (None, Reason::ConditionFailed) => Verdict::Leave(Ok(Finished::LockLost)),
                        (_, Reason::Fine) => Verdict::Again,
                    }
                })
                .await;
            written
                .into_iter()
                .zip(lost)
                .map(|(w, lost)| match w? {
                    Some(finished) => Ok(finished),
                    None if lost => Ok(Finished::LockLost),
                    None => Ok(Finished::Completed),
                })
                .collect::<Vec<_>>()
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn because(code: Option<&str>) -> CancellationReason {
        CancellationReason::builder()
            .set_code(code.map(str::to_owned))
            .build()
    }

    #[test]
    fn a_reason_is_a_failed_condition_only_when_it_says_so() {
        assert_eq!(reason(&because(Some("None"))), Reason::Fine);
        assert_eq!(
            reason(&because(Some("ConditionalCheckFailed"))),
            Reason::ConditionFailed
        );
        assert_eq!(
            reason(&because(Some("TransactionConflict"))),
            Reason::Other("TransactionConflict")
        );
        assert_eq!(reason(&because(None)), Reason::Other("no code"));
    }
}
