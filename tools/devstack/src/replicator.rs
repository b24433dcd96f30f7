//! The local stand-in for DynamoDB global-table replication: reads each
//! region's replica table stream (DynamoDB Streams work in moto; global
//! tables do not) and writes each change into the other regions' tables
//! after a configurable lag. [`crate::replication`] decides what to write;
//! this module reads and writes, and counts.
//!
//! It reads every shard the stream has when it starts, from its beginning
//! (moto's streams have one shard and never split it), with a fresh
//! iterator after the last record read at each poll. Writes are whole
//! items (PutItem of the new image, DeleteItem of a removed one), as global
//! tables replicate them.

use crate::manifest::Manifest;
use crate::replication::{Item, ItemKey, Observed, Replication, Sequence, Version, Write};
use crate::DevstackError;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, OperationType, ShardIteratorType,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a stream that had nothing new is read again (moto serves one
/// request at a time: every read is time the functions wait).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How old a stream record must be before it is taken. moto appends a
/// transaction's records as it goes and, when the transaction is cancelled,
/// puts back a copy of the table made before it: a read during the
/// transaction sees records that then vanish, and later writes reuse their
/// sequence numbers. Such a record lives as long as its transaction (a few
/// milliseconds); one this old has outlived it.
const SETTLE_MS: i64 = 250;

/// One region's replica of a global table.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its region.
    pub region: String,
    /// The table name (the same in every region).
    pub table_name: String,
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
}

impl Replica {
    /// The replica of `table_name` in the region of `sdk`.
    pub fn new(table_name: impl Into<String>, sdk: &aws_config::SdkConfig) -> Self {
        Self {
            region: sdk.region().map(ToString::to_string).unwrap_or_default(),
            table_name: table_name.into(),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
        }
    }
}

/// The replicas of every global table the manifests list, each region's
/// reached through its own SDK configuration.
pub fn replicas_of(
    manifests: &[(Manifest, aws_config::SdkConfig)],
) -> BTreeMap<String, Vec<Replica>> {
    let mut tables: BTreeMap<String, Vec<Replica>> = BTreeMap::new();
    for (manifest, sdk) in manifests {
        for table in &manifest.global_tables {
            tables
                .entry(table.table_name.clone())
                .or_default()
                .push(Replica::new(&table.table_name, sdk));
        }
    }
    // A table held in one region only has nothing to replicate to.
    tables.retain(|_, replicas| replicas.len() > 1);
    tables
}

/// Counts for one region, as a replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Changes made in this region (read from its stream, not the replicator's own).
    pub local_changes: u64,
    /// Of those, changes an already-read newer version beat (overwritten, never replicated).
    pub lost: u64,
    /// Of those, changes made without having the version of another region
    /// they beat or lost to: concurrent writes, settled by the last writer.
    pub concurrent: u64,
    /// Items this region wrote concurrently with another region.
    pub contested_items: u64,
    /// Writes the replicator made into this region.
    pub applied: u64,
    /// Its own writes read back from this region's stream (not replicated again).
    pub echoes: u64,
    /// Writes that failed and were retried.
    pub failed_writes: u64,
    /// Replication lag of each applied write: the origin's stream time to the write's completion, in ms.
    pub lag_ms: Vec<u64>,
}

impl ReplicaStats {
    /// The `p`-th percentile (0–100) of the lags, nearest rank.
    pub fn lag_percentile(&self, p: u32) -> Option<u64> {
        let mut lags = self.lag_ms.clone();
        lags.sort_unstable();
        let rank = (lags.len() * p as usize).div_ceil(100).max(1);
        lags.get(rank - 1).copied()
    }
}

struct Table {
    replicas: Vec<Replica>,
    state: Mutex<Replication>,
    /// (region, key) writes waiting for their lag or running.
    scheduled: Mutex<HashSet<(String, ItemKey)>>,
}

