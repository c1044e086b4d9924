//! Golden bytes (one comment per field), reject tests and round-trip properties for the
//! wire format. If one of the golden tests fails, the wire format changed: update
//! docs/PROTOCOL.md and bump the protocol version, or undo the change.

use bytes::Bytes;
use proptest::prelude::*;
use switchboard_protocol::*;

fn frame_body(frame: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(
        frame.len(),
        4 + len,
        "length prefix covers the body exactly"
    );
    &frame[4..]
}

#[test]
fn golden_hello() {
    let f = encode_frame(&ClientToMaster::Hello(Hello::new("rs")));
    #[rustfmt::skip]
    assert_eq!(&f[..], &[
        5, 0, 0, 0,       // frame length 5, u32 little-endian
        0,                // ClientToMaster::Hello
        4,                // version 4 (varint)
        2, b'r', b's',    // agent "rs"
    ]);
}

#[test]
fn golden_authenticate() {
    let f = encode_frame(&ClientToMaster::Request {
        id: 300,
        op: MasterOp::Authenticate {
            user_id: "al".into(),
            token: String::new(),
        },
    });
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1,                // ClientToMaster::Request
        0xac, 0x02,       // id 300 (varint)
        0,                // MasterOp::Authenticate
        2, b'a', b'l',    // user_id
        0,                // token ""
    ]);
}

#[test]
fn golden_create_game() {
    let mut options = RoomOptions {
        max_players: 4,
        ..RoomOptions::default()
    };
    options.properties.insert("m".into(), Value::Int(-2));
    options.lobby_properties.push("m".into());
    let f = encode_frame(&ClientToMaster::Request {
        id: 1,
        op: MasterOp::CreateGame {
            game: Some("g".into()),
            options,
            expected_users: vec!["x".into()],
        },
    });
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1, 1,             // Request, id 1
        1,                // MasterOp::CreateGame
        1, 1, b'g',       // game: Some("g")
        4,                // options.max_players 4
        1,                // options.is_open true
        1,                // options.is_visible true
        1,                // options.properties: 1 entry
        1, b'm',          //   key "m"
        2, 3,             //   Value::Int(-2), zigzag -> 3
        1, 1, b'm',       // options.lobby_properties ["m"]
        0,                // options.publish_user_id false
        0, 0,             // options.lobby: name "", kind Default
        0,                // options.player_ttl_ms 0 (zigzag)
        0,                // options.empty_room_ttl_ms 0
        1,                // options.cleanup_cache_on_leave true
        0,                // options.suppress_room_events false
        1,                // options.broadcast_props_change_to_all true
        0,                // options.delete_null_props false
        0,                // options.property_policy Guarded
        0,                // options.mode Relay
        0,                // options.join_approval false
        0,                // options.flush_window_ms None (the server's default)
        1, 1, b'x',       // expected_users ["x"]
    ]);
}

#[test]
fn golden_redirect_response() {
    let f = encode_frame(&MasterToClient::Response(Response {
        id: 2,
        result: Ok(MasterReply::Redirect(Redirect {
            game: "g".into(),
            address: "h:1".into(),
            ticket: Bytes::from_static(&[0xaa, 0xbb]),
            action: TicketAction::Join,
        })),
    }));
    #[rustfmt::skip]
    assert_eq!(&f[..], &[
        14, 0, 0, 0,          // frame length 14
        1,                    // MasterToClient::Response
        2,                    // id 2
        0,                    // Ok
        1,                    // MasterReply::Redirect
        1, b'g',              // game
        3, b'h', b':', b'1',  // address
        2, 0xaa, 0xbb,        // ticket bytes
        1,                    // action: Join
    ]);
}

