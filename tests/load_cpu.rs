//! The CPU controller measures this server's own CPU by default, so other work on the
//! machine does not make `switchboard dev` refuse games; `sampling.cpu = "machine"`
//! measures the whole machine. Real processes: `switchboard dev --workload FILE` and
//! busy loops that keep every core of the machine busy.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use switchboard::procs::Proc;
use switchboard_workload::DEFAULT_WORKLOAD;

/// Busy loops, one per core, killed on drop.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start() -> Hogs {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        Hogs(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn workload(dir: &Path, cpu: &str) -> PathBuf {
    // Fast sampling so the test takes seconds: 5 samples of 200 ms.
    let text = DEFAULT_WORKLOAD
        .replace("interval_ms = 1000", "interval_ms = 200")
        .replace("cpu = \"process\"", &format!("cpu = \"{cpu}\""));
    let path = dir.join(format!("workload-{cpu}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn dev(dir: &Path, workload: &Path) -> (Proc, String) {
    let args: Vec<String> = [
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
        "1",
        "--tls-dir",
        dir.join("tls").to_str().unwrap(),
        "--workload",
        workload.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_switchboard"));
    let (p, ready) = Proc::spawn(&bin, "dev", &args, Duration::from_secs(30)).unwrap();
    let http = ready["game_server_http"][0].as_str().unwrap().to_string();
    (p, format!("{http}/metrics"))
}

/// A plain HTTP/1.0 GET of `http://host:port/path`.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn cpu_level(url: &str) -> u64 {
    let text = http_get(url);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("switchboard_gs_load_level{controller=\"cpu\"} ")?
                .parse()
                .ok()
        })
        .expect("the cpu level is exported")
}

/// The highest CPU level seen over `for_` (sampled every 100 ms).
fn highest_level(url: &str, for_: Duration) -> u64 {
    let end = Instant::now() + for_;
    let mut max = 0;
    while Instant::now() < end {
        max = max.max(cpu_level(url));
        std::thread::sleep(Duration::from_millis(100));
    }
    max
}

#[test]
fn a_busy_machine_does_not_make_a_process_measured_server_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (_dev, metrics) = dev(dir.path(), &workload(dir.path(), "process"));
    // Its own start-up does not count either.
    assert!(
        cpu_level(&metrics) <= 2,
        "a fresh server starts at a low level"
    );
    let _hogs = Hogs::start();
    let level = highest_level(&metrics, Duration::from_secs(3));
    assert!(
        level <= 3,
        "other processes' CPU is not this server's: level {level}"
    );
}

#[test]
fn a_machine_measured_server_sees_the_whole_machine() {
    let dir = tempfile::tempdir().unwrap();
    let (_dev, metrics) = dev(dir.path(), &workload(dir.path(), "machine"));
    let _hogs = Hogs::start();
    let level = highest_level(&metrics, Duration::from_secs(4));
    assert!(
        level >= 5,
        "every core busy shows in the machine's CPU: level {level}"
    );
}

#[test]
fn dev_refuses_a_broken_workload_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        DEFAULT_WORKLOAD.replace("cpu = \"process\"", "cpu = \"gpu\""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["dev", "--workload", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml") && err.contains("gpu"), "{err}");
}
