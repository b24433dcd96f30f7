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
//! # the region failure drill (make drill): one region's functions stopped for a while
//! devstack drill   --manifest A ... --invoke-url UA ... --down REGION [--outage-from S] [--outage S] [--users N]
//! ```

use clap::{ArgAction, Args, Parser, Subcommand};
use eventline_devstack::drill::{self, Holdings, Plan};
use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::regions::{render, Region, Regions};
use eventline_devstack::replicator::{replicas_of, Replicator};
use eventline_devstack::runner::{stats_table, until_quiet, Outage, Runner};
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
    /// The region failure drill: signups keep arriving in every region while
    /// one region's functions are not invoked, then it recovers; fails unless
    /// nothing was lost or done twice, and reports the time to drain.
    Drill {
        /// Lambda Invoke API per --manifest, in the same order.
        #[arg(long, value_name = "U", action = ArgAction::Append, required = true)]
        invoke_url: Vec<String>,
        /// The region whose functions stop.
        #[arg(long, value_name = "REGION")]
        down: String,
        /// When its outage starts, in seconds after the drill starts (functions warm by then).
        #[arg(long, value_name = "S", default_value_t = 15)]
        outage_from: u64,
        /// How long the outage lasts, in seconds.
        #[arg(long = "outage", value_name = "S", default_value_t = 30)]
        outage_length: u64,
        /// Users signing up, dealt round the regions and sent evenly until the outage ends.
        #[arg(long, value_name = "N", default_value_t = 60)]
        users: usize,
        /// Every Nth user also signs up in the next region at the same moment (0: none).
        #[arg(long, value_name = "N", default_value_t = 10)]
        twice_every: usize,
        /// Apply each users-table change to the other regions this long after reading it.
        #[arg(long, value_name = "MS", default_value_t = 250)]
        replication_lag_ms: u64,
        /// Fail if the regions are still busy this long after the outage ends.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        limit: u64,
        /// No line per batch or event.
        #[arg(long)]
        quiet: bool,
    },
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
        Command::Drill {
            invoke_url,
            down,
            outage_from,
            outage_length,
            users,
            twice_every,
            replication_lag_ms,
            limit,
            quiet,
        } => {
            let names: Vec<String> = stacks.iter().map(|(m, _)| m.region.clone()).collect();
            let down = names.iter().position(|r| *r == down).ok_or_else(|| {
                DevstackError::Usage(format!("--down {down}: not one of the regions {names:?}"))
            })?;
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let plan = Plan::new(
                names,
                down,
                Duration::from_secs(outage_from),
                Duration::from_secs(outage_length),
                users,
                twice_every,
                format!("drill-{stamp}-"),
            );
            let lag = Duration::from_millis(replication_lag_ms);
            run_drill(
                stacks,
                &invoke_url,
                &plan,
                lag,
                Duration::from_secs(limit),
                quiet,
            )
            .await?;
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

/// A runner per region, invoking through its own Invoke API, and the
/// replicator; `outage`: a region (by index) whose functions stop for a while.
fn regions_of(
    stacks: Vec<(Manifest, aws_config::SdkConfig)>,
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
        regions.push(Region {
            manifest,
            sdk,
            runner,
        });
    }
    Regions::new(regions, lag, !quiet)
}

