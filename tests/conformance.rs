//! docs/PROTOCOL.md §14, frame by frame: for each operation, the exact frames a client
//! sees in the normal case and when it is refused, over real QUIC, from a client that
//! speaks the protocol by hand. Each test names the sequence of §14 it checks; when one
//! fails, either the server or the document changed.

mod common;

use bytes::Bytes;
use common::raw::{RawGame, RawMaster};
use common::{TestCluster, start};
use switchboard_protocol::{
    ActorInfo, ClientToGame, ClientToMaster, EventCaching, EventData, GameOp, GameReply,
    GameToClient, Hello, JoinMode, JoinRandom, Joined, Lobby, MasterEvent, MasterOp, MasterReply,
    MasterToClient, Properties, RaiseEvent, ReceiverGroup, Redirect, Response, ResultCode,
    RoomChange, RoomEvent, RoomMode, RoomOptions, SetProperties, TicketAction, Value,
};

fn refused(code: ResultCode) -> i16 {
    code.to_wire()
}

fn code_of<T: std::fmt::Debug>(r: Result<T, switchboard_protocol::OpError>) -> i16 {
    r.expect_err("refused").code
}

async fn authenticated(t: &TestCluster, user: &str) -> RawMaster {
    let mut m = RawMaster::master_hello(t).await;
    let r = m
        .call(
            1,
            MasterOp::Authenticate {
                user_id: user.into(),
                token: String::new(),
            },
        )
        .await;
    assert_eq!(
        r,
        Ok(MasterReply::Authenticated {
            user_id: user.into()
        })
    );
    m
}

fn create(game: &str) -> MasterOp {
    MasterOp::CreateGame {
        game: Some(game.into()),
        options: RoomOptions::default(),
        expected_users: vec![],
    }
}

fn join(game: &str, mode: JoinMode) -> MasterOp {
    MasterOp::JoinGame {
        game: game.into(),
        mode,
        expected_users: vec![],
        create_options: RoomOptions::default(),
    }
}

