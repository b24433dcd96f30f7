//! Several regions of one moto server at once (`provision.py --regions`):
//! a [`Runner`] per region, each invoking that region's own function
//! processes, and the [`Replicator`] that stands in for the global table
//! between them. Idle means every region idle and nothing left to
//! replicate; the report is one per region, and a table side by side.

use crate::invoke::Invoke;
use crate::manifest::Manifest;
use crate::replicator::{replicas_of, ReplicaStats, Replicator};
use crate::runner::{stats_table, until_quiet, FunctionStats, Runner};
use crate::state::StackState;
use crate::DevstackError;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// One region of the local stack: its manifest, how to reach it, and its runner
/// (not the domain's `Region`, a region name).
pub struct LocalRegion<I> {
    /// The region's stack.
    pub manifest: Manifest,
    /// SDK configuration for that region of the emulator.
    pub sdk: aws_config::SdkConfig,
    /// Drives the region's functions.
    pub runner: Runner<I>,
}

/// Every region, and replication between them.
pub struct Regions<I> {
    regions: Vec<LocalRegion<I>>,
    replicator: Replicator,
}

impl<I: Invoke> Regions<I> {
    /// The regions, replicating every global table their manifests list,
    /// each change `replication_lag` after it is read.
    pub fn new(regions: Vec<LocalRegion<I>>, replication_lag: Duration, verbose: bool) -> Self {
        let manifests: Vec<_> = regions
            .iter()
            .map(|r| (r.manifest.clone(), r.sdk.clone()))
            .collect();
        let replicator = Replicator::new(replicas_of(&manifests), replication_lag, verbose);
        Self {
            regions,
            replicator,
        }
    }

    /// The replicator (its counters).
    pub fn replicator(&self) -> &Replicator {
        &self.replicator
    }

    /// The regions.
    pub fn regions(&self) -> &[LocalRegion<I>] {
        &self.regions
    }

    /// Runs every region and the replicator until `stop` resolves; then the
    /// invocations and replicated writes in progress finish.
    pub async fn run_until(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), DevstackError> {
        let replicating = self.replicator.start().await?;
        let (stopped, watch) = tokio::sync::watch::channel(false);
        let runs = self.regions.iter().map(|region| {
            let mut watch = watch.clone();
            region.runner.run_until(async move {
                let _ = watch.wait_for(|stop| *stop).await;
            })
        });
        let signal = async {
            stop.await;
            let _ = stopped.send(true);
        };
        futures::future::join(futures::future::join_all(runs), signal).await;
        replicating.stop().await;
        Ok(())
    }

    /// Runs until no region has had anything to do and nothing was left to
    /// replicate for `quiet`, or `limit` has passed. Returns whether it went
    /// idle (false: the limit was hit).
    pub async fn run_until_idle(
        &self,
        quiet: Duration,
        limit: Duration,
    ) -> Result<bool, DevstackError> {
        let mut idle = false;
        self.run_until(async {
            idle = until_quiet(quiet, limit, || self.busy()).await;
        })
        .await?;
        Ok(idle)
    }

    /// Whether a region has work queued or running, or a change is left to replicate.
    pub async fn busy(&self) -> bool {
        if !self.replicator.is_idle() {
            return true;
        }
        for region in &self.regions {
            if region.runner.busy().await {
                return true;
            }
        }
        false
    }

