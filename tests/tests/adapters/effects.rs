//! Durable effects: a profile is its own lock, and the fact that its
//! document was written is recorded on it under that lock, once (a user's
//! announcement: user_locks.rs; a message's: mail_ledger.rs); items of the
//! older layouts stay readable.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::{ProfileStore, UserStore};
use eventline_aws::dynamodb::{DynamoProfileStore, DynamoUserStore};
use eventline_domain::{Profile, UserCreated, UserId};
use eventline_powertools::item_lock::{classify, Claim, Finish, Found, ItemLock, Locked};
use eventline_tests::*;

#[tokio::test]
async fn a_user_stored_under_older_rules_stays_readable() {
    let sdk = sdk_config().await;
    let table = unique("users");
    create_table(&sdk, &table, "user_id").await;
    // Written directly, as an older version (or another writer) might have:
    // a name with a bidi override and a zero-width space, an upper-case address.
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("user_id", AttributeValue::S("old1".into()))
        .item("email", AttributeValue::S("Ada@Example.COM".into()))
        .item(
            "name",
            AttributeValue::S("Ada\u{202E}\u{200B} Lovelace".into()),
        )
        .item(
            "created_at",
            AttributeValue::S("2020-01-01T00:00:00.000Z".into()),
        )
        .send()
        .await
        .unwrap();
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), &table);

    let user = store
        .get(&UserId::parse("old1").unwrap())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(user.email.as_str(), "Ada@Example.COM");
    assert_eq!(user.name.as_str(), "Ada Lovelace");
    assert_eq!(user.announced_at, None);
}

fn lock(attempt: &str, until_ms: u64) -> ItemLock {
    ItemLock {
        attempt: attempt.into(),
        until_ms,
    }
}

async fn profiles() -> (aws_config::SdkConfig, String, DynamoProfileStore) {
    let sdk = sdk_config().await;
    let table = unique("profiles");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoProfileStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    (sdk, table, store)
}

fn ada() -> Profile {
    Profile::default_for(&UserCreated::from_user(&super::user("u1", "a@b.io", "Ada")))
}

#[tokio::test]
async fn a_profile_is_its_own_lock_and_records_its_document_under_it() {
    let (sdk, table, store) = profiles().await;
    let profile = ada();
    let (first, second) = (lock("a1", 5_000), lock("a2", 20_000));

    assert_eq!(
        store.create(&profile, "h", &first).await.unwrap(),
        Claim::Held
    );
    // A resent create finds its own lock; another attempt finds it live.
    match store.create(&profile, "h", &second).await.unwrap() {
        Claim::Found(Locked { value, lock }) => {
            assert!(value.profile.same_content(&profile));
            assert_eq!(value.payload_hash.as_deref(), Some("h"));
            assert_eq!(lock, Some(first.clone()));
            assert_eq!(
                classify(lock.as_ref(), false, true, &first, 1_000),
                Found::Ours
            );
            assert_eq!(
                classify(lock.as_ref(), false, true, &second, 1_000),
                Found::InProgress
            );
        }
        Claim::Held => panic!("the profile was stored before"),
    }
    assert!(matches!(
        store
            .take_over(&profile.user_id, &second, 1_000)
            .await
            .unwrap(),
        Claim::Found(_)
    ));
    // Lapsed: taken over; the late first attempt can neither record nor release.
    assert_eq!(
        store
            .take_over(&profile.user_id, &second, 6_000)
            .await
            .unwrap(),
        Claim::Held
    );
    assert!(matches!(
        store
            .record_document(&profile.user_id, &first)
            .await
            .unwrap(),
        Finish::NotHeld(_)
    ));
    store.release(&profile.user_id, &first).await.unwrap();
    assert_eq!(
        store
            .record_document(&profile.user_id, &second)
            .await
            .unwrap(),
        Finish::Recorded
    );

    let item = get_item(&sdk, &table, "user_id", "u1").await;
    assert_eq!(item["document_written"], AttributeValue::Bool(true));
    assert_eq!(item["lock_attempt"], AttributeValue::S("a2".into()));
    match store.create(&profile, "h", &lock("a3", 1)).await.unwrap() {
        Claim::Found(stored) => assert!(stored.value.profile.document_written),
        Claim::Held => panic!("the profile was stored before"),
    }
    // Written is written: no take-over, no release.
    assert!(matches!(
        store
            .take_over(&profile.user_id, &lock("a3", 1), u64::MAX)
            .await
            .unwrap(),
        Claim::Found(_)
    ));
    let nobody = UserId::parse("nobody").unwrap();
    // No item: an error, and no stub item is made.
    assert!(store.record_document(&nobody, &second).await.is_err());
    assert!(store.take_over(&nobody, &second, 6_000).await.is_err());
}

#[tokio::test]
async fn a_released_profile_lock_is_free_at_once() {
    let (_sdk, _table, store) = profiles().await;
    let profile = ada();
    store
        .create(&profile, "h", &lock("a1", 5_000))
        .await
        .unwrap();
    store
        .release(&profile.user_id, &lock("a1", 5_000))
        .await
        .unwrap();
    assert_eq!(
        store
            .take_over(&profile.user_id, &lock("a2", 9_000), 1_000)
            .await
            .unwrap(),
        Claim::Held
    );
}

#[tokio::test]
async fn a_profile_of_the_old_layout_reads_unlocked_and_can_be_taken_over() {
    let (sdk, table, store) = profiles().await;
    // As the code before profile locks wrote it: document_written false, no
    // lock, no payload hash.
    let old = [
        ("user_id", AttributeValue::S("u1".into())),
        ("display_name", AttributeValue::S("Ada".into())),
        ("bio", AttributeValue::S(String::new())),
        ("avatar_url", AttributeValue::Null(true)),
        ("locale", AttributeValue::S("en".into())),
        ("marketing_opt_in", AttributeValue::Bool(false)),
        (
            "created_at",
            AttributeValue::S("2026-11-27T09:24:26.123Z".into()),
        ),
        ("document_written", AttributeValue::Bool(false)),
    ];
    let mut put = aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table);
    for (name, value) in old {
        put = put.item(name, value);
    }
    put.send().await.unwrap();
    let ours = lock("a1", 5_000);

    match store.create(&ada(), "h", &ours).await.unwrap() {
        Claim::Found(Locked { value, lock }) => {
            assert_eq!((value.payload_hash, lock), (None, None));
            assert!(value.profile.same_content(&ada()));
        }
        Claim::Held => panic!("the profile was stored before"),
    }
    assert_eq!(
        store.take_over(&ada().user_id, &ours, 1_000).await.unwrap(),
        Claim::Held
    );
    assert_eq!(
        store.record_document(&ada().user_id, &ours).await.unwrap(),
        Finish::Recorded
    );
    assert_eq!(
        get_item(&sdk, &table, "user_id", "u1").await["document_written"],
        AttributeValue::Bool(true)
    );
}
