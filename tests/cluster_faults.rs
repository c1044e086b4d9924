//! Chaos tests: real master and game-server processes on loopback, killed, restarted,
//! drained and impersonated. Each checks a promise of the operations guide by waiting
//! for what it promises, with bounds several times the target so that a loaded machine
//! cannot make them flake. (`switchboard bench failover` times the same faults.)

use std::path::PathBuf;
use std::time::Duration;

use switchboard::bench::deployment::{Deployment, DeploymentOptions};
use switchboard::bench::failover;
use switchboard_protocol::ResultCode;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

async fn deployment(game_servers: usize) -> Deployment {
    Deployment::start(DeploymentOptions::new(bin(), game_servers))
        .await
        .expect("the deployment starts")
}

/// Waits (bounded) until `f` holds.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_back_with_every_room_within_seconds() {
    let mut d = deployment(2).await;
    let r = failover::master_restart(&mut d, 8)
        .await
        .expect("the restart");
    // Targets: 2 s; bounds: 5x.
    assert!(r.all_listed < Duration::from_secs(10), "{r:?}");
    assert!(r.all_joinable < Duration::from_secs(10), "{r:?}");
    // Play in a room never stopped: no event lost, no pause near the link's timeouts.
    assert_eq!(r.events_lost, 0, "{r:?}");
    assert!(r.longest_relay_pause < Duration::from_secs(2), "{r:?}");
    // Each game server noticed once, and said so.
    for gs in &d.game_servers {
        let lost = gs.proc.log_lines("WARN", "no link to the master");
        assert_eq!(lost.len(), 1, "{}: {lost:?}", gs.id);
        let (status, _) = d.get(&format!("{}/readyz", gs.http)).await.unwrap();
        assert_eq!(status, 200, "{} is ready again", gs.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_game_server_is_routed_around_within_seconds() {
    let mut d = deployment(2).await;
    let r = failover::gameserver_kill(&mut d, "gs-1")
        .await
        .expect("the kill");
    // Target: the 3 s report timeout; bound: 3x.
    assert!(r.last_placement < Duration::from_secs(9), "{r:?}");
    assert!(r.last_join_routed < Duration::from_secs(9), "{r:?}");
    assert!(r.admin_not_reporting < Duration::from_secs(9), "{r:?}");
    assert_eq!(
        r.join_refusal,
        Some(ResultCode::GameServerUnavailable.to_wire()),
        "joins to its rooms get a code to act on: {r:?}"
    );
    // The master said so, once, naming the server; its counts are not shown as current.
    let master = d.master().unwrap();
    let silent = master.log_lines("WARN", "stopped reporting");
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert!(silent[0].contains("gs-1"), "{silent:?}");
    let view = d.server_view("gs-1").await.unwrap().expect("still listed");
    assert_eq!(view["reporting"], false);
    assert!(view["rooms"].is_null() && view["peers"].is_null(), "{view}");
    let games = d.admin_get("/games").await.unwrap();
    assert!(
        games
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["server"] == "gs-1")
            .all(|g| g["stale"] == true),
        "{games}"
    );
    let (_, text) = d.get(&format!("{}/metrics", d.admin)).await.unwrap();
    assert!(metric(&text, "switchboard_master_game_servers_went_silent_total") >= 1.0);
    assert_eq!(metric(&text, "switchboard_master_game_servers_silent"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_game_server_keeps_its_rooms_joinable_and_nobody_hangs() {
    let mut d = deployment(2).await;
    let r = failover::drain(&mut d, "gs-1").await.expect("the drain");
    assert_eq!(r.hung, 0, "{r:?}");
    assert!(r.refused_other.is_empty(), "{r:?}");
    assert!(r.joined >= 1, "joins kept working during the drain: {r:?}");
    assert_eq!(
        r.last_placement,
        Duration::ZERO,
        "no new game after SIGTERM: {r:?}"
    );
    assert_eq!(
        r.join_routed_after_offline,
        Duration::ZERO,
        "no join routed once Offline: {r:?}"
    );
    assert!(r.exit_ok, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_with_a_live_id_is_refused_and_says_so_once() {
    let d = deployment(1).await;
    let first = d.game_server("gs-1");
    let mut dup = d
        .start_game_server("gs-1", &["--register-attempts", "3"])
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let s = dup.wait_exit(Duration::from_secs(30));
        (dup, s)
    })
    .await
    .unwrap();
    let (mut dup, status) = status;
    let status = status.expect("it gives up");
    assert!(!status.success(), "it exits with an error");
    assert!(
        !dup.became_ready_within(Duration::from_millis(10)),
        "it never said ready"
    );
    let errors = dup.log_lines("ERROR", "registration refused;");
    assert_eq!(
        errors.len(),
        1,
        "once per cause, not per attempt: {errors:?}"
    );
    assert!(errors[0].contains("ServerIdInUse"), "{errors:?}");
    let master = d.master().unwrap();
    let refused = master.log_lines("WARN", "registration refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    // The first one never noticed.
    let view = d.server_view("gs-1").await.unwrap().unwrap();
    assert_eq!(view["address"], first.address.as_str());
    assert_eq!(view["reporting"], true);
    let (code, _) = d.get(&format!("{}/readyz", first.http)).await.unwrap();
    assert_eq!(code, 200);

    // By the operator's explicit choice, a second one takes the id over: the first is
    // told, says so, and fails its readiness...
    let mut taker = d
        .start_game_server("gs-1", &["--replace-registration"])
        .unwrap();
    let taker = tokio::task::spawn_blocking(move || {
        let ready = taker.wait_ready(Duration::from_secs(30));
        (taker, ready)
    })
    .await
    .unwrap();
    let (mut taker, ready) = taker;
    let ready = ready.expect("the replacement registers");
    let taker_address = ready["public_address"].as_str().unwrap().to_string();
    let readyz = format!("{}/readyz", first.http);
    eventually(
        Duration::from_secs(10),
        "the first failing /readyz",
        || async {
            let (code, body) = d.get(&readyz).await.unwrap();
            code == 503 && body.contains("displaced")
        },
    )
    .await;
    let displaced = first.proc.log_lines("ERROR", "displaced");
    assert_eq!(displaced.len(), 1, "{displaced:?}");
    let view = d.server_view("gs-1").await.unwrap().unwrap();
    assert_eq!(view["address"], taker_address.as_str());
    // ...and when the replacement dies, the first one takes its id back (it was never
    // fenced out for good).
    taker.kill();
    eventually(
        Duration::from_secs(15),
        "the first registered again",
        || async {
            let (code, _) = d.get(&readyz).await.unwrap();
            code == 200
        },
    )
    .await;
    let view = d.server_view("gs-1").await.unwrap().unwrap();
    assert_eq!(view["address"], first.address.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_an_untrusted_master_is_an_error_not_a_ready_line() {
    let d = deployment(0).await;
    let other = tempfile::tempdir().unwrap();
    let (_, stranger_ca) =
        switchboard_transport::ServerIdentity::dev(&other.path().join("tls")).unwrap();
    let stranger_ca = stranger_ca.to_str().unwrap().to_string();
    let cases: [(&str, Vec<&str>, &str); 2] = [
        (
            "wrong-secret",
            vec!["--cluster-secret", "not-the-cluster-secret-at-all"],
            "wrong cluster secret",
        ),
        ("wrong-ca", vec!["--master-ca", &stranger_ca], "not trusted"),
    ];
    for (id, flags, cause) in cases {
        let mut flags = flags.clone();
        flags.extend(["--register-attempts", "2"]);
        let p = d.start_game_server(id, &flags).unwrap();
        let (mut p, status) = tokio::task::spawn_blocking(move || {
            let mut p = p;
            let s = p.wait_exit(Duration::from_secs(30));
            (p, s)
        })
        .await
        .unwrap();
        assert!(!status.expect("it gives up").success(), "{id}");
        assert!(!p.became_ready_within(Duration::from_millis(10)), "{id}");
        let errors = p.log_lines("ERROR", "registration refused;");
        assert_eq!(errors.len(), 1, "{id}: {errors:?}");
        assert!(errors[0].contains(cause), "{id}: {errors:?}");
    }
    // Without a limit it keeps trying, and /readyz says why it is not ready.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let _p = d
        .start_game_server(
            "patient",
            &[
                "--cluster-secret",
                "not-the-cluster-secret-at-all",
                "--http-addr",
                &http,
            ],
        )
        .unwrap();
    let readyz = format!("http://{http}/readyz");
    eventually(
        Duration::from_secs(10),
        "/readyz naming the refusal",
        || async {
            matches!(d.get(&readyz).await, Ok((503, body)) if body.contains("wrong cluster secret"))
        },
    )
    .await;
    let refused = d
        .master()
        .unwrap()
        .log_lines("WARN", "registration refused");
    assert!(
        refused.iter().filter(|l| l.contains("patient")).count() == 1,
        "the master logs it once: {refused:?}"
    );
}
