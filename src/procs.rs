//! `switchboard` servers as child processes, for the fault scenarios (`bench failover`)
//! and the chaos tests: start one and read its JSON ready line, keep what it logs, kill
//! it (SIGKILL) or stop it (SIGTERM), and wait for it to exit. Every wait is bounded.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
    ready: mpsc::Receiver<String>,
    /// What it is, for messages.
    pub name: String,
    /// Its own `SWITCHBOARD_DEV_HOME`: a `dev` started here never touches the user's.
    pub dev_home: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dev_home);
    }
}

/// A fresh directory name per child process.
fn child_dev_home() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("switchboard-proc-{}-{n}", std::process::id()))
}

impl Proc {
    /// Starts `bin` with `args` (logs at `RUST_LOG=warn`, or `log` if given) without
    /// waiting for anything.
    pub fn start(
        bin: &Path,
        name: &str,
        args: &[String],
        log: Option<&str>,
    ) -> anyhow::Result<Proc> {
        let dev_home = child_dev_home();
        let mut child = Command::new(bin)
            .args(args)
            .env("SWITCHBOARD_DEV_HOME", &dev_home)
            .env("RUST_LOG", log.unwrap_or("warn"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} ({})", bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&text);
            }
        });
        Ok(Proc {
            child,
            stderr,
            ready,
            name: name.to_string(),
            dev_home,
        })
    }

    /// Starts `bin` and waits (up to `timeout`) for its JSON ready line.
    pub fn spawn(
        bin: &Path,
        name: &str,
        args: &[String],
        timeout: Duration,
    ) -> anyhow::Result<(Proc, serde_json::Value)> {
        let mut p = Proc::start(bin, name, args, None)?;
        let ready = p.wait_ready(timeout)?;
        Ok((p, ready))
    }

    /// Waits (up to `timeout`) for the JSON ready line.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.ready.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => bail!(
                    "{} printed no ready line within {timeout:?}; its log:\n{}",
                    self.name,
                    self.stderr()
                ),
            };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["ready"] == true
            {
                return Ok(v);
            }
        }
    }

    /// Whether a ready line arrives within `timeout` (for servers that must not be
    /// ready).
    pub fn became_ready_within(&mut self, timeout: Duration) -> bool {
        self.wait_ready(timeout).is_ok()
    }

    /// Everything it logged so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The log lines at `level` (`WARN`, `ERROR`) that contain `text`.
    pub fn log_lines(&self, level: &str, text: &str) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains(level) && l.contains(text))
            .map(str::to_string)
            .collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would; waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, without waiting.
    pub fn sigterm(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        Ok(())
    }

    /// Its exit status, if it has exited.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits (up to `timeout`) for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `switchboard` binary: this executable, unless it is a test harness (then the
/// caller passes the binary's path).
pub fn this_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating the switchboard binary")
}
