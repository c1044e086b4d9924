//! Helpers for the end-to-end tests: an in-process cluster on 127.0.0.1 with port 0 and
//! a private development certificate.

#![allow(dead_code)] // each test file uses a different subset

pub mod raw;

use std::time::Duration;

use switchboard::dev::{DevCluster, DevOptions};
use switchboard_client::{Client, ClientConfig, ClientError, Room};
use switchboard_protocol::{ResultCode, RoomEvent};
use switchboard_transport::Trust;
use switchboard_workload::RateLimits;
use tempfile::TempDir;

pub struct TestCluster {
    pub cluster: DevCluster,
    pub trust: Trust,
    _tls: TempDir,
}

pub async fn start(game_servers: usize) -> TestCluster {
    start_with(game_servers, |_| {}).await
}

pub async fn start_with(game_servers: usize, tweak: impl FnOnce(&mut DevOptions)) -> TestCluster {
    start_full(game_servers, tweak, |_| {}).await
}

pub async fn start_full(
    game_servers: usize,
    tweak: impl FnOnce(&mut DevOptions),
    master: impl FnOnce(&mut switchboard_master::MasterConfig),
) -> TestCluster {
    start_all(game_servers, tweak, master, |_| {}).await
}

pub async fn start_all(
    game_servers: usize,
    tweak: impl FnOnce(&mut DevOptions),
    master: impl FnOnce(&mut switchboard_master::MasterConfig),
    game_server: impl Fn(&mut switchboard_gameserver::GameServerConfig),
) -> TestCluster {
    let tls = tempfile::tempdir().unwrap();
    let mut opts = DevOptions {
        game_servers,
        master_port: 0,
        cluster_port: 0,
        gs_base_port: 0,
        admin_port: 0,
        tls_dir: tls.path().join("tls"),
        ..DevOptions::default()
    };
    tweak(&mut opts);
    // Tests drive clients harder than players would: no rate limits or reservation
    // quota unless a test sets its own.
    let cluster = DevCluster::start_with(
        opts,
        |m| {
            m.rate_limits = RateLimits::UNLIMITED;
            m.settings.max_reservations_per_user = 0;
            m.settings.max_joins_in_flight = 0;
            master(m)
        },
        |g| {
            g.rate_limits = RateLimits::UNLIMITED;
            game_server(g)
        },
    )
    .await
    .expect("cluster starts");
    let trust = Trust::from_ca_file(&cluster.ca).unwrap();
    TestCluster {
        cluster,
        trust,
        _tls: tls,
    }
}

impl TestCluster {
    pub fn master(&self) -> String {
        self.cluster.master.to_string()
    }

    pub async fn client(&self, user: &str) -> Client {
        let mut c = Client::connect(&self.master(), ClientConfig::new(self.trust.clone()))
            .await
            .expect("connect");
        c.authenticate(user, "").await.expect("authenticate");
        c
    }
}

/// Waits (bounded) for the next event matching `pred`, skipping others.
pub async fn expect_event(room: &mut Room, pred: impl Fn(&RoomEvent) -> bool) -> RoomEvent {
    let wait = async {
        loop {
            let ev = room.next_event().await.expect("connection open");
            if pred(&ev) {
                return ev;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("event arrives in time")
}

/// The result code of a refused call.
pub fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ResultCode {
    let e = r.expect_err("the call is refused");
    e.result_code()
        .unwrap_or_else(|| panic!("not a refusal: {e}"))
}

/// Retries `f` until `ok` holds for its result (the master learns of changes through the
/// game server's reports, a moment after they happen).
pub async fn eventually<T, F, Fut>(mut f: F, ok: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    for _ in 0..200 {
        let v = f().await;
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 5 s");
}

/// A `JoinGame` (JoinOnly) operation for `game`.
pub fn join_op(game: &str) -> switchboard_protocol::MasterOp {
    switchboard_protocol::MasterOp::JoinGame {
        game: game.into(),
        mode: switchboard_protocol::JoinMode::JoinOnly,
        expected_users: vec![],
        create_options: switchboard_protocol::RoomOptions::default(),
    }
}

/// The value of an unlabeled metric in a Prometheus text at `url`.
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = switchboard::http_client()
        .get(url)
        .send()
        .await
        .expect("metrics endpoint answers")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} at {url}"))
}

impl TestCluster {
    /// The master's `/metrics` URL.
    pub fn master_metrics(&self) -> String {
        format!("http://{}/metrics", self.cluster.admin)
    }

    /// Game server `i`'s `/metrics` URL.
    pub fn gs_metrics(&self, i: usize) -> String {
        format!("http://{}/metrics", self.cluster.game_server_http[i])
    }
}

/// Two honest players in a room of their own: one raises a numbered reliable event every
/// 20 ms, the other counts them and the longest pause between two.
pub struct HonestPair {
    started: std::time::Instant,
    stop: tokio::sync::watch::Sender<bool>,
    sender: tokio::task::JoinHandle<u64>,
    receiver: tokio::task::JoinHandle<(u64, Duration)>,
}

/// How the honest pair fared.
#[derive(Debug)]
pub struct Fared {
    pub sent: u64,
    pub received: u64,
    pub longest_pause: Duration,
}

impl HonestPair {
    /// Creates room `game` with `host` and joins it with `guest` (both authenticated
    /// clients of the same master), and starts relaying.
    pub async fn start(host: &Client, guest: &Client, game: &str) -> HonestPair {
        let sending = host
            .create_game(Some(game), switchboard_protocol::RoomOptions::default())
            .await
            .expect("the honest host creates its room");
        let mut receiving = guest.join_game(game).await.expect("the honest guest joins");
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let mut stopped2 = stopped.clone();
        let sender = tokio::spawn(async move {
            let mut n = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                if sending
                    .raise_event(
                        1,
                        n.to_le_bytes().to_vec(),
                        switchboard_client::Delivery::Reliable,
                    )
                    .await
                    .is_err()
                {
                    break;
                }
                n += 1;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(sending);
            n
        });
        let receiver = tokio::spawn(async move {
            let (mut got, mut longest, mut last) =
                (0u64, Duration::ZERO, None::<std::time::Instant>);
            loop {
                let ev = tokio::select! {
                    ev = receiving.next_event() => ev,
                    _ = async {
                        let _ = stopped2.wait_for(|s| *s).await;
                        tokio::time::sleep(Duration::from_millis(400)).await;
                    } => break,
                };
                match ev {
                    Some(RoomEvent::Custom(d)) if d.code == 1 => {
                        let now = std::time::Instant::now();
                        if let Some(l) = last {
                            longest = longest.max(now - l);
                        }
                        last = Some(now);
                        got += 1;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            (got, longest)
        });
        HonestPair {
            started: std::time::Instant::now(),
            stop,
            sender,
            receiver,
        }
    }

    /// Stops (after it has run for a second at least) and says how it went.
    pub async fn finish(self) -> Fared {
        let ran = self.started.elapsed();
        if ran < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_secs(1) - ran).await;
        }
        let _ = self.stop.send(true);
        let sent = self.sender.await.unwrap();
        let (received, longest_pause) = self.receiver.await.unwrap();
        Fared {
            sent,
            received,
            longest_pause,
        }
    }
}

impl Fared {
    /// Nothing lost, nothing stalled for long.
    pub fn unaffected(&self) -> bool {
        self.sent > 10 && self.received == self.sent && self.longest_pause < Duration::from_secs(2)
    }
}
