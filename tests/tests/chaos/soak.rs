//! The soak's body (`make soak`): see [`run`].

use super::figures::assert_once_each;
use super::figures::header;
use super::harness::{signup, Harness};
use eventline_devstack::runner::Runner;
use eventline_tests::fault_proxy::{Fault, Rule};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The soak: `SOAK_SIGNUPS` (default 10,000) messages through the
/// pipeline, 10 % of them duplicates and 5 % poison, with an outage
/// started mid-run; exact final counts and the throughput. `make soak`.
pub(crate) async fn run() {
    let total: usize = std::env::var("SOAK_SIGNUPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    // Every 20th message is poison and every 10th (another position)
    // repeats an earlier signup, spread over the whole run.
    let (mut bodies, mut unique_users, mut poison_sent) = (Vec::with_capacity(total), 0, 0);
    for i in 0..total {
        if i % 20 == 19 {
            bodies.push(
                serde_json::json!({"user_id": format!("bad-{i}"), "email": "nope", "name": "X"})
                    .to_string(),
            );
            poison_sent += 1;
        } else if i % 10 == 4 {
            bodies.push(signup(&format!("u-{}", (i * 7919) % unique_users)));
        } else {
            bodies.push(signup(&format!("u-{unique_users}")));
            unique_users += 1;
        }
    }

    // Production's 10 s function timeout: at 3 s (the local default) moto,
    // slowed by 10,000 messages on 2 cores, makes batches miss their
    // deadline again and again until valid records reach the DLQs.
    let mut h = Harness::deploy(
        "soak",
        &[
            "MaxReceiveCount=6",
            "FunctionTimeout=10",
            "QueueVisibilityTimeout=30",
        ],
    )
    .await;
    let queue = h.signup_queue();
    let sqs = aws_sdk_sqs::Client::new(&h.direct);
    let runner = Runner::new(h.manifest.clone(), sqs.clone(), h.lambda.clone(), false)
        .with_cold_start_allowance(Duration::ZERO);
    let started = std::time::Instant::now();
    // Fed in waves: moto's SendMessage slows down as a queue grows.
    const WAVE: usize = 500;
    let outage = Arc::new(Mutex::new(None));
    let feed = async {
        for (n, wave) in bodies.chunks(WAVE).enumerate() {
            while eventline_devstack::runner::queue_depth(&sqs, &queue)
                .await
                .unwrap_or(0)
                > WAVE as u64 / 2
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if n == bodies.len() / WAVE / 2 {
                // Mid-run: the next AWS call starts a 3 s outage.
                *outage.lock().unwrap() = Some(
                    h.proxy
                        .inject(Rule::any(Fault::Outage(Duration::from_secs(3))).times(1)),
                );
            }
            for body in wave {
                sqs.send_message()
                    .queue_url(&queue)
                    .message_body(body)
                    .send()
                    .await
                    .unwrap();
            }
        }
    };
    runner
        .run_until(async {
            feed.await;
            let mut quiet = 0;
            while quiet < 16 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                quiet = if runner.pending_messages().await == 0 {
                    quiet + 1
                } else {
                    0
                };
            }
        })
        .await;
    let elapsed = started.elapsed();
    h.sent = bodies.len();
    h.stats = runner.stats();
    let f = h.figures().await;
    header();
    f.print();
    println!(
        "soak: {} messages ({unique_users} users, {} duplicates, {poison_sent} poison), {:.1} s, {:.1} records/s, faulted calls {:?}",
        bodies.len(),
        bodies.len() - unique_users - poison_sent,
        elapsed.as_secs_f64(),
        bodies.len() as f64 / elapsed.as_secs_f64(),
        f.faulted
    );
    let outage = outage
        .lock()
        .unwrap()
        .clone()
        .expect("the outage was armed");
    assert_eq!(outage.faulted(), 1, "the outage started");
    assert!(f.faulted.cut + f.faulted.refused > 0);
    assert_once_each(&f, unique_users);
    assert_eq!(
        f.state.dead_letters_in("user-processor DLQ"),
        poison_sent as u64
    );
}
