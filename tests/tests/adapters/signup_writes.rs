//! user-processor's transactional writes against moto: locks and new users
//! together, completions and announcements together; a cancelled
//! transaction's `CancellationReasons` read entry by entry (each entry
//! leaves with what its failed condition found, the rest is written); and,
//! against a stub, reasons moto never gives, read fail-closed.

use super::idempotency::{completed, lock};
use super::stub::{Reply, Stub, DYNAMODB_JSON};
use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::{Finish, Finished, LockAndInsert, SignupWrites, UserStore};
use eventline_aws::dynamodb::DynamoUserStore;
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_aws::signup_writes::DynamoSignupWrites;
use eventline_domain::{Timestamp, UserId};
use eventline_powertools::idempotency::{Acquire, IdempotencyStore, Record};
use eventline_tests::*;
use serde_json::json;

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";

struct Tables {
    sdk: aws_config::SdkConfig,
    users_table: String,
    records_table: String,
    writes: DynamoSignupWrites,
    users: DynamoUserStore,
    records: DynamoIdempotencyStore,
}

async fn tables() -> Tables {
    let sdk = sdk_config().await;
    let (users_table, records_table) = (unique("users"), unique("idempotency"));
    create_table(&sdk, &users_table, "user_id").await;
    create_table(&sdk, &records_table, "id").await;
    let client = eventline_aws::dynamodb::client(&sdk);
    Tables {
        writes: DynamoSignupWrites::new(client.clone(), &users_table, &records_table),
        users: DynamoUserStore::new(client.clone(), &users_table),
        records: DynamoIdempotencyStore::new(client, &records_table),
        sdk,
        users_table,
        records_table,
    }
}

#[tokio::test]
async fn a_cancelled_write_names_each_entry_whose_condition_failed_and_writes_the_rest() {
    let t = tables().await;
    // k1 is locked by another attempt; u2 is stored; k4 is locked and u4
    // stored (the lock's condition is the one reported).
    let held = lock("fn#k1", "other", 9_000);
    let held4 = lock("fn#k4", "other", 9_000);
    for record in [&held, &held4] {
        assert_eq!(
            t.records.acquire(record, 1_000).await.unwrap(),
            Acquire::Acquired
        );
    }
    let stored = super::user("u2", "grace@example.com", "Grace");
    t.users.insert(&stored).await.unwrap();
    t.users
        .insert(&super::user("u4", "alan@example.com", "Alan"))
        .await
        .unwrap();

    let entries = [
        (
            lock("fn#k1", "a1", 5_000),
            super::user("u1", "ada@example.com", "Ada"),
        ),
        (
            lock("fn#k2", "a1", 5_000),
            super::user("u2", "grace@example.com", "Grace"),
        ),
        (
            lock("fn#k3", "a1", 5_000),
            super::user("u3", "edsger@example.com", "Edsger"),
        ),
        (
            lock("fn#k4", "a1", 5_000),
            super::user("u4", "alan@example.com", "Alan"),
        ),
    ];
    let results = t.writes.lock_and_insert(&entries, 2_000).await;

    assert_eq!(
        results,
        [
            Ok(LockAndInsert::LockTaken(held)),
            Ok(LockAndInsert::UserExists(stored)),
            Ok(LockAndInsert::Written),
            Ok(LockAndInsert::LockTaken(held4)),
        ]
    );
    // The retry without the named entries wrote k3 and u3, and nothing else.
    let k3 = get_item(&t.sdk, &t.records_table, "id", "fn#k3").await;
    assert_eq!(k3["status"], AttributeValue::S("INPROGRESS".into()));
    assert_eq!(k3["attempt"], AttributeValue::S("a1".into()));
    let u3 = get_item(&t.sdk, &t.users_table, "user_id", "u3").await;
    assert_eq!(u3["email"], AttributeValue::S("edsger@example.com".into()));
    assert_eq!(
        t.users.get(&UserId::parse("u1").unwrap()).await.unwrap(),
        None
    );
    assert_eq!(
        t.records
            .acquire(&lock("fn#k2", "probe", 9_000), 2_000)
            .await
            .unwrap(),
        Acquire::Acquired,
        "k2's lock was not written"
    );
}

