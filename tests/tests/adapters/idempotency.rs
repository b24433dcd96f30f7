//! The IdempotencyTable adapter against moto: the lock is freed only by its
//! own deadline, and only the attempt that holds it can release or complete it.

use super::stub::{Reply, Stub};
use aws_sdk_dynamodb::types::AttributeValue;
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_powertools::idempotency::{
    payload_hash, Acquire, CompleteError, IdempotencyStore, Record, Status,
};
use eventline_tests::*;

fn lock(id: &str, attempt: &str, in_progress_until_ms: u64) -> Record {
    Record {
        id: id.into(),
        status: Status::InProgress,
        expiration: 2_000_000_000,
        in_progress_expiration: in_progress_until_ms,
        payload_hash: "h".into(),
        result: None,
        attempt: attempt.into(),
    }
}

fn completed(lock: &Record) -> Record {
    Record {
        status: Status::Completed,
        result: Some("null".into()),
        ..lock.clone()
    }
}

async fn store() -> (aws_config::SdkConfig, String, DynamoIdempotencyStore) {
    let sdk = sdk_config().await;
    let table = unique("idempotency");
    create_table(&sdk, &table, "id").await;
    let store = DynamoIdempotencyStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    (sdk, table, store)
}

#[tokio::test]
async fn the_lock_is_one_conditional_write_that_a_live_lock_refuses() {
    let (sdk, table, store) = store().await;
    let hash = payload_hash(["u1"]);
    let ours = Record {
        payload_hash: hash.clone(),
        ..lock("fn#k", "a1", 5_000)
    };

    assert_eq!(
        store.acquire(&ours, 1_000).await.unwrap(),
        Acquire::Acquired
    );
    // A concurrent duplicate before the deadline sees the live lock.
    assert_eq!(
        store
            .acquire(&lock("fn#k", "a2", 9_000), 4_999)
            .await
            .unwrap(),
        Acquire::Existing(ours.clone())
    );
    // After the deadline a crashed attempt's lock lapses.
    let retry = lock("fn#k", "a3", 9_000);
    assert_eq!(
        store.acquire(&retry, 5_001).await.unwrap(),
        Acquire::Acquired
    );
    assert_eq!(store.complete_all(&[completed(&retry)]).await, [Ok(())]);
    assert_eq!(
        store
            .acquire(&lock("fn#k", "a4", 99_000), 6_000)
            .await
            .unwrap(),
        Acquire::Existing(completed(&retry))
    );

    let item = get_item(&sdk, &table, "id", "fn#k").await;
    assert_eq!(item["status"], AttributeValue::S("COMPLETED".into()));
    assert_eq!(item["expiration"], AttributeValue::N("2000000000".into()));
    assert_eq!(item["attempt"], AttributeValue::S("a3".into()));
}

#[tokio::test]
async fn an_in_progress_lock_is_not_freed_by_its_expiration_only_by_its_own_deadline() {
    let (_sdk, _table, store) = store().await;
    // Its TTL attribute (seconds) is long past at 5 s; its deadline is 10 s.
    let live = Record {
        expiration: 1,
        ..lock("fn#k", "a1", 10_000)
    };
    assert_eq!(
        store.acquire(&live, 1_000).await.unwrap(),
        Acquire::Acquired
    );

    assert_eq!(
        store
            .acquire(&lock("fn#k", "a2", 20_000), 5_000)
            .await
            .unwrap(),
        Acquire::Existing(live.clone()),
        "a duplicate cannot take a live lock whose expiration has passed"
    );
    assert_eq!(
        store
            .acquire(&lock("fn#k", "a2", 20_000), 10_001)
            .await
            .unwrap(),
        Acquire::Acquired
    );
}

#[tokio::test]
async fn a_completed_record_is_freed_at_its_expiration() {
    let (_sdk, _table, store) = store().await;
    let first = lock("fn#k", "a1", 5_000);
    store.acquire(&first, 1_000).await.unwrap();
    let done = Record {
        expiration: 100,
        ..completed(&first)
    };
    assert_eq!(
        store.complete_all(std::slice::from_ref(&done)).await,
        [Ok(())]
    );

    assert_eq!(
        store
            .acquire(&lock("fn#k", "a2", 200_000), 99_000)
            .await
            .unwrap(),
        Acquire::Existing(done)
    );
    assert_eq!(
        store
            .acquire(&lock("fn#k", "a2", 200_000), 101_000)
            .await
            .unwrap(),
        Acquire::Acquired
    );
}

#[tokio::test]
async fn a_stale_attempt_can_neither_release_nor_complete_a_newer_lock() {
    let (sdk, table, store) = store().await;
    let stale = lock("fn#k", "a1", 5_000);
    store.acquire(&stale, 1_000).await.unwrap();
    let newer = lock("fn#k", "a2", 20_000);
    assert_eq!(
        store.acquire(&newer, 6_000).await.unwrap(),
        Acquire::Acquired
    );

    store.release(&stale).await.unwrap();
    assert_eq!(
        get_item(&sdk, &table, "id", "fn#k").await["attempt"],
        AttributeValue::S("a2".into()),
        "release by the stale attempt left the newer lock"
    );
    assert_eq!(
        store.complete_all(&[completed(&stale)]).await,
        [Err(CompleteError::LockLost)]
    );
    let item = get_item(&sdk, &table, "id", "fn#k").await;
    assert_eq!(item["status"], AttributeValue::S("INPROGRESS".into()));
    assert_eq!(item["attempt"], AttributeValue::S("a2".into()));

    // The owner can; and releasing a lock that is gone is not an error.
    store.release(&newer).await.unwrap();
    assert_eq!(
        store
            .acquire(&lock("fn#k", "a3", 30_000), 7_000)
            .await
            .unwrap(),
        Acquire::Acquired
    );
    store.release(&lock("fn#absent", "a1", 1)).await.unwrap();
}

