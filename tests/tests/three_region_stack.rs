//! The stack in three regions of one moto server (`provision.py --regions`),
//! each region's four functions in-process over its own AWS adapters
//! ([`eventline_tests::player`]), driven by devstack's runner per region with
//! the replicator standing in for the global table: the same code as
//! `make demo REGIONS=3`, without spawning binaries.
//!
//! One run covers the promises of docs/multi-region.md: a signup in region A
//! reaches B and C exactly once with origin A and never echoes back to A;
//! queues and tables stay per region; one user signing up in two regions at
//! once converges to one user item everywhere, with one welcome email
//! worldwide (in its home region) and a confirmation from each region that
//! announced the signup. Which of the two concurrent writers announces is a
//! race (the second may find the first's user, replicated and announced, and
//! then has nothing to do): the assertions hold for either outcome, derived
//! from the origins that published. Emails are counted as sends: the bucket
//! is versioned, so a second send of one email is a second version of its
//! key, not an invisible overwrite. Every count is exact; the run waits for
//! idle by polling.

use aws_sdk_dynamodb::types::AttributeValue;
use eventline_aws::AwsAdapters;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::regions::{render, LocalRegion, Regions};
use eventline_devstack::runner::Runner;
use eventline_domain::region::{Region as RegionName, RegionSet};
use eventline_domain::UserId;
use eventline_tests::local::provision_regions;
use eventline_tests::player::{Functions, Lambda};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REGIONS: [&str; 3] = ["us-west-2", "us-east-1", "eu-west-1"];
const A: &str = "us-west-2";
const B: &str = "us-east-1";
const C: &str = "eu-west-1";

/// Event invocations: (region, function, user_id, detail.origin_region) -> times.
type Deliveries = Arc<Mutex<BTreeMap<(String, String, String, String), u32>>>;

fn detail(payload: &Value, field: &str) -> String {
    payload
        .pointer(&format!("/detail/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned()
}

fn env<'a>(manifest: &'a Manifest, var: &str) -> &'a str {
    manifest
        .functions
        .iter()
        .find_map(|f| f.environment.get(var))
        .unwrap_or_else(|| panic!("{var} not in the manifest"))
}

fn signup(user_id: &str) -> String {
    serde_json::json!({"user_id": user_id, "email": format!("{user_id}@example.com"), "name": "Mary Somerville"})
        .to_string()
}