#[tokio::test]
async fn completions_and_announcements_go_together_and_a_lost_lock_keeps_its_announcement() {
    let t = tables().await;
    let locks: Vec<Record> = (1..=3)
        .map(|i| lock(&format!("fn#k{i}"), "a1", 5_000))
        .collect();
    let entries: Vec<_> = locks
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                l.clone(),
                super::user(&format!("u{}", i + 1), "a@b.io", "A"),
            )
        })
        .collect();
    let written = t.writes.lock_and_insert(&entries, 1_000).await;
    assert!(written.iter().all(|w| w == &Ok(LockAndInsert::Written)));
    // k2's lock lapsed and another attempt took it.
    let thief = lock("fn#k2", "thief", 99_000);
    assert_eq!(
        t.records.acquire(&thief, 6_000).await.unwrap(),
        Acquire::Acquired
    );

    let at = Timestamp::from_unix_millis(1_795_771_500_000);
    let announce = |id: &str| Some((UserId::parse(id).unwrap(), at));
    let finishes = [
        Finish {
            completed: completed(&locks[0]),
            announce: announce("u1"),
        },
        Finish {
            completed: completed(&locks[1]),
            announce: announce("u2"),
        },
        // No such user: neither is written.
        Finish {
            completed: completed(&lock("fn#k9", "a1", 5_000)),
            announce: announce("u9"),
        },
        // Announced by an earlier attempt: the completion alone.
        Finish {
            completed: completed(&locks[2]),
            announce: None,
        },
    ];
    let results = t.writes.complete_and_announce(&finishes).await;

    assert_eq!(results[0], Ok(Finished::Completed));
    assert_eq!(results[1], Ok(Finished::LockLost));
    let refused = results[2].clone().unwrap_err();
    assert!(refused.message.contains("no user is stored"), "{refused}");
    assert_eq!(results[3], Ok(Finished::Completed));
    let announced_at = |id: &str| {
        let (sdk, table, id) = (t.sdk.clone(), t.users_table.clone(), id.to_owned());
        async move {
            get_item(&sdk, &table, "user_id", &id)
                .await
                .get("announced_at")
                .cloned()
        }
    };
    let at_text = Some(AttributeValue::S("2026-11-27T09:25:00.000Z".into()));
    assert_eq!(announced_at("u1").await, at_text);
    assert_eq!(announced_at("u2").await, at_text, "announced, lock lost");
    assert_eq!(announced_at("u3").await, None);
    let status = |id: &str| {
        let (sdk, table, id) = (t.sdk.clone(), t.records_table.clone(), id.to_owned());
        async move {
            let item = get_item(&sdk, &table, "id", &id).await;
            (item["status"].clone(), item["attempt"].clone())
        }
    };
    let s = |v: &str| AttributeValue::S(v.into());
    assert_eq!(status("fn#k1").await, (s("COMPLETED"), s("a1")));
    assert_eq!(status("fn#k2").await, (s("INPROGRESS"), s("thief")));
    assert_eq!(status("fn#k3").await, (s("COMPLETED"), s("a1")));
    assert_eq!(
        t.users.get(&UserId::parse("u9").unwrap()).await.unwrap(),
        None,
        "the announcement made no stub user"
    );
}

/// The adapter against a stub that answers the `n`th `TransactWriteItems`
/// with `answers[n]`, and any call after those with a validation error.
async fn against(answers: Vec<Reply>) -> (Stub, DynamoSignupWrites) {
    let answers = std::sync::Mutex::new(std::collections::VecDeque::from(answers));
    let stub = Stub::start(None, move |_| {
        answers.lock().unwrap().pop_front().unwrap_or_else(|| {
            Reply::Status(
                400,
                DYNAMODB_JSON,
                json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ValidationException",
                    "Message": "the stub expected no more calls",
                })
                .to_string(),
            )
        })
    })
    .await;
    let writes = DynamoSignupWrites::new(
        eventline_aws::dynamodb::client(&sdk_config_for(&stub.url).await),
        "users",
        "idempotency",
    );
    (stub, writes)
}

