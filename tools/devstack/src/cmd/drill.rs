//! `devstack drill`: the region failure drill. Signups keep arriving in
//! every region while one region's functions are not invoked, then it
//! recovers; the drill fails unless nothing was lost or done twice, and
//! reports the time to drain ([`eventline_devstack::drill`] holds the plan
//! and the claims).

use super::{regions_of, Stacks};
use clap::ArgAction;
use eventline_devstack::drill::{self, Holdings, Plan};
use eventline_devstack::manifest::Manifest;
use eventline_devstack::regions::render;
use eventline_devstack::runner::{until_quiet, Outage};
use eventline_devstack::DevstackError;
use std::time::{Duration, Instant};

/// `devstack drill`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lambda Invoke API per --manifest, in the same order.
    #[arg(long, value_name = "U", action = ArgAction::Append, required = true)]
    pub invoke_url: Vec<String>,
    /// The region whose functions stop.
    #[arg(long, value_name = "REGION")]
    pub down: String,
    /// When its outage starts, in seconds after the drill starts (functions warm by then).
    #[arg(long, value_name = "S", default_value_t = 15)]
    pub outage_from: u64,
    /// How long the outage lasts, in seconds.
    #[arg(long = "outage", value_name = "S", default_value_t = 30)]
    pub outage_length: u64,
    /// Users signing up, dealt round the regions and sent evenly until the outage ends.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub users: usize,
    /// Every Nth user also signs up in the next region at the same moment (0: none).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub twice_every: usize,
    /// Apply each users-table change to the other regions this long after reading it.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub replication_lag_ms: u64,
    /// Fail if the regions are still busy this long after the outage ends.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub limit: u64,
    /// No line per batch or event.
    #[arg(long)]
    pub quiet: bool,
}

/// Plans the drill from `args` and runs it over `stacks`.
pub async fn run(stacks: Stacks, args: Args) -> Result<(), DevstackError> {
    let Args {
        invoke_url,
        down,
        outage_from,
        outage_length,
        users,
        twice_every,
        replication_lag_ms,
        limit,
        quiet,
    } = args;
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
    .await
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