fn redirect(r: Result<MasterReply, switchboard_protocol::OpError>) -> Redirect {
    match r {
        Ok(MasterReply::Redirect(r)) => r,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// §14.2 Handshake and authentication on the master.
#[tokio::test]
async fn master_handshake_and_authenticate() {
    let t = start(1).await;
    let mut m = RawMaster::master(&t).await;
    m.send(&ClientToMaster::Hello(Hello::new("raw"))).await;
    match m.next().await {
        MasterToClient::Welcome(w) => assert_eq!(w.version, 4),
        other => panic!("{other:?}"),
    }
    // Anything before Authenticate: -3, and the connection stays.
    assert_eq!(
        code_of(m.call(7, MasterOp::GetLobbyStats).await),
        refused(ResultCode::OperationNotAllowedInCurrentState)
    );
    // Refused credentials: the response only; the client may try again.
    let bad = MasterOp::Authenticate {
        user_id: String::new(),
        token: String::new(),
    };
    assert_eq!(
        code_of(m.call(8, bad).await),
        refused(ResultCode::InvalidAuthentication)
    );
    let ok = MasterOp::Authenticate {
        user_id: "ann".into(),
        token: String::new(),
    };
    assert_eq!(
        m.call(9, ok.clone()).await,
        Ok(MasterReply::Authenticated {
            user_id: "ann".into()
        })
    );
    assert_eq!(
        code_of(m.call(10, ok).await),
        refused(ResultCode::OperationNotAllowedInCurrentState)
    );
    m.nothing_before_the_next_response().await;
    t.cluster.shutdown().await;
}

/// §14.2 Handshake refusals close the connection with a code and send no frame.
#[tokio::test]
async fn master_handshake_refusals_close_the_connection() {
    let t = start(1).await;
    let mut m = RawMaster::master(&t).await;
    m.send(&ClientToMaster::Hello(Hello {
        version: 2,
        agent: "old".into(),
    }))
    .await;
    assert_eq!(m.close_code().await, 2, "UnsupportedVersion");

    let mut m = RawMaster::master(&t).await;
    m.send(&ClientToMaster::Request {
        id: 1,
        op: MasterOp::GetLobbyStats,
    })
    .await;
    assert_eq!(m.close_code().await, 1, "ProtocolViolation");
    t.cluster.shutdown().await;
}

/// §14.2 The join operations on the master: one `Response` each, a `Redirect` or a code.
#[tokio::test]
async fn master_join_operations() {
    let t = start(1).await;
    let mut m = authenticated(&t, "ann").await;
    let random = MasterOp::JoinRandomGame(JoinRandom::default());
    assert_eq!(
        code_of(m.call(2, random).await),
        refused(ResultCode::NoMatchFound)
    );
    let r = redirect(m.call(3, create("arena")).await);
    assert_eq!((r.game.as_str(), r.action), ("arena", TicketAction::Create));
    m.nothing_before_the_next_response().await;

    let mut other = authenticated(&t, "bob").await;
    assert_eq!(
        code_of(other.call(2, create("arena")).await),
        refused(ResultCode::GameIdAlreadyExists)
    );
    assert_eq!(
        code_of(other.call(3, join("nowhere", JoinMode::JoinOnly)).await),
        refused(ResultCode::GameDoesNotExist)
    );
    let r = redirect(
        other
            .call(4, join("nowhere", JoinMode::CreateIfNotExists))
            .await,
    );
    assert_eq!(
        (r.game.as_str(), r.action),
        ("nowhere", TicketAction::Create)
    );
    t.cluster.shutdown().await;
}

/// §14.2 Lobbies: `JoinedLobby` then `GameList` at once; `LeaveLobby`; `FindFriends`.
#[tokio::test]
async fn master_lobby_and_friends() {
    let t = start(1).await;
    let mut m = authenticated(&t, "ann").await;
    let lobby = Lobby::default();
    assert_eq!(
        m.call(
            2,
            MasterOp::JoinLobby {
                lobby: lobby.clone()
            }
        )
        .await,
        Ok(MasterReply::JoinedLobby)
    );
    match m.next().await {
        MasterToClient::Event(MasterEvent::GameList { lobby: l, games }) => {
            assert_eq!(l, lobby);
            assert!(games.is_empty());
        }
        other => panic!("expected the GameList, got {other:?}"),
    }
    assert_eq!(
        m.call(3, MasterOp::LeaveLobby).await,
        Ok(MasterReply::LeftLobby)
    );
    assert_eq!(
        code_of(m.call(4, MasterOp::LeaveLobby).await),
        refused(ResultCode::OperationNotAllowedInCurrentState)
    );
    let friends = MasterOp::FindFriends {
        user_ids: vec!["zed".into(), "ann".into()],
    };
    match m.call(5, friends).await {
        Ok(MasterReply::Friends(f)) => {
            let seen: Vec<(&str, bool)> =
                f.iter().map(|s| (s.user_id.as_str(), s.online)).collect();
            assert_eq!(seen, vec![("zed", false), ("ann", true)]);
        }
        other => panic!("{other:?}"),
    }
    t.cluster.shutdown().await;
}

/// A raw game-server connection that followed `r`, with its join's result.
async fn follow(
    t: &TestCluster,
    r: &Redirect,
    options: RoomOptions,
) -> (RawGame, Result<GameReply, switchboard_protocol::OpError>) {
    let mut g = RawGame::game_hello(t, &r.address).await;
    let op = match r.action {
        TicketAction::Create => GameOp::CreateGame {
            ticket: r.ticket.clone(),
            game: r.game.clone(),
            options,
            expected_users: vec![],
            actor_properties: Properties::new(),
        },
        TicketAction::Join => GameOp::JoinGame {
            ticket: r.ticket.clone(),
            game: r.game.clone(),
            mode: JoinMode::JoinOnly,
            expected_users: vec![],
            actor_properties: Properties::new(),
        },
    };
    let result = g.call(1, op).await;
    (g, result)
}

fn actor(n: u32) -> ActorInfo {
    ActorInfo {
        actor: n,
        user_id: String::new(),
        inactive: false,
        properties: Properties::new(),
    }
}

/// Creator and joiner of `game`, both joined, with their own `Join` events read.
async fn two_in(t: &TestCluster, game: &str) -> (RawGame, RawGame) {
    let mut ma = authenticated(t, "ann").await;
    let (mut a, _) = follow(
        t,
        &redirect(ma.call(2, create(game)).await),
        Default::default(),
    )
    .await;
    assert!(matches!(
        a.next().await,
        GameToClient::Event(RoomEvent::Join { .. })
    ));
    let mut mb = authenticated(t, "bob").await;
    let r = redirect(mb.call(2, join(game, JoinMode::JoinOnly)).await);
    let (mut b, _) = follow(t, &r, Default::default()).await;
    assert!(matches!(
        b.next().await,
        GameToClient::Event(RoomEvent::Join { .. })
    ));
    assert!(matches!(
        a.next().await,
        GameToClient::Event(RoomEvent::Join { .. })
    ));
    (a, b)
}

/// §14.3 Create, join, leave: the joiner's `Joined`, then the `Join` about itself; the
/// others' `Join`; the leaver's `Left` and the others' `Leave`.
#[tokio::test]
async fn game_create_join_leave() {
    let t = start(1).await;
    let mut ma = authenticated(&t, "ann").await;
    let r = redirect(ma.call(2, create("arena")).await);
    let (mut a, result) = follow(&t, &r, RoomOptions::default()).await;
    assert_eq!(
        result,
        Ok(GameReply::Joined(Joined {
            game: "arena".into(),
            actor: 1,
            master_client: 1,
            actors: vec![actor(1)],
            properties: Properties::new(),
            max_players: 0,
            mode: RoomMode::Relay,
            host: 1,
            // The server's default window (PROTOCOL.md §6.4).
            flush_window_ms: 5,
        }))
    );
    assert_eq!(
        a.next().await,
        GameToClient::Event(RoomEvent::Join {
            actor: actor(1),
            actors: vec![1]
        })
    );
    a.nothing_before_the_next_response().await;

    let mut mb = authenticated(&t, "bob").await;
    let r = redirect(mb.call(2, join("arena", JoinMode::JoinOnly)).await);
    assert_eq!(r.action, TicketAction::Join);
    let (mut b, result) = follow(&t, &r, RoomOptions::default()).await;
    match result {
        Ok(GameReply::Joined(j)) => {
            assert_eq!((j.actor, j.master_client), (2, 1));
            assert_eq!(j.actors, vec![actor(1), actor(2)]);
        }
        other => panic!("{other:?}"),
    }
    let join2 = GameToClient::Event(RoomEvent::Join {
        actor: actor(2),
        actors: vec![1, 2],
    });
    assert_eq!(b.next().await, join2);
    assert_eq!(a.next().await, join2);

    assert_eq!(
        a.call(
            3,
            GameOp::LeaveGame {
                will_come_back: false
            }
        )
        .await,
        Ok(GameReply::Left)
    );
    assert_eq!(
        b.next().await,
        GameToClient::Event(RoomEvent::Leave {
            actor: 1,
            inactive: false,
            master_client: 2
        })
    );
    b.nothing_before_the_next_response().await;
    // After Left the connection is in no room.
    a.nothing_before_the_next_response().await;
    t.cluster.shutdown().await;
}

/// §14.3 LeaveGame in a room with a PlayerTtl, and in one without room events.
#[tokio::test]
async fn game_leave_inactive_and_without_room_events() {
    let t = start(1).await;
    for suppress in [false, true] {
        let game = format!("leave-{suppress}");
        let options = RoomOptions {
            player_ttl_ms: 300,
            suppress_room_events: suppress,
            ..RoomOptions::default()
        };
        let mut ma = authenticated(&t, "ann").await;
        let op = MasterOp::CreateGame {
            game: Some(game.clone()),
            options: options.clone(),
            expected_users: vec![],
        };
        let (mut a, _) = follow(&t, &redirect(ma.call(2, op).await), options).await;
        let mut mb = authenticated(&t, "bob").await;
        let r = redirect(mb.call(2, join(&game, JoinMode::JoinOnly)).await);
        let (mut b, _) = follow(&t, &r, RoomOptions::default()).await;
        if !suppress {
            a.next().await; // its own Join
            a.next().await; // bob's
            b.next().await; // bob's own
        }
        let left = a
            .call(
                3,
                GameOp::LeaveGame {
                    will_come_back: true,
                },
            )
            .await;
        assert_eq!(left, Ok(GameReply::Left));
        if suppress {
            assert_eq!(
                b.next().await,
                GameToClient::Event(RoomEvent::MasterClientChanged {
                    master_client: 2,
                    sender: 0
                })
            );
        } else {
            for inactive in [true, false] {
                assert_eq!(
                    b.next().await,
                    GameToClient::Event(RoomEvent::Leave {
                        actor: 1,
                        inactive,
                        master_client: 2
                    })
                );
            }
        }
        b.nothing_before_the_next_response().await;
    }
    t.cluster.shutdown().await;
}

/// §14.3 A refused join: the `Response` with its code, nothing else, to nobody; the
/// connection stays and may join with a good ticket.
#[tokio::test]
async fn game_refusals_answer_only_the_requester() {
    let t = start(1).await;
    let (mut a, _b) = two_in(&t, "arena").await;
    let mut mc = authenticated(&t, "cy").await;
    let r = redirect(mc.call(2, join("arena", JoinMode::JoinOnly)).await);
    let mut c = RawGame::game_hello(&t, &r.address).await;
    // Outside a room, room operations: -3.
    assert_eq!(
        code_of(
            c.call(
                1,
                GameOp::LeaveGame {
                    will_come_back: false
                }
            )
            .await
        ),
        refused(ResultCode::OperationNotAllowedInCurrentState)
    );
    let forged = GameOp::JoinGame {
        ticket: Bytes::from_static(&[0; 40]),
        game: "arena".into(),
        mode: JoinMode::JoinOnly,
        expected_users: vec![],
        actor_properties: Properties::new(),
    };
    assert_eq!(
        code_of(c.call(2, forged).await),
        refused(ResultCode::InvalidAuthentication)
    );
    let wrong_game = GameOp::CreateGame {
        ticket: r.ticket.clone(),
        game: "arena".into(),
        options: RoomOptions::default(),
        expected_users: vec![],
        actor_properties: Properties::new(),
    };
    assert_eq!(
        code_of(c.call(3, wrong_game).await),
        refused(ResultCode::ExpectedGameCheckFailure)
    );
    a.nothing_before_the_next_response().await;
    let good = GameOp::JoinGame {
        ticket: r.ticket,
        game: "arena".into(),
        mode: JoinMode::JoinOnly,
        expected_users: vec![],
        actor_properties: Properties::new(),
    };
    assert!(matches!(
        c.call(4, good).await,
        Ok(GameReply::Joined(Joined { actor: 3, .. }))
    ));
    t.cluster.shutdown().await;
}

/// §14.3 SetProperties, SetMasterClient, ChangeGroups: the requester's `Response` comes
/// before the events its request causes; a refusal reaches nobody else.
#[tokio::test]
async fn game_properties_master_client_and_groups() {
    let t = start(1).await;
    let (mut a, mut b) = two_in(&t, "arena").await;
    let mine = SetProperties {
        target: 2,
        properties: [("nick".to_string(), Value::Str("b".into()))].into(),
        broadcast: true,
        ..SetProperties::default()
    };
    assert_eq!(
        b.call(2, GameOp::SetProperties(mine.clone())).await,
        Ok(GameReply::PropertiesSet)
    );
    let changed = GameToClient::Event(RoomEvent::PropertiesChanged {
        target: 2,
        sender: 2,
        properties: mine.properties.clone(),
        room: RoomChange::default(),
    });
    // broadcast_props_change_to_all is on by default: the sender gets it too.
    assert_eq!(b.next().await, changed);
    assert_eq!(a.next().await, changed);

    let theirs = SetProperties { target: 1, ..mine };
    assert_eq!(
        code_of(b.call(3, GameOp::SetProperties(theirs)).await),
        refused(ResultCode::NotAllowed)
    );
    a.nothing_before_the_next_response().await;

    let op = GameOp::SetMasterClient {
        actor: 2,
        expected: 1,
    };
    assert_eq!(a.call(4, op).await, Ok(GameReply::MasterClientSet));
    let moved = GameToClient::Event(RoomEvent::MasterClientChanged {
        master_client: 2,
        sender: 1,
    });
    assert_eq!(a.next().await, moved);
    assert_eq!(b.next().await, moved);

    let op = GameOp::ChangeGroups {
        remove: None,
        add: vec![4],
    };
    assert_eq!(a.call(5, op).await, Ok(GameReply::GroupsChanged));
    b.nothing_before_the_next_response().await;
    a.nothing_before_the_next_response().await;
    t.cluster.shutdown().await;
}

fn event(code: u8, channel: u8, cache: EventCaching) -> ClientToGame {
    ClientToGame::RaiseEvent(RaiseEvent {
        code,
        receivers: ReceiverGroup::Others,
        targets: vec![],
        group: 0,
        cache,
        channel,
        data: Bytes::from_static(b"hi"),
    })
}

/// §14.3 RaiseEvent: no response; recipients get `Custom` stamped with the sender; a bad
/// event gets the sender an `ErrorInfo`; a joiner gets the cache right after its `Join`.
#[tokio::test]
async fn game_events_and_the_cache() {
    let t = start(1).await;
    let (mut a, mut b) = two_in(&t, "arena").await;
    a.send(&event(9, 0, EventCaching::AddToRoomCache)).await;
    let custom = GameToClient::Event(RoomEvent::Custom(EventData {
        sender: 1,
        code: 9,
        data: Bytes::from_static(b"hi"),
    }));
    assert_eq!(b.next().await, custom);
    a.nothing_before_the_next_response().await;

    // Channel 3 on the control stream: refused, to the sender only.
    a.send(&event(10, 3, EventCaching::DoNotCache)).await;
    match a.next().await {
        GameToClient::Event(RoomEvent::ErrorInfo { code, .. }) => {
            assert_eq!(code, refused(ResultCode::InvalidRequestParameters))
        }
        other => panic!("{other:?}"),
    }
    b.nothing_before_the_next_response().await;

    // A joiner: Joined, its Join, then the cached events in order.
    let mut mc = authenticated(&t, "cy").await;
    let r = redirect(mc.call(2, join("arena", JoinMode::JoinOnly)).await);
    let (mut c, result) = follow(&t, &r, RoomOptions::default()).await;
    assert!(matches!(
        result,
        Ok(GameReply::Joined(Joined { actor: 3, .. }))
    ));
    assert!(matches!(
        c.next().await,
        GameToClient::Event(RoomEvent::Join { .. })
    ));
    assert_eq!(c.next().await, custom);
    c.nothing_before_the_next_response().await;
    t.cluster.shutdown().await;
}

/// §14.3 A response is a `Response` frame with the request's id, whatever the id.
#[tokio::test]
async fn responses_echo_any_id() {
    let t = start(1).await;
    let mut m = RawMaster::master_hello(&t).await;
    m.send(&ClientToMaster::Request {
        id: 0xdead_beef,
        op: MasterOp::GetLobbyStats,
    })
    .await;
    assert!(matches!(
        m.next().await,
        MasterToClient::Response(Response {
            id: 0xdead_beef,
            result: Err(_)
        })
    ));
    t.cluster.shutdown().await;
}

/// §4 Requests may follow `Hello` without waiting for `Welcome` (one round trip less per
/// hop): sent in one write, they are answered in order after `Welcome`.
#[tokio::test]
async fn requests_may_follow_hello_in_the_same_write() {
    use switchboard_protocol::encode_frame;
    let t = start(1).await;
    let mut m = RawMaster::master(&t).await;
    let mut bytes = encode_frame(&ClientToMaster::Hello(Hello::new("raw"))).to_vec();
    bytes.extend_from_slice(&encode_frame(&ClientToMaster::Request {
        id: 1,
        op: MasterOp::Authenticate {
            user_id: "ann".into(),
            token: String::new(),
        },
    }));
    bytes.extend_from_slice(&encode_frame(&ClientToMaster::Request {
        id: 2,
        op: create("piped"),
    }));
    m.send.write_all(&bytes).await.unwrap();
    assert!(matches!(m.next().await, MasterToClient::Welcome(_)));
    let r = match m.next().await {
        MasterToClient::Response(Response { id: 1, result }) => result,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        r,
        Ok(MasterReply::Authenticated {
            user_id: "ann".into()
        })
    );
    let r = match m.next().await {
        MasterToClient::Response(Response { id: 2, result }) => redirect(result),
        other => panic!("{other:?}"),
    };
    // The same on the game server: Hello and the create with its ticket in one write.
    let mut g: RawGame = RawGame::game(&t, &r.address).await;
    let mut bytes = encode_frame(&ClientToGame::Hello(Hello::new("raw"))).to_vec();
    bytes.extend_from_slice(&encode_frame(&ClientToGame::Request {
        id: 1,
        op: GameOp::CreateGame {
            ticket: r.ticket.clone(),
            game: r.game.clone(),
            options: RoomOptions::default(),
            expected_users: vec![],
            actor_properties: Properties::new(),
        },
    }));
    g.send.write_all(&bytes).await.unwrap();
    assert!(matches!(g.next().await, GameToClient::Welcome(_)));
    match g.next().await {
        GameToClient::Response(Response {
            id: 1,
            result: Ok(GameReply::Joined(j)),
        }) => {
            assert_eq!(j.actor, 1)
        }
        other => panic!("{other:?}"),
    }
    t.cluster.shutdown().await;
}
