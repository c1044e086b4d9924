//! The master's flows over real QUIC on 127.0.0.1: lobbies and game lists, random
//! matchmaking, join modes, expected users, friends, statistics, the auth deadline.

mod common;

use std::time::Duration;

use common::{code, eventually, expect_event, start_full};
use switchboard_client::{Client, ClientConfig, ClientError, JoinOptions};
use switchboard_protocol::{
    CloseCode, CreateSpec, JoinMode, JoinRandom, Lobby, LobbyKind, MasterEvent, ResultCode,
    RoomEvent, RoomOptions, Value,
};

/// A cluster whose master sends game-list updates and app stats every 50 ms.
async fn fast(game_servers: usize) -> common::TestCluster {
    start_full(
        game_servers,
        |_| {},
        |m| {
            m.game_list_interval = Duration::from_millis(50);
            m.app_stats_interval = Duration::from_millis(50);
        },
    )
    .await
}

async fn next_master_event(c: &mut Client, pred: impl Fn(&MasterEvent) -> bool) -> MasterEvent {
    let wait = async {
        loop {
            let e = c.next_event().await.expect("master connection open");
            if pred(&e) {
                return e;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("master event in time")
}

fn listed(props: &[(&str, Value)]) -> RoomOptions {
    let mut o = RoomOptions::default();
    for (k, v) in props {
        o.properties.insert(k.to_string(), v.clone());
        o.lobby_properties.push(k.to_string());
    }
    o
}

#[tokio::test]
async fn lobby_gets_a_list_then_updates_then_removals() {
    let t = fast(1).await;
    let host = t.client("host").await;
    let _first = host
        .create_game(Some("first"), listed(&[("map", Value::Str("dust".into()))]))
        .await
        .unwrap();
    let mut watcher = t.client("watcher").await;
    // Wait until the game server has confirmed "first", so it is in the list.
    let _ = eventually(
        || watcher.lobby_stats(),
        |s| s.as_ref().is_ok_and(|s| s.iter().any(|l| l.games == 1)),
    )
    .await;
    watcher.join_lobby(Lobby::default()).await.unwrap();
    let MasterEvent::GameList { games, .. } =
        next_master_event(&mut watcher, |e| matches!(e, MasterEvent::GameList { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(games.len(), 1);
    assert_eq!(games[0].game, "first");
    assert_eq!(
        games[0].properties.get("map"),
        Some(&Value::Str("dust".into()))
    );

    // A new game appears as an update; nothing else is repeated.
    let second_host = t.client("second").await;
    let second = second_host
        .create_game(Some("second"), RoomOptions::default())
        .await
        .unwrap();
    let MasterEvent::GameListUpdate { games, .. } = next_master_event(&mut watcher, |e| {
        matches!(e, MasterEvent::GameListUpdate { games, .. } if games.iter().any(|g| g.game == "second"))
    })
    .await
    else {
        unreachable!()
    };
    assert!(
        games.iter().all(|g| g.game != "first"),
        "only changes: {games:?}"
    );

    // The game ends: flagged as removed.
    second.leave().await.unwrap();
    next_master_event(&mut watcher, |e| {
        matches!(e, MasterEvent::GameListUpdate { games, .. } if games.iter().any(|g| g.game == "second" && g.removed))
    })
    .await;
    watcher.leave_lobby().await.unwrap();
    assert_eq!(
        code(watcher.leave_lobby().await),
        ResultCode::OperationNotAllowedInCurrentState
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn join_random_matches_properties_and_can_create() {
    let t = fast(2).await;
    let host = t.client("host").await;
    let _eu = host
        .create_game(
            Some("eu-game"),
            listed(&[("region", Value::Str("eu".into()))]),
        )
        .await
        .unwrap();
    let host2 = t.client("host2").await;
    let _us = host2
        .create_game(
            Some("us-game"),
            listed(&[("region", Value::Str("us".into()))]),
        )
        .await
        .unwrap();
    let player = t.client("player").await;
    let mut q = JoinRandom::default();
    q.expected_properties
        .insert("region".into(), Value::Str("us".into()));
    let room = player.join_random_game(q).await.unwrap();
    assert_eq!(room.game(), "us-game");
    assert_eq!(room.actor(), 2);

    let other = t.client("other").await;
    let mut q = JoinRandom::default();
    q.expected_properties
        .insert("region".into(), Value::Str("mars".into()));
    assert_eq!(
        code(other.join_random_game(q.clone()).await),
        ResultCode::NoMatchFound
    );
    q.create_if_none = Some(CreateSpec {
        game: Some("mars-base".into()),
        options: listed(&[("region", Value::Str("mars".into()))]),
    });
    let created = other.join_random_game(q).await.unwrap();
    assert_eq!((created.game(), created.actor()), ("mars-base", 1));
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn sql_lobby_filters() {
    let t = fast(1).await;
    let sql = Lobby::new("ranked", LobbyKind::Sql);
    let mut hosts = Vec::new();
    for (name, rank) in [("bronze", 3), ("gold", 30)] {
        let host = t.client(&format!("host-{name}")).await;
        let mut o = listed(&[("C0", Value::Int(rank))]);
        o.lobby = sql.clone();
        let room = host.create_game(Some(name), o).await.unwrap();
        hosts.push((host, room));
    }
    let player = t.client("player").await;
    let q = JoinRandom {
        lobby: sql.clone(),
        sql_filter: "C0 >= 10".into(),
        ..JoinRandom::default()
    };
    assert_eq!(player.join_random_game(q).await.unwrap().game(), "gold");
    let bad = JoinRandom {
        lobby: sql,
        sql_filter: "C0 >= ".into(),
        ..JoinRandom::default()
    };
    let p2 = t.client("p2").await;
    assert_eq!(
        code(p2.join_random_game(bad).await),
        ResultCode::InvalidRequestParameters
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn join_modes_and_expected_users() {
    let t = fast(1).await;
    let alice = t.client("alice").await;
    // CreateIfNotExists creates it...
    let join = JoinOptions {
        mode: JoinMode::CreateIfNotExists,
        expected_users: vec!["bob".into()],
        create_options: RoomOptions {
            max_players: 2,
            ..RoomOptions::default()
        },
        ..JoinOptions::default()
    };
    let mut room = alice.join_game_with("duo", join.clone()).await.unwrap();
    assert_eq!(room.actor(), 1);
    // ...and bob's slot is reserved: carol is refused, bob gets in.
    let carol = t.client("carol").await;
    assert_eq!(code(carol.join_game("duo").await), ResultCode::GameFull);
    let bob = t.client("bob").await;
    let b = bob.join_game_with("duo", join).await.unwrap();
    assert_eq!(b.actor(), 2, "CreateIfNotExists joins an existing game");
    expect_event(
        &mut room,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 2),
    )
    .await;
    // RejoinOnly needs an inactive actor of this user.
    let dave = t.client("dave").await;
    let rejoin = JoinOptions {
        mode: JoinMode::RejoinOnly,
        ..JoinOptions::default()
    };
    assert_eq!(
        code(dave.join_game_with("duo", rejoin).await),
        ResultCode::JoinFailedWithRejoinerNotFound
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn friends_and_lobby_stats() {
    let t = fast(1).await;
    let ann = t.client("ann").await;
    let _room = ann
        .create_game(Some("anns-game"), RoomOptions::default())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let friends = eventually(
        || bob.find_friends(vec!["ann".into(), "bob".into(), "nobody".into()]),
        |f| f.as_ref().is_ok_and(|f| f[0].game.is_some()),
    )
    .await
    .unwrap();
    assert_eq!(friends[0].game.as_deref(), Some("anns-game"));
    assert!(friends[1].online && friends[1].game.is_none());
    assert!(!friends[2].online);
    bob.join_lobby(Lobby::default()).await.unwrap();
    let stats = bob.lobby_stats().await.unwrap();
    assert_eq!((stats[0].peers, stats[0].games), (1, 1));
    let too_many: Vec<String> = (0..65).map(|i| format!("u{i}")).collect();
    assert_eq!(
        code(bob.find_friends(too_many).await),
        ResultCode::OperationLimitReached
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn app_stats_are_pushed() {
    let t = fast(1).await;
    let ann = t.client("ann").await;
    let _room = ann.create_game(None, RoomOptions::default()).await.unwrap();
    let mut bob = t.client("bob").await;
    let e = next_master_event(&mut bob, |e| {
        matches!(
            e,
            MasterEvent::AppStats {
                peers_in_games: 1,
                games: 1,
                ..
            }
        )
    })
    .await;
    let MasterEvent::AppStats {
        peers_on_master, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(peers_on_master, 2);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_authenticates_is_closed() {
    let t = start_full(1, |_| {}, |m| m.auth_timeout = Duration::from_millis(200)).await;
    let c = Client::connect(&t.master(), ClientConfig::new(t.trust.clone()))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.lobby_stats().await {
                Err(e @ ClientError::Closed { .. }) => return e,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("closed in time");
    match e {
        ClientError::Closed { code, reason } => {
            assert_eq!(code, Some(CloseCode::AuthenticationFailed));
            assert!(reason.contains("authenticated"), "{reason}");
        }
        other => panic!("{other}"),
    }
    t.cluster.shutdown().await;
}
