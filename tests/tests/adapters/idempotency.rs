//! The IdempotencyTable adapter against moto: the lock is freed only by its
//! own deadline, and only the attempt that holds it can release or complete it.

use super::stub::{Reply, Stub};
use aws_sdk_dynamodb::types::AttributeValue;
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_powertools::idempotency::{
    payload_hash, Acquire, CompleteError, IdempotencyStore, Record, Status,
};
use eventline_tests::*;

pub(super) fn lock(id: &str, attempt: &str, in_progress_until_ms: u64) -> Record {
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

pub(super) fn completed(lock: &Record) -> Record {
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
        "the record whose lock held was completed"
    );
    assert_eq!(
        get_item(&sdk, &table, "id", "fn#lost").await["attempt"],
        AttributeValue::S("b1".into())
    );
}

#[tokio::test]
async fn every_completion_is_one_conditional_put_all_sent_at_once() {
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
    let locks: Vec<Record> = (0..30)
        .map(|i| lock(&format!("fn#k{i}"), &format!("a{i}"), 5_000))
        .collect();
    for l in &locks {
        assert_eq!(store.acquire(l, 1_000).await.unwrap(), Acquire::Acquired);
    }
    let done: Vec<Record> = locks.iter().map(completed).collect();

    let results = store.complete_all(&done).await;

    let completions: Vec<_> = proxy
        .calls()
        .into_iter()
        .skip(30)
        .map(|c| (c.target.clone(), c.body["ConditionExpression"].clone()))
        .collect();
    assert_eq!(
        completions.len(),
        30,
        "one call per completion, nothing else"
    );
    assert!(
        completions
            .iter()
            .all(|(target, condition)| target == "DynamoDB_20120810.PutItem"
                && condition
                    .as_str()
                    .is_some_and(|c| c.contains("attempt = :attempt"))),
        "each completion is conditional on its attempt: {completions:?}"
    );
    assert_eq!(results.len(), 30);
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

    // All at once: against a store that never answers, every one of 30 more
    // completions reaches it while none is answered (one at a time, the
    // first would hold the rest back for ever).
    let silent = Stub::start(None, |_| Reply::Hang).await;
    let hung = DynamoIdempotencyStore::new(
        eventline_aws::dynamodb::client(&sdk_config_for(&silent.url).await),
        &table,
    );
    let more: Vec<Record> = (0..30)
        .map(|i| completed(&lock(&format!("fn#m{i}"), &format!("m{i}"), 5_000)))
        .collect();
    let waiting = hung.complete_all(&more);
    let arrived = async {
        for _ in 0..300 {
            if silent.calls().len() == 30 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = waiting => panic!("a store that never answers answered"),
        () = arrived => {}
    }
    assert_eq!(silent.calls().len(), 30, "all 30 in flight at once");
}

#[tokio::test]
async fn a_failed_completion_fails_only_its_own_record_by_its_reason() {
    use super::stub::DYNAMODB_JSON;
    // k0 lost its lock, k1's write fails (validation error: not retried),
    // k2 is written.
    let stub = Stub::start(None, |call| {
        let id = call.body["Item"]["id"]["S"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let error = |kind: &str, message: &str| {
            Reply::Status(
                400,
                DYNAMODB_JSON,
                serde_json::json!({
                    "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
                    "Message": message,
                })
                .to_string(),
            )
        };
        match id.as_str() {
            "fn#k0" => error(
                "ConditionalCheckFailedException",
                "The conditional request failed",
            ),
            "fn#k1" => error(
                "ValidationException",
                "One or more parameter values were invalid",
            ),
            _ => Reply::Json(DYNAMODB_JSON, "{}".into()),
        }
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

    assert_eq!(stub.calls().len(), 3, "the stub answered each completion");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], Err(CompleteError::LockLost));
    assert!(
        matches!(&results[1], Err(CompleteError::Store(e)) if e.0.contains("ValidationException")),
        "{results:?}"
    );
    assert_eq!(results[2], Ok(()));
}
