//! Writing each item's winning version into the regions that need it,
//! after the replication lag, and retrying a write that failed.

use super::{now_ms, Replica, Shared, POLL_INTERVAL};
use crate::last_writer_wins::{ItemKey, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Schedules the write of `key`'s winner into each region that needs it,
/// after the replication lag, unless one is scheduled already.
pub(super) fn plan(shared: &Arc<Shared>, t: usize, key: &ItemKey) {
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

pub(super) async fn apply_after_lag(shared: Arc<Shared>, t: usize, region: String, key: ItemKey) {
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

pub(super) async fn apply(
    shared: &Arc<Shared>,
    t: usize,
    replica: &Replica,
    key: &ItemKey,
    write: Write,
) {
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
