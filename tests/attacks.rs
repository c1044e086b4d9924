//! The attacks of the hostile-clients issue, reproduced: each shows the attacker cut off,
//! the server's memory back near where it was (servers run as processes here, so their
//! memory is their own), and an honest pair of players in another room unaffected.
//! Everything is on loopback and bounded in time and count.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{HonestPair, code};
use quinn::{Connection, ConnectionError};
use switchboard::bench::ProcStats;
use switchboard::bench::deployment::{Deployment, DeploymentOptions};
use switchboard_client::{ClientConfig, Delivery};
use switchboard_protocol::{
    ALPN_CLUSTER, ALPN_GAME, ClientToGame, CloseCode, GsToMaster, Hello, MasterOp, Properties,
    ResultCode, RoomChange, RoomEvent, RoomOptions, SetProperties, Value, encode_frame,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{Limits, Trust, client_endpoint, connect};

/// A deployment with the production limits, a few of them shortened so the test is
/// quick.
async fn deployment(master: &[&str], gs: &[&str]) -> Deployment {
    let mut opts = DeploymentOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_switchboard")), 1);
    opts.master_flags = master.iter().map(|s| s.to_string()).collect();
    opts.game_server_flags = gs.iter().map(|s| s.to_string()).collect();
    Deployment::start(opts)
        .await
        .expect("the deployment starts")
}

fn rss_mib(pid: u32) -> f64 {
    ProcStats::read(pid).expect("/proc").rss_bytes as f64 / (1024.0 * 1024.0)
}

async fn raw(addr: &str, alpn: &[u8], trust: &Trust) -> Result<Connection, String> {
    let ep = client_endpoint(false).map_err(|e| e.to_string())?;
    let cfg = client_config(trust, alpn, &Limits::default()).map_err(|e| e.to_string())?;
    connect(&ep, cfg, addr).await.map_err(|e| e.to_string())
}

/// The application close code a connection was closed with (within `limit`).
async fn closed_with(conn: &Connection, limit: Duration) -> Option<u64> {
    match tokio::time::timeout(limit, conn.closed()).await {
        Ok(ConnectionError::ApplicationClosed(c)) => Some(c.error_code.into_inner()),
        _ => None,
    }
}

fn wire(c: CloseCode) -> u64 {
    u64::from(c.to_wire())
}

async fn honest(d: &Deployment) -> HonestPair {
    let (a, b) = (
        d.client("honest-a").await.unwrap(),
        d.client("honest-b").await.unwrap(),
    );
    let pair = HonestPair::start(&a, &b, "honest-room").await;
    // The clients' master connections may go; the room connections stay with the pair.
    std::mem::forget((a, b));
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_cluster_peers_make_the_master_read_almost_nothing() {
    let d = deployment(&[], &[]).await;
    let pair = honest(&d).await;
    let pid = d.master().unwrap().pid();
    let before = rss_mib(pid);
    let mut conns = Vec::new();
    for _ in 0..4 {
        let conn = raw(&d.cluster, ALPN_CLUSTER, &d.trust).await.unwrap();
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        send.write_all(&encode_frame(&GsToMaster::Hello(Hello::new("attacker"))))
            .await
            .unwrap();
        // A 16 MiB frame announced before any secret: the master must not buffer it.
        send.write_all(&(16u32 * 1024 * 1024).to_le_bytes())
            .await
            .unwrap();
        let junk = vec![0x5a; 256 * 1024];
        for _ in 0..16 {
            if send.write_all(&junk).await.is_err() {
                break;
            }
        }
        conns.push(conn);
    }
    for c in &conns {
        assert_eq!(
            closed_with(c, Duration::from_secs(5)).await,
            Some(wire(CloseCode::ProtocolViolation)),
            "cut off at the frame header"
        );
    }
    let after = rss_mib(pid);
    assert!(
        after < before + 8.0,
        "the master grew from {before:.1} to {after:.1} MiB"
    );
    let fared = pair.finish().await;
    assert!(fared.unaffected(), "{fared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_only_connections_are_capped_and_closed_at_the_join_deadline() {
    let d = deployment(&[], &["--join-timeout", "2"]).await;
    let pair = honest(&d).await;
    let gs = &d.game_servers[0];
    let pid = gs.proc.pid();
    let before = rss_mib(pid);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (addr, trust) = (gs.address.clone(), d.trust.clone());
        attempts.spawn(async move {
            let conn = raw(&addr, ALPN_GAME, &trust).await?;
            let (mut send, _recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(&encode_frame(&ClientToGame::Hello(Hello::new("idler"))))
                .await
                .map_err(|e| e.to_string())?;
            // Then nothing: no join.
            Ok::<_, String>(closed_with(&conn, Duration::from_secs(10)).await)
        });
    }
    let (mut admitted, mut refused, mut deadline) = (0, 0, 0);
    while let Some(r) = attempts.join_next().await {
        match r.unwrap() {
            Ok(Some(c)) if c == wire(CloseCode::AuthenticationFailed) => {
                admitted += 1;
                deadline += 1;
            }
            Ok(_) => admitted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        refused > 0,
        "the per-address cap on connections not yet joined turned some away"
    );
    assert!(
        admitted <= 64 + 8,
        "{admitted} were let in (cap 64 from one address)"
    );
    assert_eq!(
        deadline, admitted,
        "every idler was closed at the join deadline"
    );
    let after = rss_mib(pid);
    assert!(
        after < before + 16.0,
        "the game server grew from {before:.1} to {after:.1} MiB"
    );
    let (_, metrics) = d.get(&format!("{}/metrics", gs.http)).await.unwrap();
    assert!(
        metrics.contains("switchboard_gs_connections_refused_total{reason=\"pending_per_ip\"}")
    );
    assert!(
        metrics.contains("switchboard_gs_connections_pending 0"),
        "nobody left pending"
    );
    let fared = pair.finish().await;
    assert!(fared.unaffected(), "{fared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_pins_little_and_is_cut_off() {
    // 50 MB/s of events, over the default byte rate: lifted, as a game with large
    // events would, so that only the reader's speed limits what reaches it.
    let d = deployment(&[], &["--event-bytes-rate", "0"]).await;
    let pair = honest(&d).await;
    let pid = d.game_servers[0].proc.pid();
    let before = rss_mib(pid);
    let host = d.client("loud-host").await.unwrap();
    let sender = host
        .create_game(Some("loud"), RoomOptions::default())
        .await
        .unwrap();
    let listener = d.client("loud-listener").await.unwrap();
    let mut heard = listener.join_game("loud").await.unwrap();
    let mut cfg = ClientConfig::new(d.trust.clone());
    cfg.event_buffer = 1;
    let mut attacker = switchboard_client::Client::connect(&d.clients, cfg)
        .await
        .unwrap();
    attacker.authenticate("staller", "").await.unwrap();
    let stalled = attacker.join_game("loud").await.unwrap();
    // 200 KiB events, until the staller is gone (at most 20 s): a queue bounded only in
    // messages (1024 of them) would pin 200 MiB.
    let counter = tokio::spawn(async move {
        // Counts the flood's events until the closing one (code 3).
        let mut n = 0u64;
        while let Some(ev) = heard.next_event().await {
            match ev {
                RoomEvent::Custom(d) if d.code == 3 => break,
                RoomEvent::Custom(_) => n += 1,
                _ => {}
            }
        }
        n
    });
    let payload = vec![7u8; 200 * 1024];
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    let mut peak = before;
    while stalled.close_reason().is_none() && started.elapsed() < Duration::from_secs(20) {
        sender
            .raise_event(2, payload.clone(), Delivery::Reliable)
            .await
            .unwrap();
        sent += 1;
        if sent.is_multiple_of(50) {
            peak = peak.max(rss_mib(pid));
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    match stalled.close_reason() {
        Some(switchboard_client::ClientError::Closed { code, .. }) => {
            assert_eq!(code, Some(CloseCode::SlowConsumer))
        }
        other => panic!("the staller was not cut off: {other:?}"),
    }
    assert!(
        peak < before + 32.0,
        "the staller pinned {:.1} MiB (was ~350 MiB before the byte budget)",
        peak - before
    );
    // The room carries on for the one who reads.
    sender
        .raise_event(3, b"still here".to_vec(), Delivery::Reliable)
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), counter)
        .await
        .expect("the reading member hears the end")
        .unwrap();
    assert_eq!(heard, sent, "the reading member got every event");
    drop((sender, stalled, attacker, host));
    listener.disconnect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_mib(pid);
    assert!(
        after < before + 16.0,
        "memory went back: {before:.1} -> {after:.1} MiB"
    );
    let fared = pair.finish().await;
    assert!(fared.unaffected(), "{fared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_meets_retry_and_caps_while_sessions_go_on() {
    let d = deployment(&[], &["--max-pending", "200", "--handshake-timeout", "2"]).await;
    let pair = honest(&d).await;
    let gs = &d.game_servers[0];
    let pid = gs.proc.pid();
    let before = rss_mib(pid);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..600 {
        let (addr, trust) = (gs.address.clone(), d.trust.clone());
        attempts.spawn(async move {
            // Handshakes that then say nothing at all.
            match raw(&addr, ALPN_GAME, &trust).await {
                Ok(c) => closed_with(&c, Duration::from_secs(10)).await.is_some(),
                Err(_) => false,
            }
        });
    }
    while attempts.join_next().await.is_some() {}
    let (_, metrics) = d.get(&format!("{}/metrics", gs.http)).await.unwrap();
    let retries: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("switchboard_gs_retries_total ")?
                .parse()
                .ok()
        })
        .unwrap();
    assert!(retries > 0.0, "address validation kicked in under load");
    assert!(metrics.contains("switchboard_gs_connections_pending 0"));
    let after = rss_mib(pid);
    assert!(after < before + 24.0, "{before:.1} -> {after:.1} MiB");
    let fared = pair.finish().await;
    assert!(fared.unaffected(), "{fared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_change_nothing() {
    let d = deployment(&[], &[]).await;
    let pair = honest(&d).await;
    let pid = d.game_servers[0].proc.pid();
    let before = rss_mib(pid);
    let targets = [d.game_servers[0].address.clone(), d.clients.clone()];
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; 1200];
    for i in 0..40_000u32 {
        // xorshift: sizes and bytes all over the place, some looking like QUIC headers.
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if i % 3 == 0 {
            buf[0] = 0xc0 | (buf[0] & 0x0f);
        }
        let len = 1 + (x as usize % 1200);
        let _ = sock.send_to(&buf[..len], targets[i as usize % 2].as_str());
        if i % 2000 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_mib(pid);
    assert!(after < before + 8.0, "{before:.1} -> {after:.1} MiB");
    // Still serving: a newcomer joins a room.
    let c = d.client("newcomer").await.unwrap();
    c.create_game(Some("after-garbage"), RoomOptions::default())
        .await
        .unwrap();
    let fared = pair.finish().await;
    assert!(fared.unaffected(), "{fared:?}");
}

mod in_process {
    //! The attacks on rules rather than on memory, against an in-process cluster with
    //! the production limits.

    use super::*;
    use common::start_all;
    use switchboard_workload::RateLimits;

    async fn cluster() -> common::TestCluster {
        start_all(
            1,
            |_| {},
            |m| {
                m.rate_limits = RateLimits::default();
                m.settings.max_reservations_per_user = 3;
                m.settings.max_joins_in_flight = 1;
            },
            |g| g.rate_limits = RateLimits::default(),
        )
        .await
    }

    fn set(target: u32, key: &str, v: Value) -> SetProperties {
        SetProperties {
            target,
            properties: Properties::from([(key.to_string(), v)]),
            ..SetProperties::default()
        }
    }

    #[tokio::test]
    async fn a_player_cannot_rewrite_others_close_the_room_or_make_it_unjoinable() {
        let t = cluster().await;
        let host = t.client("host").await;
        let room = host
            .create_game(Some("guarded"), RoomOptions::default())
            .await
            .unwrap();
        let vandal = t.client("vandal").await.join_game("guarded").await;
        let vandal = vandal.unwrap();
        let pair = HonestPair::start(&t.client("h1").await, &t.client("h2").await, "other").await;
        // Another player's properties, the room's properties, closing the room.
        assert_eq!(
            code(
                vandal
                    .set_properties(set(1, "nick", Value::Str("lol".into())))
                    .await
            ),
            ResultCode::NotAllowed
        );
        assert_eq!(
            code(vandal.set_properties(set(0, "map", Value::Int(0))).await),
            ResultCode::NotAllowed
        );
        let close = SetProperties {
            room: RoomChange {
                is_open: Some(false),
                ..RoomChange::default()
            },
            ..SetProperties::default()
        };
        assert_eq!(
            code(vandal.set_properties(close).await),
            ResultCode::NotAllowed
        );
        // Growing its own properties stops at the per-actor cap.
        let mut grown = 0;
        for i in 0..400 {
            let blob = Value::Bytes(bytes::Bytes::from(vec![1u8; 8_000]));
            match vandal.set_properties(set(2, &format!("k{i}"), blob)).await {
                Ok(()) => grown += 1,
                Err(e) => {
                    assert_eq!(e.result_code(), Some(ResultCode::OperationLimitReached));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(110)).await;
        }
        assert!(
            grown <= 2,
            "{grown} blobs of 8 KB were accepted (cap 16 KiB)"
        );
        // The room is open and joinable, and the host's properties are untouched.
        let newcomer = t
            .client("newcomer")
            .await
            .join_game("guarded")
            .await
            .unwrap();
        assert!(newcomer.joined().actors[0].properties.is_empty());
        let refused = common::metric(
            &t.gs_metrics(0),
            "switchboard_gs_operations_refused_total{reason=\"not_allowed\"}",
        )
        .await;
        assert_eq!(refused, 3.0, "each refusal is counted");
        drop(room);
        let fared = pair.finish().await;
        assert!(fared.unaffected(), "{fared:?}");
    }

    #[tokio::test]
    async fn a_reservation_flood_is_cut_off_and_others_still_get_games() {
        let t = cluster().await;
        // One user on four connections, each asking for new games as fast as it can.
        let mut flooders = Vec::new();
        for _ in 0..4 {
            flooders.push(t.client("flooder").await);
        }
        let honest_creators = async {
            let mut ok = 0;
            for i in 0..12 {
                let c = t.client(&format!("player{i}")).await;
                if c.create_game(None, RoomOptions::default()).await.is_ok() {
                    ok += 1;
                }
            }
            ok
        };
        let (f0, f1, f2, f3) = tokio::join!(
            flood(&flooders[0]),
            flood(&flooders[1]),
            flood(&flooders[2]),
            flood(&flooders[3])
        );
        let floods = [f0, f1, f2, f3];
        let ok = honest_creators.await;
        let total = |k: &str| {
            floods
                .iter()
                .map(|m| m.get(k).copied().unwrap_or(0))
                .sum::<u32>()
        };
        assert_eq!(ok, 12, "every honest player got a game after the flood");
        assert!(
            total("reserved") <= 3,
            "{floods:?}: at most 3 reservations per user"
        );
        assert!(
            total("JoinInProgress") > 100,
            "{floods:?}: one join in flight per connection"
        );
        assert!(total("TooManyReservations") >= 1, "{floods:?}");
        assert!(total("RateLimited") > 0, "{floods:?}");
        assert!(
            common::metric(
                &t.master_metrics(),
                "switchboard_master_operations_refused_total{reason=\"reservations\"}"
            )
            .await
                > 0.0
        );
    }

    /// Asks for new games as fast as it can for 3 s; counts each outcome.
    async fn flood(c: &switchboard_client::Client) -> std::collections::BTreeMap<String, u32> {
        let mut seen = std::collections::BTreeMap::<String, u32>::new();
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < until {
            let op = MasterOp::CreateGame {
                game: None,
                options: RoomOptions::default(),
                expected_users: vec![],
            };
            let outcome = match c.redirect(op).await {
                Ok(_) => "reserved".to_string(),
                Err(e) => format!("{:?}", e.result_code().expect("a refusal")),
            };
            *seen.entry(outcome).or_default() += 1;
        }
        seen
    }

    /// Two honest players in a room of their own, and `game`: its creator's room (the
    /// sender) and a second member's (the witness); the creator's client comes too, to
    /// be kept.
    async fn sender_and_witness(
        t: &common::TestCluster,
        game: &str,
    ) -> (
        HonestPair,
        switchboard_client::Client,
        switchboard_client::Room,
        switchboard_client::Room,
    ) {
        let pair = HonestPair::start(&t.client("h1").await, &t.client("h2").await, "calm").await;
        let host = t.client(&format!("{game}-host")).await;
        let sender = host
            .create_game(Some(game), RoomOptions::default())
            .await
            .unwrap();
        let witness = t.client("witness").await.join_game(game).await.unwrap();
        (pair, host, sender, witness)
    }

    #[tokio::test]
    async fn operation_and_event_floods_are_refused_or_dropped_and_counted() {
        let t = cluster().await;
        let (pair, _host, flooder, mut witness) = sender_and_witness(&t, "flood").await;
        // Operations: thousands a second are answered RateLimited beyond the limit.
        let (mut ok, mut limited) = (0, 0);
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            match flooder.set_properties(set(1, "x", Value::Int(ok))).await {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert_eq!(e.result_code(), Some(ResultCode::RateLimited));
                    limited += 1;
                }
            }
        }
        assert!(
            ok <= 30 + 2 * 10 + 5,
            "{ok} operations passed in 2 s (10/s, burst 30)"
        );
        assert!(limited > 10 * ok, "{limited} refused");
        // Events: 5,000 in a burst; the witness sees at most the burst and the rate.
        let started = std::time::Instant::now();
        for i in 0..5_000u32 {
            flooder
                .raise_event(4, i.to_le_bytes().to_vec(), Delivery::Unreliable)
                .await
                .unwrap();
        }
        let burst_took = started.elapsed().as_secs_f64();
        let mut seen = 0;
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(500), witness.next_event()).await
        {
            if matches!(ev, RoomEvent::Custom(_)) {
                seen += 1;
            }
        }
        let allowed = 600.0 + 300.0 * (burst_took + 0.5) + 20.0;
        assert!(
            f64::from(seen) <= allowed,
            "{seen} events relayed (allowed {allowed:.0})"
        );
        let m = t.gs_metrics(0);
        let text = switchboard::http_client()
            .get(&m)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains("switchboard_gs_rate_limited_total{kind=\"event\"} 0"));
        let fared = pair.finish().await;
        assert!(fared.unaffected(), "{fared:?}");
    }
    /// The payload bytes of the custom events `room` hears until a second passes without
    /// one, and when the last arrived.
    async fn custom_bytes(
        room: &mut switchboard_client::Room,
    ) -> (usize, Option<std::time::Instant>) {
        let (mut seen, mut last) = (0usize, None);
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_secs(1), room.next_event()).await
        {
            if let RoomEvent::Custom(e) = ev {
                seen += e.data.len();
                last = Some(std::time::Instant::now());
            }
        }
        (seen, last)
    }

    /// Two players bursting at a third at once, each within its limit: the reader's
    /// queue on the server takes both bursts, and the reader stays.
    #[tokio::test]
    async fn two_players_bursting_at_once_do_not_cut_off_a_reader() {
        let t = cluster().await;
        let (pair, _host, first, mut reader) = sender_and_witness(&t, "bursts").await;
        let second = t.client("second").await.join_game("bursts").await.unwrap();
        let payload = 64 * 1024;
        // Each tries 1 MiB at once; its burst lets a quarter of it through.
        for _ in 0..16 {
            for sender in [&first, &second] {
                sender
                    .raise_event(6, vec![1u8; payload], Delivery::Reliable)
                    .await
                    .unwrap();
            }
        }
        let (seen, _) = custom_bytes(&mut reader).await;
        assert!(
            reader.close_reason().is_none(),
            "the reader was cut off: {:?}",
            reader.close_reason()
        );
        let burst = RateLimits::default().event_bytes.burst;
        assert!(seen as f64 >= 2.0 * burst, "{seen} bytes arrived");
        let fared = pair.finish().await;
        assert!(fared.unaffected(), "{fared:?}");
    }

    /// Few large events are as much load as many small ones: a client sending 64 KiB
    /// reliable events far below the event count limit is held to its byte rate (so
    /// one client cannot push a game server's bandwidth, and with it its load level,
    /// through the roof).
    #[tokio::test]
    async fn large_events_are_held_to_the_byte_rate() {
        let t = cluster().await;
        let (pair, _host, heavy, mut witness) = sender_and_witness(&t, "heavy").await;
        let limit = RateLimits::default().event_bytes;
        let payload = 64 * 1024;
        // The witness reads all along (its queue on the server is bounded too).
        let started = std::time::Instant::now();
        let reader = tokio::spawn(async move {
            let (seen, last) = custom_bytes(&mut witness).await;
            (seen, last.unwrap_or(started), witness.close_reason())
        });
        let mut sent = 0usize;
        // 40 events are far below the count limit (a burst of 600): only their bytes,
        // 2.5 MiB against a burst of 256 KiB and 256 KiB a second, are over.
        for _ in 0..40 {
            heavy
                .raise_event(5, vec![7u8; payload], Delivery::Reliable)
                .await
                .unwrap();
            sent += payload;
        }
        // Everything relayed left the server before the witness heard the last of it.
        let (seen, last, closed) = reader.await.unwrap();
        // Without the limit the flood overflows the witness's queue on the server,
        // and the server cuts the honest reader off.
        assert!(closed.is_none(), "the witness was cut off: {closed:?}");
        let took = last.duration_since(started).as_secs_f64();
        let allowed = limit.burst + limit.per_second * took + payload as f64;
        assert!(
            (seen as f64) <= allowed,
            "{seen} bytes relayed of {sent} sent (allowed {allowed:.0})"
        );
        assert!(
            seen as f64 >= limit.burst,
            "the burst passes: {seen} bytes relayed"
        );
        let dropped = common::metric(
            &t.gs_metrics(0),
            "switchboard_gs_rate_limited_total{kind=\"event_bytes\"}",
        )
        .await;
        assert!(dropped > 0.0, "dropped events are counted");
        let fared = pair.finish().await;
        assert!(fared.unaffected(), "{fared:?}");
    }
}
