//! CPU cost of the pipeline without I/O: the domain (parse + validate +
//! render) and the user-processor batch path with in-memory ports.
//!
//! `cargo bench -p eventline-app --bench pipeline` (numbers: docs/performance.md)

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eventline_app::memory::{MemoryAdapters, SETTINGS};
use eventline_app::{compose, user_processor, Settings};
use eventline_domain::{email, Signup, Timestamp, User, UserCreated};
use eventline_powertools::batch::Message;
use eventline_powertools::env::Env;
use std::hint::black_box;

const BODY: &str =
    r#"{"user_id":"u-1001","email":"ada.lovelace@example.com","name":"Ada Lovelace"}"#;

fn domain(c: &mut Criterion) {
    let mut group = c.benchmark_group("domain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_signup", |b| {
        b.iter(|| Signup::parse(black_box(BODY)).unwrap())
    });
    let user = User::from_signup(
        Signup::parse(BODY).unwrap(),
        Timestamp::from_unix_millis(1_795_771_466_123),
    );
    let event = UserCreated::from_user(&user);
    group.bench_function("render_welcome_email", |b| {
        b.iter(|| email::welcome(black_box(&event)))
    });
    group.bench_function("serialise_event_detail", |b| {
        b.iter(|| black_box(&event).to_detail_json())
    });
    group.finish();
}

fn batch(n: usize, offset: usize) -> Vec<Message> {
    (offset..offset + n)
        .map(|i| {
            let body = serde_json::json!({"user_id": format!("u-{i}"), "email": "ada@example.com", "name": "Ada"});
            Message::new(format!("m-{i}"), body.to_string())
        })
        .collect()
}

fn user_processor(c: &mut Criterion) {
    // The use case bounds every stage by the invocation's deadline: it needs the time driver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let settings =
        Settings::from_env(Env::from_map(SETTINGS), user_processor::Config::from_env).unwrap();
    let wiring = MemoryAdapters::default().user_processor_wiring(&settings);
    let processor = compose::user_processor(wiring, &settings);
    let mut group = c.benchmark_group("user_processor");
    group.throughput(Throughput::Elements(10));
    let mut offset = 0;
    // Fresh user ids every iteration, so each batch does the full work
    // (lock, store, send, publish, complete) rather than replaying.
    group.bench_function("batch_of_10_in_memory", |b| {
        b.iter_batched(
            || {
                offset += 10;
                batch(10, offset)
            },
            |messages| runtime.block_on(processor.handle(messages, 5_000)).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, domain, user_processor);
criterion_main!(benches);
