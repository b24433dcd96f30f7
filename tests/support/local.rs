//! Processes for tests that run the local stack: a private moto server,
//! provisioning from template.yaml, and child process groups that are
//! stopped when dropped (also when a test panics).

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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process group, stopped when dropped.
pub struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.0.id()))
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

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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

/// Starts moto on a free port and provisions template.yaml with the extra
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

/// Starts moto on a free port and provisions template.yaml into each of
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

/// A moto server on a free port, its log in `target/<name>/`.
fn start_moto(name: &str) -> (PathBuf, Background, String) {
    let work = root().join("target").join(name);
    std::fs::create_dir_all(&work).unwrap();
    let port = free_port();
    let moto = spawn(
        Command::new(venv().join("moto_server")).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
        &work.join("moto.log"),
    );
    wait_for_port(port, "moto");
    (work, moto, format!("http://127.0.0.1:{port}"))
}

/// `provision.py` against `endpoint`, writing the manifest and env file.
fn provision_command(endpoint: &str, manifest: &Path, env: &Path) -> Command {
    let mut command = Command::new(venv().join("python"));
    command.args(["scripts/provision.py", "--endpoint", endpoint, "--out"]);
    command.arg(manifest).arg("--env-out").arg(env);
    command
}
