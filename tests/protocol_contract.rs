//! What docs/PROTOCOL.md promises, end to end over QUIC: the bugs and unenforced rules a
//! client written from the document alone found, each with the behaviour the document
//! now states.

mod common;

use std::time::Duration;

use common::{code, expect_event, start, start_all};
use switchboard_client::JoinOptions;
use switchboard_protocol::{
    JoinMode, JoinRandom, Lobby, LobbyKind, MasterOp, ResultCode, RoomEvent, RoomOptions, Value,
};

fn with_ttl(max_players: u32) -> RoomOptions {
    RoomOptions {
        max_players,
        player_ttl_ms: 60_000,
        ..RoomOptions::default()
    }
}

fn rejoin() -> JoinOptions {
    JoinOptions {
        mode: JoinMode::RejoinOnly,
        ..JoinOptions::default()
    }
}

#[tokio::test]
async fn a_one_v_one_gets_its_dropped_player_back() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let mut a = alice.create_game(Some("duel"), with_ttl(2)).await.unwrap();
    let bob = t.client("bob").await;
    let b = bob.join_game("duel").await.unwrap();
    b.disconnect();
    expect_event(&mut a, |e| {
        matches!(
            e,
            RoomEvent::Leave {
                actor: 2,
                inactive: true,
                ..
            }
        )
    })
    .await;
    // The room is full (bob's inactive actor keeps its place)...
    let carol = t.client("carol").await;
    assert_eq!(code(carol.join_game("duel").await), ResultCode::GameFull);
    // ...and bob gets back in.
    let back = bob.join_game_with("duel", rejoin()).await.unwrap();
    assert_eq!(back.actor(), 2);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn every_actor_agrees_on_the_master_client_after_a_rejoin() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let a = alice.create_game(Some("g"), with_ttl(0)).await.unwrap();
    let bob = t.client("bob").await;
    let mut b = bob.join_game("g").await.unwrap();
    a.disconnect();
    let left = expect_event(&mut b, |e| matches!(e, RoomEvent::Leave { actor: 1, .. })).await;
    assert!(matches!(
        left,
        RoomEvent::Leave {
            master_client: 2,
            inactive: true,
            ..
        }
    ));
    let back = alice.join_game_with("g", rejoin()).await.unwrap();
    assert_eq!(
        back.joined().master_client,
        2,
        "the rejoiner is told the master client everyone else was told"
    );
    // Bob sees alice come back and nothing else: no change of master client.
    let joined = expect_event(&mut b, |e| matches!(e, RoomEvent::Join { .. })).await;
    assert!(matches!(joined, RoomEvent::Join { actor, .. } if actor.actor == 1));
    // Only the master client (bob) may hand the role over.
    assert_eq!(
        code(back.set_master_client(1, 2).await),
        ResultCode::NotAllowed
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn limits_are_measured_on_what_was_sent_and_hash_keys_are_refused_by_the_master() {
    let t = start(1).await;
    let c = t.client("alice").await;
    let padded = JoinRandom {
        lobby: Lobby::new("sql", LobbyKind::Sql),
        sql_filter: format!("C0 = 1{}", " ".repeat(1019)),
        ..JoinRandom::default()
    };
    assert_eq!(padded.sql_filter.len(), 1025);
    assert_eq!(
        code(c.redirect(MasterOp::JoinRandomGame(padded)).await),
        ResultCode::InvalidRequestParameters
    );
    let mut options = RoomOptions::default();
    options
        .properties
        .insert("#user_id".into(), Value::Str("mallory".into()));
    assert_eq!(
        code(c.create_game(Some("hash"), options).await),
        ResultCode::InvalidRequestParameters,
        "refused by the master, not only by the game server"
    );
    t.cluster.shutdown().await;
}

fn create(name: &str) -> MasterOp {
    MasterOp::CreateGame {
        game: Some(name.into()),
        options: RoomOptions::default(),
        expected_users: vec![],
    }
}

#[tokio::test]
async fn one_join_in_flight_per_connection_and_a_reserved_name_lives_as_long_as_its_ticket() {
    let t = start_all(
        1,
        |o| o.ticket_ttl = Duration::from_secs(1),
        |m| m.settings.max_joins_in_flight = 1,
        |_| {},
    )
    .await;
    let a = t.client("alice").await;
    let b = t.client("bob").await;
    let redirect = a.redirect(create("held")).await.unwrap();
    assert_eq!(
        code(a.redirect(create("other")).await),
        ResultCode::JoinInProgress,
        "a second join while the first redirect is unfollowed"
    );
    assert_eq!(
        code(b.redirect(create("held")).await),
        ResultCode::GameIdAlreadyExists,
        "the name is held while the ticket lives"
    );
    // The ticket expires after 1 s: then the name is free.
    let held_since = std::time::Instant::now();
    let room = common::eventually(
        || b.create_game(Some("held"), RoomOptions::default()),
        |r| r.is_ok(),
    )
    .await;
    assert!(
        held_since.elapsed() >= Duration::from_millis(900),
        "not freed before the ticket expired"
    );
    drop(room);
    assert!(
        a.follow(redirect, &Default::default()).await.is_err(),
        "the expired ticket is refused by the game server too"
    );
    // A followed redirect ends the join: the next one is allowed once the game server
    // has reported the player.
    let r = a.redirect(create("followed")).await.unwrap();
    let _room = a.follow(r, &Default::default()).await.unwrap();
    let _next = common::eventually(|| a.redirect(create("next")), |r| r.is_ok()).await;
    t.cluster.shutdown().await;
}
