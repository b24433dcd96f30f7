//! The mail ledger against moto: each message's marker is its own lock and
//! fact (create, a resent create that is ours, in progress, a lapsed lock
//! taken over, finish, release with its unsent marker, the old layout), a per-mailbox daily cap
//! counted in distinct message ids, and no address in any item.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::{Admission, MailLedger, MailMarker};
use eventline_aws::mail_ledger::DynamoMailLedger;
use eventline_domain::{EmailAddress, MailboxKey};
use eventline_powertools::item_lock::{classify, Claim, Finish, Found, ItemLock, Locked};
use eventline_tests::*;

const DAY: &str = "2026-11-27";

fn mailbox(address: &str) -> MailboxKey {
    EmailAddress::parse(address).unwrap().mailbox_key()
}

fn lock(attempt: &str, until_ms: u64) -> ItemLock {
    ItemLock {
        attempt: attempt.into(),
        until_ms,
    }
}

async fn ledger() -> (aws_config::SdkConfig, String, DynamoMailLedger) {
    let sdk = sdk_config().await;
    let table = unique("idempotency");
    create_table(&sdk, &table, "id").await;
    let ledger = DynamoMailLedger::new(eventline_aws::dynamodb::client(&sdk), &table);
    (sdk, table, ledger)
}

async fn quota_ids(sdk: &aws_config::SdkConfig, table: &str, to: &str) -> Vec<String> {
    let key = DynamoMailLedger::quota_key(&mailbox(to), DAY);
    let mut ids = match get_item(sdk, table, "id", &key).await.get("ids") {
        Some(AttributeValue::Ss(ids)) => ids.clone(),
        other => panic!("no string set: {other:?}"),
    };
    ids.sort();
    ids
}

/// What `claim` found, as `ours` would judge it at `now_ms` for payload "h".
fn judged(claim: Claim<MailMarker>, ours: &ItemLock, now_ms: u64) -> Option<Found> {
    match claim {
        Claim::Held => None,
        Claim::Found(Locked { value, lock }) => {
            let same = value.payload_hash.as_deref().is_none_or(|h| h == "h");
            Some(classify(lock.as_ref(), value.sent, same, ours, now_ms))
        }
    }
}

#[tokio::test]
async fn a_marker_is_created_once_with_its_lock_and_a_resent_create_is_ours() {
    let (sdk, table, ledger) = ledger().await;
    let first = lock("a1", 5_000);

    assert_eq!(ledger.lock("m1", "h", &first).await.unwrap(), Claim::Held);
    let item = get_item(&sdk, &table, "id", "mail-sent#m1").await;
    assert_eq!(item["payload_hash"], AttributeValue::S("h".into()));
    assert_eq!(item["lock_attempt"], AttributeValue::S("a1".into()));
    assert!(!item.contains_key("sent"), "in progress: {item:?}");
    assert!(!item.contains_key("expiration"), "{item:?}");

    // The SDK resending the same write finds its own token.
    let resent = ledger.lock("m1", "h", &first).await.unwrap();
    assert_eq!(judged(resent, &first, 1_000), Some(Found::Ours));
    // Another attempt meanwhile: in progress; with another payload: a conflict.
    let second = lock("a2", 9_000);
    let found = ledger.lock("m1", "h", &second).await.unwrap();
    assert_eq!(
        judged(found.clone(), &second, 1_000),
        Some(Found::InProgress)
    );
    match found {
        Claim::Found(Locked { value, .. }) => {
            let same = value.payload_hash.as_deref() == Some("other");
            assert_eq!(
                classify(None, value.sent, same, &second, 1_000),
                Found::Conflict
            );
        }
        Claim::Held => panic!("the marker exists"),
    }
    // Not lapsed yet: no take-over.
    assert!(matches!(
        ledger.take_over("m1", &second, 1_000).await.unwrap(),
        Claim::Found(_)
    ));
}

#[tokio::test]
async fn a_lapsed_lock_is_taken_over_and_only_its_holder_records_sent() {
    let (sdk, table, ledger) = ledger().await;
    let (first, second) = (lock("a1", 5_000), lock("a2", 20_000));
    ledger.lock("m1", "h", &first).await.unwrap();

    let found = ledger.lock("m1", "h", &second).await.unwrap();
    assert_eq!(judged(found, &second, 6_000), Some(Found::Lapsed));
    assert_eq!(
        ledger.take_over("m1", &second, 6_000).await.unwrap(),
        Claim::Held
    );
    // The first attempt, late, can neither record nor release.
    assert!(matches!(
        ledger.record_sent("m1", &first).await.unwrap(),
        Finish::NotHeld(Locked { lock: Some(l), .. }) if l == second
    ));
    ledger.release("m1", &first).await.unwrap();
    assert_eq!(
        ledger.record_sent("m1", &second).await.unwrap(),
        Finish::Recorded
    );
    // A resend of the record is ours too, and changes nothing.
    assert_eq!(
        ledger.record_sent("m1", &second).await.unwrap(),
        Finish::Recorded
    );
    let item = get_item(&sdk, &table, "id", "mail-sent#m1").await;
    assert_eq!(item["sent"], AttributeValue::Bool(true));
    assert!(
        !item.contains_key("expiration"),
        "the table's TTL must never delete a sent marker: {item:?}"
    );

    // Sent is sent: a copy of any age is done; no one takes it over or releases it.
    let later = lock("a3", u64::MAX);
    let found = ledger.lock("m1", "h", &later).await.unwrap();
    assert_eq!(judged(found, &later, u64::MAX - 1), Some(Found::Done));
    assert!(matches!(
        ledger.take_over("m1", &later, u64::MAX - 1).await.unwrap(),
        Claim::Found(_)
    ));
    ledger.release("m1", &second).await.unwrap();
    let item = get_item(&sdk, &table, "id", "mail-sent#m1").await;
    assert_eq!(
        item["sent"],
        AttributeValue::Bool(true),
        "a sent marker stays"
    );
}