    /// What each region did and holds.
    pub async fn report(&self) -> Result<Vec<RegionReport>, DevstackError> {
        let replication = self.replicator.stats();
        let mut reports = Vec::new();
        for region in &self.regions {
            reports.push(RegionReport {
                region: region.manifest.region.clone(),
                primary: region
                    .manifest
                    .parameters
                    .get("PrimaryRegion")
                    .is_some_and(|p| *p == region.manifest.region),
                stats: region.runner.stats(),
                origins: region.runner.event_origins(),
                state: StackState::read(&region.manifest, &region.sdk).await?,
                replication: replication
                    .get(&region.manifest.region)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        Ok(reports)
    }
}

/// One region's part of the summary.
#[derive(Debug, Clone)]
pub struct RegionReport {
    /// The region.
    pub region: String,
    /// Whether its stack declares the global tables.
    pub primary: bool,
    /// Counters per function.
    pub stats: BTreeMap<String, FunctionStats>,
    /// Events delivered per function, by `detail.origin_region`.
    pub origins: BTreeMap<String, BTreeMap<String, u64>>,
    /// What its tables, bucket and dead-letter queues hold.
    pub state: StackState,
    /// Its replica's replication counters.
    pub replication: ReplicaStats,
}

impl RegionReport {
    /// Events `function` received that were published in this region, and
    /// those forwarded from another (by `detail.origin_region`; events
    /// without one are in neither).
    pub fn local_and_forwarded(&self, function: &str) -> (u64, u64) {
        let origins = self.origins.get(function).cloned().unwrap_or_default();
        let local = origins.get(&self.region).copied().unwrap_or(0);
        let forwarded = origins
            .iter()
            .filter(|(o, _)| **o != self.region && o.as_str() != "-")
            .map(|(_, n)| n)
            .sum();
        (local, forwarded)
    }

    /// Messages in all its dead-letter and failure queues.
    pub fn dead_letters(&self) -> u64 {
        self.state.dead_letters.values().map(|(_, n)| n).sum()
    }
}

/// One number of a region's report.
type Count = fn(&RegionReport) -> u64;

/// The summary: each region's functions and dead letters, then every
/// region side by side.
pub fn render(reports: &[RegionReport], endpoint: &str) -> String {
    let mut out = String::new();
    for r in reports {
        let role = if r.primary { " (primary)" } else { "" };
        let _ = writeln!(out, "\n{}{role}", r.region);
        out += &stats_table(&r.stats);
        for (label, bodies) in &r.state.dead_letter_samples {
            let (_, n) = r.state.dead_letters[label];
            let _ = writeln!(out, "  {n} in {label}:");
            for body in bodies {
                let _ = writeln!(out, "      {body}");
            }
        }
    }
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, cells: Vec<String>| rows.push((label.to_owned(), cells));
    row("", reports.iter().map(|r| r.region.clone()).collect());
    let counts: [(&str, Count); 5] = [
        ("users (items in the users table)", |r| {
            r.state.items_in("USERS_TABLE")
        }),
        ("profiles (items)", |r| r.state.items_in("PROFILES_TABLE")),
        ("welcome emails", |r| r.state.objects_of("outbox/welcome")),
        ("signup confirmations", |r| {
            r.state.objects_of("outbox/signup_confirmation")
        }),
        ("dead letters (all DLQs)", |r| r.dead_letters()),
    ];
    for (label, count) in counts {
        row(
            label,
            reports.iter().map(|r| count(r).to_string()).collect(),
        );
    }
    let event_functions: Vec<String> = reports
        .iter()
        .flat_map(|r| r.origins.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for function in &event_functions {
        row(
            &format!("{function} events: local / forwarded"),
            reports
                .iter()
                .map(|r| {
                    let (local, forwarded) = r.local_and_forwarded(function);
                    format!("{local} / {forwarded}")
                })
                .collect(),
        );
    }
    row(
        "users-table writes: local / replicated in",
        reports
            .iter()
            .map(|r| {
                format!(
                    "{} / {}",
                    r.replication.local_changes, r.replication.applied
                )
            })
            .collect(),
    );
    row(
        "users written here and elsewhere at once",
        reports
            .iter()
            .map(|r| r.replication.contested_items.to_string())
            .collect(),
    );
    row(
        "replication lag p50 / max (ms)",
        reports
            .iter()
            .map(|r| {
                match (
                    r.replication.lag_percentile(50),
                    r.replication.lag_percentile(100),
                ) {
                    (Some(p50), Some(max)) => format!("{p50} / {max}"),
                    _ => "-".to_owned(),
                }
            })
            .collect(),
    );
    let width = rows
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(String::len))
        .max()
        .unwrap_or(0)
        .max(11);
    let labels = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let _ = writeln!(out, "\nRegions side by side (moto at {endpoint}):");
    for (label, cells) in rows {
        let _ = write!(out, "  {label:<labels$}");
        for cell in cells {
            let _ = write!(out, " {cell:>width$}");
        }
        out.push('\n');
    }
    let total = |f: &dyn Fn(&RegionReport) -> u64| reports.iter().map(f).sum::<u64>();
    let _ = writeln!(
        out,
        "Worldwide: welcome emails {}, signup confirmations {}, dead letters {}; replicated writes {}, \
         of which read back and not replicated again {}.",
        total(&|r| r.state.objects_of("outbox/welcome")),
        total(&|r| r.state.objects_of("outbox/signup_confirmation")),
        total(&|r| r.dead_letters()),
        total(&|r| r.replication.applied),
        total(&|r| r.replication.echoes),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(region: &str, users: u64, forwarded: u64, lag_ms: Vec<u64>) -> RegionReport {
        let mut state = StackState::default();
        state
            .tables
            .insert("USERS_TABLE".into(), ("users".into(), users));
        state.objects.insert("outbox/welcome".into(), 1);
        RegionReport {
            region: region.to_owned(),
            primary: region == "us-west-2",
            stats: BTreeMap::new(),
            origins: BTreeMap::from([(
                "profile-creator".to_owned(),
                BTreeMap::from([
                    (region.to_owned(), 2),
                    ("elsewhere-1".to_owned(), forwarded),
                ]),
            )]),
            state,
            replication: ReplicaStats {
                lag_ms,
                ..ReplicaStats::default()
            },
        }
    }

    #[test]
    fn regions_side_by_side_line_up_and_add_up() {
        let reports = [
            report("us-west-2", 9, 7, vec![1200, 1352]),
            report("eu-west-1", 9, 6, vec![]),
        ];
        let out = render(&reports, "http://127.0.0.1:1");
        let table: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("Regions side by side"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .collect();
        assert!(table.len() >= 8, "{out}");
        // Every cell is right-aligned to one width, the widest one's.
        let lengths: Vec<usize> = table.iter().map(|l| l.chars().count()).collect();
        assert!(lengths.iter().all(|n| *n == lengths[0]), "{out}");
        let line = |label: &str| {
            *table
                .iter()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap()
        };
        assert!(
            line("profile-creator events").ends_with("2 / 7       2 / 6"),
            "{out}"
        );
        assert!(line("replication lag").contains("1200 / 1352"), "{out}");
        assert!(line("replication lag").ends_with(" -"), "{out}");
        assert!(out.contains("Worldwide: welcome emails 2,"), "{out}");
        assert!(out.contains("\nus-west-2 (primary)\n"), "{out}");
    }
}
