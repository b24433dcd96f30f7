//! The subcommands, one file each, and what they share: the runner set-up
//! and when a run stops.

pub mod drill;
pub mod replicate;
pub mod run;
pub mod send;
pub mod summary;

use clap::Args;
use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::regions::{LocalRegion, Regions};
use eventline_devstack::runner::{Outage, Runner};
use std::time::Duration;

/// Each --manifest given, loaded, with the SDK configuration of its region.
pub type Stacks = Vec<(Manifest, aws_config::SdkConfig)>;

/// When `run` and `replicate` stop by themselves.
#[derive(Debug, Args)]
pub struct UntilIdle {
    /// Stop once nothing has happened for this long (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<u64>,
    /// With --until-idle: fail if still busy after this long.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub limit: u64,
}

/// A runner for one stack, invoking through `invoke_url`.
pub fn runner(
    manifest: Manifest,
    sdk: &aws_config::SdkConfig,
    invoke_url: &str,
    quiet: bool,
) -> Runner<Invoker> {
    let invoker = Invoker::new(invoke_url, Duration::from_secs(600));
    // cargo lambda watch starts (or rebuilds) a binary on its first
    // invocation; Lambda does not count init against the timeout.
    Runner::new(manifest, aws_sdk_sqs::Client::new(sdk), invoker, !quiet)
        .with_cold_start_allowance(Duration::from_secs(300))
}

/// A runner per region, invoking through its own Invoke API, and the
/// replicator; `outage`: a region (by index) whose functions stop for a while.
pub fn regions_of(
    stacks: Stacks,
    invoke_urls: &[String],
    quiet: bool,
    lag: Duration,
    outage: Option<(usize, Outage)>,
) -> Regions<Invoker> {
    let width = stacks
        .iter()
        .map(|(m, _)| m.region.len())
        .max()
        .unwrap_or(0);
    let mut regions = Vec::new();
    for ((manifest, sdk), url) in stacks.into_iter().zip(invoke_urls) {
        println!(
            "devstack: driving {} functions in {} from {} via {}",
            manifest.functions.len(),
            manifest.region,
            manifest.endpoint,
            url
        );
        // Three watches start twelve functions on one cargo lock and share one
        // moto: waiting behind a sibling invocation or a start would
        // otherwise eat into the 3 s timeout.
        let runner = runner(manifest.clone(), &sdk, url, quiet)
            .with_label(format!("{:<width$} ", manifest.region))
            .served_by_one_watch();
        let runner = match outage {
            Some((down, outage)) if down == regions.len() => runner.with_outage(outage),
            _ => runner,
        };
        regions.push(LocalRegion {
            manifest,
            sdk,
            runner,
        });
    }
    Regions::new(regions, lag, !quiet)
}

/// Resolves on Ctrl-C.
pub async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}