struct Shared {
    tables: Vec<Table>,
    lag: Duration,
    stats: Mutex<BTreeMap<String, ReplicaStats>>,
    /// Each region's stream polls, by table and region: write completions are dated with them.
    polls: BTreeMap<(usize, String), AtomicU64>,
    /// Streams whose last read returned records (not yet drained).
    unread: AtomicUsize,
    writes_pending: AtomicUsize,
    stop: AtomicBool,
    verbose: bool,
    /// The longest region name, to align progress lines.
    region_width: usize,
}

impl Shared {
    fn record(&self, region: &str, update: impl FnOnce(&mut ReplicaStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        update(stats.entry(region.to_owned()).or_default());
    }

    fn say(&self, line: String) {
        if self.verbose {
            println!("{line}");
        }
    }
}

/// Emulated global-table replication between the replicas of one or more tables.
#[derive(Clone)]
pub struct Replicator {
    shared: Arc<Shared>,
}

impl Replicator {
    /// Replicates each table between its replicas, each change applied
    /// `lag` after it was read; `verbose` prints a line per replicated write.
    pub fn new(tables: BTreeMap<String, Vec<Replica>>, lag: Duration, verbose: bool) -> Self {
        let tables: Vec<Table> = tables
            .into_values()
            .map(|replicas| Table {
                state: Mutex::new(Replication::new(replicas.iter().map(|r| r.region.clone()))),
                scheduled: Mutex::new(HashSet::new()),
                replicas,
            })
            .collect();
        let polls = tables
            .iter()
            .enumerate()
            .flat_map(|(t, table)| {
                table
                    .replicas
                    .iter()
                    .map(move |r| ((t, r.region.clone()), AtomicU64::new(0)))
            })
            .collect();
        let region_width = tables
            .iter()
            .flat_map(|t| t.replicas.iter().map(|r| r.region.len()))
            .max()
            .unwrap_or(0);
        let stats = tables
            .iter()
            .flat_map(|t| {
                t.replicas
                    .iter()
                    .map(|r| (r.region.clone(), ReplicaStats::default()))
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                tables,
                lag,
                stats: Mutex::new(stats),
                polls,
                unread: AtomicUsize::new(0),
                writes_pending: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
                verbose,
                region_width,
            }),
        }
    }

    /// Whether there is anything to replicate at all.
    pub fn is_empty(&self) -> bool {
        self.shared.tables.is_empty()
    }

    /// Counters by region.
    pub fn stats(&self) -> BTreeMap<String, ReplicaStats> {
        let mut stats = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for table in &self.shared.tables {
            let state = table.state.lock().unwrap_or_else(|p| p.into_inner());
            for (region, s) in &mut stats {
                s.contested_items += state.contested_in(region) as u64;
            }
        }
        stats
    }

    /// Whether everything read has been replicated and seen back: every
    /// stream read to its end, no write waiting or in flight.
    pub fn is_idle(&self) -> bool {
        self.shared.unread.load(Ordering::SeqCst) == 0
            && self.shared.writes_pending.load(Ordering::SeqCst) == 0
            && self.shared.tables.iter().all(|t| {
                let state = t.state.lock().unwrap_or_else(|p| p.into_inner());
                state.synced() && state.writes_in_flight() == 0
            })
    }

    /// Replicates until `stop` resolves, then lets writes in progress finish.
    /// Fails at once if a replica's stream cannot be found.
    pub async fn run_until(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), DevstackError> {
        let running = self.start().await?;
        stop.await;
        running.stop().await;
        Ok(())
    }

    /// Starts reading every replica's stream (failing if one cannot be
    /// found); replication goes on until [`Running::stop`].
    pub async fn start(&self) -> Result<Running, DevstackError> {
        let mut streams = Vec::new();
        for (t, table) in self.shared.tables.iter().enumerate() {
            for replica in &table.replicas {
                streams.push((t, replica.clone(), open_stream(replica).await?));
            }
        }
        let readers = streams
            .into_iter()
            .map(|(t, replica, shards)| {
                tokio::spawn(read_stream(self.shared.clone(), t, replica, shards))
            })
            .collect();
        Ok(Running {
            shared: self.shared.clone(),
            readers,
        })
    }
}