#[test]
fn golden_error_response() {
    let f = encode_frame(&GameToClient::Response(Response {
        id: 9,
        result: Err(OpError::new(ResultCode::GameFull, "full")),
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1,                      // GameToClient::Response
        9,                      // id
        1,                      // Err
        0xfa, 0xff, 0x03,       // code 32765 as zigzag varint (65530)
        4, b'f', b'u', b'l', b'l',
    ]);
}

#[test]
fn golden_raise_event_and_datagrams() {
    let ev = RaiseEvent {
        code: 7,
        receivers: ReceiverGroup::All,
        targets: vec![2, 3],
        group: 4,
        cache: EventCaching::AddToRoomCache,
        channel: 2,
        data: Bytes::from_static(b"xy"),
    };
    let f = encode_frame(&ClientToGame::RaiseEvent(ev.clone()));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        2,                // ClientToGame::RaiseEvent
        7,                // code (u8: one raw byte)
        1,                // ReceiverGroup::All
        2, 2, 3,          // targets [2, 3]
        4,                // group 4 (u8)
        1,                // EventCaching::AddToRoomCache
        2,                // channel 2 (u8)
        2, b'x', b'y',    // data
    ]);
    let d = encode_body(&DatagramUp::RaiseEvent(ev));
    assert_eq!(&d[..], &[0, 7, 1, 2, 2, 3, 4, 1, 2, 2, b'x', b'y']);
    let down = encode_body(&DatagramDown::Event(EventData {
        sender: 1,
        code: 200,
        data: Bytes::from_static(b"z"),
    }));
    #[rustfmt::skip]
    assert_eq!(&down[..], &[
        0,        // DatagramDown::Event
        1,        // sender
        200,      // code: one raw byte, not a varint
        1, b'z',  // data
    ]);
}

