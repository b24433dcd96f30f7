//! The UsersTable's items hold their signup's lock and announcement, against
//! moto: each write is one single-item conditional write that returns the
//! item as it was when its condition fails, so a write the SDK resent is
//! recognised by its own lock, and a lock is taken over, finished or
//! released only under its own rules.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::UserStore;
use eventline_aws::dynamodb::DynamoUserStore;
use eventline_domain::{Timestamp, UserId};
use eventline_powertools::item_lock::{classify, Claim, Finish, Found, ItemLock, Locked};
use eventline_tests::*;

fn lock(attempt: &str, until_ms: u64) -> ItemLock {
    ItemLock {
        attempt: attempt.into(),
        until_ms,
    }
}

async fn users() -> (aws_config::SdkConfig, String, DynamoUserStore) {
    let sdk = sdk_config().await;
    let table = unique("users");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    (sdk, table, store)
}

#[tokio::test]
async fn a_user_is_created_with_its_lock_in_one_write_and_a_taken_id_returns_what_is_stored() {
    let (sdk, table, store) = users().await;
    let ada = super::user("u1", "ada@example.com", "Ada");
    let mine = lock("attempt-1", 5_000);

    assert_eq!(store.create(&ada, &mine).await.unwrap(), Claim::Held);
    let item = get_item(&sdk, &table, "user_id", "u1").await;
    assert_eq!(item["lock_attempt"], AttributeValue::S("attempt-1".into()));
    assert_eq!(item["lock_until"], AttributeValue::N("5000".into()));
    assert!(!item.contains_key("announced_at"));

    let impostor = super::user("u1", "mallory@example.com", "Mallory");
    let theirs = lock("attempt-2", 9_000);
    assert_eq!(
        store.create(&impostor, &theirs).await.unwrap(),
        Claim::Found(Locked {
            value: ada.clone(),
            lock: Some(mine.clone())
        }),
        "nothing written; the stored user and its lock came back"
    );
    assert_eq!(store.get(&ada.id).await.unwrap(), Some(ada));
}

#[tokio::test]
async fn a_resent_create_finds_its_own_lock_and_a_resent_announcement_its_own_fact() {
    let (_, _, store) = users().await;
    let ada = super::user("u1", "ada@example.com", "Ada");
    let mine = lock("attempt-1", 5_000);
    assert_eq!(store.create(&ada, &mine).await.unwrap(), Claim::Held);

    // The SDK resends the create after the first one landed.
    let Claim::Found(stored) = store.create(&ada, &mine).await.unwrap() else {
        panic!("the resend must fail its condition");
    };
    let found = classify(
        stored.lock.as_ref(),
        stored.value.is_announced(),
        true,
        &mine,
        2_000,
    );
    assert_eq!(found, Found::Ours, "our own write, not someone else's lock");

    let first = Timestamp::from_unix_millis(1_795_771_500_000);
    assert_eq!(
        store.announce(&ada.id, &mine, first).await.unwrap(),
        Finish::Recorded
    );
    let later = Timestamp::from_unix_millis(1_795_771_900_000);
    assert_eq!(
        store.announce(&ada.id, &mine, later).await.unwrap(),
        Finish::Recorded,
        "the resent announcement is still ours"
    );
    assert_eq!(
        store.get(&ada.id).await.unwrap().unwrap().announced_at,
        Some(first)
    );
}

#[tokio::test]
async fn a_lapsed_lock_is_taken_over_and_a_live_one_or_an_announced_user_is_not() {
    let (_, _, store) = users().await;
    let ada = super::user("u1", "ada@example.com", "Ada");
    let dead = lock("crashed", 1_000);
    store.create(&ada, &dead).await.unwrap();

    let live = lock("attempt-2", 9_000);
    assert_eq!(
        store.take_over(&ada.id, &live, 2_000).await.unwrap(),
        Claim::Held
    );
    let late = lock("attempt-3", 9_500);
    assert_eq!(
        store.take_over(&ada.id, &late, 3_000).await.unwrap(),
        Claim::Found(Locked {
            value: ada.clone(),
            lock: Some(live.clone())
        }),
        "a live lock is not taken"
    );
    // The crashed attempt cannot finish over the lock that replaced it.
    assert!(matches!(
        store
            .announce(&ada.id, &dead, Timestamp::from_unix_millis(5))
            .await
            .unwrap(),
        Finish::NotHeld(_)
    ));
    assert!(!store.get(&ada.id).await.unwrap().unwrap().is_announced());

    let at = Timestamp::from_unix_millis(1_795_771_500_000);
    store.announce(&ada.id, &live, at).await.unwrap();
    let Claim::Found(stored) = store.take_over(&ada.id, &late, 99_999).await.unwrap() else {
        panic!("an announced user is never taken over");
    };
    assert_eq!(stored.value.announced_at, Some(at));
}

#[tokio::test]
async fn an_item_written_before_locks_lived_on_users_is_taken_over_and_finished() {
    let (sdk, table, store) = users().await;
    // Today's layout before the lock moved onto the user: no lock attributes.
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("user_id", AttributeValue::S("old1".into()))
        .item("email", AttributeValue::S("ada@example.com".into()))
        .item("name", AttributeValue::S("Ada".into()))
        .item(
            "created_at",
            AttributeValue::S("2020-01-01T00:00:00.000Z".into()),
        )
        .send()
        .await
        .unwrap();
    let id = UserId::parse("old1").unwrap();
    let mine = lock("attempt-1", 5_000);
    let Claim::Found(stored) = store
        .create(&super::user("old1", "ada@example.com", "Ada"), &mine)
        .await
        .unwrap()
    else {
        panic!("the user exists");
    };
    assert_eq!(stored.lock, None);
    assert_eq!(
        store.take_over(&id, &mine, 2_000).await.unwrap(),
        Claim::Held
    );
    let at = Timestamp::from_unix_millis(1_795_771_500_000);
    assert_eq!(
        store.announce(&id, &mine, at).await.unwrap(),
        Finish::Recorded
    );
    let user = store.get(&id).await.unwrap().unwrap();
    assert_eq!(user.announced_at, Some(at));
    assert_eq!(user.created_at.to_string(), "2020-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn a_release_frees_only_its_own_unannounced_lock_and_keeps_the_user() {
    let (sdk, table, store) = users().await;
    let ada = super::user("u1", "ada@example.com", "Ada");
    let mine = lock("attempt-1", 9_000);
    store.create(&ada, &mine).await.unwrap();

    store
        .release(&ada.id, &lock("someone-else", 9_000))
        .await
        .unwrap();
    assert!(get_item(&sdk, &table, "user_id", "u1")
        .await
        .contains_key("lock_until"));

    store.release(&ada.id, &mine).await.unwrap();
    let item = get_item(&sdk, &table, "user_id", "u1").await;
    assert!(
        !item.contains_key("lock_until"),
        "freed for a retry at once"
    );
    assert_eq!(item["email"], AttributeValue::S("ada@example.com".into()));
    let next = lock("attempt-2", 9_500);
    assert_eq!(
        store.take_over(&ada.id, &next, 2_000).await.unwrap(),
        Claim::Held
    );
}

#[tokio::test]
async fn an_announcement_of_a_missing_user_fails_and_creates_nothing() {
    let (_, _, store) = users().await;
    let nobody = UserId::parse("nobody").unwrap();
    let err = store
        .announce(&nobody, &lock("a", 1), Timestamp::from_unix_millis(1))
        .await
        .unwrap_err();
    assert_eq!(err.operation, "DynamoDB UpdateItem users announced_at");
    assert_eq!(store.get(&nobody).await.unwrap(), None);
}
