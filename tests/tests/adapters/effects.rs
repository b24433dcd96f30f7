//! Durable effects: the fact that a user was announced or a profile
//! document written is recorded on the item itself, once, and stored users
//! stay readable whatever rules they were stored under.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::{Inserted, ProfileStore, UserStore};
use eventline_aws::dynamodb::{DynamoProfileStore, DynamoUserStore};
use eventline_domain::{Profile, Timestamp, UserCreated, UserId};
use eventline_tests::*;

#[tokio::test]
async fn mark_announced_records_the_first_time_only() {
    let sdk = sdk_config().await;
    let table = unique("users");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    let ada = super::user("u1", "ada@example.com", "Ada");
    store.insert(&ada).await.unwrap();
    assert_eq!(
        store.get(&ada.id).await.unwrap().unwrap().announced_at,
        None
    );

    let first = Timestamp::from_unix_millis(1_795_771_500_000);
    store.mark_announced(&ada.id, first).await.unwrap();
    store
        .mark_announced(&ada.id, Timestamp::from_unix_millis(1_795_771_900_000))
        .await
        .unwrap();

    let stored = store.get(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.announced_at, Some(first));
    assert_eq!(
        get_item(&sdk, &table, "user_id", "u1").await["announced_at"],
        AttributeValue::S("2026-11-27T09:25:00.000Z".into())
    );
    // A re-delivered signup finds the announced user as it is stored.
    assert_eq!(
        store.insert(&ada).await.unwrap(),
        Inserted::Existing(stored)
    );
}

#[tokio::test]
async fn mark_announced_on_a_missing_user_fails_and_creates_nothing() {
    let sdk = sdk_config().await;
    let table = unique("users");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoUserStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    let nobody = UserId::parse("nobody").unwrap();

    let err = store
        .mark_announced(&nobody, Timestamp::from_unix_millis(1))
        .await
        .unwrap_err();

    assert_eq!(err.operation, "DynamoDB UpdateItem users announced_at");
    assert_eq!(store.get(&nobody).await.unwrap(), None);
}

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

#[tokio::test]
async fn mark_document_written_is_stored_on_the_profile() {
    let sdk = sdk_config().await;
    let table = unique("profiles");
    create_table(&sdk, &table, "user_id").await;
    let store = DynamoProfileStore::new(eventline_aws::dynamodb::client(&sdk), &table);
    let profile =
        Profile::default_for(&UserCreated::from_user(&super::user("u1", "a@b.io", "Ada")));
    store.insert(&profile).await.unwrap();

    store.mark_document_written(&profile.user_id).await.unwrap();
    store.mark_document_written(&profile.user_id).await.unwrap();

    assert_eq!(
        get_item(&sdk, &table, "user_id", "u1").await["document_written"],
        AttributeValue::Bool(true)
    );
    match store.insert(&profile).await.unwrap() {
        Inserted::Existing(stored) => {
            assert!(stored.document_written);
            assert!(stored.same_content(&profile));
        }
        Inserted::New => panic!("the profile was stored before"),
    }
    assert!(store
        .mark_document_written(&UserId::parse("nobody").unwrap())
        .await
        .is_err());
}
