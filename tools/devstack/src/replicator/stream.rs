//! Reading each replica's stream in order, and turning its records into
//! what the replication state observes.

use super::write::plan;
use super::{item, now_ms, Replica, Shared, POLL_INTERVAL, SETTLE_MS};
use crate::last_writer_wins::{ItemKey, Observed, Sequence, Version};
use crate::DevstackError;
use aws_sdk_dynamodbstreams::types::{OperationType, ShardIteratorType};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A shard of a replica's stream, and how far it has been read.
pub(super) struct Shard {
    stream_arn: String,
    id: String,
    /// The sequence number of the last record read (`None`: from the start).
    read_up_to: Option<String>,
}

/// The shards of the replica's stream, none read yet.
pub(super) async fn open_stream(replica: &Replica) -> Result<Vec<Shard>, DevstackError> {
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
pub(super) async fn read_stream(
    shared: Arc<Shared>,
    t: usize,
    replica: Replica,
    mut shards: Vec<Shard>,
) {
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
