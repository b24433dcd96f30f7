//! Fault tests: at-least-once delivery, poison records, an outage of AWS in
//! the middle of processing, and a worker crash between two writes — each
//! shown, with counts, to lose nothing and do nothing twice in effect.
//!
//! Each scenario deploys template.yaml into a moto server of its own and
//! drives the four use cases in-process (real AWS adapters, real SDK
//! calls) with the devstack runner playing Lambda: SQS event source
//! mappings with partial batch responses, visibility-timeout retries,
//! redrive to the DLQ, async-invoke retries. Every side effect goes through
//! a counting wrapper, so "in effect once" is measured, not assumed.
//! `make chaos` runs them and prints the table.

use aws_config::SdkConfig;
use eventline_app::mail::OutboxMailer;
use eventline_app::ports::{
    BlobStore, EventPublisher, Inserted, Mailer, NotificationQueue, PortError, ProfileStore,
    SystemClock, UserStore,
};
use eventline_app::{notification_processor, profile_creator, user_processor, welcome_email};
use eventline_aws::dynamodb::{DynamoProfileStore, DynamoUserStore};
use eventline_aws::eventbridge::EventBridgePublisher;
use eventline_aws::idempotency::DynamoIdempotencyStore;
use eventline_aws::s3::S3BlobStore;
use eventline_aws::sqs::SqsNotificationQueue;
use eventline_devstack::invoke::{Invocation, Invoke, InvokeError};
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::Runner;
use eventline_devstack::state::StackState;
use eventline_domain::{
    EmailAddress, Notification, OutgoingEmail, Profile, User, UserCreated, UserId,
};
use eventline_powertools::batch::{BatchProcessor, SqsEvent};
use eventline_powertools::idempotency::Idempotency;
use eventline_tests::fault_proxy::FaultProxy;
use eventline_tests::local::provision;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Successful side effects, by kind and key.
#[derive(Default)]
struct Effects(Mutex<BTreeMap<(&'static str, String), u32>>);

impl Effects {
    fn add(&self, kind: &'static str, key: &str) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((kind, key.to_owned()))
            .or_default() += 1;
    }

    /// (distinct keys, most effects for one key) of `kind`.
    fn of(&self, kind: &str) -> (usize, u32) {
        let map = self.0.lock().unwrap();
        let counts: Vec<u32> = map
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| *n)
            .collect();
        (counts.len(), counts.iter().copied().max().unwrap_or(0))
    }
}

/// Wraps a port, recording each successful effect; can crash (panic) once
/// after a user write, as a worker dying between two writes would.
struct Counted<T> {
    inner: T,
    effects: Arc<Effects>,
    crash_after_insert: Arc<Mutex<HashSet<String>>>,
}

impl<T> Counted<T> {
    fn new(inner: T, effects: &Arc<Effects>, crash: &Arc<Mutex<HashSet<String>>>) -> Self {
        Self {
            inner,
            effects: effects.clone(),
            crash_after_insert: crash.clone(),
        }
    }
}

impl<T: UserStore> UserStore for Counted<T> {
    async fn insert(&self, user: &User) -> Result<Inserted<User>, PortError> {
        let result = self.inner.insert(user).await?;
        if result == Inserted::New {
            self.effects.add("user write", user.id.as_str());
        }
        if self
            .crash_after_insert
            .lock()
            .unwrap()
            .remove(user.id.as_str())
        {
            panic!("simulated crash after the user write of {}", user.id);
        }
        Ok(result)
    }
    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        self.inner.get(id).await
    }
}

impl<T: NotificationQueue> NotificationQueue for Counted<T> {
    async fn enqueue_all(&self, all: &[Notification]) -> Vec<Result<(), PortError>> {
        let results = self.inner.enqueue_all(all).await;
        for (n, r) in all.iter().zip(&results) {
            if r.is_ok() {
                self.effects
                    .add("notification enqueued", &n.notification_id);
            }
        }
        results
    }
}

impl<T: EventPublisher> EventPublisher for Counted<T> {
    async fn publish_all(&self, all: &[UserCreated]) -> Vec<Result<(), PortError>> {
        let results = self.inner.publish_all(all).await;
        for (e, r) in all.iter().zip(&results) {
            if r.is_ok() {
                self.effects.add("event published", e.user_id.as_str());
            }
        }
        results
    }
}

impl<T: Mailer> Mailer for Counted<T> {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), PortError> {
        self.inner.send(email).await?;
        let kind = if email.message_id.starts_with("welcome.") {
            "welcome email sent"
        } else {
            "notification email sent"
        };
        self.effects.add(kind, &email.message_id);
        Ok(())
    }
}

