//! `devstack`: the local Lambda for eventline. See the library docs.
//!
//! ```text
//! devstack run     [--manifest F] [--invoke-url U] [--until-idle SECS] [--limit SECS] [--quiet]
//! devstack send    [--manifest F] [--to FUNCTION] FILE...   # JSON array or JSON lines, one message each
//! devstack summary [--manifest F]
//! ```

use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::Runner;
use eventline_devstack::state::StackState;
use eventline_devstack::{sdk_config, DevstackError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Args {
    command: String,
    manifest: PathBuf,
    invoke_url: String,
    until_idle: Option<u64>,
    limit: u64,
    quiet: bool,
    to: String,
    files: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, DevstackError> {
    let mut args = Args {
        command: String::new(),
        manifest: PathBuf::from(".local/stack.json"),
        invoke_url: "http://127.0.0.1:9000".to_owned(),
        until_idle: None,
        limit: 600,
        quiet: false,
        to: "user-processor".to_owned(),
        files: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    let usage = || {
        DevstackError::Usage(
            "usage: devstack run|send|summary [options] (see crates/devstack/src/main.rs)"
                .to_owned(),
        )
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(usage);
        match arg.as_str() {
            "--manifest" => args.manifest = PathBuf::from(value()?),
            "--invoke-url" => args.invoke_url = value()?,
            "--until-idle" => args.until_idle = Some(value()?.parse().map_err(|_| usage())?),
            "--limit" => args.limit = value()?.parse().map_err(|_| usage())?,
            "--to" => args.to = value()?,
            "--quiet" => args.quiet = true,
            "run" | "send" | "summary" if args.command.is_empty() => args.command = arg,
            _ if args.command == "send" && !arg.starts_with("--") => {
                args.files.push(PathBuf::from(arg))
            }
            _ => return Err(usage()),
        }
    }
    if args.command.is_empty() {
        return Err(usage());
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("devstack: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), DevstackError> {
    let args = parse_args()?;
    let manifest = Manifest::load(&args.manifest)?;
    let sdk = sdk_config(&manifest.endpoint, &manifest.region).await;
    match args.command.as_str() {
        "run" => {
            let invoker = Invoker::new(&args.invoke_url, Duration::from_secs(600));
            // cargo lambda watch starts (or rebuilds) a binary on its first
            // invocation; Lambda does not count init against the timeout.
            let runner = Runner::new(
                manifest.clone(),
                aws_sdk_sqs::Client::new(&sdk),
                invoker,
                !args.quiet,
            )
            .with_cold_start_allowance(Duration::from_secs(300));
            let started = Instant::now();
            println!(
                "devstack: driving {} functions from {} via {}",
                manifest.functions.len(),
                manifest.endpoint,
                args.invoke_url
            );
            let finished = match args.until_idle {
                Some(quiet) => {
                    runner
                        .run_until_idle(Duration::from_secs(quiet), Duration::from_secs(args.limit))
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
                    args.limit
                )));
            }
        }
        "send" => {
            let function = manifest.function(&args.to).ok_or_else(|| {
                DevstackError::Usage(format!("no function named {} in the manifest", args.to))
            })?;
            let queue = function
                .sqs_sources
                .first()
                .ok_or_else(|| DevstackError::Usage(format!("{} has no SQS trigger", args.to)))?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let mut sent = 0;
            for file in &args.files {
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
        "summary" => print!(
            "{}",
            StackState::read(&manifest, &sdk)
                .await?
                .render(&manifest.endpoint)
        ),
        _ => unreachable!("parse_args accepts only these commands"),
    }
    Ok(())
}

/// Messages in a file: a JSON array (each element one message) or JSON lines.
fn read_messages(path: &PathBuf) -> Result<Vec<String>, DevstackError> {
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
