//! Durable effects: the fact that a profile document was written is
//! recorded on the item itself, once (a user's announcement: user_locks.rs), and stored users
//! stay readable whatever rules they were stored under.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::{Inserted, ProfileStore, UserStore};
use eventline_aws::dynamodb::{DynamoProfileStore, DynamoUserStore};
use eventline_domain::{Profile, UserCreated, UserId};
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