async fn run_drill(
    stacks: Vec<(Manifest, aws_config::SdkConfig)>,
    invoke_urls: &[String],
    plan: &Plan,
    lag: Duration,
    limit: Duration,
    quiet: bool,
) -> Result<(), DevstackError> {
    if stacks.len() < 2 || invoke_urls.len() != stacks.len() {
        return Err(DevstackError::Usage(
            "drill takes two or more regions: one --manifest and one --invoke-url each".to_owned(),
        ));
    }
    let queues = stacks
        .iter()
        .map(|(manifest, sdk)| Ok((aws_sdk_sqs::Client::new(sdk), signup_queue(manifest)?)))
        .collect::<Result<Vec<_>, DevstackError>>()?;
    let down = &plan.regions[plan.down];
    let outage = Outage {
        from: plan.outage_from,
        length: plan.outage_length,
    };
    println!(
        "devstack drill: {} signups ({} users, {} of them in two regions at once) over {} s into {}; \
         {down}'s functions stopped from {} s to {} s",
        plan.signups.len(),
        plan.users().len(),
        plan.in_two_regions(),
        (outage.from + outage.length).as_secs(),
        plan.regions.join(", "),
        outage.from.as_secs(),
        (outage.from + outage.length).as_secs(),
    );
    let regions = regions_of(stacks, invoke_urls, quiet, lag, Some((plan.down, outage)));
    let paused = &regions.regions()[plan.down].runner;
    let started = Instant::now();
    let mut drained = None;
    let mut backlog = 0;
    let mut idle = false;
    regions
        .run_until(async {
            let send = async {
                for signup in &plan.signups {
                    tokio::time::sleep_until((started + signup.at).into()).await;
                    let (sqs, queue) = &queues[signup.region];
                    if let Err(e) = sqs
                        .send_message()
                        .queue_url(queue)
                        .message_body(signup.body())
                        .send()
                        .await
                    {
                        eprintln!("devstack drill: sending {} failed: {e}", signup.user_id);
                    }
                }
            };
            let drain = async {
                tokio::time::sleep_until((started + outage.from + outage.length).into()).await;
                let recovered = paused.recovers_at().unwrap_or_else(Instant::now);
                backlog = paused.pending_messages().await;
                println!("devstack drill: {down} recovers with {backlog} messages waiting in its queues and rule taps");
                while paused.busy().await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                drained = Some(recovered.elapsed());
            };
            futures::future::join(send, drain).await;
            idle = until_quiet(Duration::from_secs(4), limit, || regions.busy()).await;
        })
        .await?;
    println!(
        "\nSummary after {:.1} s, {} regions:",
        started.elapsed().as_secs_f64(),
        regions.regions().len()
    );
    let endpoint = regions.regions()[0].manifest.endpoint.clone();
    print!("{}", render(&regions.report().await?, &endpoint));
    let mut holdings = Vec::new();
    for region in regions.regions() {
        holdings.push(Holdings::read(&region.manifest, &region.sdk, &plan.prefix).await?);
    }
    let mut claims = drill::check(plan, &holdings);
    claims.push(drill::Claim {
        what: format!("{down}'s outage held work back (a backlog at recovery)"),
        failure: (backlog == 0).then(|| "nothing was waiting: the outage did not fire".to_owned()),
    });
    claims.push(drill::Claim {
        what: "every region idle: backlog drained, nothing left to replicate".to_owned(),
        failure: (!idle).then(|| format!("still busy {} s after the outage", limit.as_secs())),
    });
    println!(
        "\nRegion failure drill ({down} down {} s):",
        outage.length.as_secs()
    );
    print!("{}", drill::render(&claims));
    let drained = drained.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
    println!("  time to drain {down}'s backlog of {backlog} after recovery: {drained}");
    let failed = claims.iter().filter(|c| c.failure.is_some()).count();
    if failed > 0 {
        return Err(DevstackError::Usage(format!(
            "the region failure drill failed {failed} of its {} claims",
            claims.len()
        )));
    }
    Ok(())
}

/// The queue of user-processor's SQS trigger.
fn signup_queue(manifest: &Manifest) -> Result<String, DevstackError> {
    manifest
        .function("user-processor")
        .and_then(|f| f.sqs_sources.first())
        .map(|s| s.queue_url.clone())
        .ok_or_else(|| {
            DevstackError::Usage(format!(
                "{}: user-processor has no SQS trigger",
                manifest.region
            ))
        })
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
            "devstack drill --manifest a.json --manifest b.json --invoke-url http://127.0.0.1:9100 \
             --invoke-url http://127.0.0.1:9101 --down us-east-1 --outage-from 15 --outage 30 --users 60",
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