#[tokio::test]
async fn a_lost_lock_fails_only_its_own_completion() {
    let (sdk, table, store) = store().await;
    let ours = lock("fn#ours", "a1", 5_000);
    let lost = lock("fn#lost", "a1", 5_000);
    store.acquire(&ours, 1_000).await.unwrap();
    store.acquire(&lost, 1_000).await.unwrap();
    store
        .acquire(&lock("fn#lost", "b1", 30_000), 6_000)
        .await
        .unwrap();

    let results = store
        .complete_all(&[completed(&lost), completed(&ours)])
        .await;

    assert_eq!(results, [Err(CompleteError::LockLost), Ok(())]);
    assert_eq!(
        get_item(&sdk, &table, "id", "fn#ours").await["status"],
        AttributeValue::S("COMPLETED".into()),
        "the record that was not at fault was completed in a second transaction"
    );
    assert_eq!(
        get_item(&sdk, &table, "id", "fn#lost").await["attempt"],
        AttributeValue::S("b1".into())
    );
}

#[tokio::test]
async fn many_completions_go_in_one_transaction_per_hundred_records() {
    let sdk = sdk_config().await;
    let table = unique("idempotency");
    create_table(&sdk, &table, "id").await;
    // Every call passes through a recording proxy, so the test sees how the
    // adapter wrote (not only what).
    let proxy = Stub::start(Some(endpoint()), |_| Reply::Forward).await;
    let store = DynamoIdempotencyStore::new(
        eventline_aws::dynamodb::client(&sdk_config_for(&proxy.url).await),
        &table,
    );
    let locks: Vec<Record> = (0..130)
        .map(|i| lock(&format!("fn#k{i}"), &format!("a{i}"), 5_000))
        .collect();
    for l in &locks {
        assert_eq!(store.acquire(l, 1_000).await.unwrap(), Acquire::Acquired);
    }
    let done: Vec<Record> = locks.iter().map(completed).collect();

    let results = store.complete_all(&done).await;

    let transactions: Vec<usize> = proxy
        .calls()
        .iter()
        .filter(|c| c.target == "DynamoDB_20120810.TransactWriteItems")
        .map(|c| c.body["TransactItems"].as_array().map_or(0, Vec::len))
        .collect();
    let mut sizes = transactions.clone();
    sizes.sort();
    assert_eq!(sizes, [30, 100], "two transactions: {transactions:?}");
    assert_eq!(
        proxy.calls().len(),
        130 + 2,
        "130 conditional PutItem locks and 2 transactions, nothing else"
    );
    assert_eq!(results.len(), 130);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for record in &done {
        assert_eq!(
            store
                .acquire(&lock(&record.id, "late", 9_000), 6_000)
                .await
                .unwrap(),
            Acquire::Existing(record.clone())
        );
    }
}

#[tokio::test]
async fn a_cancelled_transaction_fails_each_record_by_its_reason_and_retries_the_rest_once() {
    use super::stub::DYNAMODB_JSON;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // First transaction cancelled: record 0 lost its lock, record 1 hit a
    // conflict, record 2 was not at fault. The retry (record 2 alone) passes.
    let seen = AtomicUsize::new(0);
    let stub = Stub::start(None, move |call| {
        if call.target != "DynamoDB_20120810.TransactWriteItems" {
            return Reply::Status(400, DYNAMODB_JSON, "{}".into());
        }
        if seen.fetch_add(1, Ordering::SeqCst) > 0 {
            return Reply::Json(DYNAMODB_JSON, "{}".into());
        }
        Reply::Status(
            400,
            DYNAMODB_JSON,
            serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled",
                "CancellationReasons": [
                    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
                    {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
                    {"Code": "None"},
                ],
            })
            .to_string(),
        )
    })
    .await;
    let store = DynamoIdempotencyStore::new(
        eventline_aws::dynamodb::client(&sdk_config_for(&stub.url).await),
        "idempotency",
    );
    let records: Vec<Record> = (0..3)
        .map(|i| completed(&lock(&format!("fn#k{i}"), "a1", 5_000)))
        .collect();

    let results = store.complete_all(&records).await;

    let transactions: Vec<usize> = stub
        .calls()
        .iter()
        .map(|c| c.body["TransactItems"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(transactions, [3, 1], "the stub answered both transactions");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], Err(CompleteError::LockLost));
    assert!(
        matches!(&results[1], Err(CompleteError::Store(e)) if e.0.contains("TransactionConflict")),
        "{results:?}"
    );
    assert_eq!(results[2], Ok(()));
}

#[tokio::test]
async fn a_cancellation_without_one_reason_per_record_fails_every_record() {
    use super::stub::DYNAMODB_JSON;
    let stub = Stub::start(None, |_| {
        Reply::Status(
            400,
            DYNAMODB_JSON,
            serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled",
                "CancellationReasons": [{"Code": "None"}],
            })
            .to_string(),
        )
    })
    .await;
    let store = DynamoIdempotencyStore::new(
        eventline_aws::dynamodb::client(&sdk_config_for(&stub.url).await),
        "idempotency",
    );
    let records: Vec<Record> = (0..2)
        .map(|i| completed(&lock(&format!("fn#k{i}"), "a1", 5_000)))
        .collect();

    let results = store.complete_all(&records).await;

    assert_eq!(
        stub.calls().len(),
        1,
        "the stub answered, and nothing was retried blindly"
    );
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(CompleteError::Store(_)))),
        "{results:?}"
    );
}
