//! Fault tests: at-least-once delivery, poison records, an outage of AWS in
//! the middle of processing, a worker crash between two writes, a call that
//! never answers, batch APIs that answer short or malformed, duplicates
//! older than every idempotency record, and a DLQ redrive days later —
//! each shown, with counts, to lose nothing and do nothing twice in effect.
//!
//! Each scenario deploys template.yaml into a moto server of its own and
//! drives the four use cases in-process (composed as the functions' mains
//! compose them, from each function's deployed environment, over the real
//! AWS adapters and SDK calls, through the same entrypoints) with the
//! devstack runner playing Lambda: SQS event source mappings with partial
//! batch responses, visibility-timeout retries, redrive to the DLQ,
//! async-invoke retries, the function timeout. The SDK configuration is the
//! functions' own (`eventline_aws::configure`: their timeouts, retries and
//! shared HTTPS client), pointed at the fault proxy. The adapters are
//! wrapped so every side effect is counted (users, profiles, documents and
//! outbox objects, notifications, events, emails, sent markers, dead
//! letters): "in effect once" is measured, not assumed. The functions' AWS
//! calls go through a fault proxy, and every scenario first proves its fault
//! was injected (faulted calls > 0, the crash happened, duplicates were
//! delivered) before it checks the outcome. `make chaos` runs them and
//! prints the table.

use aws_config::SdkConfig;
use eventline_app::compose::{self, Wiring};
use eventline_app::ports::{
    Admission, BlobStore, Clock, EventPublisher, MailLedger, MailMarker, Mailer, NotificationQueue,
    PortError, ProfileStore, Put, Sent, StoredProfile, SystemClock, UserStore,
};
use eventline_app::{notification_processor, profile_creator, user_processor, welcome_email};
use eventline_aws::eventbridge::EventBridgePublisher;
use eventline_aws::AwsAdapters;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::{FunctionStats, Runner};
use eventline_devstack::state::StackState;
use eventline_domain::{
    MailboxKey, Notification, OutgoingEmail, Profile, Timestamp, User, UserCreated, UserId,
};
use eventline_powertools::batch::{DeadLetter, DeadLetterSink};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock};
use eventline_powertools::sqs::SqsEvent;
use eventline_tests::fault_proxy::{Fault, FaultProxy, Faulted, Rewrite, Rule};
use eventline_tests::local::{provision, ProvisionedStack};
use eventline_tests::player::{Functions, Lambda, StackSettings};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Successful side effects, by kind and key, and the events published.
#[derive(Default)]
struct Effects {
    counts: Mutex<BTreeMap<(&'static str, String), u32>>,
    published: Mutex<Vec<UserCreated>>,
}

impl Effects {
    fn add(&self, kind: &'static str, key: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((kind, key.to_owned()))
            .or_default() += 1;
    }

    /// The distinct keys of `kind`.
    fn keys_of(&self, kind: &str) -> BTreeSet<String> {
        self.counts
            .lock()
            .unwrap()
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// (distinct keys, most effects for one key) of `kind`.
    fn of(&self, kind: &str) -> (usize, u32) {
        let map = self.counts.lock().unwrap();
        let counts: Vec<u32> = map
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| *n)
            .collect();
        (counts.len(), counts.iter().copied().max().unwrap_or(0))
    }
}

/// A worker crash (a panic) right after the user write of chosen users,
/// once each, counted.
#[derive(Default)]
struct Crashes {
    after_user_write_of: Mutex<HashSet<String>>,
    happened: AtomicU64,
}

/// Which records each SQS-triggered function received more than once
/// (by body), to show which records a fault sent back for a retry; and
/// the bodies of each batch, in order.
#[derive(Default)]
struct Receipts(
    Mutex<BTreeMap<String, BTreeMap<String, u32>>>,
    Mutex<Vec<(String, BTreeSet<String>)>>,
);

impl Receipts {
    fn note(&self, function: &str, event: &SqsEvent) {
        let bodies = event
            .records
            .iter()
            .map(|r| r.body.clone().unwrap_or_default())
            .collect();
        self.1.lock().unwrap().push((function.to_owned(), bodies));
        let mut all = self.0.lock().unwrap();
        let seen = all.entry(function.to_owned()).or_default();
        for record in &event.records {
            let count = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let max = seen
                .entry(record.body.clone().unwrap_or_default())
                .or_default();
            *max = (*max).max(count);
        }
    }

