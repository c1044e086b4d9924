//! The master holds only soft state: kill it while rooms are live, and once the game
//! servers have re-registered every room is listed and joinable again. Meanwhile the
//! rooms keep relaying.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::expect_event;
use switchboard_client::{Client, ClientConfig, Delivery};
use switchboard_gameserver::{GameServer, GameServerConfig, Stats};
use switchboard_master::{Master, MasterConfig};
use switchboard_protocol::{Lobby, MasterEvent, RoomEvent, RoomOptions};
use switchboard_transport::{ServerIdentity, Trust};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECRET: &str = "restart-test-cluster-secret";

fn start_master(
    identity: &ServerIdentity,
    client: SocketAddr,
    cluster: SocketAddr,
) -> (SocketAddr, SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let mut cfg = MasterConfig::new(identity.clone(), SECRET.into()).unwrap();
    cfg.client_addr = client;
    cfg.cluster_addr = cluster;
    cfg.game_list_interval = Duration::from_millis(50);
    // No admin listener: its fixed default port would collide between tests.
    cfg.admin_addr = None;
    let master = Master::bind(cfg).expect("bind master");
    let addrs = (master.client_addr(), master.cluster_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(master.run(async {
        let _ = stopped.await;
    }));
    (addrs.0, addrs.1, stop, task)
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let wait = async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 10 s"));
}

/// Starts `n` game servers registering with the master at `cluster_addr`, and waits until
/// they have.
async fn start_game_servers(
    n: usize,
    identity: &ServerIdentity,
    trust: &Trust,
    cluster_addr: SocketAddr,
) -> Vec<Arc<Stats>> {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut stats: Vec<Arc<Stats>> = Vec::new();
    for i in 0..n {
        let mut cfg = GameServerConfig::new(
            format!("gs-{i}"),
            cluster_addr.to_string(),
            trust.clone(),
            identity.clone(),
            SECRET,
        );
        cfg.listen = any;
        cfg.reconnect_min = Duration::from_millis(50);
        cfg.reconnect_max = Duration::from_millis(200);
        let gs = GameServer::bind(cfg).unwrap();
        stats.push(gs.stats());
        tokio::spawn(gs.run(std::future::pending()));
    }
    until("registration", || {
        stats.iter().all(|s| s.registered.load(Ordering::Relaxed))
    })
    .await;
    stats
}

#[tokio::test]
async fn a_restarted_master_rebuilds_its_view_from_the_game_servers() {
    let tls = tempfile::tempdir().unwrap();
    let (identity, ca) = ServerIdentity::dev(&tls.path().join("tls")).unwrap();
    let trust = Trust::from_ca_file(&ca).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (client_addr, cluster_addr, stop, master) = start_master(&identity, any, any);
    let stats = start_game_servers(2, &identity, &trust, cluster_addr).await;

    let config = ClientConfig::new(trust.clone());
    let client = |user: &'static str| {
        let config = config.clone();
        async move {
            let mut c = Client::connect(&client_addr.to_string(), config)
                .await
                .unwrap();
            c.authenticate(user, "").await.unwrap();
            c
        }
    };
    let names = ["r1", "r2", "r3", "r4"];
    let mut rooms = Vec::new();
    for name in names {
        let host = client("host").await;
        rooms.push(
            host.create_game(Some(name), RoomOptions::default())
                .await
                .unwrap(),
        );
    }
    let guest = client("guest").await;
    let mut guest_room = guest.join_game("r1").await.unwrap();

    // Kill the master.
    stop.send(()).unwrap();
    master.await.unwrap();
    until("the game servers noticing", || {
        stats.iter().all(|s| !s.registered.load(Ordering::Relaxed))
    })
    .await;

    // Rooms keep relaying while the master is away.
    rooms[0]
        .raise_event(3, b"master is gone".to_vec(), Delivery::Reliable)
        .await
        .unwrap();
    expect_event(
        &mut guest_room,
        |e| matches!(e, RoomEvent::Custom(d) if d.code == 3),
    )
    .await;

    // A new master on the same ports: the game servers re-register with their rooms.
    let (_, _, _stop2, _master2) = start_master(&identity, client_addr, cluster_addr);
    until("re-registration", || {
        stats.iter().all(|s| s.registered.load(Ordering::Relaxed))
    })
    .await;

    let mut watcher = client("watcher").await;
    watcher.join_lobby(Lobby::default()).await.unwrap();
    let listed = loop {
        match tokio::time::timeout(Duration::from_secs(5), watcher.next_event()).await {
            Ok(Some(MasterEvent::GameList { games, .. })) => break games,
            Ok(Some(_)) => continue,
            other => panic!("no game list: {other:?}"),
        }
    };
    let mut listed: Vec<String> = listed.into_iter().map(|g| g.game).collect();
    listed.sort();
    assert_eq!(listed, names, "every room is listed again");
    for name in names {
        let joiner = client("late-joiner").await;
        let room = joiner.join_game(name).await.unwrap();
        assert_eq!(room.game(), name);
        let expected_actor = if name == "r1" { 3 } else { 2 };
        assert_eq!(room.actor(), expected_actor, "{name} kept its actors");
    }
}

