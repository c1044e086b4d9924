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

#[tokio::test]
async fn a_restarted_master_rebuilds_its_view_from_the_game_servers() {
    let tls = tempfile::tempdir().unwrap();
    let (identity, ca) = ServerIdentity::dev(&tls.path().join("tls")).unwrap();
    let trust = Trust::from_ca_file(&ca).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (client_addr, cluster_addr, stop, master) = start_master(&identity, any, any);

    let mut stats: Vec<Arc<Stats>> = Vec::new();
    for i in 0..2 {
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