#[tokio::test]
async fn a_released_marker_is_gone_and_free_at_once_but_only_its_holder_releases_it() {
    let (sdk, table, ledger) = ledger().await;
    let (first, second) = (lock("a1", 5_000), lock("a2", 9_000));
    ledger.lock("m1", "h", &first).await.unwrap();

    // Not ours: nothing happens.
    ledger.release("m1", &second).await.unwrap();
    assert!(get_item(&sdk, &table, "id", "mail-sent#m1")
        .await
        .contains_key("lock_until"));
    ledger.release("m1", &first).await.unwrap();

    let items = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        items.items().len(),
        0,
        "an unsent marker goes with its lock"
    );
    assert_eq!(ledger.lock("m1", "h", &second).await.unwrap(), Claim::Held);
}

#[tokio::test]
async fn a_marker_of_the_old_layout_is_sent_for_any_payload() {
    let (sdk, table, ledger) = ledger().await;
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S("mail-sent#welcome.u1".into()))
        .item("sent", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
    let ours = lock("a1", 5_000);

    let found = ledger.lock("welcome.u1", "h", &ours).await.unwrap();

    assert_eq!(
        found,
        Claim::Found(Locked {
            value: MailMarker {
                payload_hash: None,
                sent: true
            },
            lock: None
        })
    );
    assert_eq!(judged(found, &ours, 1_000), Some(Found::Done));
}

#[tokio::test]
async fn the_cap_counts_distinct_messages_per_mailbox_and_a_retry_takes_no_second_slot() {
    let (sdk, table, ledger) = ledger().await;
    let ada = mailbox("ada@example.com");

    assert_eq!(
        ledger.take_slot(&ada, "m1", DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    // The same message again (its send failed and is retried): no new slot.
    assert_eq!(
        ledger.take_slot(&ada, "m1", DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(quota_ids(&sdk, &table, "ada@example.com").await, ["m1"]);
    // A tagged address is the same mailbox.
    let tagged = mailbox("Ada+news@example.com");
    assert_eq!(
        ledger.take_slot(&tagged, "m2", DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        ledger.take_slot(&tagged, "m3", DAY, 2).await.unwrap(),
        Admission::OverQuota
    );
    // Already admitted messages still go through at the cap.
    assert_eq!(
        ledger.take_slot(&ada, "m2", DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        quota_ids(&sdk, &table, "ada@example.com").await,
        ["m1", "m2"]
    );
    // Per mailbox and per day.
    let bob = mailbox("bob@example.com");
    assert_eq!(
        ledger.take_slot(&bob, "m3", DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        ledger.take_slot(&ada, "m3", "2026-11-28", 2).await.unwrap(),
        Admission::Admitted
    );
}

#[tokio::test]
async fn quota_items_expire_two_days_after_their_day_and_never_hold_the_address() {
    let (sdk, table, ledger) = ledger().await;
    let ada = mailbox("ada@example.com");
    ledger.take_slot(&ada, "m1", DAY, 5).await.unwrap();
    let held = lock("a1", 5_000);
    ledger.lock("m1", "h", &held).await.unwrap();
    ledger.record_sent("m1", &held).await.unwrap();

    let quota = get_item(&sdk, &table, "id", &DynamoMailLedger::quota_key(&ada, DAY)).await;
    // 2026-11-27T00:00:00Z + 48 h.
    assert_eq!(quota["expiration"], AttributeValue::N("1795910400".into()));
    let items = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(items.items().len(), 2);
    for item in items.items() {
        let text = format!("{item:?}").to_lowercase();
        assert!(!text.contains("example.com"), "{text}");
    }
}

#[tokio::test]
async fn a_cap_of_zero_admits_nothing_and_a_bad_day_is_an_error() {
    let (_sdk, _table, ledger) = ledger().await;
    let ada = mailbox("ada@example.com");
    assert_eq!(
        ledger.take_slot(&ada, "m1", DAY, 0).await.unwrap(),
        Admission::OverQuota
    );
    let err = ledger
        .take_slot(&ada, "m1", "2026-02-31", 5)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("ada@example.com"), "{err}");
}
