//! The mail ledger against moto: a per-recipient daily cap counted in
//! distinct message ids, a durable sent marker, and no address in any item.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_app::ports::{Admission, MailLedger};
use eventline_aws::mail_ledger::DynamoMailLedger;
use eventline_domain::{EmailAddress, OutgoingEmail};
use eventline_tests::*;

fn mail(message_id: &str, to: &str) -> OutgoingEmail {
    OutgoingEmail {
        message_id: message_id.into(),
        to: EmailAddress::parse(to).unwrap(),
        subject: "s".into(),
        text: "t".into(),
        html: "h".into(),
    }
}

const DAY: &str = "2026-11-27";

async fn ledger() -> (aws_config::SdkConfig, String, DynamoMailLedger) {
    let sdk = sdk_config().await;
    let table = unique("idempotency");
    create_table(&sdk, &table, "id").await;
    let ledger = DynamoMailLedger::new(eventline_aws::dynamodb::client(&sdk), &table);
    (sdk, table, ledger)
}

async fn quota_ids(sdk: &aws_config::SdkConfig, table: &str, to: &str) -> Vec<String> {
    let mut ids = match get_item(sdk, table, "id", &DynamoMailLedger::quota_key(to, DAY))
        .await
        .get("ids")
    {
        Some(AttributeValue::Ss(ids)) => ids.clone(),
        other => panic!("no string set: {other:?}"),
    };
    ids.sort();
    ids
}

#[tokio::test]
async fn the_cap_counts_distinct_messages_and_a_retry_takes_no_second_slot() {
    let (sdk, table, ledger) = ledger().await;
    let to = "ada@example.com";

    assert_eq!(
        ledger.admit(&mail("m1", to), DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    // The same message again (its send failed and is retried): no new slot.
    assert_eq!(
        ledger.admit(&mail("m1", to), DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(quota_ids(&sdk, &table, to).await, ["m1"]);
    assert_eq!(
        ledger.admit(&mail("m2", to), DAY, 2).await.unwrap(),
        Admission::Admitted
    );

    assert_eq!(
        ledger.admit(&mail("m3", to), DAY, 2).await.unwrap(),
        Admission::OverQuota
    );
    // Already admitted messages still go through at the cap.
    assert_eq!(
        ledger.admit(&mail("m2", to), DAY, 2).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(quota_ids(&sdk, &table, to).await, ["m1", "m2"]);
    // The cap is per recipient (case does not make a new one) and per day.
    assert_eq!(
        ledger
            .admit(&mail("m3", "ADA@example.com"), DAY, 2)
            .await
            .unwrap(),
        Admission::OverQuota
    );
    assert_eq!(
        ledger
            .admit(&mail("m3", "bob@example.com"), DAY, 2)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        ledger
            .admit(&mail("m3", to), "2026-11-28", 2)
            .await
            .unwrap(),
        Admission::Admitted
    );
}

#[tokio::test]
async fn a_sent_marker_makes_any_later_copy_already_sent() {
    let (sdk, table, ledger) = ledger().await;
    let to = "ada@example.com";
    assert_eq!(
        ledger.admit(&mail("welcome.u1", to), DAY, 5).await.unwrap(),
        Admission::Admitted
    );

    ledger.record_sent("welcome.u1").await.unwrap();

    assert_eq!(
        ledger.admit(&mail("welcome.u1", to), DAY, 5).await.unwrap(),
        Admission::AlreadySent
    );
    // Even on another day, and even over quota: sent is sent.
    assert_eq!(
        ledger
            .admit(&mail("welcome.u1", to), "2027-01-01", 0)
            .await
            .unwrap(),
        Admission::AlreadySent
    );
    let marker = get_item(&sdk, &table, "id", "mail-sent#welcome.u1").await;
    assert!(
        !marker.contains_key("expiration"),
        "the table's TTL must never delete a sent marker: {marker:?}"
    );
}

#[tokio::test]
async fn quota_items_expire_two_days_after_their_day_and_never_hold_the_address() {
    let (sdk, table, ledger) = ledger().await;
    ledger
        .admit(&mail("m1", "ada@example.com"), DAY, 5)
        .await
        .unwrap();
    ledger.record_sent("m1").await.unwrap();

    let quota = get_item(
        &sdk,
        &table,
        "id",
        &DynamoMailLedger::quota_key("ada@example.com", DAY),
    )
    .await;
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
    assert_eq!(
        ledger
            .admit(&mail("m1", "ada@example.com"), DAY, 0)
            .await
            .unwrap(),
        Admission::OverQuota
    );
    let err = ledger
        .admit(&mail("m1", "ada@example.com"), "2026-02-31", 5)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("ada@example.com"), "{err}");
}
