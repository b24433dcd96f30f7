//! Processes for tests that run the local stack: a private moto server,
//! provisioning from template.yaml, and child process groups that are
//! stopped when dropped (also when a test panics).
//!
//! A server counts as started only when *it* answers: moto binds port 0 and
//! its port is read from its own listening socket, other servers are started
//! on a port and retried on another if they exit; in both cases the answer
//! must come from that process group's socket, never from whatever accepts
//! connections on the port (another test's listener did, issue 16).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The project's virtualenv `bin/` (from `make setup`).
pub fn venv() -> PathBuf {
    root().join(".venv/bin")
}

/// A TCP port that was free on 127.0.0.1 a moment ago. Only a hint: another
/// process may take it before a server binds it, so a server started on it is
/// checked with [`start_listening`], never with "something accepts there".
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process group, stopped when dropped.
pub struct Background(Child);

impl Background {
    /// The process group's id (the child's pid: it leads its own group).
    pub fn group(&self) -> u32 {
        self.0.id()
    }

    /// Whether the child has exited (then its port, if any, is not its own).
    pub fn exited(&mut self) -> bool {
        !matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.0.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// Starts `command` in its own process group, output to `log`.
pub fn spawn(command: &mut Command, log: &Path) -> Background {
    let log = std::fs::File::create(log).unwrap();
    let child = command
        .current_dir(root())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e} (run `make setup`)"));
    Background(child)
}

/// How long a server may take to answer (a guard against a hang, not a
/// timing assertion: a loaded machine starts moto in seconds).
const START_LIMIT: Duration = Duration::from_secs(90);

/// Starts a server with `command(port)` on ports from `ports` until one
/// attempt is ready: a process of its own group listens on that port and
/// `GET path` there answers with a body containing `needle`. An attempt whose
/// process exits (the port was taken meanwhile) is retried on the next port;
/// another program listening on the port never counts as this server.
pub fn start_listening(
    what: &str,
    log: &Path,
    mut ports: impl Iterator<Item = u16>,
    command: impl Fn(u16) -> Command,
    path: &str,
    needle: &str,
) -> (Background, u16) {
    let mut tried = Vec::new();
    for _ in 0..5 {
        let Some(port) = ports.next() else { break };
        tried.push(port);
        let mut server = spawn(&mut command(port), log);
        let deadline = Instant::now() + START_LIMIT;
        while !server.exited() {
            if group_listens(server.group()).contains(&port)
                && http_get(port, path).is_some_and(|body| body.contains(needle))
                && !server.exited()
            {
                return (server, port);
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not answer on port {port} within {START_LIMIT:?}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{what} exited at start on port {port} (taken?); retrying on another port");
    }
    panic!(
        "{what} did not start on any of ports {tried:?}; see {}",
        log.display()
    )
}

/// Starts moto on port 0: the kernel gives it a port no one else holds, and
/// the port is read from the socket its process listens on, then confirmed by
/// moto's own answer (`GET /moto-api/`). Retried if the process exits early.
pub fn start_moto_server(log: &Path) -> (Background, u16) {
    for _ in 0..3 {
        let mut moto = spawn(
            Command::new(venv().join("moto_server")).args(["-H", "127.0.0.1", "-p", "0"]),
            log,
        );
        let deadline = Instant::now() + START_LIMIT;
        while !moto.exited() {
            let ports = group_listens(moto.group());
            if let Some(&port) = ports.first() {
                if http_get(port, "/moto-api/").is_some_and(|body| body.contains(MOTO_TITLE))
                    && !moto.exited()
                {
                    return (moto, port);
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto did not answer within {START_LIMIT:?}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("moto exited at start; retrying (log: {})", log.display());
    }
    panic!("moto did not start; see {}", log.display())
}

/// What moto's dashboard (`GET /moto-api/`) answers with, and no other server.
pub const MOTO_TITLE: &str = "<title>Moto</title>";

/// The TCP ports on which processes of the group `group` listen (Linux: the
/// listening sockets of /proc/net/tcp{,6} matched to the group's open files).
pub fn group_listens(group: u32) -> Vec<u16> {
    let mut listening = std::collections::HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the inode.
            if fields.len() > 9 && fields[3] == "0A" {
                let port = fields[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if let Some(port) = port {
                    listening.insert(format!("socket:[{}]", fields[9]), port);
                }
            }
        }
    }
    let mut ports = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return ports;
    };
    for process in processes.flatten() {
        let dir = process.path();
        let in_group = std::fs::read_to_string(dir.join("stat")).is_ok_and(|stat| {
            // pid (comm) state ppid pgrp …: comm may hold spaces, so count from its ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                .and_then(|g| g.parse::<u32>().ok())
                == Some(group)
        });
        if !in_group {
            continue;
        }
        for fd in std::fs::read_dir(dir.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if let Some(&port) = listening.get(target.to_string_lossy().as_ref()) {
                    ports.push(port);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The body of `GET path` on 127.0.0.1:`port`, whatever its status; `None`
/// if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.starts_with("HTTP/").then_some(answer)
}

/// Runs `command` to completion in the workspace root; panics on failure.
pub fn run(command: &mut Command) {
    let status = command.current_dir(root()).status().unwrap();
    assert!(status.success(), "{command:?} failed: {status}");
}

/// A moto server of its own with template.yaml deployed into it.
pub struct ProvisionedStack {
    /// The server (stopped on drop).
    pub moto: Background,
    /// Its endpoint.
    pub endpoint: String,
    /// The manifest provision.py wrote.
    pub manifest_path: PathBuf,
    /// The env file provision.py wrote.
    pub env_path: PathBuf,
}

/// Starts a moto server of its own and provisions template.yaml with the extra
/// `parameters` (`Key=Value`); files go to `target/<name>/`.
pub fn provision(name: &str, parameters: &[&str]) -> ProvisionedStack {
    let (work, moto, endpoint) = start_moto(name);
    let (manifest_path, env_path) = (work.join("stack.json"), work.join("functions.env"));
    let mut command = provision_command(&endpoint, &manifest_path, &env_path);
    for p in parameters {
        command.args(["--parameter", p]);
    }
    run(command.stdout(Stdio::null()));
    ProvisionedStack {
        moto,
        endpoint,
        manifest_path,
        env_path,
    }
}

/// A moto server of its own with template.yaml deployed into several of its
/// regions (`provision.py --regions`, the first the primary).
pub struct ProvisionedRegions {
    /// The server (stopped on drop).
    pub moto: Background,
    /// Its endpoint.
    pub endpoint: String,
    /// Each region's manifest, in the order given.
    pub manifest_paths: Vec<PathBuf>,
}

/// Starts a moto server of its own and provisions template.yaml into each of
/// `regions`; files go to `target/<name>/<region>/`.
pub fn provision_regions(name: &str, regions: &[&str]) -> ProvisionedRegions {
    let (work, moto, endpoint) = start_moto(name);
    let (manifest_path, env_path) = (work.join("stack.json"), work.join("functions.env"));
    let mut command = provision_command(&endpoint, &manifest_path, &env_path);
    command.args(["--regions", &regions.join(",")]);
    run(command.stdout(Stdio::null()));
    ProvisionedRegions {
        moto,
        endpoint,
        manifest_paths: regions
            .iter()
            .map(|r| work.join(r).join("stack.json"))
            .collect(),
    }
}

/// A moto server of its own, its log in `target/<name>/`.
fn start_moto(name: &str) -> (PathBuf, Background, String) {
    let work = root().join("target").join(name);
    std::fs::create_dir_all(&work).unwrap();
    let (moto, port) = start_moto_server(&work.join("moto.log"));
    (work, moto, format!("http://127.0.0.1:{port}"))
}

/// `provision.py` against `endpoint`, writing the manifest and env file.
fn provision_command(endpoint: &str, manifest: &Path, env: &Path) -> Command {
    let mut command = Command::new(venv().join("python"));
    command.args(["scripts/provision.py", "--endpoint", endpoint, "--out"]);
    command.arg(manifest).arg("--env-out").arg(env);
    command
}
