//! `devstack replicate`: only the global tables' replication between the
//! regions of the manifests, no functions driven.

use super::{ctrl_c, Stacks, UntilIdle};
use eventline_devstack::replicator::{replicas_of, Replicator};
use eventline_devstack::runner::until_quiet;
use eventline_devstack::DevstackError;
use std::time::Duration;

/// `devstack replicate`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply each change to the other regions this long after reading it.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub replication_lag_ms: u64,
    #[command(flatten)]
    pub idle: UntilIdle,
    /// No line per replicated write.
    #[arg(long)]
    pub quiet: bool,
}

/// Replicates until idle (or Ctrl-C), then prints each region's counts.
pub async fn run(stacks: &Stacks, args: Args) -> Result<(), DevstackError> {
    let Args {
        replication_lag_ms,
        idle: UntilIdle { until_idle, limit },
        quiet,
    } = args;
    replicate(stacks, replication_lag_ms, until_idle, limit, quiet).await
}

async fn replicate(
    stacks: &Stacks,
    lag_ms: u64,
    until_idle: Option<u64>,
    limit: u64,
    quiet: bool,
) -> Result<(), DevstackError> {
    let replicator = Replicator::new(replicas_of(stacks), Duration::from_millis(lag_ms), !quiet);
    if replicator.is_empty() {
        return Err(DevstackError::Usage(
            "nothing to replicate: give the manifest of each region (provision.py --regions writes them)".to_owned(),
        ));
    }
    let finished = match until_idle {
        Some(quiet) => {
            let running = replicator.start().await?;
            let idle = until_quiet(
                Duration::from_secs(quiet),
                Duration::from_secs(limit),
                || async { !replicator.is_idle() },
            )
            .await;
            running.stop().await;
            idle
        }
        None => {
            replicator.run_until(ctrl_c()).await?;
            true
        }
    };
    for (region, s) in replicator.stats() {
        println!(
            "{region}: {} local writes ({} overwritten by a later one), {} replicated in, {} echoes not replicated, lag p50 {} ms",
            s.local_changes,
            s.lost,
            s.applied,
            s.echoes,
            s.lag_percentile(50).map_or("-".to_owned(), |l| l.to_string())
        );
    }
    if !finished {
        return Err(DevstackError::Usage(format!(
            "replication was still busy after {limit} s (--limit)"
        )));
    }
    Ok(())
}