fn cancelled(codes: &[&str]) -> Reply {
    let reasons: Vec<_> = codes.iter().map(|c| json!({"Code": c})).collect();
    Reply::Status(
        400,
        DYNAMODB_JSON,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
            "CancellationReasons": reasons,
        })
        .to_string(),
    )
}

fn three() -> Vec<(Record, eventline_domain::User)> {
    (0..3)
        .map(|i| {
            (
                lock(&format!("fn#k{i}"), "a1", 5_000),
                super::user(&format!("u{i}"), "a@b.io", "A"),
            )
        })
        .collect()
}

/// The actions of the `n`th transaction the stub received, by item key.
fn keys(stub: &Stub, n: usize) -> Vec<String> {
    let calls: Vec<_> = stub
        .calls()
        .into_iter()
        .filter(|c| c.target == TRANSACT)
        .collect();
    calls[n].body["TransactItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| {
            let item = &action["Put"]["Item"];
            item["id"]["S"]
                .as_str()
                .or(item["user_id"]["S"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_reason_that_is_no_failed_condition_fails_its_entry_alone_and_the_rest_is_retried() {
    let (stub, writes) = against(vec![
        cancelled(&[
            "None",
            "None",
            "None",
            "TransactionConflict",
            "None",
            "None",
        ]),
        Reply::Json(DYNAMODB_JSON, "{}".into()),
    ])
    .await;

    let results = writes.lock_and_insert(&three(), 1_000).await;

    assert_eq!(stub.count(TRANSACT), 2, "the stub answered both attempts");
    assert_eq!(
        keys(&stub, 0),
        ["fn#k0", "u0", "fn#k1", "u1", "fn#k2", "u2"]
    );
    assert_eq!(keys(&stub, 1), ["fn#k0", "u0", "fn#k2", "u2"]);
    assert_eq!(results[0], Ok(LockAndInsert::Written));
    let conflict = results[1].clone().unwrap_err();
    assert!(
        conflict.message.contains("TransactionConflict"),
        "{conflict}"
    );
    assert_eq!(results[2], Ok(LockAndInsert::Written));
}

#[tokio::test]
async fn reasons_that_do_not_line_up_with_the_actions_fail_every_entry() {
    let (stub, writes) = against(vec![cancelled(&["None", "ConditionalCheckFailed"])]).await;

    let results = writes.lock_and_insert(&three(), 1_000).await;

    assert_eq!(stub.count(TRANSACT), 1, "the stub answered, and only once");
    assert_eq!(results.len(), 3);
    for result in results {
        let e = result.unwrap_err();
        assert!(e.message.contains("2 reasons for 6 actions"), "{e}");
    }
}

#[tokio::test]
async fn a_transaction_cancelled_again_on_its_retry_fails_what_it_did_not_settle() {
    // The first attempt names k0's lock (a live record, returned); the
    // retry is cancelled by a conflict with no entry named.
    let live = json!({
        "Code": "ConditionalCheckFailed",
        "Item": {
            "id": {"S": "fn#k0"}, "status": {"S": "INPROGRESS"},
            "expiration": {"N": "2000000000"}, "in_progress_expiration": {"N": "9000"},
            "validation": {"S": "h"}, "attempt": {"S": "other"}
        }
    });
    let first = Reply::Status(
        400,
        DYNAMODB_JSON,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": [live, {"Code": "None"}, {"Code": "None"}, {"Code": "None"}, {"Code": "None"}, {"Code": "None"}],
        })
        .to_string(),
    );
    let (stub, writes) = against(vec![first, cancelled(&["None", "None", "None", "None"])]).await;

    let results = writes.lock_and_insert(&three(), 1_000).await;

    assert_eq!(stub.count(TRANSACT), 2, "retried once, not more");
    assert_eq!(
        results[0],
        Ok(LockAndInsert::LockTaken(lock("fn#k0", "other", 9_000)))
    );
    for result in &results[1..] {
        let e = result.clone().unwrap_err();
        assert!(e.message.contains("cancelled again"), "{e}");
    }
}
