//! Drives the real `switchboard` binary: `dev` + `probe`, and a master and a game server
//! as separate processes + `probe`. Everything binds 127.0.0.1 port 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn spawn(args: &[&str]) -> (Proc, serde_json::Value) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let home = std::env::temp_dir().join(format!("sb-processes-{}-{n}", std::process::id()));
        let mut child = Command::new(BIN)
            .args(args)
            .env("SWITCHBOARD_DEV_HOME", home)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn switchboard");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let proc = Proc(child);
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the process prints its ready line");
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line {line:?} is not JSON: {e}"));
        assert_eq!(ready["ready"], true);
        (proc, ready)
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the process did not stop within 5 s of SIGTERM");
    }
}

/// `switchboard dev` on free ports with its certificate in `dir`.
fn spawn_dev(dir: &Path) -> (Proc, serde_json::Value) {
    Proc::spawn(&[
        "dev",
        "--master-port",
        "0",
        "--cluster-port",
        "0",
        "--gs-base-port",
        "0",
        "--admin-port",
        "0",
        "--tls-dir",
        dir.to_str().unwrap(),
    ])
}

fn probe(master: &str, ca: &Path) -> (bool, serde_json::Value) {
    let out = Command::new(BIN)
        .args([
            "probe",
            "--master",
            master,
            "--ca",
            ca.to_str().unwrap(),
            "--timeout",
            "10",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run probe");
    let line = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("probe printed {line:?}: {e}"));
    assert_eq!(
        report["ok"],
        out.status.success(),
        "exit code agrees with the report"
    );
    (out.status.success(), report)
}

#[test]
fn dev_and_probe() {
    let tls = tempfile::tempdir().unwrap();
    let dir = tls.path().join("tls");
    let (dev, ready) = spawn_dev(&dir);
    assert_eq!(ready["game_servers"].as_array().unwrap().len(), 2);
    let master = ready["master"].as_str().unwrap();
    let (ok, report) = probe(master, &dir.join("cert.pem"));
    assert!(ok, "probe failed: {report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for needed in [
        "create_game",
        "join_game",
        "reliable_a_to_b",
        "reliable_b_to_a",
        "unreliable_a_to_b",
        "unreliable_b_to_a",
        "leave_a",
    ] {
        assert!(steps.contains(&needed), "{needed} missing from {steps:?}");
    }
    assert!(dev.terminate().success(), "dev exits cleanly on SIGTERM");
}

#[test]
fn probe_fails_without_a_master() {
    let tls = tempfile::tempdir().unwrap();
    let (_, ca) = switchboard_transport::ServerIdentity::dev(&tls.path().join("tls")).unwrap();
    // A port nobody listens on: bind one, then free it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args(["probe", "--master", &format!("127.0.0.1:{port}"), "--ca"])
        .arg(&ca)
        .args(["--timeout", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["error"].as_str().is_some());
}

#[test]
fn separate_master_and_game_server_processes() {
    let tls = tempfile::tempdir().unwrap();
    let dir = tls.path().join("tls");
    let dir = dir.to_str().unwrap();
    let secret = "a-cluster-secret-for-the-test";
    let (master, m) = Proc::spawn(&[
        "master",
        "--client-addr",
        "127.0.0.1:0",
        "--cluster-addr",
        "127.0.0.1:0",
        "--cluster-secret",
        secret,
        "--auth",
        "dev",
        "--admin-addr",
        "127.0.0.1:0",
        "--dev-tls-dir",
        dir,
    ]);
    let ca = Path::new(dir).join("cert.pem");
    let (gs, g) = Proc::spawn(&[
        "gameserver",
        "--id",
        "gs-a",
        "--listen",
        "127.0.0.1:0",
        "--master",
        m["cluster"].as_str().unwrap(),
        "--master-ca",
        ca.to_str().unwrap(),
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        dir,
    ]);
    assert_eq!(g["role"], "gameserver");
    // The game server registers a moment after it starts: retry the probe (bounded).
    let clients = m["clients"].as_str().unwrap();
    let mut last = serde_json::Value::Null;
    let ok = (0..50).any(|_| {
        let (ok, report) = probe(clients, &ca);
        last = report;
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(ok, "probe never succeeded; last report: {last}");
    assert_eq!(last["game_server"], g["public_address"]);
    assert!(gs.terminate().success());
    assert!(master.terminate().success());
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let tls = tempfile::tempdir().unwrap();
    let dir = tls.path().join("tls");
    let dir = dir.to_str().unwrap();
    let fails_with = |args: &[&str], needle: &str| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    };
    let secret = "long-enough-secret-123";
    fails_with(
        &["master", "--cluster-secret", secret, "--dev-tls-dir", dir],
        "--auth",
    );
    fails_with(
        &[
            "master",
            "--auth",
            "dev",
            "--cluster-secret",
            "short",
            "--dev-tls-dir",
            dir,
        ],
        "--cluster-secret (SWITCHBOARD_CLUSTER_SECRET): the cluster secret must have at least 16 bytes",
    );
    fails_with(
        &["master", "--auth", "dev", "--cluster-secret", secret],
        "--cert",
    );
    fails_with(
        &[
            "master",
            "--auth",
            "jwt",
            "--cluster-secret",
            secret,
            "--dev-tls-dir",
            dir,
        ],
        "--jwt-key-file",
    );
    // Ticket keys for rotation: ID=HEX, hexadecimal, at least 16 bytes.
    for (key, needle) in [
        ("1=zz", "hexadecimal"),
        ("one=00", "id must be a number"),
        ("1=0011", "shorter than 16"),
    ] {
        fails_with(
            &[
                "master",
                "--auth",
                "dev",
                "--cluster-secret",
                secret,
                "--dev-tls-dir",
                dir,
                "--ticket-key",
                key,
            ],
            needle,
        );
    }
    let workload = tls.path().join("workload.toml");
    std::fs::write(&workload, "[load_balancer]\nweights = [1]\n").unwrap();
    fails_with(
        &[
            "master",
            "--auth",
            "dev",
            "--cluster-secret",
            secret,
            "--dev-tls-dir",
            dir,
            "--workload",
            workload.to_str().unwrap(),
        ],
        "weights",
    );
}

fn admin_cli(url: &str, token: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["admin", "--url", url, "--token", token])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn admin_cli_lists_and_toggles_rotation() {
    let tls = tempfile::tempdir().unwrap();
    let dir = tls.path().join("tls");
    let (dev, ready) = spawn_dev(&dir);
    let url = ready["admin"].as_str().unwrap();
    let token = ready["admin_token"].as_str().unwrap();
    let (ok, out) = admin_cli(url, token, &["servers"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("ID"), "a table with a header: {out}");
    assert!(
        out.contains("gs-1") && out.contains("gs-2") && out.contains("Normal"),
        "{out}"
    );
    let (ok, out) = admin_cli(url, token, &["set-state", "gs-2", "OutOfRotation"]);
    assert!(ok, "{out}");
    let shown = (0..100).any(|_| {
        let (_, out) = admin_cli(url, token, &["servers"]);
        let row = out
            .lines()
            .find(|l| l.starts_with("gs-2"))
            .unwrap_or_default()
            .to_string();
        if !row.contains("OutOfRotation") {
            std::thread::sleep(Duration::from_millis(50));
        }
        row.contains("OutOfRotation")
    });
    assert!(shown, "gs-2 is out of rotation");
    let (ok, out) = admin_cli(url, token, &["games"]);
    assert!(ok && out.starts_with("GAME"), "{out}");
    let (ok, out) = admin_cli(url, "wrong-token", &["servers"]);
    assert!(
        !ok && out.contains("refused the admin token (--token)"),
        "{out}"
    );
    let (ok, out) = admin_cli(url, token, &["set-state", "gs-9", "Normal"]);
    assert!(!ok && out.contains("404"), "{out}");
    assert!(dev.terminate().success());
}

#[tokio::test]
async fn sigterm_drains_a_game_server_with_a_live_room() {
    use switchboard_client::{Client, ClientConfig, ClientError};
    use switchboard_protocol::{CloseCode, RoomEvent, RoomOptions};

    let tls = tempfile::tempdir().unwrap();
    let dir = tls.path().join("tls");
    let dir = dir.to_str().unwrap().to_string();
    let secret = "a-cluster-secret-for-the-test";
    let token = "admin-token-for-the-test";
    let (master, m) = Proc::spawn(&[
        "master",
        "--client-addr",
        "127.0.0.1:0",
        "--cluster-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--admin-token",
        token,
        "--cluster-secret",
        secret,
        "--auth",
        "dev",
        "--dev-tls-dir",
        &dir,
    ]);
    let ca = Path::new(&dir).join("cert.pem");
    let (gs, _) = Proc::spawn(&[
        "gameserver",
        "--id",
        "gs-a",
        "--listen",
        "127.0.0.1:0",
        "--master",
        m["cluster"].as_str().unwrap(),
        "--master-ca",
        ca.to_str().unwrap(),
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        &dir,
        "--drain-grace",
        "1",
    ]);
    let trust = switchboard_transport::Trust::from_ca_file(&ca).unwrap();
    let mut alice = Client::connect(m["clients"].as_str().unwrap(), ClientConfig::new(trust))
        .await
        .unwrap();
    alice.authenticate("alice", "").await.unwrap();
    let mut room = None;
    for _ in 0..100 {
        match alice
            .create_game(Some("live"), RoomOptions::default())
            .await
        {
            Ok(r) => {
                room = Some(r);
                break;
            }
            // The game server registers a moment after it starts.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut room = room.expect("the room is created");

    let exit = tokio::task::spawn_blocking(move || gs.terminate());
    // The player is told, then closed with a reason it can show.
    let notice = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match room.next_event().await {
                Some(RoomEvent::GameServerOffline { seconds_left }) => return Some(seconds_left),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("in time");
    assert_eq!(notice, Some(0), "GameServerOffline arrives after the drain");
    while room.next_event().await.is_some() {}
    match room.close_reason() {
        Some(ClientError::Closed { code, reason }) => {
            assert_eq!(code, Some(CloseCode::ServerShutdown));
            assert!(reason.contains("shut down"), "{reason}");
        }
        other => panic!("unexpected close: {other:?}"),
    }
    assert!(
        exit.await.unwrap().success(),
        "the game server exits cleanly"
    );

    // The master saw it go Offline and its game leave.
    let url = m["admin"].as_str().unwrap();
    let http = switchboard::http_client();
    let servers: serde_json::Value = http
        .get(format!("{url}/servers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(servers[0]["state"], "Offline", "{servers}");
    assert_eq!(servers[0]["link_up"], false);
    let games: serde_json::Value = http
        .get(format!("{url}/games"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(games.as_array().unwrap().len(), 0, "{games}");
    assert!(master.terminate().success());
}

/// `switchboard bench` runs a scenario against a local deployment it starts itself, with
/// its baseline, and prints JSON. (No speed is asserted: only that it measured.)
#[test]
fn bench_scenarios_run_with_their_baselines() {
    for args in [
        &[
            "relay",
            "--clients",
            "8",
            "--room-size",
            "4",
            "--seconds",
            "1",
        ][..],
        &[
            "relay",
            "--clients",
            "8",
            "--room-size",
            "4",
            "--seconds",
            "1",
            "--reliable",
        ][..],
        &[
            "relay",
            "--objects",
            "--clients",
            "8",
            "--room-size",
            "4",
            "--seconds",
            "1",
        ][..],
        &[
            "ccu",
            "--start",
            "8",
            "--step",
            "8",
            "--max",
            "8",
            "--room-size",
            "4",
            "--seconds",
            "1",
        ][..],
        &["--rounds", "2", "connect", "--count", "10"][..],
        &["idle", "--clients", "16"][..],
        &[
            "matchmaking",
            "--games",
            "40",
            "--clients",
            "2",
            "--seconds",
            "1",
        ][..],
    ] {
        let out = Command::new(BIN)
            .args(["bench", "--json"])
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {text}: {e}"));
        let rows = report["rows"].as_array().unwrap();
        assert!(!rows.is_empty());
        // Every scenario measures its baseline. (The ratio itself can be absent: ccu's
        // baseline may hold no clients at all on a loaded machine, and x / 0 has none.)
        assert!(
            rows.iter().any(|r| r["baseline"].is_number()),
            "{args:?}: every scenario is compared with its baseline: {report}"
        );
        if args[0] != "ccu" {
            assert!(rows.iter().any(|r| r["ratio"].is_number()), "{report}");
        }
        if args[0] == "relay" {
            let delivered = &rows[0];
            assert!(delivered["value"].as_f64().unwrap() > 0.0, "{report}");
        }
        if args[0] == "--rounds" {
            assert_eq!(report["rounds"], 2, "{report}");
        }
        if args.contains(&"--objects") {
            // Object updates are compared with Switchboard's own events, no reference.
            assert!(
                report["baseline"].as_str().unwrap().contains("events"),
                "{report}"
            );
            assert!(rows[0]["baseline"].as_f64().unwrap() > 0.0, "{report}");
        } else if args[0] == "relay" || args[0] == "ccu" {
            // The plain-UDP physical reference ran too, and moved the same load.
            // (For ccu, how many clients held is not asserted: it depends on the machine.)
            assert!(report["reference"].is_string(), "{report}");
            assert!(rows[0]["reference"].is_number(), "{report}");
            if args[0] == "relay" {
                assert!(rows[0]["reference"].as_f64().unwrap() > 0.0, "{report}");
                assert!(rows[0]["reference_ratio"].is_number(), "{report}");
            }
        }
    }
}

/// `idle` measures a fresh server's memory growth, which later rounds would under-count:
/// asking for several rounds is refused with a clear message, before anything starts.
#[test]
fn bench_idle_refuses_several_rounds() {
    let out = Command::new(BIN)
        .args(["bench", "--rounds", "2", "idle", "--clients", "8"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rounds 1"), "{err}");
}
