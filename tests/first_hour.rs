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
        &jsonwebtoken::EncodingKey::from_secret(KEY),
    )
    .unwrap()
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
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
    let out = run(["probe", "--ca", "/nonexistent/cert.pem"]
        .map(String::from)
        .to_vec())
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("switchboard: trusting /nonexistent/cert.pem"),
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
