//! What a newcomer and an operator run first, run as they would: the real binary against
//! a real cluster. `probe` against a JWT master with tokens from files; `admin` with its
//! options after the subcommand and a URL without a scheme; `bench` with `--json` after
//! the scenario; plain logs when standard error is not a terminal; a failure as one line.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::start_all;
use switchboard_master::AuthConfig;
use switchboard_master::auth::JwtConfig;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-first-hour";

fn token(user: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": user, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(KEY).unwrap(),
    )
    .unwrap()
}

async fn run(args: Vec<String>) -> std::process::Output {
    run_env(args, vec![]).await
}

/// Runs the binary with `envs` added; `SWITCHBOARD_DEV_HOME` is an empty directory unless
/// given, so no `dev` of the user's changes what it does.
async fn run_env(args: Vec<String>, envs: Vec<(&'static str, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let empty = tempfile::tempdir().unwrap();
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "1")
            .env("SWITCHBOARD_DEV_HOME", empty.path())
            .envs(envs)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(line: &[&str]) -> Vec<String> {
    line.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_checks_a_jwt_master_with_tokens_from_files() {
    let t = start_all(
        1,
        |_| {},
        |m| {
            m.auth = AuthConfig::Jwt(JwtConfig {
                algorithm: jsonwebtoken::Algorithm::HS256,
                key: KEY.to_vec(),
                leeway: Duration::from_secs(5),
                issuer: None,
                audience: None,
            })
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (fa, fb) = (dir.path().join("a.jwt"), dir.path().join("b.jwt"));
    std::fs::write(&fa, format!("{}\n", token("probe-a"))).unwrap();
    std::fs::write(&fb, token("probe-b")).unwrap();
    let base = vec![
        "probe".to_string(),
        "--master".into(),
        t.master(),
        "--ca".into(),
        t.cluster.ca.display().to_string(),
    ];
    // Without tokens the JWT master refuses the probe, and it says so.
    let out = run(base.clone()).await;
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("authenticate_a"),
        "{report}"
    );
    // With them it holds end to end.
    let mut args = base;
    args.extend([
        "--token-a".into(),
        format!("@{}", fa.display()),
        "--token-b".into(),
        format!("@{}", fb.display()),
    ]);
    let out = run(args).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["ok"], true);
    t.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_takes_its_options_anywhere_and_a_url_without_a_scheme() {
    let t = common::start(1).await;
    let out = run(vec![
        "admin".into(),
        "servers".into(),
        "--url".into(),
        t.cluster.admin.to_string(),
        "--token".into(),
        t.cluster.admin_token.clone(),
        "--json".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let servers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(servers.as_array().unwrap().len(), 1, "{servers}");
    t.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_takes_json_after_the_scenario() {
    let out = run(["bench", "connect", "--count", "5", "--json"]
        .map(String::from)
        .to_vec())
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["rows"].is_array(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_one_line_without_a_backtrace() {
    let out = run([
        "probe",
        "--master",
        "127.0.0.1:9",
        "--ca",
        "/nonexistent/cert.pem",
    ]
    .map(String::from)
    .to_vec())
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("switchboard: --ca: /nonexistent/cert.pem"),
        "{err}"
    );
    assert!(!err.contains("backtrace"), "{err}");
}

/// Runs `dev` until its ready line, with `extra` arguments; returns its standard error.
fn dev_stderr(extra: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Command::new(BIN)
        .args(extra)
        .args([
            "dev",
            "--game-servers",
            "1",
            "--master-port",
            "0",
            "--cluster-port",
            "0",
        ])
        .args(["--gs-base-port", "0", "--admin-port", "0", "--tls-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .env("SWITCHBOARD_DEV_HOME", dir.path().join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The ready line on stdout: by then it has logged its start at info.
    let mut ready = String::new();
    BufReader::new(dev.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.contains("\"ready\":true"), "{ready}");
    let _ = dev.kill();
    let out = dev.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_logs_are_one_json_object_per_line() {
    let err = dev_stderr(&["--log-format", "json"]);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "it logged: {err}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}

#[test]
fn logs_carry_no_colour_codes_when_standard_error_is_not_a_terminal() {
    let err = dev_stderr(&[]);
    assert!(err.contains("INFO"), "it logged: {err}");
    assert!(!err.contains('\u{1b}'), "no colour codes in a pipe: {err}");
}

/// A child process killed when dropped (a failing test leaves nothing running).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Killed {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Killed {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

/// `dev` with its default (per-user) directory; the ready line and the child.
fn start_dev(home: &std::path::Path) -> (Killed, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut dev = Command::new(BIN)
        .args(["dev", "--game-servers", "1", "--master-port", "0"])
        .args([
            "--cluster-port",
            "0",
            "--gs-base-port",
            "0",
            "--admin-port",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .env("SWITCHBOARD_DEV_HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(dev.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&ready).unwrap_or_else(|e| panic!("{ready}: {e}"));
    (Killed(dev), ready)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_and_admin_find_a_running_dev_without_flags() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (mut dev, ready) = start_dev(&home);
    // The directory is the user's alone; the state file (it holds the admin token) too.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    let state = home.join("dev.json");
    assert_eq!(mode(&state), 0o600);
    assert!(
        ready["ca"]
            .as_str()
            .unwrap()
            .starts_with(home.to_str().unwrap()),
        "{ready}"
    );
    let env = vec![("SWITCHBOARD_DEV_HOME", home.display().to_string())];
    // Neither --master nor --ca: the running dev's.
    let out = run_env(args(&["probe"]), env.clone()).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("\"ok\":true"), "{report}");
    // Neither --url nor --token.
    let out = run_env(args(&["admin", "servers", "--json"]), env.clone()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let servers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(servers.as_array().unwrap().len(), 1, "{servers}");
    // Stopped, it takes its state file away; a probe then finds no dev to trust.
    let pid = dev.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(dev.wait().unwrap().success());
    assert!(!state.exists(), "the state file outlived its dev");
    let out = run_env(args(&["probe", "--timeout", "2"]), env.clone()).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no --master given") && err.contains("no running `switchboard dev` found"),
        "{err}"
    );
    let out = run_env(args(&["admin", "servers"]), env).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("give --url and --token") && err.contains("no running `switchboard dev`"),
        "{err}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_dev_and_a_planted_state_file_are_not_taken_for_the_users_dev() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (mut first, ready) = start_dev(&home);
    let state = std::fs::read_to_string(home.join("dev.json")).unwrap();
    // A second dev leaves the first registered, and its stop leaves the file alone.
    let (mut second, _) = start_dev(&home);
    assert_eq!(
        std::fs::read_to_string(home.join("dev.json")).unwrap(),
        state
    );
    let pid = second.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(second.wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(home.join("dev.json")).unwrap(),
        state
    );
    let env = vec![("SWITCHBOARD_DEV_HOME", home.display().to_string())];
    let out = run_env(args(&["probe"]), env.clone()).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(ready["master"].as_str().unwrap()),
        "{report}"
    );
    assert!(out.status.success(), "{report}");
    let _ = first.kill();
    let _ = first.wait();
    // A state file in a directory others can write is never trusted: its token and URL
    // could be anybody's.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::write(open.join("dev.json"), &state).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let env = vec![("SWITCHBOARD_DEV_HOME", open.display().to_string())];
    let out = run_env(args(&["admin", "servers"]), env).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not trusted"), "{err}");
}

#[test]
fn tokens_and_values_the_servers_would_refuse_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let short = tmp.path().join("short.key");
    std::fs::write(&short, "sixteen-bytes-ok").unwrap();
    let err = start_error(&[
        "token",
        "--user",
        "a",
        "--jwt-key-file",
        short.to_str().unwrap(),
    ]);
    assert!(err.contains("at least 32 bytes, this one has 16"), "{err}");
    let long = tmp.path().join("long.key");
    std::fs::write(&long, "0123456789abcdef0123456789abcdef").unwrap();
    let err = start_error(&[
        "token",
        "--user",
        "",
        "--jwt-key-file",
        long.to_str().unwrap(),
    ]);
    assert!(err.contains("--user must not be empty"), "{err}");
    // A token file named without its @.
    let file = tmp.path().join("alice.jwt");
    std::fs::write(&file, "x.y.z").unwrap();
    let f = file.to_str().unwrap();
    let err = start_error(&["probe", "--master", "127.0.0.1:9", "--token-a", f]);
    assert!(err.contains(&format!("write --token-a @{f}")), "{err}");
    let secret = "long-enough-secret-123";
    let tls = tmp.path().join("tls");
    let tls = tls.to_str().unwrap();
    let err = start_error(&[
        "master",
        "--auth",
        "http",
        "--auth-url",
        "localhost:8080/auth",
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        tls,
    ]);
    assert!(
        err.contains("--auth-url localhost:8080/auth: not an http"),
        "{err}"
    );
    let err = start_error(&[
        "gameserver",
        "--id",
        "",
        "--master-ca",
        "x.pem",
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        tls,
    ]);
    assert!(err.contains("--id"), "{err}");
    // A workload file TOML refuses: one line, with where.
    let w = tmp.path().join("w.toml");
    std::fs::write(&w, "[load_balancer\nweights = 1\n").unwrap();
    let err = start_error(&[
        "master",
        "--auth",
        "dev",
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        tls,
        "--workload",
        w.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--workload") && err.contains("line 1"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn dev_refuses_a_directory_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(BIN)
        .args(["dev", "--master-port", "0", "--cluster-port", "0"])
        .args(["--gs-base-port", "0", "--admin-port", "0"])
        .env("SWITCHBOARD_DEV_HOME", &home)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(home.to_str().unwrap()) && err.contains("open to other users"),
        "{err}"
    );
    assert!(!home.join("tls").exists(), "nothing was written into it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ca_the_system_roots_are_trusted() {
    let t = start_all(1, |_| {}, |_| {}, |_| {}).await;
    let master = t.cluster.master.to_string();
    // The system's store (SSL_CERT_FILE replaces it, as in OpenSSL) holds the
    // certificate: trusted without --ca, as a public CA's would be.
    let out = run_env(
        args(&["probe", "--master", &master]),
        vec![("SSL_CERT_FILE", t.cluster.ca.display().to_string())],
    )
    .await;
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The machine's real store does not know a development certificate.
    let out = run_env(
        args(&["probe", "--master", &master, "--timeout", "3"]),
        vec![],
    )
    .await;
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("UnknownIssuer"), "{report}");
    t.cluster.shutdown().await;
}

/// Runs the binary expecting it to fail at start; returns its one-line error.
fn start_error(line: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(line)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{line:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn configuration_errors_name_the_flag_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "long-enough-secret-123";
    let (_, cert) = switchboard_transport::ServerIdentity::dev(&tmp.path().join("tls")).unwrap();
    let cert = cert.to_str().unwrap();
    let master = |extra: &[&str]| {
        let mut line = vec!["master", "--auth", "dev", "--cluster-secret", secret];
        line.extend([
            "--client-addr",
            "127.0.0.1:0",
            "--cluster-addr",
            "127.0.0.1:0",
        ]);
        line.extend(["--admin-addr", "127.0.0.1:0"]);
        line.extend(extra);
        start_error(&line)
    };
    // The certificate given as the key: the key's flag and what is missing.
    let err = master(&["--cert", cert, "--key", cert]);
    assert!(
        err.contains(&format!("--key {cert}: no private key")),
        "{err}"
    );
    // An admin token anyone could guess (an empty one would let anyone in).
    let err = master(&[
        "--dev-tls-dir",
        tmp.path().join("tls").to_str().unwrap(),
        "--admin-token",
        "",
    ]);
    assert!(
        err.contains("--admin-token") && err.contains("at least 16 bytes"),
        "{err}"
    );
    // A short HS256 secret: the flag, the file and the problem.
    let short = tmp.path().join("short.key");
    std::fs::write(&short, "tooshort\n").unwrap();
    let err = start_error(&[
        "master",
        "--auth",
        "jwt",
        "--jwt-key-file",
        short.to_str().unwrap(),
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        tmp.path().join("tls").to_str().unwrap(),
    ]);
    assert!(
        err.contains(&format!("--jwt-key-file {}", short.display()))
            && err.contains("at least 32 bytes, this one has 8"),
        "{err}"
    );
    let err = start_error(&[
        "master",
        "--auth",
        "jwt",
        "--jwt-algorithm",
        "RS256",
        "--jwt-key-file",
        cert,
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        tmp.path().join("tls").to_str().unwrap(),
    ]);
    assert!(
        err.contains("--jwt-key-file") && err.contains("not an RSA public key"),
        "{err}"
    );
}

#[test]
fn bind_errors_name_the_address_and_its_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = tmp.path().join("tls");
    let tls = tls.to_str().unwrap();
    let secret = "long-enough-secret-123";
    // Ports held by this test, so the servers cannot have them.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = udp.local_addr().map(|a| (a, udp)).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap().to_string();
    let udp_addr = udp.0.to_string();
    let base = [
        "master",
        "--auth",
        "dev",
        "--cluster-secret",
        secret,
        "--dev-tls-dir",
        tls,
    ];
    let cases = [
        (
            [
                "--client-addr",
                &udp_addr,
                "--cluster-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
            ],
            "--client-addr",
            &udp_addr,
        ),
        (
            [
                "--client-addr",
                "127.0.0.1:0",
                "--cluster-addr",
                &udp_addr,
                "--admin-addr",
                "127.0.0.1:0",
            ],
            "--cluster-addr",
            &udp_addr,
        ),
        (
            [
                "--client-addr",
                "127.0.0.1:0",
                "--cluster-addr",
                "127.0.0.1:0",
                "--admin-addr",
                &tcp_addr,
            ],
            "--admin-addr",
            &tcp_addr,
        ),
    ];
    for (extra, flag, addr) in cases {
        let line: Vec<&str> = base.iter().copied().chain(extra).collect();
        let err = start_error(&line);
        assert!(
            err.contains(&format!("cannot bind {flag} {addr}: ")) && err.contains("in use"),
            "{err}"
        );
    }
    // A game server's client and HTTP addresses.
    let ca = format!("{tls}/cert.pem");
    let gs = |extra: &[&str]| {
        let mut line = vec![
            "gameserver",
            "--id",
            "gs",
            "--master-ca",
            &ca,
            "--cluster-secret",
            secret,
        ];
        line.extend(["--dev-tls-dir", tls]);
        line.extend(extra);
        start_error(&line)
    };
    let err = gs(&["--listen", &udp_addr]);
    assert!(
        err.contains(&format!("cannot bind --listen {udp_addr}: ")),
        "{err}"
    );
    let err = gs(&["--listen", "127.0.0.1:0", "--http-addr", &tcp_addr]);
    assert!(
        err.contains(&format!("cannot bind --http-addr {tcp_addr}: ")),
        "{err}"
    );
    // dev names its port flag and the way out.
    let port = udp.0.port().to_string();
    let err = start_error(&[
        "dev",
        "--master-port",
        &port,
        "--cluster-port",
        "0",
        "--gs-base-port",
        "0",
        "--admin-port",
        "0",
        "--tls-dir",
        tls,
    ]);
    assert!(
        err.contains(&format!("cannot bind --master-port {port}"))
            && err.contains("--master-port 0"),
        "{err}"
    );
}

/// The README's "Trying a JWT master" block, run line by line as a newcomer would: a line
/// ending in `&` is a server, waited for until it prints its ready line; every other
/// line must succeed; the probe's report must say it held.
/// Both ways of running the README's block, one after the other (it names fixed ports).
#[cfg(unix)]
#[test]
fn the_readme_jwt_sequence_works_line_by_line_and_pasted_as_one_script() {
    readme_line_by_line();
    readme_pasted();
}

#[cfg(unix)]
fn readme_line_by_line() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let readme = include_str!("../README.md");
    let marker = "<!-- tests/first_hour.rs runs this block as written -->\n```sh\n";
    let start = readme.find(marker).expect("the README's tested block") + marker.len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let lines: Vec<String> = block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), path),
        ("RUST_LOG".into(), "warn".into()),
        (
            "SWITCHBOARD_DEV_HOME".into(),
            dir.path().join("home").display().to_string(),
        ),
    ];
    let sh = |line: &str, env: &[(String, String)]| {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(line)
            .current_dir(dir.path())
            .envs(env.iter().map(|(k, v)| (k, v)));
        c
    };
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut servers = Vec::new();
    let mut last = String::new();
    for line in &lines {
        if let Some(assign) = line.strip_prefix("export ") {
            let (name, value) = assign.split_once('=').unwrap();
            let out = sh(&format!("printf %s \"{value}\""), &env)
                .output()
                .unwrap();
            assert!(out.status.success(), "{line}");
            env.push((name.into(), String::from_utf8(out.stdout).unwrap()));
        } else if let Some(server) = line.strip_suffix('&') {
            let mut child = sh(&format!("exec {server}"), &env)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            servers.push(Server(child));
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut ready = String::new();
                let _ = BufReader::new(stdout).read_line(&mut ready);
                let _ = tx.send(ready);
            });
            let ready = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no ready line from: {server}"));
            assert!(ready.contains("\"ready\":true"), "{server}: {ready}");
        } else {
            let out = sh(line, &env).output().unwrap();
            assert!(
                out.status.success(),
                "{line}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            last = String::from_utf8_lossy(&out.stdout).into_owned();
        }
    }
    assert!(lines.last().unwrap().starts_with("switchboard probe"));
    assert!(last.contains("\"ok\":true"), "{last}");
    drop(servers);
}

/// The same block pasted as one script, as people do: the servers start in the
/// background at once, and everything must still work.
#[cfg(unix)]
fn readme_pasted() {
    use std::os::unix::process::CommandExt;
    let readme = include_str!("../README.md");
    let marker = "<!-- tests/first_hour.rs runs this block as written -->\n```sh\n";
    let start = readme.find(marker).expect("the README's tested block") + marker.len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .args(["-e", "-c", block])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .env("SWITCHBOARD_DEV_HOME", dir.path().join("home"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group: the servers it leaves running are stopped with it.
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id();
    let stop = move || {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{group}")])
            .status();
    };
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = match exited.recv_timeout(Duration::from_secs(60)) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            stop();
            panic!("the script did not finish within 60 s");
        }
    };
    // The servers it left hold its output open: stop them, then read.
    stop();
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    stdout.read_to_string(&mut out).ok();
    stderr.read_to_string(&mut err).ok();
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("\"ok\":true"), "{out}\n{err}");
}
