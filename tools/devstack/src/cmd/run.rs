//! `devstack run`: drive the functions from their queues and rules until
//! idle (or Ctrl-C); with several manifests, a runner per region and the
//! replicator between them.

use super::{ctrl_c, regions_of, runner, Stacks, UntilIdle};
use clap::ArgAction;
use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::regions::render;
use eventline_devstack::runner::{stats_table, Runner};
use eventline_devstack::state::StackState;
use eventline_devstack::DevstackError;
use std::time::{Duration, Instant};

/// `devstack run`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lambda Invoke API of `cargo lambda watch`; once per --manifest, in the same order.
    #[arg(
        long,
        value_name = "U",
        action = ArgAction::Append,
        default_value = "http://127.0.0.1:9000"
    )]
    pub invoke_url: Vec<String>,
    #[command(flatten)]
    pub idle: UntilIdle,
    /// No line per batch or event.
    #[arg(long)]
    pub quiet: bool,
    /// Several regions: apply each users-table change to the other regions this long after reading it.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub replication_lag_ms: u64,
}

/// Runs the stacks until idle (or Ctrl-C); fails if still busy at the limit.
pub async fn run(mut stacks: Stacks, args: Args) -> Result<(), DevstackError> {
    let Args {
        invoke_url,
        idle: UntilIdle { until_idle, limit },
        quiet,
        replication_lag_ms,
    } = args;
    if invoke_url.len() != stacks.len() {
        return Err(DevstackError::Usage(format!(
            "{} --manifest but {} --invoke-url: give one Invoke API per region, in the same order",
            stacks.len(),
            invoke_url.len()
        )));
    }
    let lag = Duration::from_millis(replication_lag_ms);
    let limit = Duration::from_secs(limit);
    let finished = if stacks.len() == 1 {
        let (manifest, sdk) = stacks.remove(0);
        run_one(manifest, sdk, &invoke_url[0], until_idle, limit, quiet).await?
    } else {
        run_regions(stacks, &invoke_url, until_idle, limit, quiet, lag).await?
    };
    if !finished {
        return Err(DevstackError::Usage(format!(
            "the pipeline was still busy after {} s (--limit)",
            limit.as_secs()
        )));
    }
    Ok(())
}

async fn run_one(
    manifest: Manifest,
    sdk: aws_config::SdkConfig,
    invoke_url: &str,
    until_idle: Option<u64>,
    limit: Duration,
    quiet: bool,
) -> Result<bool, DevstackError> {
    let runner = runner(manifest.clone(), &sdk, invoke_url, quiet);
    let started = Instant::now();
    println!(
        "devstack: driving {} functions from {} via {}",
        manifest.functions.len(),
        manifest.endpoint,
        invoke_url
    );
    let finished = match until_idle {
        Some(quiet) => {
            runner
                .run_until_idle(Duration::from_secs(quiet), limit)
                .await
        }
        None => {
            runner.run_until(ctrl_c()).await;
            true
        }
    };
    print_stats(&runner, started.elapsed());
    print!(
        "{}",
        StackState::read(&manifest, &sdk)
            .await?
            .render(&manifest.endpoint)
    );
    Ok(finished)
}

async fn run_regions(
    stacks: Vec<(Manifest, aws_config::SdkConfig)>,
    invoke_urls: &[String],
    until_idle: Option<u64>,
    limit: Duration,
    quiet: bool,
    lag: Duration,
) -> Result<bool, DevstackError> {
    let endpoint = stacks[0].0.endpoint.clone();
    let regions = regions_of(stacks, invoke_urls, quiet, lag, None);
    if regions.replicator().is_empty() {
        println!("devstack: the manifests list no global table held in two of their regions: nothing to replicate");
    } else {
        println!(
            "devstack: replicating the global tables, lag {} ms",
            lag.as_millis()
        );
    }
    let started = Instant::now();
    let finished = match until_idle {
        Some(quiet) => {
            regions
                .run_until_idle(Duration::from_secs(quiet), limit)
                .await?
        }
        None => {
            regions.run_until(ctrl_c()).await?;
            true
        }
    };
    println!(
        "\nSummary after {:.1} s, {} regions:",
        started.elapsed().as_secs_f64(),
        regions.regions().len()
    );
    print!("{}", render(&regions.report().await?, &endpoint));
    Ok(finished)
}

fn print_stats(runner: &Runner<Invoker>, elapsed: Duration) {
    println!("\nSummary after {:.1} s:", elapsed.as_secs_f64());
    print!("{}", stats_table(&runner.stats()));
}