#[test]
fn golden_room_events() {
    let f = encode_frame(&GameToClient::Event(RoomEvent::Join {
        actor: ActorInfo {
            actor: 2,
            user_id: String::new(),
            inactive: false,
            properties: Properties::new(),
        },
        actors: vec![1, 2],
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        2, 0,             // Event, Join
        2, 0, 0, 0,       // actor: 2, user_id "", inactive false, properties {}
        2, 1, 2,          // actors [1, 2]
    ]);
    let f = encode_frame(&GameToClient::Event(RoomEvent::Leave {
        actor: 1,
        inactive: true,
        master_client: 2,
    }));
    assert_eq!(frame_body(&f), &[2, 1, 1, 1, 2]);
    let mut props = Properties::new();
    props.insert("a".into(), Value::Null);
    let f = encode_frame(&GameToClient::Event(RoomEvent::PropertiesChanged {
        target: 2,
        sender: 1,
        properties: props,
        room: RoomChange::default(),
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        2, 3,             // Event, PropertiesChanged
        2, 1,             // target 2, sender 1
        1, 1, b'a', 0,    // properties {"a": Null}
        0, 0, 0, 0,       // room: all None
    ]);
    assert_eq!(
        &encode_frame(&ChannelHeader { channel: 3 })[..],
        &[1, 0, 0, 0, 3]
    );
}

#[test]
fn golden_register() {
    let f = encode_frame(&GsToMaster::Register(Register {
        server_id: "a".into(),
        address: "b".into(),
        secret: "c".into(),
        priority: 2,
        replace: true,
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1,              // GsToMaster::Register
        1, b'a',        // server_id
        1, b'b',        // address
        1, b'c',        // secret
        2,              // priority
        1,              // replace
    ]);
    let f = encode_frame(&GsToMaster::Snapshot(vec![GameState {
        game: "g".into(),
        lobby: Lobby::default(),
        max_players: 0,
        is_open: true,
        is_visible: false,
        lobby_properties: Properties::new(),
        users: vec!["u".into()],
        expected_users: vec![],
    }]));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        7,              // GsToMaster::Snapshot
        1,              // 1 game:
        1, b'g',        //   game
        0, 0,           //   lobby "" Default
        0, 1, 0,        //   max_players, is_open, is_visible
        0,              //   lobby_properties {}
        1, 1, b'u',     //   users ["u"]
        0,              //   expected_users []
    ]);
    let f = encode_frame(&GsToMaster::GameUnknown { game: "g".into() });
    assert_eq!(frame_body(&f), &[5, 1, b'g']);
    let f = encode_frame(&GsToMaster::Digest(GamesDigest {
        games: 2,
        digest: 0x0102,
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        6,              // GsToMaster::Digest
        2,              // games (varint)
        0x82, 0x02,     // digest 0x0102 (varint)
    ]);
    assert_eq!(frame_body(&encode_frame(&MasterToGs::Resync)), &[4]);
}

const DIGEST_OF_G: u64 = 0x54ae_7a24_b662_c887;

#[test]
fn golden_games_digest() {
    let g = GameState {
        game: "g".into(),
        lobby: Lobby::default(),
        max_players: 0,
        is_open: true,
        is_visible: false,
        lobby_properties: Properties::new(),
        users: vec!["u".into()],
        expected_users: vec!["left out".into()],
    };
    // SHA-256 of the postcard bytes 01 67 00 00 00 01 00 00 01 01 75 (game, lobby,
    // max_players, is_open, is_visible, lobby_properties, users), first 8 bytes read
    // little-endian; summed (wrapping) over the games.
    let one = games_digest([&g]);
    assert_eq!(one.games, 1);
    assert_eq!(one.digest, DIGEST_OF_G);
    let two = games_digest([&g, &g]);
    assert_eq!(two.digest, DIGEST_OF_G.wrapping_mul(2));
    assert_eq!(games_digest(std::iter::empty()), GamesDigest::default());
    let f = encode_frame(&GsToMaster::Load(LoadReport {
        peers: 300,
        games: 2,
        level: 9,
        state: ServerState::OutOfRotation,
        controllers: ControllerLevels {
            cpu: 3,
            bandwidth: 0,
            peers: 9,
        },
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        2,              // GsToMaster::Load
        0xac, 0x02,     // peers 300
        2,              // games
        9,              // level (u8)
        1,              // state OutOfRotation
        3, 0, 9,        // controllers: cpu, bandwidth, peers (u8 each)
    ]);
    let f = encode_frame(&MasterToGs::SetState {
        state: ServerState::Offline,
        offline_after_secs: 30,
    });
    assert_eq!(frame_body(&f), &[3, 2, 30]);
    let f = encode_frame(&GameToClient::Event(RoomEvent::GameServerOffline {
        seconds_left: 300,
    }));
    assert_eq!(frame_body(&f), &[2, 6, 0xac, 0x02]);
}

#[test]
fn golden_join_modes_and_random() {
    let f = encode_frame(&ClientToMaster::Request {
        id: 1,
        op: MasterOp::JoinGame {
            game: "abc".into(),
            mode: JoinMode::CreateIfNotExists,
            expected_users: vec![],
            create_options: RoomOptions::default(),
        },
    });
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1, 1,                       // Request, id 1
        2,                          // MasterOp::JoinGame
        3, b'a', b'b', b'c',        // game
        1,                          // mode CreateIfNotExists
        0,                          // expected_users []
        0, 1, 1, 0, 0, 0, 0, 0,     // create_options: the defaults ...
        0, 0, 1, 0, 1, 0,           // ... (ttls, cleanup, suppress, broadcast, delete)
        0,                          // ... property_policy Guarded
        0,                          // ... mode Relay
        0,                          // ... join_approval false
        0,                          // ... flush_window_ms None
    ]);
    let mut props = Properties::new();
    props.insert("a".into(), Value::Int(1));
    let f = encode_frame(&ClientToGame::Request {
        id: 1,
        op: GameOp::SetProperties(SetProperties {
            target: 0,
            properties: props,
            expected: Properties::new(),
            broadcast: true,
            room: RoomChange {
                is_open: Some(false),
                ..RoomChange::default()
            },
        }),
    });
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1, 1,                       // Request, id 1
        3,                          // GameOp::SetProperties
        0,                          // target 0 (the room)
        1, 1, b'a', 2, 2,           // properties {"a": Int(1)}
        0,                          // expected {}
        1,                          // broadcast true
        0,                          // room.max_players None
        1, 0,                       // room.is_open Some(false)
        0,                          // room.is_visible None
        0,                          // room.expected_users None
    ]);
    let f = encode_frame(&ClientToMaster::Request {
        id: 1,
        op: MasterOp::JoinRandomGame(JoinRandom {
            lobby: Lobby::new("l", LobbyKind::Sql),
            expected_max_players: 4,
            sql_filter: "C0=1".into(),
            mode: MatchmakingMode::RandomMatching,
            ..JoinRandom::default()
        }),
    });
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        1, 1,                       // Request, id 1
        3,                          // MasterOp::JoinRandomGame
        1, b'l', 1,                 // lobby "l", kind Sql
        0,                          // expected_properties {}
        4,                          // expected_max_players
        4, b'C', b'0', b'=', b'1',  // sql_filter
        2,                          // mode RandomMatching
        0,                          // expected_users []
        0,                          // create_if_none: None
    ]);
    let f = encode_frame(&MasterToClient::Event(MasterEvent::GameListUpdate {
        lobby: Lobby::default(),
        games: vec![GameListEntry {
            game: "g".into(),
            removed: true,
            properties: Properties::new(),
            player_count: 0,
            max_players: 0,
            is_open: false,
        }],
    }));
    #[rustfmt::skip]
    assert_eq!(frame_body(&f), &[
        2,              // MasterToClient::Event
        1,              // MasterEvent::GameListUpdate
        0, 0,           // lobby "" Default
        1,              // 1 entry:
        1, b'g',        //   game
        1,              //   removed
        0, 0, 0, 0,     //   properties {}, player_count, max_players, is_open
    ]);
}