/// A replicator at work.
pub struct Running {
    shared: Arc<Shared>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops reading the streams and waits for the writes in progress.
    pub async fn stop(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        futures::future::join_all(self.readers).await;
        while self.shared.writes_pending.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// A shard of a replica's stream, and how far it has been read.
struct Shard {
    stream_arn: String,
    id: String,
    /// The sequence number of the last record read (`None`: from the start).
    read_up_to: Option<String>,
}

/// The shards of the replica's stream, none read yet.
async fn open_stream(replica: &Replica) -> Result<Vec<Shard>, DevstackError> {
    let table = replica
        .dynamodb
        .describe_table()
        .table_name(&replica.table_name)
        .send()
        .await
        .map_err(|e| DevstackError::aws("DynamoDB DescribeTable", e))?;
    let arn = table
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| {
            DevstackError::Usage(format!(
                "table {} in {} has no stream: global-table replicas need one (provision.py --regions creates it)",
                replica.table_name, replica.region
            ))
        })?
        .to_owned();
    let stream = replica
        .streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .map_err(|e| DevstackError::aws("DynamoDB Streams DescribeStream", e))?;
    Ok(stream
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
        .iter()
        .filter_map(|shard| shard.shard_id())
        .map(|id| Shard {
            stream_arn: arn.clone(),
            id: id.to_owned(),
            read_up_to: None,
        })
        .collect())
}

/// The records of `shard` after those read, and the last one's sequence number.
///
/// A fresh iterator each time, after the last sequence number read, rather
/// than the `NextShardIterator` of the previous read: moto replaces a table
/// object by a copy when a TransactWriteItems is cancelled (its rollback),
/// and an older iterator keeps reading the replaced copy's stream, which no
/// longer grows.
async fn read_shard(
    replica: &Replica,
    shard: &Shard,
) -> Result<Vec<aws_sdk_dynamodbstreams::types::Record>, String> {
    let from = match &shard.read_up_to {
        Some(sequence) => replica
            .streams
            .get_shard_iterator()
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(sequence),
        None => replica
            .streams
            .get_shard_iterator()
            .shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let iterator = from
        .stream_arn(&shard.stream_arn)
        .shard_id(&shard.id)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let Some(iterator) = iterator.shard_iterator() else {
        return Ok(Vec::new()); // a closed shard read to its end
    };
    let output = replica
        .streams
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(output.records.unwrap_or_default())
}

/// Reads one replica's stream in order until stopped, feeding each record to
/// the table's replication state and scheduling the writes it calls for.
async fn read_stream(shared: Arc<Shared>, t: usize, replica: Replica, mut shards: Vec<Shard>) {
    let polls = &shared.polls[&(t, replica.region.clone())];
    let mut counted_unread = false;
    while !shared.stop.load(Ordering::SeqCst) {
        let poll = polls.fetch_add(1, Ordering::SeqCst) + 1;
        // A failed read, or records too young to take, count as records
        // left: nothing is known to be drained.
        let (mut read, mut failed, mut young) = (0, false, false);
        for shard in &mut shards {
            match read_shard(&replica, shard).await {
                Ok(records) => {
                    for record in &records {
                        let change = record.dynamodb();
                        let written = change
                            .and_then(|c| c.approximate_creation_date_time())
                            .and_then(|t| t.to_millis().ok())
                            .unwrap_or_default();
                        if now_ms() - written < SETTLE_MS {
                            young = true;
                            break;
                        }
                        read += 1;
                        take_record(&shared, t, &replica.region, record);
                        if let Some(sequence) = change.and_then(|c| c.sequence_number()) {
                            shard.read_up_to = Some(sequence.to_owned());
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    shared.say(format!(
                        "replicator: reading {}'s stream failed: {e}",
                        replica.region
                    ));
                }
            }
        }
        // The stream is drained while a read returns nothing: that is when
        // writes that never made a record are known to be done.
        match (read > 0 || failed || young, counted_unread) {
            (true, false) => {
                shared.unread.fetch_add(1, Ordering::SeqCst);
                counted_unread = true;
            }
            (false, true) => {
                shared.unread.fetch_sub(1, Ordering::SeqCst);
                counted_unread = false;
            }
            _ => {}
        }
        if young {
            // Soon again, not at once: the young records settle within SETTLE_MS.
            tokio::time::sleep(POLL_INTERVAL / 4).await;
        } else if read == 0 {
            if !failed {
                let keys = shared.tables[t]
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .caught_up(&replica.region, poll);
                for key in keys {
                    plan(&shared, t, &key);
                }
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    if counted_unread {
        shared.unread.fetch_sub(1, Ordering::SeqCst);
    }
}

fn take_record(
    shared: &Arc<Shared>,
    t: usize,
    region: &str,
    record: &aws_sdk_dynamodbstreams::types::Record,
) {
    let Some(change) = record.dynamodb() else {
        return;
    };
    let (Some(keys), Some(time), Some(sequence)) = (
        change.keys(),
        change.approximate_creation_date_time(),
        change.sequence_number(),
    ) else {
        shared.say(format!(
            "replicator: a record of {region}'s stream lacks keys, time or sequence: skipped"
        ));
        return;
    };
    let (Ok(keys), Ok(image)) = (
        item(keys),
        match record.event_name() {
            Some(OperationType::Remove) => Ok(None),
            _ => change.new_image().map(item).transpose(),
        },
    ) else {
        shared.say(format!("replicator: a record of {region}'s stream has an attribute type it cannot copy: skipped"));
        return;
    };
    let key = ItemKey::new(keys);
    let version = Version {
        time_ms: time.to_millis().unwrap_or_default(),
        region: region.to_owned(),
        sequence: Sequence(sequence.to_owned()),
    };
    let observed = shared.tables[t]
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .observe(region, &key, image, version);
    shared.record(region, |s| match observed {
        Observed::Echo => s.echoes += 1,
        Observed::Won => s.local_changes += 1,
        Observed::WonConcurrently => {
            s.local_changes += 1;
            s.concurrent += 1;
        }
        Observed::Lost => {
            s.local_changes += 1;
            s.concurrent += 1;
            s.lost += 1;
        }
    });
    plan(shared, t, &key);
}

/// Schedules the write of `key`'s winner into each region that needs it,
/// after the replication lag, unless one is scheduled already.
fn plan(shared: &Arc<Shared>, t: usize, key: &ItemKey) {
    let table = &shared.tables[t];
    let needing = table
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .regions_needing(key);
    for region in needing {
        let newly = table
            .scheduled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((region.clone(), key.clone()));
        if newly {
            shared.writes_pending.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(apply_after_lag(shared.clone(), t, region, key.clone()));
        }
    }
}

async fn apply_after_lag(shared: Arc<Shared>, t: usize, region: String, key: ItemKey) {
    let table = &shared.tables[t];
    // The lag counts from the write, as DynamoDB's replication latency does.
    let written = table
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .winner(&key)
        .map_or(0, |w| w.version.time_ms);
    let lag_ms = i64::try_from(shared.lag.as_millis()).unwrap_or(i64::MAX);
    let wait = written
        .saturating_add(lag_ms)
        .saturating_sub(now_ms())
        .max(0);
    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    table
        .scheduled
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(region.clone(), key.clone()));
    let write = table
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .start_write(&region, &key);
    if let Some(write) = write {
        let replica = table.replicas.iter().find(|r| r.region == region);
        match replica {
            Some(replica) => apply(&shared, t, replica, &key, write).await,
            None => {
                table
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .write_failed(&region, &key, &write);
            }
        }
    }
    shared.writes_pending.fetch_sub(1, Ordering::SeqCst);
}

async fn apply(shared: &Arc<Shared>, t: usize, replica: &Replica, key: &ItemKey, write: Write) {
    let result = match &write.image {
        Some(image) => replica
            .dynamodb
            .put_item()
            .table_name(&replica.table_name)
            .set_item(Some(image.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => replica
            .dynamodb
            .delete_item()
            .table_name(&replica.table_name)
            .set_key(Some(key.attributes().clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    let table = &shared.tables[t];
    match result {
        Ok(()) => {
            let poll = shared.polls[&(t, replica.region.clone())].load(Ordering::SeqCst);
            table
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_completed(&replica.region, key, &write, poll);
            let lag = now_ms().saturating_sub(write.version.time_ms).max(0) as u64;
            shared.record(&replica.region, |s| {
                s.applied += 1;
                s.lag_ms.push(lag);
            });
            // Laid out like the runners' lines: the region, then who acted.
            shared.say(format!(
                "{:<width$} {:<24} {} {} from {} ({lag} ms after the write there)",
                replica.region,
                "replicator",
                if write.image.is_some() {
                    "put"
                } else {
                    "delete"
                },
                replica.table_name,
                write.version.region,
                width = shared.region_width,
            ));
        }
        Err(e) => {
            table
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_failed(&replica.region, key, &write);
            shared.record(&replica.region, |s| s.failed_writes += 1);
            shared.say(format!(
                "replicator: writing into {} failed (retried): {e}",
                replica.region
            ));
            tokio::time::sleep(POLL_INTERVAL).await;
            if !shared.stop.load(Ordering::SeqCst) {
                plan(shared, t, key);
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A stream image as the DynamoDB API takes it (the two SDK crates have one
/// attribute type each).
pub fn item(
    image: &std::collections::HashMap<String, StreamValue>,
) -> Result<Item, UnknownAttribute> {
    image
        .iter()
        .map(|(k, v)| Ok((k.clone(), value(v)?)))
        .collect()
}

/// A stream attribute of a type this SDK version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAttribute;

fn value(v: &StreamValue) -> Result<aws_sdk_dynamodb::types::AttributeValue, UnknownAttribute> {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    Ok(match v {
        StreamValue::S(s) => V::S(s.clone()),
        StreamValue::N(n) => V::N(n.clone()),
        StreamValue::B(b) => V::B(b.clone()),
        StreamValue::Bool(b) => V::Bool(*b),
        StreamValue::Null(n) => V::Null(*n),
        StreamValue::Ss(s) => V::Ss(s.clone()),
        StreamValue::Ns(n) => V::Ns(n.clone()),
        StreamValue::Bs(b) => V::Bs(b.clone()),
        StreamValue::L(l) => V::L(l.iter().map(value).collect::<Result<_, _>>()?),
        StreamValue::M(m) => V::M(item(m)?),
        _ => return Err(UnknownAttribute),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    #[test]
    fn stream_images_become_items_of_the_same_shape() {
        let image = std::collections::HashMap::from([
            ("user_id".to_owned(), StreamValue::S("u-1".into())),
            ("n".to_owned(), StreamValue::N("1.50".into())),
            (
                "nested".to_owned(),
                StreamValue::M(std::collections::HashMap::from([(
                    "tags".to_owned(),
                    StreamValue::L(vec![StreamValue::Bool(true), StreamValue::Null(true)]),
                )])),
            ),
        ]);
        let item = item(&image).unwrap();
        assert_eq!(item["user_id"], V::S("u-1".into()));
        assert_eq!(item["n"], V::N("1.50".into()), "numbers keep their text");
        assert_eq!(
            item["nested"],
            V::M(std::collections::HashMap::from([(
                "tags".to_owned(),
                V::L(vec![V::Bool(true), V::Null(true)])
            )]))
        );
    }

    #[test]
    fn lag_percentiles_are_nearest_rank() {
        let stats = ReplicaStats {
            lag_ms: vec![40, 10, 30, 20],
            ..ReplicaStats::default()
        };
        assert_eq!(stats.lag_percentile(50), Some(20));
        assert_eq!(stats.lag_percentile(100), Some(40));
        assert_eq!(ReplicaStats::default().lag_percentile(50), None);
    }
}
