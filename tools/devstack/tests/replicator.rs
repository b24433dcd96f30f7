//! The replicator against moto: one table per region (as `provision.py
//! --regions` makes the users global table), changes copied between them
//! from their streams, last writer wins, nothing echoed back.
//!
//! Needs a moto server: `EVENTLINE_MOTO_ENDPOINT=$(scripts/moto.sh start)`
//! (`make test` sets it). Each test uses tables of its own.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use eventline_devstack::replicator::{Replica, ReplicaStats, Replicator};
use eventline_devstack::runner::until_quiet;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REGIONS: [&str; 3] = ["us-west-2", "us-east-1", "eu-west-1"];

fn endpoint() -> String {
    std::env::var("EVENTLINE_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "EVENTLINE_MOTO_ENDPOINT is not set. These tests talk to a moto server: \
             `make test`, or EVENTLINE_MOTO_ENDPOINT=$(scripts/moto.sh start)"
        )
    })
}

/// A table of its own in each region, with the stream a replica has.
struct Tables {
    name: String,
    sdk: BTreeMap<&'static str, aws_config::SdkConfig>,
}

impl Tables {
    async fn create(test: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("replication-{test}-{nanos}");
        let mut sdk = BTreeMap::new();
        for region in REGIONS {
            let config = eventline_devstack::sdk_config(&endpoint(), region).await;
            aws_sdk_dynamodb::Client::new(&config)
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("user_id")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("user_id")
                        .key_type(KeyType::Hash)
                        .build()
                        .unwrap(),
                )
                .stream_specification(
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::NewAndOldImages)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            sdk.insert(region, config);
        }
        Self { name, sdk }
    }

    fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk[region])
    }

    fn replicator(&self, lag: Duration) -> Replicator {
        let replicas = REGIONS
            .iter()
            .map(|r| Replica::new(&self.name, &self.sdk[r]))
            .collect();
        Replicator::new(BTreeMap::from([(self.name.clone(), replicas)]), lag, false)
    }

    async fn put(&self, region: &str, id: &str, name: &str) {
        self.dynamodb(region)
            .put_item()
            .table_name(&self.name)
            .item("user_id", AttributeValue::S(id.to_owned()))
            .item("name", AttributeValue::S(name.to_owned()))
            .send()
            .await
            .unwrap();
    }

    /// The item's `name` in `region`, if the item is there.
    async fn name_in(&self, region: &str, id: &str) -> Option<String> {
        let item = self
            .dynamodb(region)
            .get_item()
            .table_name(&self.name)
            .key("user_id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item?;
        Some(item["name"].as_s().unwrap().clone())
    }

    async fn names(&self, id: &str) -> Vec<Option<String>> {
        let mut names = Vec::new();
        for region in REGIONS {
            names.push(self.name_in(region, id).await);
        }
        names
    }

    /// How many records `region`'s stream holds: every write that table took.
    async fn stream_records(&self, region: &str) -> usize {
        let arn = self
            .dynamodb(region)
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap()
            .latest_stream_arn
            .unwrap();
        let streams = aws_sdk_dynamodbstreams::Client::new(&self.sdk[region]);
        let shard = streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap()
            .shards
            .unwrap()[0]
            .shard_id
            .clone()
            .unwrap();
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        streams
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .unwrap()
            .records()
            .len()
    }
}

/// Runs `replicator` while `act` runs, then until it has had nothing to do
/// for a second; its counters by region.
async fn replicate_around(
    replicator: &Replicator,
    act: impl std::future::Future<Output = ()>,
) -> BTreeMap<String, ReplicaStats> {
    let running = replicator.start().await.unwrap();
    act.await;
    let idle = until_quiet(Duration::from_secs(1), Duration::from_secs(60), || async {
        !replicator.is_idle()
    })
    .await;
    running.stop().await;
    assert!(
        idle,
        "the replicator never went idle: {:?}",
        replicator.stats()
    );
    replicator.stats()
}

#[tokio::test]
async fn a_write_in_one_region_reaches_the_others_once_and_nothing_echoes_back() {
    let tables = Tables::create("one-write").await;
    let stats = replicate_around(&tables.replicator(Duration::ZERO), async {
        tables.put("us-west-2", "u-1", "Ada").await;
    })
    .await;

    assert_eq!(tables.names("u-1").await, vec![Some("Ada".to_owned()); 3]);
    let origin = &stats["us-west-2"];
    assert_eq!(
        (origin.local_changes, origin.applied, origin.echoes),
        (1, 0, 0)
    );
    for peer in ["us-east-1", "eu-west-1"] {
        let s = &stats[peer];
        // One replicated write, read back once from the peer's stream and not replicated again.
        assert_eq!((s.local_changes, s.applied, s.echoes), (0, 1, 1), "{peer}");
        assert_eq!(s.lag_ms.len(), 1, "{peer}: its lag is measured");
        assert_eq!(tables.stream_records(peer).await, 1, "{peer}");
    }
    // Nothing was written back into the origin.
    assert_eq!(tables.stream_records("us-west-2").await, 1);
}

