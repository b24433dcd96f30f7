//! `devstack`: the local Lambda for eventline. See the library docs;
//! `devstack --help` (clap) lists every option.
//!
//! ```text
//! devstack run     [--manifest F] [--invoke-url U] [--until-idle SECS] [--limit SECS] [--quiet]
//! devstack send    [--manifest F] [--to FUNCTION] FILE...   # JSON array or JSON lines, one message each
//! devstack summary [--manifest F]
//! # several regions (provision.py --regions): one --manifest and one --invoke-url per region, in order
//! devstack run     --manifest A --manifest B ... --invoke-url UA --invoke-url UB ... [--replication-lag-ms MS]
//! devstack replicate --manifest A --manifest B ... [--replication-lag-ms MS] [--until-idle SECS]
//! ```

use clap::{ArgAction, Args, Parser, Subcommand};
use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::regions::{render, Region, Regions};
use eventline_devstack::replicator::{replicas_of, Replicator};
use eventline_devstack::runner::{stats_table, until_quiet, Runner};
use eventline_devstack::state::StackState;
use eventline_devstack::{sdk_config, DevstackError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Plays Lambda's part locally against the stack in a manifest.
#[derive(Debug, Parser)]
#[command(name = "devstack")]
struct Cli {
    /// The stack manifest that scripts/provision.py wrote; once per region
    /// for a stack in several regions (provision.py --regions).
    #[arg(
        long,
        global = true,
        value_name = "F",
        action = ArgAction::Append,
        default_value = ".local/stack.json"
    )]
    manifest: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive the functions from their queues and rules until idle (or Ctrl-C).
    Run {
        /// Lambda Invoke API of `cargo lambda watch`; once per --manifest, in the same order.
        #[arg(
            long,
            value_name = "U",
            action = ArgAction::Append,
            default_value = "http://127.0.0.1:9000"
        )]
        invoke_url: Vec<String>,
        #[command(flatten)]
        idle: UntilIdle,
        /// No line per batch or event.
        #[arg(long)]
        quiet: bool,
        /// Several regions: apply each users-table change to the other regions this long after reading it.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        replication_lag_ms: u64,
    },
    /// Send messages to a function's SQS trigger (each file a JSON array or JSON lines).
    Send {
        /// The function whose queue receives the messages.
        #[arg(long, value_name = "FUNCTION", default_value = "user-processor")]
        to: String,
        /// Files of messages: a JSON array (one message per element) or JSON lines.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the stack's state (each region's, given several manifests).
    Summary,
    /// Only replicate the global tables between the regions of the manifests (no functions driven).
    Replicate {
        /// Apply each change to the other regions this long after reading it.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        replication_lag_ms: u64,
        #[command(flatten)]
        idle: UntilIdle,
        /// No line per replicated write.
        #[arg(long)]
        quiet: bool,
    },
}

/// When `run` and `replicate` stop by themselves.
#[derive(Debug, Args)]
struct UntilIdle {
    /// Stop once nothing has happened for this long (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    until_idle: Option<u64>,
    /// With --until-idle: fail if still busy after this long.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    limit: u64,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("devstack: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), DevstackError> {
    let cli = Cli::parse();
    let mut stacks = Vec::new();
    for path in &cli.manifest {
        let manifest = Manifest::load(path)?;
        let sdk = sdk_config(&manifest.endpoint, &manifest.region).await;
        stacks.push((manifest, sdk));
    }
    match cli.command {
        Command::Run {
            invoke_url,
            idle: UntilIdle { until_idle, limit },
            quiet,
            replication_lag_ms,
        } => {
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
        }
        Command::Send { to, files } => {
            let [(manifest, sdk)] = &stacks[..] else {
                return Err(DevstackError::Usage(
                    "send takes one --manifest: the region the messages go to".to_owned(),
                ));
            };
            send(manifest, sdk, &to, &files).await?;
        }
        Command::Summary => {
            for (manifest, sdk) in &stacks {
                if stacks.len() > 1 {
                    println!("{}:", manifest.region);
                }
                print!(
                    "{}",
                    StackState::read(manifest, sdk)
                        .await?
                        .render(&manifest.endpoint)
                );
            }
        }
        Command::Replicate {
            replication_lag_ms,
            idle: UntilIdle { until_idle, limit },
            quiet,
        } => replicate(&stacks, replication_lag_ms, until_idle, limit, quiet).await?,
    }
    Ok(())
}