    /// Bodies `function` received more than once.
    fn retried(&self, function: &str) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .get(function)
            .map(|seen| {
                seen.iter()
                    .filter(|(_, n)| **n > 1)
                    .map(|(body, _)| body.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The system clock moved forward by a settable offset: "days later".
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().unix_millis();
        Timestamp::from_unix_millis(now + self.0.load(Ordering::SeqCst))
    }
}

/// Wraps a port, recording each successful effect; can crash (panic) once
/// after a user write, as a worker dying between two writes would.
struct Counted<T> {
    inner: T,
    effects: Arc<Effects>,
    crashes: Arc<Crashes>,
}

impl<T: UserStore> UserStore for Counted<T> {
    async fn create(&self, user: &User, lock: &ItemLock) -> Result<Claim<User>, PortError> {
        let result = self.inner.create(user, lock).await?;
        // A create the SDK resent after the first landed comes back with our own lock.
        let ours = match &result {
            Claim::Held => true,
            Claim::Found(stored) => stored.lock.as_ref() == Some(lock),
        };
        if ours {
            self.effects.add("user write", user.id.as_str());
            let chosen = self
                .crashes
                .after_user_write_of
                .lock()
                .unwrap()
                .remove(user.id.as_str());
            if chosen {
                self.crashes.happened.fetch_add(1, Ordering::SeqCst);
                panic!("simulated crash after the user write of {}", user.id);
            }
        }
        Ok(result)
    }
    async fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        self.inner.take_over(id, lock, now_ms).await
    }
    async fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        self.inner.announce(id, lock, at).await
    }
    async fn release(&self, id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        self.inner.release(id, lock).await
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
                self.effects.published.lock().unwrap().push(e.clone());
            }
        }
        results
    }
}

impl<T: Mailer> Mailer for Counted<T> {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        let sent = self.inner.send(email).await?;
        // Only an email that went out now is one: the outbox creates its
        // object once per message id, and a repeat finds it.
        if sent == Sent::Now {
            let kind = if email.message_id.starts_with("welcome.") {
                "welcome email sent"
            } else {
                "notification email sent"
            };
            self.effects.add(kind, &email.message_id);
        }
        Ok(sent)
    }
}

impl<T: BlobStore> BlobStore for Counted<T> {
    async fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<Put, PortError> {
        let put = self.inner.put_new(key, body, content_type).await?;
        if put == Put::Created {
            self.effects.add("object put", key);
        }
        Ok(put)
    }
}

impl<T: MailLedger> MailLedger for Counted<T> {
    async fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.inner.lock(message_id, payload_hash, lock).await
    }
    async fn take_over(
        &self,
        message_id: &str,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.inner.take_over(message_id, lock, now_ms).await
    }
    async fn record_sent(
        &self,
        message_id: &str,
        lock: &ItemLock,
    ) -> Result<Finish<MailMarker>, PortError> {
        let finish = self.inner.record_sent(message_id, lock).await?;
        if finish == Finish::Recorded {
            self.effects.add("sent marker", message_id);
        }
        Ok(finish)
    }
    async fn release(&self, message_id: &str, lock: &ItemLock) -> Result<(), PortError> {
        self.inner.release(message_id, lock).await
    }
    async fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        let admission = self.inner.take_slot(mailbox, message_id, day, cap).await?;
        if admission == Admission::Admitted {
            self.effects.add("mail admitted", message_id);
        }
        Ok(admission)
    }
}

/// A dead-letter sink whose accepted letters are counted, by source message id.
struct CountedDeadLetters {
    inner: Arc<dyn DeadLetterSink>,
    effects: Arc<Effects>,
}

impl DeadLetterSink for CountedDeadLetters {
    fn send<'a>(
        &'a self,
        letter: &'a DeadLetter,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.inner.send(letter).await?;
            self.effects.add("dead letter", &letter.source_message_id);
            Ok(())
        })
    }
}