impl<T: ProfileStore> ProfileStore for Counted<T> {
    async fn insert(&self, p: &Profile) -> Result<Inserted<Profile>, PortError> {
        let result = self.inner.insert(p).await?;
        if result == Inserted::New {
            self.effects.add("profile write", p.user_id.as_str());
        }
        Ok(result)
    }
}

impl<T: BlobStore> BlobStore for Counted<T> {
    async fn put(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<(), PortError> {
        self.inner.put(key, body, content_type).await
    }
}

type Idem = Idempotency<DynamoIdempotencyStore>;
type Outbox = Counted<OutboxMailer<S3BlobStore>>;

/// The four use cases in-process, as the runner's "Lambda".
struct InProcess {
    users: user_processor::UserProcessor<
        Counted<DynamoUserStore>,
        Counted<SqsNotificationQueue>,
        Counted<EventBridgePublisher>,
        SystemClock,
        DynamoIdempotencyStore,
    >,
    notifications: notification_processor::NotificationProcessor<
        DynamoUserStore,
        Outbox,
        SystemClock,
        DynamoIdempotencyStore,
    >,
    welcome: welcome_email::WelcomeEmail<Outbox, SystemClock, DynamoIdempotencyStore>,
    profiles: profile_creator::ProfileCreator<
        Counted<DynamoProfileStore>,
        S3BlobStore,
        SystemClock,
        DynamoIdempotencyStore,
    >,
}

/// Each invocation may run this long (the lock's in-progress expiry).
const FUNCTION_TIMEOUT_MS: u64 = 2_500;

fn deadline() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_millis() as u64 + FUNCTION_TIMEOUT_MS
}

fn answer<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Invocation {
    match result {
        Ok(v) => Invocation::Response(serde_json::to_value(v).unwrap()),
        Err(e) => Invocation::FunctionError {
            error_type: "Error".into(),
            message: e.to_string(),
        },
    }
}

impl Invoke for InProcess {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Invocation, InvokeError> {
        let sqs = || serde_json::from_value::<SqsEvent>(payload.clone()).unwrap();
        Ok(match function {
            "user-processor" => answer(self.users.handle(sqs(), deadline()).await),
            "notification-processor" => answer(self.notifications.handle(sqs(), deadline()).await),
            "welcome-email" => answer(self.welcome.handle(payload, deadline()).await),
            "profile-creator" => answer(self.profiles.handle(payload, deadline()).await),
            other => panic!("unknown function {other}"),
        })
    }
}

fn env<'a>(manifest: &'a Manifest, var: &str) -> &'a str {
    manifest
        .functions
        .iter()
        .find_map(|f| f.environment.get(var))
        .unwrap_or_else(|| panic!("{var} not in the manifest"))
}

fn wire(
    manifest: &Manifest,
    sdk: &SdkConfig,
    effects: &Arc<Effects>,
    crash: &Arc<Mutex<HashSet<String>>>,
) -> InProcess {
    let dynamodb = eventline_aws::dynamodb::client(sdk);
    let s3 = eventline_aws::s3::client(sdk);
    let idem = |scope: &str| -> Idem {
        Idempotency::new(
            DynamoIdempotencyStore::new(dynamodb.clone(), env(manifest, "IDEMPOTENCY_TABLE")),
            scope,
            Duration::from_secs(3600),
        )
    };
    let bucket = env(manifest, "BUCKET_NAME");
    let outbox = || {
        Counted::new(
            OutboxMailer::new(
                S3BlobStore::new(s3.clone(), bucket),
                EmailAddress::parse(env(manifest, "MAIL_FROM")).unwrap(),
            ),
            effects,
            crash,
        )
    };
    let users = || DynamoUserStore::new(dynamodb.clone(), env(manifest, "USERS_TABLE"));
    InProcess {
        users: user_processor::UserProcessor::new(
            user_processor::Ports {
                users: Counted::new(users(), effects, crash),
                notifications: Counted::new(
                    SqsNotificationQueue::new(
                        eventline_aws::sqs::client(sdk),
                        env(manifest, "NOTIFICATION_QUEUE_URL"),
                    ),
                    effects,
                    crash,
                ),
                events: Counted::new(
                    EventBridgePublisher::new(
                        eventline_aws::eventbridge::client(sdk),
                        env(manifest, "EVENT_BUS_NAME"),
                    ),
                    effects,
                    crash,
                ),
                clock: SystemClock,
                idempotency: idem(user_processor::IDEMPOTENCY_SCOPE),
            },
            BatchProcessor::new().with_concurrency(eventline_app::DEFAULT_CONCURRENCY),
        ),
        notifications: notification_processor::NotificationProcessor::new(
            notification_processor::Ports {
                users: users(),
                mailer: outbox(),
                clock: SystemClock,
                idempotency: idem(notification_processor::IDEMPOTENCY_SCOPE),
            },
            BatchProcessor::new().with_concurrency(eventline_app::DEFAULT_CONCURRENCY),
        ),
        welcome: welcome_email::WelcomeEmail::new(welcome_email::Ports {
            mailer: outbox(),
            clock: SystemClock,
            idempotency: idem(welcome_email::IDEMPOTENCY_SCOPE),
        }),
        profiles: profile_creator::ProfileCreator::new(profile_creator::Ports {
            profiles: Counted::new(
                DynamoProfileStore::new(dynamodb.clone(), env(manifest, "PROFILES_TABLE")),
                effects,
                crash,
            ),
            documents: S3BlobStore::new(s3.clone(), bucket),
            clock: SystemClock,
            idempotency: idem(profile_creator::IDEMPOTENCY_SCOPE),
        }),
    }
}

