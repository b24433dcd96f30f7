//! `devstack`: the local Lambda for eventline. See the library docs;
//! `devstack --help` (clap) lists every option.
//!
//! ```text
//! devstack run     [--manifest F] [--invoke-url U] [--until-idle SECS] [--limit SECS] [--quiet]
//! devstack send    [--manifest F] [--to FUNCTION] FILE...   # JSON array or JSON lines, one message each
//! devstack summary [--manifest F]
//! ```

use clap::{Parser, Subcommand};
use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::Runner;
use eventline_devstack::state::StackState;
use eventline_devstack::{sdk_config, DevstackError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Plays Lambda's part locally against the stack in a manifest.
#[derive(Debug, Parser)]
#[command(name = "devstack")]
struct Cli {
    /// The stack manifest that scripts/provision.py wrote.
    #[arg(
        long,
        global = true,
        value_name = "F",
        default_value = ".local/stack.json"
    )]
    manifest: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive the functions from their queues and rules until idle (or Ctrl-C).
    Run {
        /// Lambda Invoke API of `cargo lambda watch`.
        #[arg(long, value_name = "U", default_value = "http://127.0.0.1:9000")]
        invoke_url: String,
        /// Stop once nothing has happened for this long (default: run until Ctrl-C).
        #[arg(long, value_name = "SECS")]
        until_idle: Option<u64>,
        /// With --until-idle: fail if still busy after this long.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        limit: u64,
        /// No line per batch or event.
        #[arg(long)]
        quiet: bool,
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
    /// Print the stack's state.
    Summary,
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
    let manifest = Manifest::load(&cli.manifest)?;
    let sdk = sdk_config(&manifest.endpoint, &manifest.region).await;
    match cli.command {
        Command::Run {
            invoke_url,
            until_idle,
            limit,
            quiet,
        } => {
            let invoker = Invoker::new(&invoke_url, Duration::from_secs(600));
            // cargo lambda watch starts (or rebuilds) a binary on its first
            // invocation; Lambda does not count init against the timeout.
            let runner = Runner::new(
                manifest.clone(),
                aws_sdk_sqs::Client::new(&sdk),
                invoker,
                !quiet,
            )
            .with_cold_start_allowance(Duration::from_secs(300));
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
                        .run_until_idle(Duration::from_secs(quiet), Duration::from_secs(limit))
                        .await
                }
                None => {
                    runner
                        .run_until(async {
                            let _ = tokio::signal::ctrl_c().await;
                        })
                        .await;
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
            if !finished {
                return Err(DevstackError::Usage(format!(
                    "the pipeline was still busy after {} s (--limit)",
                    limit
                )));
            }
        }
        Command::Send { to, files } => {
            let function = manifest.function(&to).ok_or_else(|| {
                DevstackError::Usage(format!("no function named {to} in the manifest"))
            })?;
            let queue = function
                .sqs_sources
                .first()
                .ok_or_else(|| DevstackError::Usage(format!("{to} has no SQS trigger")))?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let mut sent = 0;
            for file in &files {
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
        }
        Command::Summary => print!(
            "{}",
            StackState::read(&manifest, &sdk)
                .await?
                .render(&manifest.endpoint)
        ),
    }
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
    println!(
        "  {:<24} {:>11} {:>9} {:>10} {:>7} {:>9} {:>8} {:>15}",
        "function",
        "invocations",
        "received",
        "succeeded",
        "failed",
        "timed out",
        "retried",
        "to OnFailure"
    );
    for (name, s) in runner.stats() {
        println!(
            "  {name:<24} {:>11} {:>9} {:>10} {:>7} {:>9} {:>8} {:>15}",
            s.invocations,
            s.received,
            s.succeeded,
            s.failed,
            s.timed_out,
            s.retried,
            s.sent_to_failure_destination
        );
    }
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
        // As docs/local.md, the Makefile and scripts/demo.sh call it.
        for line in [
            "devstack run --invoke-url http://127.0.0.1:9077 --until-idle 4 --limit 300",
            "devstack run --manifest .local/stack.json --quiet",
            "devstack send events/signups.json",
            "devstack send --to notification-processor a.json b.json",
            "devstack --manifest other.json summary",
            "devstack summary --manifest other.json",
        ] {
            let cli =
                Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(cli.manifest.extension(), Some("json".as_ref()), "{line}");
        }
    }

    #[test]
    fn run_defaults_and_send_needs_a_file() {
        let cli = Cli::try_parse_from(["devstack", "run"]).unwrap();
        assert_eq!(cli.manifest, PathBuf::from(".local/stack.json"));
        match cli.command {
            Command::Run {
                invoke_url,
                until_idle,
                limit,
                quiet,
            } => assert_eq!(
                (invoke_url.as_str(), until_idle, limit, quiet),
                ("http://127.0.0.1:9000", None, 600, false)
            ),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["devstack", "send"]).is_err());
        assert!(Cli::try_parse_from(["devstack"]).is_err());
        assert!(Cli::try_parse_from(["devstack", "run", "--limit", "soon"]).is_err());
    }
}
