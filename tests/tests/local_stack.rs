//! End to end: template.yaml provisioned into a private moto server, the
//! four real function binaries served by `cargo lambda watch`, and the
//! devstack runner playing Lambda, exactly as `make demo` runs them.
//!
//! Needs the tool chain from `make setup` (.venv) and builds the functions
//! (debug) before it starts; `make test` does both.

use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::Runner;
use eventline_devstack::state::StackState;
use eventline_tests::local::{free_port, provision, root, run, spawn, venv, wait_for_port};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn signup(id: &str) -> String {
    serde_json::json!({"user_id": id, "email": format!("{id}@example.com"), "name": format!("User {id}")}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_stack_processes_signups_end_to_end() {
    let path = format!(
        "{}:{}",
        venv().display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // The same binaries cargo lambda watch runs, built up front so that no
    // invocation waits for a compile longer than the visibility timeout.
    for bin in [
        "user-processor",
        "notification-processor",
        "welcome-email",
        "profile-creator",
    ] {
        run(Command::new("cargo").args(["build", "--quiet", "--bin", bin]));
    }

    let stack = provision("e2e", &[]);
    run(Command::new(venv().join("python"))
        .arg("scripts/provision.py")
        .arg("--check")
        .arg("--out")
        .arg(&stack.manifest_path));
    let (manifest_path, env_path) = (stack.manifest_path.clone(), stack.env_path.clone());

    let invoke_port = free_port();
    let _watch = spawn(
        Command::new("cargo")
            .env("PATH", &path)
            .args([
                "lambda",
                "watch",
                "--invoke-port",
                &invoke_port.to_string(),
                "--env-file",
            ])
            .arg(&env_path),
        &root().join("target/e2e/watch.log"),
    );
    wait_for_port(invoke_port, "cargo lambda watch");

    let manifest = Manifest::load(&manifest_path).unwrap();
    let sdk = eventline_devstack::sdk_config(&manifest.endpoint, &manifest.region).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_of = |function: &str| {
        manifest.function(function).unwrap().sqs_sources[0]
            .queue_url
            .clone()
    };
    let (signups, notifications) = (
        queue_of("user-processor"),
        queue_of("notification-processor"),
    );
    let send = |queue: String, body: String| {
        let sqs = sqs.clone();
        async move {
            sqs.send_message()
                .queue_url(queue)
                .message_body(body)
                .send()
                .await
                .unwrap()
        }
    };

    // N valid signups (one of them twice), and two invalid ones.
    const N: usize = 6;
    for i in 0..N {
        send(signups.clone(), signup(&format!("u-{i}"))).await;
    }
    send(signups.clone(), signup("u-0")).await;
    send(
        signups.clone(),
        r#"{"user_id":"u-bad","email":"nope","name":"Bad"}"#.to_owned(),
    )
    .await;
    send(signups.clone(), "not json at all".to_owned()).await;
    // A notification that arrives before its user exists: it fails once,
    // then succeeds on the retry after the signup below is processed.
    let late = eventline_domain::Notification::new(
        eventline_domain::UserId::parse("u-late").unwrap(),
        eventline_domain::NotificationKind::SignupConfirmation,
    );
    send(notifications.clone(), late.to_json()).await;

    let runner = Arc::new(Runner::new(
        manifest.clone(),
        sqs.clone(),
        Invoker::new(
            format!("http://127.0.0.1:{invoke_port}"),
            Duration::from_secs(120),
        ),
        true,
    ));
    let running = tokio::spawn({
        let runner = runner.clone();
        async move {
            runner
                .run_until_idle(Duration::from_secs(4), Duration::from_secs(240))
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while runner.stats()["notification-processor"].failed == 0 {
        assert!(
            Instant::now() < deadline,
            "the early notification was never tried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(signups.clone(), signup("u-late")).await;
    assert!(
        running.await.unwrap(),
        "the pipeline did not go idle within the limit"
    );

    let state = StackState::read(&manifest, &sdk).await.unwrap();
    let valid = (N + 1) as u64; // u-0 … u-5 and u-late
    assert_eq!(state.items_in("USERS_TABLE"), valid, "{state:?}");
    assert_eq!(state.items_in("PROFILES_TABLE"), valid, "{state:?}");
    assert_eq!(state.objects_of("profiles/"), valid, "{state:?}");
    assert_eq!(state.objects_of("outbox/welcome"), valid, "{state:?}");
    assert_eq!(
        state.objects_of("outbox/signup_confirmation"),
        valid,
        "{state:?}"
    );
    // Each invalid signup was received maxReceiveCount times, then dead-lettered; nothing else was.
    assert_eq!(state.dead_letters_in("user-processor DLQ"), 2, "{state:?}");
    for (label, (_, n)) in &state.dead_letters {
        if label != "user-processor DLQ" {
            assert_eq!(*n, 0, "{label}: {state:?}");
        }
    }
    let stats = runner.stats();
    let up = stats["user-processor"];
    assert_eq!(
        up.succeeded,
        valid + 1,
        "every valid signup once, plus the duplicate's replay: {stats:?}"
    );
    // Two invalid signups, three receives each; the duplicate of u-0 may also
    // fail once if it arrived while u-0 was in progress (then it replays).
    assert!((6..=7).contains(&up.failed), "{stats:?}");
    let np = stats["notification-processor"];
    assert!(
        np.failed >= 1 && np.retried >= 1,
        "the early notification failed, then was retried: {stats:?}"
    );
    // Every user's notification, plus the early one for u-late (which then
    // replays, or is replayed by, the one the pipeline queued).
    assert_eq!(np.succeeded, valid + 1, "{stats:?}");
}
