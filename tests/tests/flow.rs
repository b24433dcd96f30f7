//! The whole pipeline against moto, with the functions' real handlers and
//! AWS adapters, and this test playing Lambda's part: it receives from the
//! queues, invokes the handlers with Lambda-shaped events and deletes what
//! the partial batch response says succeeded.

use eventline_app::{
    compose, notification_processor, profile_creator, user_processor, welcome_email,
};
use eventline_aws::AwsAdapters;
use eventline_powertools::{eventbridge, sqs};
use eventline_tests::*;
use serde_json::Value;

/// Deadline for the handlers: the invocation ends in ten seconds.
fn deadline() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_millis() as u64 + 10_000
}

#[tokio::test]
async fn signups_flow_through_every_function_to_the_final_state() {
    let sdk = sdk_config().await;
    let (users_table, profiles_table, bucket) =
        (unique("users"), unique("profiles"), unique("bucket"));
    create_table(&sdk, &users_table, "user_id").await;
    create_table(&sdk, &profiles_table, "user_id").await;
    let idempotency_table = unique("idempotency");
    create_table(&sdk, &idempotency_table, "id").await;
    create_bucket(&sdk, &bucket).await;
    let signups = create_queue(&sdk, &unique("signups")).await;
    let signup_dlq = create_queue(&sdk, &unique("signups-dlq")).await;
    let notification_dlq = create_queue(&sdk, &unique("notifications-dlq")).await;
    let welcome_email_dlq = create_queue(&sdk, &unique("welcome-email-failures")).await;
    let profile_creator_dlq = create_queue(&sdk, &unique("profile-creator-failures")).await;
    let notifications = create_queue(&sdk, &unique("notifications")).await;
    let bus = unique("bus");
    let tap = create_bus_with_tap(&sdk, &bus).await;

    let vars = [
        ("USERS_TABLE", users_table.as_str()),
        ("PROFILES_TABLE", &profiles_table),
        ("NOTIFICATION_QUEUE_URL", &notifications),
        ("EVENT_BUS_NAME", &bus),
        ("BUCKET_NAME", &bucket),
        ("MAIL_FROM", "no-reply@example.com"),
        ("IDEMPOTENCY_TABLE", &idempotency_table),
        ("FUNCTION_TIMEOUT_SECONDS", "10"),
        ("SIGNUP_DLQ_URL", &signup_dlq),
        ("NOTIFICATION_DLQ_URL", &notification_dlq),
        ("WELCOME_EMAIL_DLQ_URL", &welcome_email_dlq),
        ("PROFILE_CREATOR_DLQ_URL", &profile_creator_dlq),
        // The SDK's region here; a single-region stack.
        ("AWS_REGION", "us-east-1"),
    ];
    let adapters = AwsAdapters::new(&sdk);
    let up = settings(vars, user_processor::Config::from_env);
    let user_processor = compose::user_processor(adapters.user_processor_wiring(&up), &up);
    let np = settings(vars, notification_processor::Config::from_env);
    let notification_processor =
        compose::notification_processor(adapters.notification_processor_wiring(&np), &np);
    let we = settings(vars, welcome_email::Config::from_env);
    let welcome_email = compose::welcome_email(adapters.welcome_email_wiring(&we), &we);
    let pc = settings(vars, profile_creator::Config::from_env);
    let profile_creator = compose::profile_creator(adapters.profile_creator_wiring(&pc), &pc);

    // Two valid signups and one invalid one arrive on the SignupQueue.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for body in [
        r#"{"user_id":"u-1","email":"ada@example.com","name":"Ada Lovelace"}"#,
        r#"{"user_id":"u-2","email":"not-an-email","name":"Bad"}"#,
        r#"{"user_id":"u-3","email":"alan@example.com","name":"Alan Turing"}"#,
    ] {
        sqs.send_message()
            .queue_url(&signups)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    // user-processor: the invalid record can never succeed: it goes to the
    // DLQ at once with its reason, and the batch reports every record handled.
    let event = receive_as_lambda(&sdk, &signups).await;
    assert_eq!(event.records.len(), 3);
    let invalid_id = event.records[1].message_id.clone().unwrap();
    // Each valid signup's message id, by user: its correlation id.
    let signup_ids: Vec<(String, String)> = event
        .records
        .iter()
        .filter(|r| r.message_id != Some(invalid_id.clone()))
        .map(|r| {
            let body: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
            (
                body["user_id"].as_str().unwrap().to_owned(),
                r.message_id.clone().unwrap(),
            )
        })
        .collect();
    let service =
        sqs::service(|messages, deadline_ms| user_processor.handle(messages, deadline_ms));
    let response = invoke(service, event.clone(), deadline()).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    delete_succeeded(&sdk, &signups, &event, &response).await;

    // notification-processor gets what landed on the NotificationQueue.
    let event = receive_as_lambda(&sdk, &notifications).await;
    assert_eq!(event.records.len(), 2);
    let mut correlated: Vec<(String, String)> = event
        .records
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
            let attribute = r.message_attributes["correlation_id"].string_value.clone();
            (
                body["user_id"].as_str().unwrap().to_owned(),
                attribute.unwrap(),
            )
        })
        .collect();
    correlated.sort();
    assert_eq!(
        correlated, signup_ids,
        "each confirmation carries its signup's message id"
    );
    let service =
        sqs::service(|messages, deadline_ms| notification_processor.handle(messages, deadline_ms));
    let response = invoke(service, event.clone(), deadline()).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    delete_succeeded(&sdk, &notifications, &event, &response).await;

    // welcome-email and profile-creator get what the rule delivered.
    let events = drain_bodies(&sdk, &tap).await;
    assert_eq!(events.len(), 2);
    let mut stamped: Vec<(String, String)> = Vec::new();
    for body in events {
        let payload: Value = serde_json::from_str(&body).unwrap();
        let detail = &payload["detail"];
        assert_eq!(
            (&detail["origin_region"], &detail["home_region"]),
            (&Value::from("us-east-1"), &Value::from("us-east-1"))
        );
        stamped.push((
            detail["user_id"].as_str().unwrap().to_owned(),
            detail["correlation_id"].as_str().unwrap().to_owned(),
        ));
        let welcome = eventbridge::service(|p, deadline_ms| welcome_email.handle(p, deadline_ms));
        invoke(welcome, payload.clone(), deadline()).await.unwrap();
        let profile = eventbridge::service(|p, deadline_ms| profile_creator.handle(p, deadline_ms));
        invoke(profile, payload, deadline()).await.unwrap();
    }
    stamped.sort();
    assert_eq!(
        stamped, signup_ids,
        "each event carries its signup's message id"
    );

    // Final state: two users, two profiles (row + document), two
    // confirmations and two welcome emails in the outbox, nothing else.
    let users = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(&users_table)
        .send()
        .await
        .unwrap();
    assert_eq!(users.count, 2);
    let profiles = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(&profiles_table)
        .send()
        .await
        .unwrap();
    assert_eq!(profiles.count, 2);
    let mut keys = list_keys(&sdk, &bucket, "").await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "outbox/signup_confirmation.u-1.json",
            "outbox/signup_confirmation.u-3.json",
            "outbox/welcome.u-1.json",
            "outbox/welcome.u-3.json",
            "profiles/u-1.json",
            "profiles/u-3.json",
        ]
    );
    let welcome: Value = serde_json::from_str(
        &get_object(&sdk, &bucket, "outbox/welcome.u-3.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(welcome["to"], "alan@example.com");
    assert!(welcome["text"]
        .as_str()
        .unwrap()
        .starts_with("Hello Alan Turing,"));
    let profile: Value = serde_json::from_str(
        &get_object(&sdk, &bucket, "profiles/u-1.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(profile["display_name"], "Ada Lovelace");

    // The invalid signup is in the DLQ, unchanged, with its reason beside it
    // (codes and field names, never the value): nothing was lost.
    let dead = sqs
        .receive_message()
        .queue_url(&signup_dlq)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let dead = dead.messages();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body().unwrap().contains(r#""user_id":"u-2""#));
    let attribute = |name: &str| {
        dead[0]
            .message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(attribute("eventline.error_code"), "InvalidFields");
    assert_eq!(attribute("eventline.error_fields"), "email");
    assert_eq!(attribute("eventline.function"), "user-processor");
    assert_eq!(attribute("eventline.source_message_id"), invalid_id);
    assert!(!attribute("eventline.first_seen").is_empty());
}
