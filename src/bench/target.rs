//! What a bench runs against: a local `switchboard dev` child process, or a remote master.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use quinn::Endpoint;
use switchboard_client::ClientConfig;
use switchboard_transport::Trust;

/// A deployment under test.
#[derive(Debug)]
pub struct Target {
    /// The master's client address.
    pub master: String,
    /// Roots to trust.
    pub trust: Trust,
    /// The certificate file (local deployments), for the baseline server.
    pub tls_dir: Option<PathBuf>,
    /// The server process, when local.
    pub pid: Option<u32>,
    child: Option<Child>,
    _tmp: Option<TempDir>,
    endpoints: Vec<Endpoint>,
}

/// A directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU time and resident memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

impl ProcStats {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` (Linux; ticks of 1/100 s).
    pub fn read(pid: u32) -> Option<ProcStats> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may contain spaces) start after ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb: u64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(ProcStats {
            cpu_seconds: ticks as f64 / 100.0,
            rss_bytes: rss_kb * 1024,
        })
    }
}

/// Counts the system calls of a local server process while it runs, with `perf stat` on
/// the `raw_syscalls:sys_enter` tracepoint (a counter, not sampling: the process runs at
/// full speed). Nothing when perf is not installed or not allowed to trace.
pub(crate) struct SyscallCount(Child);

impl SyscallCount {
    /// Starts counting the system calls of `pid`.
    pub fn start(pid: Option<u32>) -> Option<SyscallCount> {
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p"])
            .arg(pid?.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // perf attaches within milliseconds; the run starts 200 ms after this.
        Some(SyscallCount(child))
    }

    /// Stops counting: the system calls since `start`.
    pub fn stop(self) -> Option<u64> {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let out = self.0.wait_with_output().ok()?;
        // CSV: count,unit,event,...
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))?
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

/// Runtime threads of the servers the bench starts (`bench --server-threads`).
static SERVER_THREADS: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

/// Starts every server of this run on `n` runtime threads.
pub(crate) fn set_server_threads(n: u16) {
    let _ = SERVER_THREADS.set(n);
}

/// Spawns this binary with `args` and reads the JSON ready line it prints.
pub(crate) fn spawn_ready(args: &[&str]) -> anyhow::Result<(Child, serde_json::Value)> {
    let exe = std::env::current_exe().context("locating the switchboard binary")?;
    // A `dev` started here keeps its state file away from the user's own `dev`.
    let home = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    let mut child = Command::new(exe)
        .args(args)
        .env("SWITCHBOARD_DEV_HOME", home.join("home"))
        .env("RUST_LOG", "warn")
        .envs(
            SERVER_THREADS
                .get()
                .map(|n| ("SWITCHBOARD_THREADS", n.to_string())),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a child process")?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let ready: serde_json::Value = serde_json::from_str(&line)
        .with_context(|| format!("the child printed {line:?} instead of its ready line"))?;
    if ready["ready"] != true {
        bail!("the child is not ready: {line}");
    }
    Ok((child, ready))
}

impl Target {
    /// A remote master (`master` given) or a local `switchboard dev` child process.
    pub async fn open(
        master: Option<&str>,
        ca: Option<&Path>,
        game_servers: usize,
        dev_args: &[&str],
    ) -> anyhow::Result<Target> {
        let endpoints = (0..8)
            .map(|_| switchboard_transport::client_endpoint(false))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(master) = master {
            // Without --ca: this user's `dev` certificate for its master, else the
            // system's roots.
            let trust = match (ca, crate::devstate::DevState::read()) {
                (Some(ca), _) => Trust::from_ca_file(ca).context("--ca")?,
                (None, Some(dev)) if dev.master == master => Trust::from_ca_file(&dev.ca)?,
                (None, _) => Trust::system_roots()?,
            };
            return Ok(Target {
                master: master.to_string(),
                trust,
                tls_dir: None,
                pid: None,
                child: None,
                _tmp: None,
                endpoints,
            });
        }
        let tmp = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
        let tls = tmp.join("tls");
        let gs = game_servers.to_string();
        let mut args: Vec<String> = [
            "dev",
            "--master-port",
            "0",
            "--cluster-port",
            "0",
            "--gs-base-port",
            "0",
            "--admin-port",
            "0",
            "--game-servers",
            &gs,
            "--tls-dir",
            tls.to_str().context("temporary path is not UTF-8")?,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // The bench measures throughput: it lifts the per-client rate limits.
        args.extend(crate::limits::LimitArgs::unlimited_rates());
        args.extend(dev_args.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (child, ready) = spawn_ready(&args)?;
        Ok(Target {
            master: ready["master"]
                .as_str()
                .context("ready line without master")?
                .to_string(),
            trust: Trust::from_ca_file(&tls.join("cert.pem"))?,
            tls_dir: Some(tls),
            pid: Some(child.id()),
            child: Some(child),
            _tmp: Some(TempDir(tmp)),
            endpoints,
        })
    }

    /// The client endpoint for client number `i` (a few sockets carry all clients).
    pub fn endpoint(&self, i: usize) -> Endpoint {
        self.endpoints[i % self.endpoints.len()].clone()
    }

    /// Client settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.trust.clone());
        c.request_timeout = Duration::from_secs(30);
        c
    }

    /// The server's CPU and memory, when local.
    pub fn proc_stats(&self) -> Option<ProcStats> {
        self.pid.and_then(ProcStats::read)
    }

    /// Stops a local deployment.
    pub async fn close(mut self) {
        for e in &self.endpoints {
            e.close(0u32.into(), b"bench done");
        }
        if let Some(child) = self.child.as_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = tokio::task::spawn_blocking({
                let mut c = self.child.take().expect("present");
                move || c.wait()
            })
            .await;
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