/// A runner for one stack, invoking through `invoke_url`.
fn runner(
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
        regions.push(Region {
            manifest,
            sdk,
            runner,
        });
    }
    let regions = Regions::new(regions, lag, !quiet);
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

async fn replicate(
    stacks: &[(Manifest, aws_config::SdkConfig)],
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

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn send(
    manifest: &Manifest,
    sdk: &aws_config::SdkConfig,
    to: &str,
    files: &[PathBuf],
) -> Result<(), DevstackError> {
    let function = manifest
        .function(to)
        .ok_or_else(|| DevstackError::Usage(format!("no function named {to} in the manifest")))?;
    let queue = function
        .sqs_sources
        .first()
        .ok_or_else(|| DevstackError::Usage(format!("{to} has no SQS trigger")))?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut sent = 0;
    for file in files {
        for body in read_messages(file)? {
            sqs.send_message()
                .queue_url(&queue.queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| DevstackError::aws("SQS SendMessage", e))?;
            sent += 1;
        }
    }
    println!("devstack: sent {sent} messages to {}", queue.queue_url);
    Ok(())
}

/// Messages in a file: a JSON array (each element one message) or JSON lines.
fn read_messages(path: &Path) -> Result<Vec<String>, DevstackError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DevstackError::Usage(format!("{}: {e}", path.display())))?;
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) {
        return Ok(items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect());
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn print_stats(runner: &Runner<Invoker>, elapsed: Duration) {
    println!("\nSummary after {:.1} s:", elapsed.as_secs_f64());
    print!("{}", stats_table(&runner.stats()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_documented_invocation_parses() {
        // As docs/local.md, docs/multi-region.md, the Makefile and scripts/demo.sh call it.
        for line in [
            "devstack run --invoke-url http://127.0.0.1:9077 --until-idle 4 --limit 300",
            "devstack run --manifest .local/stack.json --quiet",
            "devstack send events/signups.json",
            "devstack send --to notification-processor a.json b.json",
            "devstack --manifest other.json summary",
            "devstack summary --manifest other.json",
            "devstack send --manifest .local/us-east-1/stack.json events/signup.two-regions.json",
            "devstack run --manifest a.json --manifest b.json --invoke-url http://127.0.0.1:9100 \
             --invoke-url http://127.0.0.1:9101 --replication-lag-ms 250 --until-idle 4 --limit 300",
            "devstack replicate --manifest a.json --manifest b.json --until-idle 2",
        ] {
            let cli = Cli::try_parse_from(line.split_whitespace())
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(
                cli.manifest
                    .iter()
                    .all(|m| m.extension() == Some("json".as_ref())),
                "{line}"
            );
        }
    }

    #[test]
    fn run_defaults_and_send_needs_a_file() {
        let cli = Cli::try_parse_from(["devstack", "run"]).unwrap();
        assert_eq!(cli.manifest, [PathBuf::from(".local/stack.json")]);
        match cli.command {
            Command::Run {
                invoke_url,
                idle: UntilIdle { until_idle, limit },
                quiet,
                replication_lag_ms,
            } => assert_eq!(
                (invoke_url, until_idle, limit, quiet, replication_lag_ms),
                (
                    vec!["http://127.0.0.1:9000".to_owned()],
                    None,
                    600,
                    false,
                    0
                )
            ),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["devstack", "send"]).is_err());
        assert!(Cli::try_parse_from(["devstack"]).is_err());
        assert!(Cli::try_parse_from(["devstack", "run", "--limit", "soon"]).is_err());
    }

    #[test]
    fn manifests_given_replace_the_default_and_keep_their_order() {
        let cli = Cli::try_parse_from([
            "devstack",
            "run",
            "--manifest",
            "b.json",
            "--manifest",
            "a.json",
        ])
        .unwrap();
        assert_eq!(
            cli.manifest,
            [PathBuf::from("b.json"), PathBuf::from("a.json")]
        );
    }
}
