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

#[tokio::test]
async fn a_join_the_game_server_refused_holds_neither_the_connection_nor_the_name() {
    // Tickets live 30 s: everything below must happen long before that.
    let t = start_all(1, |_| {}, |m| m.settings.max_joins_in_flight = 1, |_| {}).await;
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
    // JoinOnly for a user with an inactive actor: the master redirects, the game server
    // refuses (rejoin instead)...
    let r = common::eventually(|| bob.redirect(common::join_op("duel")), |r| r.is_ok())
        .await
        .unwrap();
    assert_eq!(
        code(bob.follow(r, &JoinOptions::default()).await),
        ResultCode::JoinFailedFoundInactiveJoiner
    );
    // ...and bob asks again on the same master connection, as the document says.
    let started = std::time::Instant::now();
    let back = common::eventually(
        || bob.join_game_with("duel", rejoin()),
        |r| !matches!(r, Err(e) if e.result_code() == Some(ResultCode::JoinInProgress)),
    )
    .await
    .unwrap();
    assert_eq!(back.actor(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not held for the ticket's life"
    );

    // A create the game server refused (other options than granted) frees the name.
    let carol = t.client("carol").await;
    let r = carol.redirect(create("taken")).await.unwrap();
    let other = JoinOptions {
        create_options: with_ttl(5),
        ..JoinOptions::default()
    };
    assert_eq!(
        code(carol.follow(r, &other).await),
        ResultCode::TicketTermsMismatch
    );
    let dave = t.client("dave").await;
    let started = std::time::Instant::now();
    let _room = common::eventually(
        || dave.create_game(Some("taken"), RoomOptions::default()),
        |r| r.is_ok(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the name was freed"
    );
    t.cluster.shutdown().await;
}

mod raw {
    //! A client speaking the protocol by hand, to send what the Rust client never does.

    use super::*;
    use bytes::Bytes;
    use switchboard_protocol::messages::game::MAX_CHANNEL;
    use switchboard_protocol::{
        ALPN_MASTER, ChannelHeader, ClientToGame, EventCaching, GameOp, GameToClient, Hello,
        Properties, RaiseEvent, ReceiverGroup, TicketAction,
    };
    use switchboard_transport::endpoint::client_config;
    use switchboard_transport::{FramedRecv, Limits, client_endpoint, connect, send_frame};

    pub struct Player {
        pub conn: quinn::Connection,
        pub send: quinn::SendStream,
        pub recv: FramedRecv,
    }

    /// A raw connection to the game server at `address`, past `Hello`/`Welcome`.
    pub async fn hello(
        t: &common::TestCluster,
        address: &str,
    ) -> (quinn::Connection, quinn::SendStream, FramedRecv) {
        let g = common::raw::RawGame::game_hello(t, address).await;
        (g.conn, g.send, g.recv)
    }

    /// Joins (or creates) `game` through the master, then talks to the game server raw.
    pub async fn player(t: &common::TestCluster, user: &str, game: &str, create: bool) -> Player {
        let c = t.client(user).await;
        let op = if create {
            create_op(game)
        } else {
            common::join_op(game)
        };
        let redirect = c.redirect(op).await.unwrap();
        std::mem::forget(c);
        let (conn, mut send, mut recv) = hello(t, &redirect.address).await;
        let op = match redirect.action {
            TicketAction::Create => GameOp::CreateGame {
                ticket: redirect.ticket,
                game: game.into(),
                options: RoomOptions::default(),
                expected_users: vec![],
                actor_properties: Properties::new(),
            },
            TicketAction::Join => GameOp::JoinGame {
                ticket: redirect.ticket,
                game: game.into(),
                mode: JoinMode::JoinOnly,
                expected_users: vec![],
                actor_properties: Properties::new(),
            },
        };
        send_frame(&mut send, &ClientToGame::Request { id: 1, op })
            .await
            .unwrap();
        loop {
            if let Ok(Some(GameToClient::Response(r))) = recv.next::<GameToClient>().await {
                assert!(r.result.is_ok(), "joined");
                break;
            }
        }
        Player { conn, send, recv }
    }

    fn create_op(game: &str) -> MasterOp {
        super::create(game)
    }

    pub fn event(code: u8, channel: u8) -> ClientToGame {
        ClientToGame::RaiseEvent(RaiseEvent {
            code,
            receivers: ReceiverGroup::Others,
            targets: vec![],
            group: 0,
            cache: EventCaching::DoNotCache,
            channel,
            data: Bytes::from_static(b"x"),
        })
    }

    /// The next room event on the control stream within `ms`.
    pub async fn next_event(p: &mut Player, ms: u64) -> Option<RoomEvent> {
        loop {
            match tokio::time::timeout(Duration::from_millis(ms), p.recv.next::<GameToClient>())
                .await
            {
                Ok(Ok(Some(GameToClient::Event(e)))) => return Some(e),
                Ok(Ok(Some(_))) => continue,
                _ => return None,
            }
        }
    }

    #[tokio::test]
    async fn the_game_server_creates_exactly_the_room_the_master_granted() {
        let t = start(1).await;
        let c = t.client("alice").await;
        let granted = RoomOptions {
            max_players: 2,
            ..RoomOptions::default()
        };
        let redirect = c
            .redirect(MasterOp::CreateGame {
                game: Some("two".into()),
                options: granted.clone(),
                expected_users: vec!["friend".into()],
            })
            .await
            .unwrap();
        let (_conn, mut send, mut recv) = hello(&t, &redirect.address).await;
        let mut id = 0;
        let mut create = async |options: RoomOptions, expected: Vec<String>| {
            id += 1;
            let op = GameOp::CreateGame {
                ticket: redirect.ticket.clone(),
                game: "two".into(),
                options,
                expected_users: expected,
                actor_properties: Properties::new(),
            };
            send_frame(&mut send, &ClientToGame::Request { id, op })
                .await
                .unwrap();
            loop {
                if let Ok(Some(GameToClient::Response(r))) = recv.next::<GameToClient>().await {
                    return r.result.map(|_| ()).map_err(|e| e.result_code());
                }
            }
        };
        let five = RoomOptions {
            max_players: 5,
            ..granted.clone()
        };
        assert_eq!(
            create(five, vec!["friend".into()]).await,
            Err(Some(ResultCode::TicketTermsMismatch)),
            "a room of 5 when the master granted 2"
        );
        assert_eq!(
            create(granted.clone(), vec![]).await,
            Err(Some(ResultCode::TicketTermsMismatch)),
            "the expected users dropped"
        );
        assert_eq!(create(granted, vec!["friend".into()]).await, Ok(()));
        t.cluster.shutdown().await;
    }

    #[tokio::test]
    async fn an_events_channel_must_be_its_streams_and_no_extra_stream_can_be_opened() {
        let t = start(1).await;
        let mut a = player(&t, "alice", "chan", true).await;
        let mut b = player(&t, "bob", "chan", false).await;
        // Alice sees herself, then Bob join.
        loop {
            match next_event(&mut a, 2000).await {
                Some(RoomEvent::Join { actor, .. }) if actor.actor == 2 => break,
                Some(_) => continue,
                None => panic!("Bob's Join did not arrive"),
            }
        }
        // Bob's own Join.
        assert!(matches!(
            next_event(&mut b, 2000).await,
            Some(RoomEvent::Join { .. })
        ));
        // On the control stream an event claims channel 5: refused to Alice, nobody gets it.
        send_frame(&mut a.send, &event(10, 5)).await.unwrap();
        match next_event(&mut a, 2000).await {
            Some(RoomEvent::ErrorInfo { code, .. }) => {
                assert_eq!(code, ResultCode::InvalidRequestParameters.to_wire())
            }
            other => panic!("expected ErrorInfo, got {other:?}"),
        }
        // On channel 3's stream, an event claiming channel 9 likewise; one claiming 3 goes.
        let mut ch = a.conn.open_uni().await.unwrap();
        send_frame(&mut ch, &ChannelHeader { channel: 3 })
            .await
            .unwrap();
        send_frame(&mut ch, &event(11, 9)).await.unwrap();
        assert!(matches!(
            next_event(&mut a, 2000).await,
            Some(RoomEvent::ErrorInfo { .. })
        ));
        send_frame(&mut ch, &event(12, 3)).await.unwrap();
        // Bob gets only the last one, on channel 3's stream.
        let incoming = tokio::time::timeout(Duration::from_secs(2), b.conn.accept_uni())
            .await
            .expect("a channel stream arrives")
            .unwrap();
        let mut frames = FramedRecv::new(incoming, 512 * 1024);
        let header: ChannelHeader = frames.next().await.unwrap().unwrap();
        assert_eq!(header.channel, 3);
        match frames.next::<GameToClient>().await.unwrap().unwrap() {
            GameToClient::Event(RoomEvent::Custom(d)) => assert_eq!(d.code, 12),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            next_event(&mut b, 300).await,
            None,
            "nothing on Bob's control stream"
        );
        drop(frames);
        // No second bidirectional stream, and no more unidirectional ones than channels:
        // the server gives no credit for them, so they cannot be opened.
        assert!(
            tokio::time::timeout(Duration::from_millis(500), a.conn.open_bi())
                .await
                .is_err()
        );
        // (Streams kept open: a finished one gives its credit back.)
        let mut held = vec![ch];
        while held.len() < 20 {
            match tokio::time::timeout(Duration::from_millis(300), a.conn.open_uni()).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
        }
        assert_eq!(
            held.len(),
            usize::from(MAX_CHANNEL),
            "one stream per channel 1 to 15"
        );
        // The master takes no unidirectional stream at all.
        let ep = client_endpoint(false).unwrap();
        let cfg = client_config(&t.trust, ALPN_MASTER, &Limits::default()).unwrap();
        let m = connect(&ep, cfg, &t.master()).await.unwrap();
        let (mut send, recv) = m.open_bi().await.unwrap();
        let mut recv = FramedRecv::new(recv, 512 * 1024);
        send_frame(
            &mut send,
            &switchboard_protocol::ClientToMaster::Hello(Hello::new("raw")),
        )
        .await
        .unwrap();
        let _welcome = recv.next::<switchboard_protocol::MasterToClient>().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(500), m.open_uni())
                .await
                .is_err()
        );
        t.cluster.shutdown().await;
    }
}
