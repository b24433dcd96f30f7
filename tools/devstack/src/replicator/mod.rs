//! The local stand-in for DynamoDB global-table replication: reads each
//! region's replica table stream (DynamoDB Streams work in moto; global
//! tables do not) and writes each change into the other regions' tables
//! after a configurable lag. [`crate::last_writer_wins`] decides what to write;
//! this module reads and writes, and counts.
//!
//! It reads every shard the stream has when it starts, from its beginning
//! (moto's streams have one shard and never split it), with a fresh
//! iterator after the last record read at each poll. Writes are whole
//! items (PutItem of the new image, DeleteItem of a removed one), as global
//! tables replicate them.

mod image;
mod stream;
mod write;

pub use image::{item, UnknownAttribute};

use crate::last_writer_wins::{ItemKey, LastWriterWins};
use crate::manifest::Manifest;
use crate::DevstackError;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stream::{open_stream, read_stream};

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
    state: Mutex<LastWriterWins>,
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
                state: Mutex::new(LastWriterWins::new(
                    replicas.iter().map(|r| r.region.clone()),
                )),
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

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
