//! One scenario's stack ([`Harness`]): template.yaml deployed into a
//! moto server of its own, the four functions in-process over the counted
//! AWS adapters behind the fault proxy, devstack's runner playing Lambda,
//! and what each function received ([`Receipts`]).

use super::counted::{Counter, Crashes, Effects, TestClock};
use super::figures::Figures;
use aws_config::SdkConfig;
use eventline_app::ports::Clock;
use eventline_aws::AwsAdapters;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::{FunctionStats, Runner};
use eventline_devstack::state::StackState;
use eventline_powertools::sqs::SqsEvent;
use eventline_tests::fault_proxy::FaultProxy;
use eventline_tests::local::{provision, ProvisionedStack};
use eventline_tests::player::Lambda;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which records each SQS-triggered function received more than once
/// (by body), to show which records a fault sent back for a retry; and
/// the bodies of each batch, in order.
#[derive(Default)]
pub(crate) struct Receipts(
    Mutex<BTreeMap<String, BTreeMap<String, u32>>>,
    Mutex<Vec<(String, BTreeSet<String>)>>,
);

impl Receipts {
    pub(crate) fn note(&self, function: &str, event: &SqsEvent) {
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
    pub(crate) fn retried(&self, function: &str) -> BTreeSet<String> {
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

/// `var` in the deployed environment of the first function that has it.
pub(crate) fn env<'a>(manifest: &'a Manifest, var: &str) -> &'a str {
    manifest
        .functions
        .iter()
        .find_map(|f| f.environment.get(var))
        .unwrap_or_else(|| panic!("{var} not in the manifest"))
}

/// One scenario's stack: template.yaml in a moto server of its own, the
/// functions in-process behind the fault proxy, and what they did.
pub(crate) struct Harness {
    pub(crate) name: &'static str,
    pub(crate) _stack: ProvisionedStack,
    pub(crate) manifest: Manifest,
    /// Straight to moto: the test's own calls, never faulted.
    pub(crate) direct: SdkConfig,
    pub(crate) proxy: FaultProxy,
    pub(crate) effects: Arc<Effects>,
    pub(crate) crashes: Arc<Crashes>,
    pub(crate) receipts: Arc<Receipts>,
    pub(crate) clock: TestClock,
    pub(crate) lambda: Lambda,
    pub(crate) sent: usize,
    pub(crate) stats: BTreeMap<String, FunctionStats>,
}

impl Harness {
    pub(crate) async fn deploy(name: &'static str, parameters: &[&str]) -> Self {
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

    pub(crate) fn signup_queue(&self) -> String {
        self.manifest
            .function("user-processor")
            .unwrap()
            .sqs_sources[0]
            .queue_url
            .clone()
    }

    pub(crate) fn signup_dlq(&self) -> String {
        self.manifest
            .function("user-processor")
            .unwrap()
            .sqs_sources[0]
            .dead_letter_queue_url
            .clone()
            .expect("SignupQueue has a DLQ")
    }

    /// Sends `bodies` to the SignupQueue, straight to moto.
    pub(crate) async fn send(&mut self, bodies: &[String]) {
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
    pub(crate) async fn run(&mut self, twice: bool) {
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

    pub(crate) async fn figures(&self) -> Figures {
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
    pub(crate) async fn expire_by_ttl(&self) -> usize {
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
    pub(crate) async fn put_in_dlq(&self, bodies: &[String]) {
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
    pub(crate) async fn redrive(&mut self) -> Vec<aws_sdk_sqs::types::Message> {
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

pub(crate) fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A valid signup body for user `id`.
pub(crate) fn signup(id: &str) -> String {
    serde_json::json!({"user_id": id, "email": format!("{id}@example.com"), "name": format!("User {id}")}).to_string()
}