/// What a scenario ended with.
struct Figures {
    scenario: &'static str,
    sent: usize,
    deliveries: u64,
    state: StackState,
    effects: Arc<Effects>,
}

impl Figures {
    fn print(&self) {
        let (_, max_user) = self.effects.of("user write");
        let users = self.state.items_in("USERS_TABLE") as usize;
        let (welcome, max_welcome) = self.effects.of("welcome email sent");
        let (notes, max_notes) = self.effects.of("notification email sent");
        let (profiles, max_profiles) = self.effects.of("profile write");
        let dlq = self.state.dead_letters_in("user-processor DLQ");
        let cell = |n: usize, max: u32| format!("{n} (max {max}x)");
        println!(
            "| {:<36} | {:>4} | {:>10} | {:>12} | {:>12} | {:>14} | {:>13} | {:>3} |",
            self.scenario,
            self.sent,
            self.deliveries,
            cell(users, max_user),
            cell(profiles, max_profiles),
            cell(welcome, max_welcome),
            cell(notes, max_notes),
            dlq
        );
    }
}

fn signup(id: &str) -> String {
    serde_json::json!({"user_id": id, "email": format!("{id}@example.com"), "name": format!("User {id}")}).to_string()
}

/// Runs one scenario: deploy, send `bodies` to the SignupQueue, run until idle.
async fn scenario(
    name: &'static str,
    parameters: &[&str],
    bodies: Vec<String>,
    configure: impl FnOnce(&Arc<Mutex<HashSet<String>>>),
    twice: bool,
    outage: Option<(Duration, Duration)>,
) -> Figures {
    let stack = provision(&format!("chaos-{}", name.replace(' ', "-")), parameters);
    let manifest = Manifest::load(&stack.manifest_path).unwrap();
    let direct = eventline_tests::sdk_config_for(&stack.endpoint).await;
    let proxy = FaultProxy::start(stack.endpoint.trim_start_matches("http://").to_owned()).await;
    let through_proxy = eventline_tests::sdk_config_for(&proxy.endpoint).await;
    let effects = Arc::new(Effects::default());
    let crash = Arc::new(Mutex::new(HashSet::new()));
    configure(&crash);
    let lambda = wire(&manifest, &through_proxy, &effects, &crash);

    let sqs = aws_sdk_sqs::Client::new(&direct);
    let signups = manifest.function("user-processor").unwrap().sqs_sources[0]
        .queue_url
        .clone();
    let sent = bodies.len();
    for body in bodies {
        sqs.send_message()
            .queue_url(&signups)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut runner = Runner::new(manifest.clone(), sqs, lambda, false);
    if twice {
        runner = runner.deliver_everything_twice();
    }
    let runner = Arc::new(runner);
    let running = tokio::spawn({
        let runner = runner.clone();
        async move {
            runner
                .run_until_idle(Duration::from_secs(4), Duration::from_secs(180))
                .await
        }
    });
    if let Some((after, length)) = outage {
        tokio::time::sleep(after).await;
        proxy.set_down(true);
        tokio::time::sleep(length).await;
        proxy.set_down(false);
    }
    assert!(
        running.await.unwrap(),
        "{name}: the pipeline did not go idle"
    );
    let deliveries = runner.stats().values().map(|s| s.received).sum();
    let state = StackState::read(&manifest, &direct).await.unwrap();
    drop(stack);
    Figures {
        scenario: name,
        sent,
        deliveries,
        state,
        effects,
    }
}

/// Every valid user ended with exactly one of each effect, and the stack's
/// state agrees.
fn assert_once_each(f: &Figures, users: usize) {
    // No user is ever written twice. (A crash can cut a batch's other writes
    // off after DynamoDB applied them but before their answer was counted,
    // so the table, checked below, is the count of users written.)
    let (_, most_writes) = f.effects.of("user write");
    assert_eq!(most_writes, 1, "{}: a user was written twice", f.scenario);
    for kind in [
        "profile write",
        "welcome email sent",
        "notification email sent",
        "notification enqueued",
        "event published",
    ] {
        assert_eq!(f.effects.of(kind), (users, 1), "{}: {kind}", f.scenario);
    }
    for (what, found) in [
        ("users", f.state.items_in("USERS_TABLE")),
        ("profiles", f.state.items_in("PROFILES_TABLE")),
        ("welcome emails", f.state.objects_of("outbox/welcome")),
        (
            "confirmations",
            f.state.objects_of("outbox/signup_confirmation"),
        ),
        ("profile documents", f.state.objects_of("profiles/")),
    ] {
        assert_eq!(found, users as u64, "{}: {what}", f.scenario);
    }
}

fn header() {
    println!(
        "| {:<36} | sent | deliveries | {:>12} | {:>12} | {:>14} | {:>13} | DLQ |",
        "scenario", "users", "profiles", "welcome emails", "notifications"
    );
    println!(
        "|{:-<38}|------|------------|{:-<14}|{:-<14}|{:-<16}|{:-<15}|-----|",
        "", "", "", "", ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_two_or_three_times_has_one_effect() {
    const USERS: usize = 6;
    // Each signup is sent 2 or 3 times as separate messages, and the runner
    // delivers every message and event twice on top of that.
    let bodies = (0..USERS)
        .flat_map(|i| std::iter::repeat_n(signup(&format!("d-{i}")), 2 + i % 2))
        .collect();
    let f = scenario(
        "duplicates (2-3 sends, 2 deliveries)",
        &[],
        bodies,
        |_| {},
        true,
        None,
    )
    .await;
    header();
    f.print();
    assert_once_each(&f, USERS);
    assert!(
        f.deliveries >= 2 * 15,
        "duplicates were really delivered: {}",
        f.deliveries
    );
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_reach_the_dlq_and_good_ones_all_succeed() {
    const USERS: usize = 8;
    let mut bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("p-{i}"))).collect();
    let poison = [
        "{not json",
        r#"{"user_id":"x","email":"nope","name":"X"}"#,
        r#"{"user_id":"p-0","email":"thief@example.com","name":"Thief"}"#,
    ];
    for (i, p) in poison.iter().enumerate() {
        bodies.insert(2 * i + 1, (*p).to_owned());
    }
    let f = scenario(
        "poison mixed with good (3 of 11)",
        &[],
        bodies,
        |_| {},
        false,
        None,
    )
    .await;
    header();
    f.print();
    assert_once_each(&f, USERS);
    assert_eq!(
        f.state.dead_letters_in("user-processor DLQ"),
        poison.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_in_the_middle_of_processing_loses_nothing() {
    const USERS: usize = 10;
    let bodies = (0..USERS).map(|i| signup(&format!("o-{i}"))).collect();
    // AWS becomes unreachable 300 ms in, for 4 s: calls in flight are cut,
    // new ones refused. Enough receives to outlast it before the DLQ.
    let f = scenario(
        "AWS unreachable mid-batch for 4 s",
        &["MaxReceiveCount=6"],
        bodies,
        |_| {},
        false,
        Some((Duration::from_millis(300), Duration::from_secs(4))),
    )
    .await;
    header();
    f.print();
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_user_write_is_completed_by_the_retry_without_a_second_write() {
    const USERS: usize = 4;
    let bodies = (0..USERS).map(|i| signup(&format!("c-{i}"))).collect();
    let f = scenario(
        "worker crash after the user write",
        &[],
        bodies,
        |crash| {
            crash
                .lock()
                .unwrap()
                .extend(["c-0".to_owned(), "c-2".to_owned()]);
        },
        false,
        None,
    )
    .await;
    header();
    f.print();
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}