#[test]
fn truncated_bodies_are_rejected() {
    let f = encode_frame(&ClientToMaster::Request {
        id: 1,
        op: MasterOp::JoinGame {
            game: "abc".into(),
            mode: JoinMode::JoinOnly,
            expected_users: vec!["x".into()],
            create_options: RoomOptions::default(),
        },
    });
    let body = frame_body(&f);
    for cut in 0..body.len() {
        assert!(
            decode_body::<ClientToMaster>(&body[..cut]).is_err(),
            "a body cut at {cut} must not decode"
        );
    }
}

#[test]
fn unknown_tags_are_rejected() {
    assert!(decode_body::<ClientToMaster>(&[9]).is_err());
    assert!(decode_body::<ClientToMaster>(&[1, 1, 42]).is_err());
    assert!(decode_body::<DatagramUp>(&[1]).is_err());
    assert!(decode_body::<GsToMaster>(&[200]).is_err());
    // CreateGame whose is_open bool is 2: only 0 and 1 are booleans.
    let create = |open: u8| {
        vec![
            1, 1, 0, 0, 0, // Request 1, CreateGame, ticket "", game ""
            0, open, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, // options
            0, 0, // expected_users, actor_properties
        ]
    };
    assert!(decode_body::<ClientToGame>(&create(2)).is_err());
    assert!(decode_body::<ClientToGame>(&create(1)).is_ok());
    // A property policy past Open (1) is unknown.
    let mut bad_policy = create(1);
    bad_policy[19] = 2;
    assert!(decode_body::<ClientToGame>(&bad_policy).is_err());
    // A room mode past Shared (3) is unknown.
    let mut bad_mode = create(1);
    bad_mode[20] = 4;
    assert!(decode_body::<ClientToGame>(&bad_mode).is_err());
    bad_mode[20] = 1;
    assert!(decode_body::<ClientToGame>(&bad_mode).is_ok());
}

#[test]
fn oversized_frames_are_rejected_before_buffering() {
    let mut d = FrameDecoder::new(frame::DEFAULT_MAX_FRAME);
    d.extend(&(frame::DEFAULT_MAX_FRAME as u32 + 1).to_le_bytes());
    assert!(matches!(d.next_body(), Err(FrameError::TooLarge { .. })));
}

#[test]
fn invalid_utf8_is_rejected() {
    // Hello with agent bytes that are not UTF-8.
    assert!(decode_body::<ClientToMaster>(&[0, 1, 1, 0xff]).is_err());
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".{0,8}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|v| Value::Bytes(v.into())),
    ]
}

