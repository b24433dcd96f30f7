//! The fault proxy itself, against the moto server: each fault reaches the
//! SDK as the fault it claims to be, and is counted. The chaos scenarios
//! rely on both.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use eventline_tests::fault_proxy::{Fault, FaultProxy, Rewrite, Rule};
use eventline_tests::{create_queue, create_table, endpoint, sdk_config, sdk_config_for, unique};
use std::time::Duration;

async fn proxy() -> FaultProxy {
    FaultProxy::start(endpoint().trim_start_matches("http://").to_owned()).await
}

fn entries(n: usize) -> Vec<SendMessageBatchRequestEntry> {
    (0..n)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(format!("m{i}"))
                .build()
                .unwrap()
        })
        .collect()
}

async fn depth(sdk: &aws_config::SdkConfig, queue: &str) -> u64 {
    eventline_devstack::runner::queue_depth(&aws_sdk_sqs::Client::new(sdk), queue)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_send_message_batch_answer_can_lose_an_entry_that_was_sent() {
    let direct = sdk_config().await;
    let queue = create_queue(&direct, &unique("fp-missing")).await;
    let proxy = proxy().await;
    let rule = proxy.inject(
        Rule::on(
            "AmazonSQS.SendMessageBatch",
            Fault::Rewrite(Rewrite::SqsEntryMissing),
        )
        .times(1),
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk_config_for(&proxy.endpoint).await);
    let answer = sqs
        .send_message_batch()
        .queue_url(&queue)
        .set_entries(Some(entries(3)))
        .send()
        .await
        .unwrap();
    assert_eq!(rule.faulted(), 1);
    assert_eq!(proxy.faulted().rewritten, 1);
    // Entry "2" is in neither list, although SQS took it.
    let ids: Vec<&str> = answer.successful.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["0", "1"]);
    assert!(answer.failed.is_empty());
    assert_eq!(depth(&direct, &queue).await, 3);
}

#[tokio::test]
async fn a_send_message_batch_answer_can_name_an_entry_that_was_not_sent() {
    let direct = sdk_config().await;
    let queue = create_queue(&direct, &unique("fp-unknown")).await;
    let proxy = proxy().await;
    proxy.inject(
        Rule::on(
            "AmazonSQS.SendMessageBatch",
            Fault::Rewrite(Rewrite::SqsUnknownId),
        )
        .times(1),
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk_config_for(&proxy.endpoint).await);
    let answer = sqs
        .send_message_batch()
        .queue_url(&queue)
        .set_entries(Some(entries(2)))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.faulted().rewritten, 1);
    let ids: Vec<&str> = answer.successful.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["0", "not-in-the-request-1"]);
}

#[tokio::test]
async fn a_put_events_answer_can_be_short_with_no_failure_counted() {
    let direct = sdk_config().await;
    let bus = unique("fp-bus");
    aws_sdk_eventbridge::Client::new(&direct)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let proxy = proxy().await;
    proxy.inject(
        Rule::on(
            "AWSEvents.PutEvents",
            Fault::Rewrite(Rewrite::PutEventsShort),
        )
        .times(1),
    );
    let events = aws_sdk_eventbridge::Client::new(&sdk_config_for(&proxy.endpoint).await);
    let entry = |i: usize| {
        PutEventsRequestEntry::builder()
            .event_bus_name(&bus)
            .source("test")
            .detail_type("T")
            .detail(format!("{{\"i\":{i}}}"))
            .build()
    };
    let answer = events
        .put_events()
        .entries(entry(0))
        .entries(entry(1))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.faulted().rewritten, 1);
    assert_eq!(answer.entries().len(), 1);
    assert_eq!(answer.failed_entry_count, 0);
}

#[tokio::test]
async fn a_batch_write_item_answer_can_return_every_write_unprocessed() {
    let direct = sdk_config().await;
    let table = unique("fp-table");
    create_table(&direct, &table, "id").await;
    let proxy = proxy().await;
    proxy.inject(
        Rule::on(
            "DynamoDB_20120810.BatchWriteItem",
            Fault::Rewrite(Rewrite::DynamoDbAllUnprocessed),
        )
        .times(1),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config_for(&proxy.endpoint).await);
    let put = |id: &str| {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .item("id", AttributeValue::S(id.to_owned()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let answer = dynamodb
        .batch_write_item()
        .request_items(&table, vec![put("a"), put("b")])
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.faulted().rewritten, 1);
    let unprocessed = answer.unprocessed_items.unwrap_or_default();
    assert_eq!(unprocessed.get(&table).map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_hung_call_never_answers_and_a_cut_call_is_retried_by_the_sdk() {
    let direct = sdk_config().await;
    let queue = create_queue(&direct, &unique("fp-hang")).await;
    let proxy = proxy().await;
    proxy.inject(Rule::on("AmazonSQS.GetQueueAttributes", Fault::Hang).times(1));
    proxy.inject(Rule::on("AmazonSQS.SendMessage", Fault::Cut).times(1));
    let through = sdk_config_for(&proxy.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&through);
    // Only the caller's own timeout ends a call that never answers.
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        sqs.get_queue_attributes().queue_url(&queue).send(),
    )
    .await;
    assert!(hung.is_err(), "the hung call answered: {hung:?}");
    assert_eq!(proxy.faulted().hung, 1);
    // A cut call is a transient error: the SDK's retry sends it again.
    sqs.send_message()
        .queue_url(&queue)
        .message_body("after the cut")
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.faulted().cut, 1);
    assert_eq!(depth(&direct, &queue).await, 1);
}

#[tokio::test]
async fn an_outage_triggered_by_traffic_cuts_the_triggering_call_and_refuses_connections() {
    let direct = sdk_config().await;
    let queue = create_queue(&direct, &unique("fp-outage")).await;
    let proxy = proxy().await;
    let outage = proxy.inject(
        Rule::on(
            "AmazonSQS.SendMessage",
            Fault::Outage(Duration::from_secs(60)),
        )
        .after(1)
        .times(1),
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk_config_for(&proxy.endpoint).await);
    let send = || {
        sqs.send_message()
            .queue_url(&queue)
            .message_body("m")
            .send()
    };
    send().await.unwrap();
    assert!(send().await.is_err(), "the outage let a call through");
    assert_eq!(outage.faulted(), 1);
    let faulted = proxy.faulted();
    // The trigger was cut; the SDK's retries were cut or refused.
    assert!(faulted.cut >= 1, "{faulted:?}");
    assert!(faulted.cut + faulted.refused >= 3, "{faulted:?}");
    assert_eq!(depth(&direct, &queue).await, 1);
}
