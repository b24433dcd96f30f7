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
//!
//! Each subcommand is one file of `src/cmd/` (this binary's, not the
//! library's); this file only parses the command line and loads the manifests.

mod cmd;

use clap::{ArgAction, Parser, Subcommand};
use eventline_devstack::manifest::Manifest;
use eventline_devstack::{sdk_config, DevstackError};
use std::path::PathBuf;

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
    Run(cmd::run::Args),
    /// Send messages to a function's SQS trigger (each file a JSON array or JSON lines).
    Send(cmd::send::Args),
    /// Print the stack's state (each region's, given several manifests).
    Summary,
    /// The region failure drill: signups keep arriving in every region while
    /// one region's functions are not invoked, then it recovers; fails unless
    /// nothing was lost or done twice, and reports the time to drain.
    Drill(cmd::drill::Args),
    /// Only replicate the global tables between the regions of the manifests (no functions driven).
    Replicate(cmd::replicate::Args),
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
        Command::Run(args) => cmd::run::run(stacks, args).await,
        Command::Send(args) => cmd::send::run(&stacks, args).await,
        Command::Summary => cmd::summary::run(stacks).await,
        Command::Drill(args) => cmd::drill::run(stacks, args).await,
        Command::Replicate(args) => cmd::replicate::run(&stacks, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use cmd::UntilIdle;

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
            Command::Run(cmd::run::Args {
                invoke_url,
                idle: UntilIdle { until_idle, limit },
                quiet,
                replication_lag_ms,
            }) => assert_eq!(
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