/// How many times each key under `prefix` in `bucket` was written: the
/// bucket is versioned (template.yaml), so every put is a version of its
/// key, and a second send of one email shows as a second version.
async fn puts_by_key(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
) -> BTreeMap<String, usize> {
    let page = eventline_aws::s3::client(sdk)
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list object versions");
    assert_ne!(page.is_truncated(), Some(true), "one page holds them");
    let mut puts = BTreeMap::new();
    for version in page.versions() {
        *puts
            .entry(version.key().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    puts
}

/// Every item of `table`, by user_id.
async fn items(
    sdk: &aws_config::SdkConfig,
    table: &str,
) -> BTreeMap<String, HashMap<String, AttributeValue>> {
    let page = aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(table)
        .send()
        .await
        .expect("scan");
    assert!(page.last_evaluated_key.is_none(), "one page holds them");
    page.items()
        .iter()
        .map(|item| match item.get("user_id") {
            Some(AttributeValue::S(id)) => (id.clone(), item.clone()),
            other => panic!("an item without a user_id: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_forward_once_stay_isolated_and_converge() {
    let stack = provision_regions("multi-region", &REGIONS);
    let deliveries: Deliveries = Arc::default();
    let mut regions = Vec::new();
    for path in &stack.manifest_paths {
        let manifest = Manifest::load(path).unwrap();
        let region = manifest.region.clone();
        let sdk = eventline_devstack::sdk_config(&stack.endpoint, &region).await;
        let adapters = AwsAdapters::new(&sdk);
        let seen = Arc::clone(&deliveries);
        let observed = region.clone();
        let functions = Functions::over_aws(&adapters, &manifest).observed_by(Arc::new(
            move |function: &str, payload: &Value| {
                if payload.get("detail").is_some() {
                    let key = (
                        observed.clone(),
                        function.to_owned(),
                        detail(payload, "user_id"),
                        detail(payload, "origin_region"),
                    );
                    *seen.lock().unwrap().entry(key).or_default() += 1;
                }
            },
        ));
        let runner = Runner::new(
            manifest.clone(),
            aws_sdk_sqs::Client::new(&sdk),
            Lambda(Arc::new(functions)),
            std::env::var_os("MULTI_REGION_VERBOSE").is_some(),
        )
        .with_cold_start_allowance(Duration::ZERO)
        .with_label(format!("{region:<9} "));
        regions.push(LocalRegion {
            manifest,
            sdk,
            runner,
        });
    }
    let regions = Regions::new(regions, Duration::from_millis(100), false);
    let region = |name: &str| {
        regions
            .regions()
            .iter()
            .find(|r| r.manifest.region == name)
            .unwrap()
    };

    // template.yaml versions the bucket (so sends are counted as versions,
    // below); moto's CloudFormation leaves it unversioned, so set it as
    // deployed, and check that an overwrite is counted.
    for r in regions.regions() {
        let (s3, bucket) = (
            eventline_aws::s3::client(&r.sdk),
            env(&r.manifest, "BUCKET_NAME"),
        );
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable versioning");
        for _ in 0..2 {
            s3.put_object()
                .bucket(bucket)
                .key("probe/overwritten")
                .body(Vec::from("probe").into())
                .send()
                .await
                .expect("put the probe");
        }
        assert_eq!(
            puts_by_key(&r.sdk, bucket, "probe/").await,
            BTreeMap::from([("probe/overwritten".to_owned(), 2)]),
            "an overwrite is a second version"
        );
    }

    // u-a1 signs up in A; u-bc in B and C at once.
    for (to, user) in [(A, "u-a1"), (B, "u-bc"), (C, "u-bc")] {
        let r = region(to);
        let queue = &r.manifest.function("user-processor").unwrap().sqs_sources[0].queue_url;
        aws_sdk_sqs::Client::new(&r.sdk)
            .send_message()
            .queue_url(queue)
            .message_body(signup(user))
            .send()
            .await
            .unwrap();
    }
    let idle = regions
        .run_until_idle(Duration::from_secs(3), Duration::from_secs(180))
        .await
        .unwrap();
    assert!(idle, "the regions did not go idle");
    let report = regions.report().await.unwrap();
    println!("{}", render(&report, &stack.endpoint));

    // Forwarding: every region's profile-creator got each signup's event once
    // per origin: u-a1's only from A (in B and C forwarded, in A never echoed
    // back), u-bc's from each region that announced it. First deliveries, by
    // origin, from the runner; which users' events, from the functions (an
    // in-progress duplicate is retried, so an event may be invoked twice).
    let delivered = deliveries.lock().unwrap().clone();
    let users_of = |function: &str, region: &str| -> BTreeSet<(String, String)> {
        delivered
            .iter()
            .filter(|((r, f, _, _), _)| r == region && f == function)
            .map(|((_, _, user, origin), _)| (user.clone(), origin.clone()))
            .collect()
    };
    let origins_of = |function: &str, region: &str| -> BTreeMap<String, u64> {
        let r = report.iter().find(|r| r.region == region).unwrap();
        r.origins.get(function).cloned().unwrap_or_default()
    };
    let expect = |list: &[(&str, &str)]| {
        let users: BTreeSet<(String, String)> = list
            .iter()
            .map(|(u, o)| ((*u).to_owned(), (*o).to_owned()))
            .collect();
        let mut origins = BTreeMap::<String, u64>::new();
        for (_, o) in list {
            *origins.entry((*o).to_owned()).or_default() += 1;
        }
        (users, origins)
    };
    // The regions that announced u-bc: B, C or both, whichever won the race
    // (the other found the user stored and announced, and did nothing).
    let announced: Vec<&str> = [B, C]
        .into_iter()
        .filter(|o| users_of("profile-creator", A).contains(&("u-bc".to_owned(), (*o).to_owned())))
        .collect();
    println!("u-bc announced by {announced:?}");
    assert!(!announced.is_empty(), "one of B and C announced u-bc");
    let mut signups = vec![("u-a1", A)];
    signups.extend(announced.iter().map(|o| ("u-bc", *o)));
    for r in REGIONS {
        assert_eq!(
            (
                users_of("profile-creator", r),
                origins_of("profile-creator", r)
            ),
            expect(&signups),
            "profile-creator in {r}"
        );
    }

    // welcome-email runs only in each user's home region: u-a1's one event
    // there, u-bc's one per origin, deduplicated to one email.
    let set = RegionSet::parse(RegionName::parse(A).unwrap(), &REGIONS.join(",")).unwrap();
    let home = |user: &str| {
        set.home_region(&UserId::parse(user).unwrap())
            .as_str()
            .to_owned()
    };
    // The users are picked so that u-a1's email is sent in a region it did
    // not sign up in, and u-bc's where neither of its signups was taken.
    assert_eq!((home("u-a1").as_str(), home("u-bc").as_str()), (B, A));
    for r in REGIONS {
        let expected: Vec<(&str, &str)> = signups
            .iter()
            .filter(|(user, _)| home(user) == r)
            .copied()
            .collect();
        assert_eq!(
            (users_of("welcome-email", r), origins_of("welcome-email", r)),
            expect(&expected),
            "welcome-email in {r}"
        );
    }

    // Welcome emails worldwide: one send per user, in its home region.
    // Confirmations: one from each region that announced the signup.
    let mut welcomed = BTreeMap::<String, Vec<(String, usize)>>::new();
    for r in REGIONS {
        let (m, sdk) = (&region(r).manifest, &region(r).sdk);
        let bucket = env(m, "BUCKET_NAME");
        for (key, puts) in puts_by_key(sdk, bucket, "outbox/welcome.").await {
            welcomed.entry(key).or_default().push((r.to_owned(), puts));
        }
        let confirmations = puts_by_key(sdk, bucket, "outbox/signup_confirmation.").await;
        let expected: BTreeMap<String, usize> = signups
            .iter()
            .filter(|(_, origin)| *origin == r)
            .map(|(user, _)| (format!("outbox/signup_confirmation.{user}.json"), 1))
            .collect();
        assert_eq!(confirmations, expected, "confirmations in {r}");
    }
    assert_eq!(
        welcomed,
        BTreeMap::from([
            (
                "outbox/welcome.u-a1.json".to_owned(),
                vec![(home("u-a1"), 1)]
            ),
            (
                "outbox/welcome.u-bc.json".to_owned(),
                vec![(home("u-bc"), 1)]
            ),
        ])
    );

    // Isolation: each region's queues carried only its own signups and
    // notifications; its tables hold the two users and their profiles; no
    // dead letter anywhere.
    for r in &report {
        let confirmed = signups.iter().filter(|(_, o)| *o == r.region).count() as u64;
        assert_eq!(
            (
                r.stats["user-processor"].received,
                r.stats["notification-processor"].received,
                r.state.items_in("PROFILES_TABLE"),
                r.dead_letters(),
            ),
            (1, confirmed, 2, 0),
            "{}",
            r.region
        );
    }

    // Convergence: one item per user, the same in every region.
    let mut tables = Vec::new();
    for r in REGIONS {
        let (m, sdk) = (&region(r).manifest, &region(r).sdk);
        tables.push(items(sdk, env(m, "USERS_TABLE")).await);
    }
    assert_eq!(
        tables[0].keys().collect::<Vec<_>>(),
        ["u-a1", "u-bc"],
        "users in {A}"
    );
    assert_eq!(tables[1], tables[0], "{B} converged with {A}");
    assert_eq!(tables[2], tables[0], "{C} converged with {A}");

    // Replication happened, each write's lag measured.
    for r in &report {
        let s = &r.replication;
        assert!(s.applied > 0, "{}: nothing replicated in", r.region);
        assert_eq!(s.lag_ms.len() as u64, s.applied, "{}", r.region);
        println!(
            "{}: {} writes replicated in, lag p50 {} ms, max {} ms",
            r.region,
            s.applied,
            s.lag_percentile(50).unwrap(),
            s.lag_percentile(100).unwrap()
        );
    }
}