fn room_options() -> impl Strategy<Value = RoomOptions> {
    (
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_map(".{0,6}", value(), 0..4),
        prop::collection::vec(".{0,6}", 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(max_players, is_open, is_visible, properties, lobby_properties, publish)| {
                RoomOptions {
                    max_players,
                    is_open,
                    is_visible,
                    properties,
                    lobby_properties,
                    publish_user_id: publish,
                    lobby: Lobby::new("lobby", LobbyKind::Sql),
                    player_ttl_ms: -1,
                    empty_room_ttl_ms: 500,
                    cleanup_cache_on_leave: !publish,
                    suppress_room_events: is_open,
                    broadcast_props_change_to_all: is_visible,
                    delete_null_props: true,
                    property_policy: if publish {
                        PropertyPolicy::Open
                    } else {
                        PropertyPolicy::Guarded
                    },
                    mode: if is_open {
                        RoomMode::Host
                    } else {
                        RoomMode::Server
                    },
                    join_approval: !is_open,
                    flush_window_ms: publish.then_some(max_players),
                }
            },
        )
}

fn raise_event() -> impl Strategy<Value = RaiseEvent> {
    (
        any::<u8>(),
        prop_oneof![
            Just(ReceiverGroup::Others),
            Just(ReceiverGroup::All),
            Just(ReceiverGroup::MasterClient)
        ],
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(code, receivers, targets, data)| RaiseEvent {
            code,
            receivers,
            targets,
            group: code / 2,
            cache: EventCaching::AddToRoomCacheGlobal,
            channel: code % 16,
            data: data.into(),
        })
}

fn client_to_game() -> impl Strategy<Value = ClientToGame> {
    prop_oneof![
        (any::<u16>(), ".{0,10}")
            .prop_map(|(version, agent)| ClientToGame::Hello(Hello { version, agent })),
        (
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..40),
            ".{0,10}",
            room_options()
        )
            .prop_map(|(id, t, game, options)| ClientToGame::Request {
                id,
                op: GameOp::CreateGame {
                    ticket: t.into(),
                    game,
                    options: options.clone(),
                    expected_users: vec!["friend".into()],
                    actor_properties: options.properties,
                }
            }),
        any::<u32>().prop_map(|id| ClientToGame::Request {
            id,
            op: GameOp::LeaveGame {
                will_come_back: id % 2 == 0
            }
        }),
        raise_event().prop_map(ClientToGame::RaiseEvent),
    ]
}

proptest! {
    #[test]
    fn client_to_game_round_trips(msg in client_to_game()) {
        let f = encode_frame(&msg);
        let mut d = FrameDecoder::new(frame::DEFAULT_MAX_FRAME);
        d.extend(&f);
        prop_assert_eq!(d.next_message::<ClientToGame>().unwrap(), Some(msg));
    }

    #[test]
    fn datagrams_round_trip(ev in raise_event()) {
        let msg = DatagramUp::RaiseEvent(ev);
        prop_assert_eq!(decode_body::<DatagramUp>(&encode_body(&msg)).unwrap(), msg);
    }

    #[test]
    fn master_messages_round_trip(id in any::<u32>(), user in ".{0,12}", opts in room_options()) {
        for msg in [
            ClientToMaster::Request { id, op: MasterOp::Authenticate { user_id: user.clone(), token: user.clone() } },
            ClientToMaster::Request { id, op: MasterOp::CreateGame { game: Some(user.clone()), options: opts.clone(), expected_users: vec![user.clone()] } },
            ClientToMaster::Request { id, op: MasterOp::JoinGame { game: user.clone(), mode: JoinMode::RejoinOrJoin, expected_users: vec![], create_options: opts.clone() } },
            ClientToMaster::Request { id, op: MasterOp::JoinRandomGame(JoinRandom { sql_filter: user.clone(), expected_properties: opts.properties.clone(), create_if_none: Some(CreateSpec { game: None, options: opts.clone() }), ..JoinRandom::default() }) },
            ClientToMaster::Request { id, op: MasterOp::FindFriends { user_ids: vec![user.clone()] } },
        ] {
            prop_assert_eq!(decode_body::<ClientToMaster>(&encode_frame(&msg)[4..]).unwrap(), msg);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_body::<ClientToMaster>(&bytes);
        let _ = decode_body::<ClientToGame>(&bytes);
        let _ = decode_body::<GsToMaster>(&bytes);
        let _ = decode_body::<DatagramUp>(&bytes);
    }
}

/// Inputs the fuzz targets (fuzz/) found, kept as regression tests.
#[test]
fn fuzz_findings() {
    // messages: a SetProperties whose value is a NaN float. It decodes, and re-encodes to
    // the same bytes, though the value is not equal to itself.
    let nan_body = [
        0x01, 0x00, 0x03, 0x02, 0x01, 0x01, 0x04, 0x03, 0x02, 0xbd, 0xec, 0xff, 0xfd, 0xfd, 0xfe,
        0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let msg: ClientToGame = decode_body(&nan_body).expect("decodes");
    assert_eq!(&encode_body(&msg)[..], &nan_body[..]);
}