impl<T: ProfileStore> ProfileStore for Counted<T> {
    async fn create(
        &self,
        p: &Profile,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<StoredProfile>, PortError> {
        let result = self.inner.create(p, payload_hash, lock).await?;
        // A create the SDK resent after the first landed comes back with our own lock.
        let ours = match &result {
            Claim::Held => true,
            Claim::Found(stored) => stored.lock.as_ref() == Some(lock),
        };
        if ours {
            self.effects.add("profile write", p.user_id.as_str());
        }
        Ok(result)
    }
    async fn take_over(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<StoredProfile>, PortError> {
        self.inner.take_over(user_id, lock, now_ms).await
    }
    async fn record_document(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> Result<Finish<StoredProfile>, PortError> {
        self.inner.record_document(user_id, lock).await
    }
    async fn release(&self, user_id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        self.inner.release(user_id, lock).await
    }
}

/// Wraps each function's ports (users, notifications, events, mail,
/// profiles, objects, sent markers, dead letters) so every side effect is
/// counted, and puts them on the test's clock. The use cases are then
/// composed from the wrapped wirings exactly as the functions' `main`s
/// compose theirs.
struct Counter {
    effects: Arc<Effects>,
    crashes: Arc<Crashes>,
    clock: TestClock,
}

// The wrapped wirings' types name each counted port: long, not complex.
#[allow(clippy::type_complexity)]
impl Counter {
    fn counted<T>(&self, port: T) -> Counted<T> {
        Counted {
            inner: port,
            effects: self.effects.clone(),
            crashes: self.crashes.clone(),
        }
    }

    fn dead_letters(&self, inner: Arc<dyn DeadLetterSink>) -> Arc<dyn DeadLetterSink> {
        Arc::new(CountedDeadLetters {
            inner,
            effects: self.effects.clone(),
        })
    }

    fn user_processor<U, Q, P, C>(
        &self,
        w: Wiring<user_processor::Ports<U, Q, P, C>>,
    ) -> Wiring<user_processor::Ports<Counted<U>, Counted<Q>, Counted<P>, TestClock>> {
        Wiring {
            ports: user_processor::Ports {
                users: self.counted(w.ports.users),
                notifications: self.counted(w.ports.notifications),
                events: self.counted(w.ports.events),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    fn notification_processor<U, M, L, C>(
        &self,
        w: Wiring<notification_processor::Ports<U, M, L, C>>,
    ) -> Wiring<notification_processor::Ports<Counted<U>, Counted<M>, Counted<L>, TestClock>> {
        Wiring {
            ports: notification_processor::Ports {
                users: self.counted(w.ports.users),
                mailer: self.counted(w.ports.mailer),
                ledger: self.counted(w.ports.ledger),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    fn welcome_email<M, L, C>(
        &self,
        w: Wiring<welcome_email::Ports<M, L, C>>,
    ) -> Wiring<welcome_email::Ports<Counted<M>, Counted<L>, TestClock>> {
        Wiring {
            ports: welcome_email::Ports {
                mailer: self.counted(w.ports.mailer),
                ledger: self.counted(w.ports.ledger),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    fn profile_creator<P, B, C>(
        &self,
        w: Wiring<profile_creator::Ports<P, B, C>>,
    ) -> Wiring<profile_creator::Ports<Counted<P>, Counted<B>, TestClock>> {
        Wiring {
            ports: profile_creator::Ports {
                profiles: self.counted(w.ports.profiles),
                documents: self.counted(w.ports.documents),
                clock: self.clock.clone(),
            },
            dead_letters: self.dead_letters(w.dead_letters),
        }
    }

    /// The four functions of `manifest`'s stack over `aws`, counted.
    fn functions(&self, aws: &AwsAdapters, manifest: &Manifest) -> Functions {
        let stack = StackSettings(manifest);
        let up = stack.of(user_processor::FUNCTION, user_processor::Config::from_env);
        let np = stack.of(
            notification_processor::FUNCTION,
            notification_processor::Config::from_env,
        );
        let we = stack.of(welcome_email::FUNCTION, welcome_email::Config::from_env);
        let pc = stack.of(profile_creator::FUNCTION, profile_creator::Config::from_env);
        Functions::new(
            compose::user_processor(self.user_processor(aws.user_processor_wiring(&up)), &up),
            compose::notification_processor(
                self.notification_processor(aws.notification_processor_wiring(&np)),
                &np,
            ),
            compose::welcome_email(self.welcome_email(aws.welcome_email_wiring(&we)), &we),
            compose::profile_creator(self.profile_creator(aws.profile_creator_wiring(&pc)), &pc),
        )
    }
}

fn env<'a>(manifest: &'a Manifest, var: &str) -> &'a str {
    manifest
        .functions
        .iter()
        .find_map(|f| f.environment.get(var))
        .unwrap_or_else(|| panic!("{var} not in the manifest"))
}

/// One scenario's stack: template.yaml in a moto server of its own, the
/// functions in-process behind the fault proxy, and what they did.
struct Harness {
    name: &'static str,
    _stack: ProvisionedStack,
    manifest: Manifest,
    /// Straight to moto: the test's own calls, never faulted.
    direct: SdkConfig,
    proxy: FaultProxy,
    effects: Arc<Effects>,
    crashes: Arc<Crashes>,
    receipts: Arc<Receipts>,
    clock: TestClock,
    lambda: Lambda,
    sent: usize,
    stats: BTreeMap<String, FunctionStats>,
}

impl Harness {
    async fn deploy(name: &'static str, parameters: &[&str]) -> Self {
        // Production's 10 s function timeout unless the scenario sets its
        // own: at the local 3 s a loaded machine makes moto miss batches'
        // deadlines until valid records exhaust their receives (seen once
        // in ten `make flaky` runs at load 10: the late-duplicates scenario
        // published nothing in its first phase). The visibility timeout
        // stays just above it, so retries come back quickly.
        let mut parameters = parameters.to_vec();
        if !parameters.iter().any(|p| p.starts_with("FunctionTimeout=")) {
            parameters.extend(["FunctionTimeout=10", "QueueVisibilityTimeout=12"]);
        }
        let stack = provision(&format!("chaos-{}", slug(name)), &parameters);
        let manifest = Manifest::load(&stack.manifest_path).unwrap();
        let direct = eventline_tests::sdk_config_for(&stack.endpoint).await;
        let proxy =
            FaultProxy::start(stack.endpoint.trim_start_matches("http://").to_owned()).await;
        // The functions' own SDK settings (1/2/4 s timeouts, 3 attempts, the
        // shared HTTPS client), as `eventline_aws::load_sdk_config` gives them.
        let through_proxy = eventline_aws::configure(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(&proxy.endpoint)
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "test", "test", None, None, "moto",
                )),
            Some("chaos"),
        )
        .load()
        .await;
        let (effects, crashes, receipts, clock) = Default::default();
        let counter = Counter {
            effects: Arc::clone(&effects),
            crashes: Arc::clone(&crashes),
            clock: TestClock::clone(&clock),
        };
        let noted: Arc<Receipts> = Arc::clone(&receipts);
        let aws = AwsAdapters::new(&through_proxy);
        let functions = counter.functions(&aws, &manifest).observed_by(Arc::new(
            move |function: &str, payload: &Value| {
                // The SQS-triggered functions' batches, as they arrive.
                if payload.get("Records").is_some() {
                    let event = serde_json::from_value::<SqsEvent>(payload.clone()).unwrap();
                    noted.note(function, &event);
                }
            },
        ));
        let lambda = Lambda(Arc::new(functions));
        Self {
            name,
            _stack: stack,
            manifest,
            direct,
            proxy,
            effects,
            crashes,
            receipts,
            clock,
            lambda,
            sent: 0,
            stats: BTreeMap::new(),
        }
    }

    fn signup_queue(&self) -> String {
        self.manifest
            .function("user-processor")
            .unwrap()
            .sqs_sources[0]
            .queue_url
            .clone()
    }

    fn signup_dlq(&self) -> String {
        self.manifest
            .function("user-processor")
            .unwrap()
            .sqs_sources[0]
            .dead_letter_queue_url
            .clone()
            .expect("SignupQueue has a DLQ")
    }

    /// Sends `bodies` to the SignupQueue, straight to moto.
    async fn send(&mut self, bodies: &[String]) {
        let sqs = aws_sdk_sqs::Client::new(&self.direct);
        let queue = self.signup_queue();
        for body in bodies {
            sqs.send_message()
                .queue_url(&queue)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
        self.sent += bodies.len();
    }

    /// Plays Lambda until every trigger queue is idle; `twice` delivers
    /// every message and event once more after its success.
    async fn run(&mut self, twice: bool) {
        let mut runner = Runner::new(
            self.manifest.clone(),
            aws_sdk_sqs::Client::new(&self.direct),
            self.lambda.clone(),
            // CHAOS_VERBOSE=1 prints the runner's line per invocation.
            std::env::var_os("CHAOS_VERBOSE").is_some(),
        )
        .with_cold_start_allowance(Duration::ZERO);
        if twice {
            runner = runner.deliver_everything_twice();
        }
        let idle = runner
            .run_until_idle(Duration::from_secs(4), Duration::from_secs(240))
            .await;
        assert!(idle, "{}: the pipeline did not go idle", self.name);
        for (function, s) in runner.stats() {
            let total = self.stats.entry(function).or_default();
            total.invocations += s.invocations;
            total.received += s.received;
            total.succeeded += s.succeeded;
            total.failed += s.failed;
            total.retried += s.retried;
            total.timed_out += s.timed_out;
            total.sent_to_failure_destination += s.sent_to_failure_destination;
        }
    }

    async fn figures(&self) -> Figures {
        Figures {
            scenario: self.name,
            sent: self.sent,
            deliveries: self.stats.values().map(|s| s.received).sum(),
            faulted: self.proxy.faulted(),
            state: StackState::read(&self.manifest, &self.direct)
                .await
                .unwrap(),
            effects: self.effects.clone(),
            stats: self.stats.clone(),
        }
    }

    /// Deletes what DynamoDB's TTL would have deleted by the test clock's
    /// now: items of the IdempotencyTable whose `expiration` has passed
    /// (idempotency records, mail quotas; never the sent-mail markers,
    /// which do not expire). Returns how many.
    async fn expire_by_ttl(&self) -> usize {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.direct);
        let table = env(&self.manifest, "IDEMPOTENCY_TABLE");
        let now_s = self.clock.now().unix_millis() / 1000;
        let mut expired = 0;
        let mut start = None;
        loop {
            let page = dynamodb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items.unwrap_or_default() {
                let expiration = item
                    .get("expiration")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok());
                if expiration.is_some_and(|e| e < now_s) {
                    dynamodb
                        .delete_item()
                        .table_name(table)
                        .key("id", item["id"].clone())
                        .send()
                        .await
                        .unwrap();
                    expired += 1;
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return expired;
            }
        }
    }

    /// Sends `bodies` straight to the SignupQueue's DLQ, as if they had
    /// landed there earlier (e.g. during an outage).
    async fn put_in_dlq(&self, bodies: &[String]) {
        let sqs = aws_sdk_sqs::Client::new(&self.direct);
        for body in bodies {
            sqs.send_message()
                .queue_url(self.signup_dlq())
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    }

    /// Moves every message of the SignupQueue's DLQ back to the queue, as a
    /// redrive does; returns the messages moved with their attributes.
    async fn redrive(&mut self) -> Vec<aws_sdk_sqs::types::Message> {
        let sqs = aws_sdk_sqs::Client::new(&self.direct);
        let (dlq, queue) = (self.signup_dlq(), self.signup_queue());
        let mut moved = Vec::new();
        loop {
            let messages = sqs
                .receive_message()
                .queue_url(&dlq)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                sqs.send_message()
                    .queue_url(&queue)
                    .message_body(m.body.clone().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                sqs.delete_message()
                    .queue_url(&dlq)
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                moved.push(m);
            }
        }
        self.sent += moved.len();
        moved
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// What a scenario ended with.
struct Figures {
    scenario: &'static str,
    sent: usize,
    deliveries: u64,
    faulted: Faulted,
    state: StackState,
    effects: Arc<Effects>,
    stats: BTreeMap<String, FunctionStats>,
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
            "| {:<40} | {:>4} | {:>10} | {:>7} | {:>12} | {:>12} | {:>14} | {:>13} | {:>3} |",
            self.scenario,
            self.sent,
            self.deliveries,
            self.faulted.total(),
            cell(users, max_user),
            cell(profiles, max_profiles),
            cell(welcome, max_welcome),
            cell(notes, max_notes),
            dlq
        );
    }

    fn stats(&self, function: &str) -> FunctionStats {
        self.stats.get(function).copied().unwrap_or_default()
    }
}

fn header() {
    println!(
        "| {:<40} | sent | deliveries | faulted | {:>12} | {:>12} | {:>14} | {:>13} | DLQ |",
        "scenario", "users", "profiles", "welcome emails", "notifications"
    );
    println!(
        "|{:-<42}|------|------------|---------|{:-<14}|{:-<14}|{:-<16}|{:-<15}|-----|",
        "", "", "", "", ""
    );
}

fn signup(id: &str) -> String {
    serde_json::json!({"user_id": id, "email": format!("{id}@example.com"), "name": format!("User {id}")}).to_string()
}

/// Every valid user ended with exactly one of each effect, and the stack's
/// state agrees.
fn assert_once_each(f: &Figures, users: usize) {
    // No user is ever written twice. (A crash can cut a batch's other writes
    // off after DynamoDB applied them but before their answer was counted,
    // so the table, checked below, is the count of users written.)
    // The same holds for profile rows: an outage can cut the answer of a
    // write DynamoDB applied; its retry finds the row and completes it.
    for kind in ["user write", "profile write"] {
        let (_, most_writes) = f.effects.of(kind);
        assert_eq!(most_writes, 1, "{}: a {kind} happened twice", f.scenario);
    }
    // No email goes out twice. Every one went out is the stack's outbox,
    // checked below: an email whose answer a fault cut went out unseen
    // (its retry finds the object, `Sent::Before`), so the count seen may
    // be short of `users`, never over it.
    for kind in ["welcome email sent", "notification email sent"] {
        let (sent, most) = f.effects.of(kind);
        assert!(most <= 1, "{}: a {kind} went out twice", f.scenario);
        assert!(sent <= users, "{}: {kind}: {sent} of {users}", f.scenario);
    }
    // Messages between functions are at-least-once: one whose answer was
    // lost is sent again (the consumers above act once). None is missing.
    for kind in ["notification enqueued", "event published"] {
        assert_eq!(f.effects.of(kind).0, users, "{}: {kind}", f.scenario);
    }
    // Every profile document and sent marker was written for every user
    // (mail is counted above, as the outbox objects created). Objects are
    // created once (`If-None-Match: *`); distinct keys are what must match.
    let documents = f.effects.keys_of("object put");
    assert_eq!(
        documents
            .iter()
            .filter(|k| k.starts_with("profiles/"))
            .count(),
        users,
        "{}: profile documents put",
        f.scenario
    );
    assert_eq!(
        f.effects.of("sent marker").0,
        2 * users,
        "{}: sent markers (welcome and confirmation)",
        f.scenario
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_two_or_three_times_has_one_effect() {
    const USERS: usize = 6;
    let mut h = Harness::deploy("duplicates (2-3 sends, 2 deliveries)", &[]).await;
    // Each signup is sent 2 or 3 times as separate messages, and the runner
    // delivers every message and event twice on top of that.
    let bodies: Vec<String> = (0..USERS)
        .flat_map(|i| std::iter::repeat_n(signup(&format!("d-{i}")), 2 + i % 2))
        .collect();
    h.send(&bodies).await;
    h.run(true).await;
    let f = h.figures().await;
    header();
    f.print();
    // The fault: every message really came more than once.
    let signups = f.stats("user-processor");
    assert!(
        signups.retried >= bodies.len() as u64,
        "every signup message was received again: {signups:?}"
    );
    assert!(f.deliveries >= 2 * bodies.len() as u64);
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_reach_the_dlq_and_good_ones_all_succeed() {
    const USERS: usize = 8;
    let mut h = Harness::deploy("poison mixed with good (3 of 11)", &[]).await;
    let mut bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("p-{i}"))).collect();
    let poison = [
        "{not json",
        r#"{"user_id":"x","email":"nope","name":"X"}"#,
        r#"{"user_id":"p-0","email":"thief@example.com","name":"Thief"}"#,
    ];
    for (i, p) in poison.iter().enumerate() {
        bodies.insert(2 * i + 1, (*p).to_owned());
    }
    h.send(&bodies).await;
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();
    assert_eq!(
        f.state.dead_letters_in("user-processor DLQ"),
        poison.len() as u64
    );
    assert_eq!(
        f.effects.of("dead letter"),
        (poison.len(), 1),
        "each poison record dead-lettered once, by user-processor"
    );
    assert_once_each(&f, USERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_in_the_middle_of_processing_loses_nothing() {
    const USERS: usize = 10;
    let mut h = Harness::deploy("AWS unreachable mid-batch for 4 s", &["MaxReceiveCount=6"]).await;
    // The 15th AWS call of the functions starts a 4 s outage: it and every
    // call until the end are cut, new connections refused. Enough receives
    // to outlast it before the DLQ.
    let outage = h.proxy.inject(
        Rule::any(Fault::Outage(Duration::from_secs(4)))
            .after(14)
            .times(1),
    );
    let bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("o-{i}"))).collect();
    h.send(&bodies).await;
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();
    assert_eq!(outage.faulted(), 1, "the outage started");
    assert!(
        f.faulted.cut + f.faulted.refused > 0,
        "the outage cut or refused calls: {:?}",
        f.faulted
    );
    // Because of it (no other fault here) records failed and came back:
    // an SQS record received again, or an event's invocation retried.
    let failed: u64 = f.stats.values().map(|s| s.failed).sum();
    let retried: u64 = f.stats.values().map(|s| s.retried).sum();
    assert!(
        failed > 0 && retried > 0,
        "the outage failed records and they were retried: {:?}",
        f.stats
    );
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_user_write_is_completed_by_the_retry_without_a_second_write() {
    const USERS: usize = 4;
    let mut h = Harness::deploy("worker crash after the user write", &[]).await;
    h.crashes
        .after_user_write_of
        .lock()
        .unwrap()
        .insert("c-2".to_owned());
    let bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("c-{i}"))).collect();
    h.send(&bodies).await;
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();
    assert_eq!(
        h.crashes.happened.load(Ordering::SeqCst),
        1,
        "the worker crashed once"
    );
    assert!(
        h.receipts
            .retried("user-processor")
            .contains(&signup("c-2")),
        "the crashed record was retried"
    );
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_never_answers_fails_only_its_record_and_the_invocation_answers_in_time() {
    const USERS: usize = 8;
    // Production's 10 s timeout: a hung call holds its stage until the
    // SDK's operation timeout (4 s) or the stage's cut-off, whichever is
    // first, and each later stage keeps a tenth of the time (1 s here, 0.3 s
    // at the local 3 s, too little for moto's PutEvents on a loaded 2-core
    // machine). The visibility timeout stays above it.
    let mut h = Harness::deploy(
        "one user write never answers",
        &["FunctionTimeout=10", "QueueVisibilityTimeout=12"],
    )
    .await;
    let users_table = env(&h.manifest, "USERS_TABLE").to_owned();
    // The user write of s-3 hangs on both attempts the SDK makes within its
    // 4 s operation timeout (its 2 s attempt timeout cuts the first, and it
    // retries): socket open, no answer, ever. It carries s-3 alone (each
    // user is its own conditional write). The retry's write answers.
    let slow = h.proxy.inject(
        Rule::on("DynamoDB_20120810.PutItem", Fault::Hang)
            .body_contains(&format!("\"TableName\":\"{users_table}\""))
            .body_contains("{\"S\":\"s-3\"}")
            .times(2),
    );
    let bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("s-{i}"))).collect();
    h.send(&bodies).await;
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();
    assert_eq!(slow.faulted(), 2, "the call hung on both attempts");
    assert_eq!(f.faulted.hung, 2);
    // The invocation returned its partial batch response before the
    // function timeout: the runner never had to cut it.
    assert_eq!(f.stats("user-processor").timed_out, 0, "{:?}", f.stats);
    // Only the record whose call hung came back.
    assert_eq!(
        h.receipts.retried("user-processor"),
        [signup("s-3")].into_iter().collect(),
        "{:?}",
        f.stats("user-processor")
    );
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_and_malformed_batch_answers_retry_the_records_they_leave_out() {
    const USERS: usize = 10;
    let mut h = Harness::deploy("batch APIs answer short or malformed", &[]).await;
    // The fault proxy's three rewrites (`Rewrite::SqsEntryMissing`,
    // `SqsUnknownId`, `PutEventsShort`: each drops or renames the answer's
    // last entry), each also noting whose signup its answer left out: the
    // request's last entry.
    let left_out = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let noting = |rewrite: fn(&mut Value) -> Option<()>, body: &'static str| {
        let left_out = Arc::clone(&left_out);
        Rewrite::Custom(Arc::new(move |request: &Value, answer: &Value| {
            let mut rewritten = answer.clone();
            rewrite(&mut rewritten)?;
            let last = request.get("Entries")?.as_array()?.last()?;
            let inner: Value = serde_json::from_str(last.get(body)?.as_str()?).ok()?;
            let user = inner.get("user_id")?.as_str()?.to_owned();
            left_out.lock().unwrap().insert(user);
            Some(rewritten)
        }))
    };
    fn entry_missing(answer: &mut Value) -> Option<()> {
        answer
            .get_mut("Successful")?
            .as_array_mut()?
            .pop()
            .map(drop)
    }
    fn unknown_id(answer: &mut Value) -> Option<()> {
        let entry = answer.get_mut("Successful")?.as_array_mut()?.last_mut()?;
        let id = entry.get("Id")?.as_str()?.to_owned();
        entry["Id"] = Value::String(format!("not-in-the-request-{id}"));
        Some(())
    }
    fn short(answer: &mut Value) -> Option<()> {
        answer.get_mut("Entries")?.as_array_mut()?.pop().map(drop)
    }
    let rules = [
        Rule::on(
            "AmazonSQS.SendMessageBatch",
            Fault::Rewrite(noting(entry_missing, "MessageBody")),
        ),
        Rule::on(
            "AmazonSQS.SendMessageBatch",
            Fault::Rewrite(noting(unknown_id, "MessageBody")),
        ),
        Rule::on(
            "AWSEvents.PutEvents",
            Fault::Rewrite(noting(short, "Detail")),
        ),
        // (No DynamoDB batch call is on this path: each user is created and
        // announced with a conditional write of its own.)
    ]
    .map(|rule| h.proxy.inject(rule.times(1)));
    let bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("b-{i}"))).collect();
    h.send(&bodies).await;
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();
    for (i, rule) in rules.iter().enumerate() {
        assert_eq!(rule.faulted(), 1, "rewrite {i} was applied");
    }
    assert_eq!(f.faulted.rewritten, 3);
    // What the answers left out was retried, not deleted as done, and
    // nothing else was.
    let left_out: BTreeSet<String> = left_out.lock().unwrap().iter().map(|u| signup(u)).collect();
    assert!(!left_out.is_empty(), "the rewrites left records out");
    assert_eq!(
        h.receipts.retried("user-processor"),
        left_out,
        "exactly the signups the answers left out were retried"
    );
    assert_once_each(&f, USERS);
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_older_than_every_idempotency_record_have_no_second_effect() {
    const USERS: usize = 6;
    let mut h = Harness::deploy("late duplicates (3 days, TTL expired)", &[]).await;
    let bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("l-{i}"))).collect();
    h.send(&bodies).await;
    h.run(false).await;
    let published = h.effects.published.lock().unwrap().clone();
    assert_eq!(published.len(), USERS);

    // Three days later every idempotency record has expired and DynamoDB's
    // TTL removed it; the same signups and the same events come again.
    h.clock.advance(Duration::from_secs(3 * 24 * 3600));
    let expired = h.expire_by_ttl().await;
    h.send(&bodies).await;
    let republished = EventBridgePublisher::new(
        eventline_aws::eventbridge::client(&h.direct),
        env(&h.manifest, "EVENT_BUS_NAME"),
    )
    .publish_all(&published)
    .await;
    assert!(republished.iter().all(Result::is_ok));
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();
    // The fault: the records that guarded the first run were gone, and
    // every duplicate really reached its function.
    // No function keeps an idempotency record any more: what expires is
    // the day's mail quota items, one per mailbox.
    assert!(expired >= USERS, "items expired: {expired}");
    assert!(f.stats("user-processor").received >= 2 * USERS as u64);
    assert!(f.stats("welcome-email").received >= 2 * USERS as u64);
    assert!(f.stats("profile-creator").received >= 2 * USERS as u64);
    assert_once_each(&f, USERS);
    // Nothing announced again either: no second confirmation or event.
    for kind in ["notification enqueued", "event published"] {
        assert_eq!(f.effects.of(kind), (USERS, 1), "{kind}");
    }
    assert_eq!(f.state.dead_letters_in("user-processor DLQ"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_redrive_days_later_processes_what_is_new_once_and_nothing_twice() {
    const USERS: usize = 4;
    let mut h = Harness::deploy("DLQ redrive 3 days later", &[]).await;
    let mut bodies: Vec<String> = (0..USERS).map(|i| signup(&format!("r-{i}"))).collect();
    let bad_email = "nope-not-an-address";
    let poison = [
        "{not json".to_owned(),
        serde_json::json!({"user_id": "r-x", "email": bad_email, "name": "X"}).to_string(),
    ];
    bodies.extend(poison.iter().cloned());
    h.send(&bodies).await;
    h.run(false).await;
    // A valid signup that landed in the DLQ earlier (never processed), and
    // one already processed, are waiting there beside the poison.
    let late = signup("r-late");
    h.put_in_dlq(&[late.clone(), signup("r-1")]).await;

    h.clock.advance(Duration::from_secs(3 * 24 * 3600));
    h.expire_by_ttl().await;
    let moved = h.redrive().await;
    h.run(false).await;
    let f = h.figures().await;
    header();
    f.print();

    // The fault: four messages really were redriven, the poison with its
    // reason (codes and names, never the value).
    assert_eq!(moved.len(), 4, "messages redriven");
    let rejected: Vec<_> = moved
        .iter()
        .filter(|m| poison.contains(m.body.as_ref().unwrap()))
        .collect();
    assert_eq!(rejected.len(), 2, "both poison records were dead-lettered");
    for m in rejected {
        let attributes = m.message_attributes.clone().unwrap_or_default();
        for name in [
            "eventline.error_code",
            "eventline.function",
            "eventline.first_seen",
        ] {
            assert!(
                attributes.contains_key(name),
                "{name} missing: {attributes:?}"
            );
        }
        for value in attributes.values() {
            let value = value.string_value.as_deref().unwrap_or_default();
            assert!(!value.contains(bad_email), "a value leaked: {value}");
        }
    }
    // r-late once, r-1 not again, the poison back in the DLQ.
    assert_once_each(&f, USERS + 1);
    assert_eq!(f.effects.of("user write").0, USERS + 1);
    for kind in ["notification enqueued", "event published"] {
        assert_eq!(f.effects.of(kind), (USERS + 1, 1), "{kind}");
    }
    assert_eq!(
        f.state.dead_letters_in("user-processor DLQ"),
        poison.len() as u64
    );
}

/// The soak: `SOAK_SIGNUPS` (default 10,000) messages through the
/// pipeline, 10 % of them duplicates and 5 % poison, with an outage
/// started mid-run; exact final counts and the throughput. `make soak`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with `make soak`"]
async fn soak() {
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
