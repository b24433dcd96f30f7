//! End to end: template.yaml provisioned into a private moto server, the
//! four real function binaries served by `cargo lambda watch`, and the
//! devstack runner playing Lambda, exactly as `make demo` runs them.
//!
//! Needs the tool chain from `make setup` (.venv) and builds the functions
//! (debug) before it starts; `make test` does both.
//!
//! The functions run with `AWS_LAMBDA_LOG_LEVEL=TRACE` and JSON logs, the
//! most verbose setting Lambda allows, and everything they print (captured
//! from `cargo lambda watch` in `target/e2e/watch.log`) must be free of the
//! emails and names the test sends.

use eventline_devstack::invoke::Invoker;
use eventline_devstack::manifest::Manifest;
use eventline_devstack::runner::Runner;
use eventline_devstack::state::StackState;
use eventline_tests::local::{
    free_port, group_listens, http_get, provision, root, run, start_listening, start_moto_server,
    venv, MOTO_TITLE,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn signup(id: &str) -> String {
    serde_json::json!({"user_id": id, "email": email(id), "name": name(id)}).to_string()
}

fn email(id: &str) -> String {
    format!("{id}@example.com")
}

fn name(id: &str) -> String {
    format!("User {id}")
}

/// The invalid signup's address and name: personal data too.
const BAD_EMAIL: &str = "nope-not-an-address";
const BAD_NAME: &str = "Bad Input Name";

/// `env` with Lambda's log controls at their most verbose: every level, JSON.
fn at_trace(env: &str) -> String {
    let mut lines: Vec<&str> = env
        .lines()
        .filter(|l| {
            !l.starts_with("AWS_LAMBDA_LOG_LEVEL=") && !l.starts_with("AWS_LAMBDA_LOG_FORMAT=")
        })
        .collect();
    lines.extend(["AWS_LAMBDA_LOG_LEVEL=TRACE", "AWS_LAMBDA_LOG_FORMAT=JSON"]);
    lines.join("\n") + "\n"
}

/// Waits until `done` holds; fails with `what` after four minutes (a guard
/// against a hang, not a timing assertion).
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The JSON log lines in `output` (cargo lambda's own lines are not JSON).
fn json_lines(output: &str) -> Vec<serde_json::Value> {
    output
        .lines()
        .filter_map(|l| l.find('{').map(|start| &l[start..]))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("level").is_some())
        .collect()
}

/// The harness never takes another program's listener for the server it
/// started: with the first port offered held by an impostor that accepts and
/// even answers as moto, the start retries and returns its own server.
#[test]
fn a_server_start_never_takes_another_listener_for_its_own() {
    let impostor = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = impostor.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in impostor.incoming().flatten() {
            // Read the request first: closing with it unread would reset the connection.
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\n\r\n<title>Moto</title>");
        }
    });
    assert!(
        http_get(held, "/moto-api/").is_some_and(|b| b.contains(MOTO_TITLE)),
        "the impostor answers as moto"
    );
    let work = root().join("target/harness");
    std::fs::create_dir_all(&work).unwrap();
    let (mut moto, port) = start_listening(
        "moto",
        &work.join("moto-held.log"),
        [held].into_iter().chain(std::iter::repeat_with(free_port)),
        |port| {
            let mut command = Command::new(venv().join("moto_server"));
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            command
        },
        "/moto-api/",
        MOTO_TITLE,
    );
    assert_ne!(port, held, "took the impostor for its server");
    assert!(!moto.exited());
    assert!(group_listens(moto.group()).contains(&port));

    // On port 0 moto binds a port no one holds; the harness reads it from
    // moto's own socket and checks moto's own answer there.
    let (mut moto, port) = start_moto_server(&work.join("moto-0.log"));
    assert_ne!(port, held);
    assert!(!moto.exited());
    assert_eq!(group_listens(moto.group()), [port]);
    assert!(http_get(port, "/moto-api/").is_some_and(|b| b.contains(MOTO_TITLE)));
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

    // The template's own function timeout, not the 3 s local default: at
    // TRACE a debug build on a loaded machine can need more than 3 s for a
    // batch, and a timeout would change what this test counts. Retries come
    // back after the visibility timeout, so they wait for a cold start too.
    let stack = provision("e2e", &["FunctionTimeout=10", "QueueVisibilityTimeout=10"]);
    run(Command::new(venv().join("python"))
        .arg("scripts/provision.py")
        .arg("--check")
        .arg("--out")
        .arg(&stack.manifest_path));
    let manifest_path = stack.manifest_path.clone();
    let env_path = root().join("target/e2e/functions-trace.env");
    std::fs::write(
        &env_path,
        at_trace(&std::fs::read_to_string(&stack.env_path).unwrap()),
    )
    .unwrap();
    let watch_log = root().join("target/e2e/watch.log");

    // Ready when its own answer comes from its own listener: GET / on the
    // invoke port names the workspace's functions (cargo lambda's 404 for
    // the default route). A port taken meanwhile makes it exit: retried.
    let (_watch, invoke_port) = start_listening(
        "cargo lambda watch",
        &watch_log,
        std::iter::repeat_with(free_port),
        |port| {
            let mut command = Command::new("cargo");
            command
                .env("PATH", &path)
                .args([
                    "lambda",
                    "watch",
                    // Built up front; other work in the tree must not reload them mid-test.
                    "--ignore-changes",
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                    &port.to_string(),
                    "--env-file",
                ])
                .arg(&env_path);
            command
        },
        "/",
        "user-processor",
    );

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
    let mut signup_ids = Vec::new();
    for i in 0..N {
        let sent = send(signups.clone(), signup(&format!("u-{i}"))).await;
        signup_ids.push(sent.message_id.unwrap_or_default());
    }
    send(signups.clone(), signup("u-0")).await;
    send(
        signups.clone(),
        serde_json::json!({"user_id": "u-bad", "email": BAD_EMAIL, "name": BAD_NAME}).to_string(),
    )
    .await;
    send(signups.clone(), "not json at all".to_owned()).await;
    // A notification that arrives before its user exists: it fails once,
    // then succeeds on a retry after the signup sent below is processed
    // (its receives are 10 s apart: time for a cold user-processor).
    let late = eventline_domain::Notification::new(
        eventline_domain::UserId::parse("u-late").unwrap(),
        eventline_domain::NotificationKind::SignupConfirmation,
    );
    send(notifications.clone(), late.to_json()).await;

    let runner = Arc::new(
        Runner::new(
            manifest.clone(),
            sqs.clone(),
            Invoker::new(
                format!("http://127.0.0.1:{invoke_port}"),
                Duration::from_secs(120),
            ),
            true,
        )
        // A first invocation also starts the binary through `cargo run`, which
        // waits for any other cargo process holding the target directory.
        .with_cold_start_allowance(Duration::from_secs(240)),
    );
    let started = Instant::now();
    let running = tokio::spawn({
        let runner = runner.clone();
        async move {
            runner
                .run_until_idle(Duration::from_secs(4), Duration::from_secs(240))
                .await
        }
    });
    wait_for("the early notification was never tried", || {
        runner.stats()["notification-processor"].failed > 0
    })
    .await;
    send(signups.clone(), signup("u-late")).await;
    assert!(
        running.await.unwrap(),
        "the pipeline did not go idle within the limit"
    );
    eprintln!(
        "pipeline idle after {:.1} s at TRACE",
        started.elapsed().as_secs_f64()
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
    // Each invalid signup was dead-lettered once, by the function, with its reason; nothing else was.
    assert_eq!(state.dead_letters_in("user-processor DLQ"), 2, "{state:?}");
    for (label, (_, n)) in &state.dead_letters {
        if label != "user-processor DLQ" {
            assert_eq!(*n, 0, "{label}: {state:?}");
        }
    }
    let stats = runner.stats();
    let up = stats["user-processor"];
    // A dead-lettered record is handled: deleted from the source queue.
    assert_eq!(
        up.succeeded,
        valid + 1 + 2,
        "every valid signup once, plus the duplicate's replay, plus the two dead-lettered: {stats:?}"
    );
    // The invalid signups can never succeed: dead-lettered at once, not
    // retried. Only the duplicate of u-0 may be put back once, if it arrived
    // while u-0 was in progress (then it replays).
    assert!(up.failed <= 1, "{stats:?}");
    let np = stats["notification-processor"];
    assert!(
        np.failed >= 1 && np.retried >= 1,
        "the early notification failed, then was retried: {stats:?}"
    );
    // Every user's notification, plus the early one for u-late (which then
    // replays, or is replayed by, the one the pipeline queued).
    assert_eq!(np.succeeded, valid + 1, "{stats:?}");

    // No email address or name reached the functions' output, at TRACE.
    let output = std::fs::read_to_string(&watch_log).unwrap();
    let mut personal = vec![BAD_EMAIL.to_owned(), BAD_NAME.to_owned()];
    for id in (0..N)
        .map(|i| format!("u-{i}"))
        .chain(["u-late".to_owned()])
    {
        personal.extend([email(&id), name(&id)]);
    }
    for value in &personal {
        let leaks: Vec<&str> = output
            .lines()
            .filter(|l| l.contains(value.as_str()))
            .collect();
        assert!(
            leaks.is_empty(),
            "{value:?} in the functions' output ({}):\n{}",
            watch_log.display(),
            leaks.join("\n")
        );
    }
    // And the check is not vacuous: TRACE was really on in the runtime and
    // the SDK, and every function logged its work.
    let lines = json_lines(&output);
    assert!(
        lines.iter().any(|l| l["level"] == "TRACE"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Waiting for next event")
                    || m.starts_with("New event arrived"))),
        "no TRACE line from lambda_runtime in {}",
        watch_log.display()
    );
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "DEBUG" && l.get("request_id").is_some()),
        "no DEBUG line from an SDK operation in {}",
        watch_log.display()
    );
    // One signup's message id is its correlation id in every function that
    // touched it: one query finds its whole story (docs/observability.md).
    let followed = &signup_ids[3];
    let mut told: Vec<&str> = lines
        .iter()
        .filter(|l| l["correlation_id"] == followed.as_str() && l["user_id"] == "u-3")
        .filter_map(|l| l["message"].as_str())
        .collect();
    told.sort_unstable();
    told.dedup();
    assert_eq!(
        told,
        [
            "notification delivered",
            "profile created",
            "signup processed",
            "user created",
            "welcome email sent",
        ],
        "u-3's lines by its correlation id {followed} in {}",
        watch_log.display()
    );
    for function in [
        "user-processor",
        "notification-processor",
        "welcome-email",
        "profile-creator",
    ] {
        let info = lines
            .iter()
            .filter(|l| {
                l["level"] == "INFO"
                    && l["function_name"]
                        .as_str()
                        .is_some_and(|f| f.ends_with(function))
                    && l.get("function_request_id").is_some()
            })
            .count();
        assert!(
            info > 0,
            "no INFO line of {function} inside an invocation in {}",
            watch_log.display()
        );
    }
}