#[tokio::test]
async fn concurrent_writes_of_one_item_in_two_regions_converge_on_the_last_writer() {
    let tables = Tables::create("concurrent").await;
    // Both written before the replicator reads anything: neither region has seen the other's.
    tables.put("eu-west-1", "u-2", "first").await;
    tables.put("us-west-2", "u-2", "last").await;
    let stats = replicate_around(&tables.replicator(Duration::ZERO), async {}).await;

    // us-west-2 wrote last (and wins a tie in time by region name): every region holds its version.
    assert_eq!(tables.names("u-2").await, vec![Some("last".to_owned()); 3]);
    // Whichever stream is read first, one of the two is found concurrent with the other.
    let concurrent: u64 = stats.values().map(|s| s.concurrent).sum();
    assert_eq!(concurrent, 1, "{stats:?}");
    let contested: u64 = stats.values().map(|s| s.contested_items).sum();
    assert_eq!(
        contested, 1,
        "one item, in one of the two regions: {stats:?}"
    );
    assert!(
        stats["eu-west-1"].applied >= 1,
        "eu-west-1's own write was overwritten there: {stats:?}"
    );
    assert_eq!(
        stats["us-west-2"].applied, 0,
        "the loser never reached the winner"
    );
}

#[tokio::test]
async fn a_delete_in_any_region_removes_the_item_everywhere() {
    let tables = Tables::create("delete").await;
    let replicator = tables.replicator(Duration::ZERO);
    replicate_around(&replicator, async {
        tables.put("us-east-1", "u-3", "Grace").await;
    })
    .await;
    assert_eq!(tables.names("u-3").await, vec![Some("Grace".to_owned()); 3]);

    let stats = replicate_around(&tables.replicator(Duration::ZERO), async {
        tables
            .dynamodb("eu-west-1")
            .delete_item()
            .table_name(&tables.name)
            .key("user_id", AttributeValue::S("u-3".into()))
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(tables.names("u-3").await, vec![None; 3]);
    assert_eq!(stats["eu-west-1"].applied, 0, "the delete's origin");
}

#[tokio::test]
async fn writes_after_a_cancelled_transaction_are_still_replicated() {
    // moto rolls a cancelled TransactWriteItems back by putting a copy of the
    // table in its place, stream included (user-processor's create-if-absent
    // is such a transaction).
    let tables = Tables::create("cancelled").await;
    let put = |id: &str, condition: &str| {
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(
                aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&tables.name)
                    .item("user_id", AttributeValue::S(id.to_owned()))
                    .item("name", AttributeValue::S("in a transaction".into()))
                    .condition_expression(condition)
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let stats = replicate_around(&tables.replicator(Duration::ZERO), async {
        tables.put("us-east-1", "u-5", "Edsger").await;
        let cancelled = tables
            .dynamodb("us-east-1")
            .transact_write_items()
            .transact_items(put("u-6", "attribute_not_exists(user_id)"))
            .transact_items(put("u-5", "attribute_not_exists(user_id)"))
            .send()
            .await;
        assert!(
            cancelled.is_err(),
            "u-5 exists: the transaction is cancelled"
        );
        tables.put("us-east-1", "u-7", "Zoë").await;
    })
    .await;
    assert_eq!(tables.names("u-7").await, vec![Some("Zoë".to_owned()); 3]);
    assert_eq!(tables.names("u-6").await, vec![None; 3], "rolled back");
    assert_eq!(stats["us-east-1"].local_changes, 2, "{stats:?}");
}

#[tokio::test]
async fn each_write_waits_for_the_configured_lag() {
    let tables = Tables::create("lag").await;
    let lag = Duration::from_millis(300);
    let stats = replicate_around(&tables.replicator(lag), async {
        tables.put("us-east-1", "u-4", "Katherine").await;
    })
    .await;
    let lags: Vec<u64> = stats.values().flat_map(|s| s.lag_ms.clone()).collect();
    assert_eq!(lags.len(), 2);
    // A lower bound only: a replicated write never lands before the lag.
    assert!(lags.iter().all(|l| *l >= 300), "{lags:?}");
}
