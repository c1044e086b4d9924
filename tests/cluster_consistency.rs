//! The master's view of a game server's rooms and the server's own are compared
//! (digests) and converge (snapshots); a room the server does not host is dropped on its
//! word. A scripted game server drives the master's side exactly; real game servers
//! check that churn never looks like a divergence.

mod common;

use std::time::Duration;

use common::{eventually, metric, start_all};
use quinn::{RecvStream, SendStream};
use switchboard_protocol::messages::cluster::MAX_CLUSTER_FRAME;
use switchboard_protocol::{
    ALPN_CLUSTER, GameState, GsToMaster, Hello, Lobby, MasterEvent, MasterOp, MasterToGs, Register,
    ResultCode, RoomOptions, games_digest,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{FramedRecv, Limits, client_endpoint, connect, send_frame};

fn game(name: &str, users: &[&str]) -> GameState {
    GameState {
        game: name.into(),
        lobby: Lobby::default(),
        max_players: 0,
        is_open: true,
        is_visible: true,
        lobby_properties: Default::default(),
        users: users.iter().map(|u| u.to_string()).collect(),
        expected_users: vec![],
    }
}

/// A game server speaking the cluster protocol by hand.
struct Scripted {
    send: SendStream,
    recv: FramedRecv,
    _conn: quinn::Connection,
}

impl Scripted {
    async fn register(t: &common::TestCluster, secret: &str, games: Vec<GameState>) -> Scripted {
        let ep = client_endpoint(false).unwrap();
        let cfg = client_config(&t.trust, ALPN_CLUSTER, &Limits::cluster()).unwrap();
        let conn = connect(&ep, cfg, &t.cluster.cluster.to_string())
            .await
            .unwrap();
        let (mut send, recv): (SendStream, RecvStream) = conn.open_bi().await.unwrap();
        let mut recv = FramedRecv::new(recv, MAX_CLUSTER_FRAME);
        send_frame(&mut send, &GsToMaster::Hello(Hello::new("scripted")))
            .await
            .unwrap();
        assert!(matches!(
            recv.next::<MasterToGs>().await,
            Ok(Some(MasterToGs::Welcome(_)))
        ));
        let reg = Register {
            server_id: "scripted".into(),
            address: "127.0.0.1:9".into(),
            secret: secret.into(),
            priority: 0,
            replace: false,
        };
        send_frame(&mut send, &GsToMaster::Register(reg))
            .await
            .unwrap();
        assert!(matches!(
            recv.next::<MasterToGs>().await,
            Ok(Some(MasterToGs::Registered { .. }))
        ));
        send_frame(&mut send, &GsToMaster::Snapshot(games))
            .await
            .unwrap();
        Scripted {
            send,
            recv,
            _conn: conn,
        }
    }

    async fn say(&mut self, msg: GsToMaster) {
        send_frame(&mut self.send, &msg).await.unwrap();
    }

    async fn hear(&mut self) -> MasterToGs {
        tokio::time::timeout(Duration::from_secs(5), self.recv.next())
            .await
            .expect("the master answers")
            .unwrap()
            .expect("the link is open")
    }
}

async fn listed(t: &common::TestCluster) -> Vec<String> {
    let mut c = t.client("watcher").await;
    c.join_lobby(Lobby::default()).await.unwrap();
    loop {
        if let Some(MasterEvent::GameList { games, .. }) = c.next_event().await {
            let mut names: Vec<String> = games.into_iter().map(|g| g.game).collect();
            names.sort();
            return names;
        }
    }
}

#[tokio::test]
async fn a_diverged_view_is_detected_counted_and_resynced() {
    let mut secret = String::new();
    let t = start_all(0, |_| {}, |m| secret = m.cluster_secret.clone(), |_| {}).await;
    let (a, b) = (game("a", &["x"]), game("b", &["y"]));
    let mut gs = Scripted::register(&t, &secret, vec![a.clone(), b.clone()]).await;
    let names = eventually(|| listed(&t), |n| n.len() == 2).await;
    assert_eq!(names, ["a", "b"]);

    // The same view: nothing to do.
    gs.say(GsToMaster::Digest(games_digest([&b, &a]))).await;
    // A view without "a" (say its GameRemoved was lost): the master asks for a snapshot.
    gs.say(GsToMaster::Digest(games_digest([&b]))).await;
    assert_eq!(
        gs.hear().await,
        MasterToGs::Resync,
        "only the second digest differs"
    );
    gs.say(GsToMaster::Snapshot(vec![b.clone()])).await;
    eventually(|| listed(&t), |n| n == &["b".to_string()]).await;
    let m = t.master_metrics();
    assert_eq!(
        metric(&m, "switchboard_master_divergences_total").await,
        1.0
    );

    // A client was sent to "b" and the server does not have it: dropped on its word.
    gs.say(GsToMaster::GameUnknown { game: "b".into() }).await;
    eventually(|| listed(&t), |n| n.is_empty()).await;
    assert_eq!(
        metric(&m, "switchboard_master_stale_games_dropped_total").await,
        1.0
    );
    // An unknown game the master never had changes nothing and counts nothing.
    gs.say(GsToMaster::GameUnknown { game: "zzz".into() }).await;
    gs.say(GsToMaster::Digest(games_digest([]))).await;
    // The link is ordered: once the master has compared this third digest, it has handled
    // the unknown game before it too.
    eventually(
        || metric(&m, "switchboard_master_digests_total"),
        |n| *n == 3.0,
    )
    .await;
    assert_eq!(
        metric(&m, "switchboard_master_stale_games_dropped_total").await,
        1.0
    );
    assert_eq!(
        metric(&m, "switchboard_master_divergences_total").await,
        1.0
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn churn_never_looks_like_a_divergence() {
    // Digests every 50 ms while rooms come, change and go.
    let t = start_all(
        2,
        |_| {},
        |_| {},
        |g| g.sync_interval = Duration::from_millis(50),
    )
    .await;
    let host = t.client("host").await;
    let guest = t.client("guest").await;
    for i in 0..30 {
        let room = host
            .create_game(Some(&format!("churn-{i}")), RoomOptions::default())
            .await
            .unwrap();
        let joined = guest.join_game(&format!("churn-{i}")).await.unwrap();
        if i % 3 == 0 {
            joined.leave().await.unwrap();
            room.leave().await.unwrap();
        } else {
            std::mem::forget((room, joined));
        }
    }
    // Enough digests compared after the churn, each covering what came before it.
    let m = t.master_metrics();
    let seen = metric(&m, "switchboard_master_digests_total").await;
    eventually(
        || metric(&m, "switchboard_master_digests_total"),
        |n| *n >= seen + 4.0,
    )
    .await;
    assert_eq!(
        metric(&m, "switchboard_master_divergences_total").await,
        0.0
    );
}

#[tokio::test]
async fn a_joiner_ahead_of_the_creator_does_not_drop_the_reservation() {
    let t = start_all(1, |_| {}, |_| {}, |_| {}).await;
    let creator = t.client("creator").await;
    // The master reserves the game; its creator has not arrived at the game server yet.
    let redirect = creator
        .redirect(MasterOp::CreateGame {
            game: Some("early".into()),
            options: RoomOptions::default(),
            expected_users: vec![],
        })
        .await
        .unwrap();
    let early = t.client("early-bird").await;
    let e = early.join_game("early").await.unwrap_err();
    assert_eq!(e.result_code(), Some(ResultCode::GameDoesNotExist));
    let gs = t.gs_metrics(0);
    eventually(
        || metric(&gs, "switchboard_gs_unknown_games_total"),
        |n| *n == 1.0,
    )
    .await;
    // The reservation stands: the creator still creates it.
    let room = creator
        .follow(redirect, &Default::default())
        .await
        .expect("the creator arrives");
    assert_eq!(room.game(), "early");
    let m = t.master_metrics();
    assert_eq!(
        metric(&m, "switchboard_master_stale_games_dropped_total").await,
        0.0
    );
}