/// A game loop's client (the poll core under the C API and C#) in a room when the master
/// dies: it hears that the master connection closed, the room plays on, and a call that
/// needs the master is answered with an error instead of never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_client_in_a_room_plays_on_when_the_master_dies() {
    use switchboard_client::{Op, PollClient, PollEvent};
    let tls = tempfile::tempdir().unwrap();
    let (identity, ca) = ServerIdentity::dev(&tls.path().join("tls")).unwrap();
    let trust = Trust::from_ca_file(&ca).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (client_addr, cluster_addr, stop, master) = start_master(&identity, any, any);
    start_game_servers(1, &identity, &trust, cluster_addr).await;
    let mut host = Client::connect(&client_addr.to_string(), ClientConfig::new(trust.clone()))
        .await
        .unwrap();
    host.authenticate("host", "").await.unwrap();
    let room = host
        .create_game(Some("r1"), RoomOptions::default())
        .await
        .unwrap();

    let (joined, in_room) = oneshot::channel::<()>();
    let (killed, master_gone) = std::sync::mpsc::channel::<()>();
    let (master_addr, config) = (client_addr.to_string(), ClientConfig::new(trust.clone()));
    // The poll client lives on a blocking thread, as in a game loop.
    let game = tokio::task::spawn_blocking(move || {
        let mut pc = PollClient::connect(&master_addr, config).unwrap();
        let next = |pc: &mut PollClient, what: &str, pred: &dyn Fn(&PollEvent) -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                match pc.poll() {
                    Some(e) if pred(&e) => return e,
                    Some(_) => {}
                    None => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            panic!("{what} did not happen within 10 s");
        };
        pc.authenticate("player", "");
        next(&mut pc, "authenticated", &|e| {
            matches!(e, PollEvent::Authenticated { .. })
        });
        pc.join_game("r1", Default::default());
        next(&mut pc, "joined", &|e| {
            matches!(e, PollEvent::Joined { .. })
        });
        joined.send(()).unwrap();
        next(&mut pc, "the master's close", &|e| {
            matches!(e, PollEvent::Disconnected { room: false, .. })
        });
        master_gone.recv().unwrap();
        next(&mut pc, "the host's event", &|e| {
            matches!(e, PollEvent::Event { code: 3, .. })
        });
        pc.join_lobby(Lobby::default());
        next(&mut pc, "the lobby call's answer", &|e| {
            matches!(
                e,
                PollEvent::Error {
                    op: Op::Lobby,
                    code: 0,
                    ..
                }
            )
        });
    });
    in_room.await.unwrap();
    stop.send(()).unwrap();
    master.await.unwrap();
    killed.send(()).unwrap();
    room.raise_event(3, b"master is gone".to_vec(), Delivery::Reliable)
        .await
        .unwrap();
    game.await.expect("the game loop saw it all");
}
