//! Every byte example in docs/PROTOCOL.md, checked against the encoder: each test quotes
//! the document's text exactly (so editing the example breaks the test) and compares the
//! bytes written there with what Switchboard sends. A client author copies these bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use switchboard_protocol::*;

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The bytes of a quoted example: `text` must appear in the document as is. Its bytes are
/// the hex pairs inside its backquotes (`|` skipped) or, in a code block without
/// backquotes, the leading hex pairs of each line (comments may follow them).
fn doc_bytes(text: &str) -> Vec<u8> {
    assert!(
        DOC.contains(text),
        "docs/PROTOCOL.md no longer contains the example:\n{text}"
    );
    let pairs = |s: &str, stop_at_other: bool| {
        let mut out = Vec::new();
        for token in s.split_whitespace().filter(|t| *t != "|") {
            match u8::from_str_radix(token, 16) {
                Ok(b) if token.len() == 2 => out.push(b),
                _ if stop_at_other => break,
                _ => panic!("{token:?} is not a byte in the example:\n{text}"),
            }
        }
        out
    };
    let out: Vec<u8> = if text.contains('`') {
        text.split('`')
            .skip(1)
            .step_by(2)
            .flat_map(|s| pairs(s, false))
            .collect()
    } else {
        text.lines().flat_map(|l| pairs(l, true)).collect()
    };
    assert!(!out.is_empty(), "no bytes in the example:\n{text}");
    out
}

fn body(frame: &[u8]) -> &[u8] {
    &frame[4..]
}

#[test]
fn varints_and_zigzag() {
    assert_eq!(
        doc_bytes("`ac 02`"),
        &encode_body(&ClientToMaster::Request {
            id: 300,
            op: MasterOp::GetLobbyStats
        })[1..3]
    );
    // 32765 as an i16 is `fa ff 03`.
    assert!(DOC.contains("32765→65530 (`fa ff 03`)"));
    assert_eq!(
        &encode_body(&OpError {
            code: 32765,
            message: String::new()
        })[..],
        &[0xfa, 0xff, 0x03, 0x00]
    );
}

#[test]
fn hello_frame() {
    let doc = doc_bytes(
        "05 00 00 00   frame length 5
00            ClientToMaster::Hello
04            version 4
02 72 73      agent \"rs\"",
    );
    assert_eq!(
        doc,
        &encode_frame(&ClientToMaster::Hello(Hello::new("rs")))[..]
    );
}

#[test]
fn room_options_without_wishes() {
    let doc = doc_bytes("`00 01 01 00 00 00 00 00 00 00 01 00 01 00 00 00 00 00`");
    assert_eq!(doc, &encode_body(&RoomOptions::default())[..]);
}

#[test]
fn redirect_response_frame() {
    let doc = doc_bytes(
        "0e 00 00 00   frame length 14
01            MasterToClient::Response
02            id 2
00            Ok
01            MasterReply::Redirect
01 67         game \"g\"
03 68 3a 31   address \"h:1\"
02 aa bb      ticket (2 bytes)
01            action Join",
    );
    let msg = MasterToClient::Response(Response {
        id: 2,
        result: Ok(MasterReply::Redirect(Redirect {
            game: "g".into(),
            address: "h:1".into(),
            ticket: Bytes::from_static(&[0xaa, 0xbb]),
            action: TicketAction::Join,
        })),
    });
    assert_eq!(doc, &encode_frame(&msg)[..]);
}

#[test]
fn game_list_update_body() {
    let doc = doc_bytes("body `02 01 00 00 01 01 67 01 00 00 00 00`");
    let msg = MasterToClient::Event(MasterEvent::GameListUpdate {
        lobby: Lobby::default(),
        games: vec![GameListEntry {
            game: "g".into(),
            removed: true,
            properties: Properties::new(),
            player_count: 0,
            max_players: 0,
            is_open: false,
        }],
    });
    assert_eq!(doc, &encode_body(&msg)[..]);
}

#[test]
fn room_events_and_channel_header() {
    let join = GameToClient::Event(RoomEvent::Join {
        actor: ActorInfo {
            actor: 2,
            user_id: String::new(),
            inactive: false,
            properties: Properties::new(),
        },
        actors: vec![1, 2],
    });
    assert_eq!(
        doc_bytes("`09 00 00 00 | 02 00 02 00 00 00 02 01 02`"),
        &encode_frame(&join)[..]
    );
    let leave = GameToClient::Event(RoomEvent::Leave {
        actor: 1,
        inactive: true,
        master_client: 2,
    });
    assert_eq!(
        doc_bytes("body `02 01 01 01 02`"),
        body(&encode_frame(&leave))
    );
    assert_eq!(
        doc_bytes("starts with\n`01 00 00 00 03`"),
        &encode_frame(&ChannelHeader { channel: 3 })[..]
    );
}

#[test]
fn datagram_down() {
    let d = DatagramDown::Event(EventData {
        sender: 1,
        code: 200,
        data: Bytes::from_static(b"z"),
    });
    assert_eq!(doc_bytes("`00 01 c8 01 7a`"), &encode_body(&d)[..]);
}

#[test]
fn datagram_batch() {
    let event = |sender: u32, data: &'static [u8]| EventData {
        sender,
        code: 10,
        data: Bytes::from_static(data),
    };
    let doc = doc_bytes(
        "02            DatagramDown::Batch
02            2 items
00 01 0a 01 61   Event { sender: 1, code: 10, data: \"a\" }
00 02 0a 01 62   Event { sender: 2, code: 10, data: \"b\" }",
    );
    let batch = DatagramDown::Batch(vec![
        Unreliable::Event(event(1, b"a")),
        Unreliable::Event(event(2, b"b")),
    ]);
    assert_eq!(doc, &encode_body(&batch)[..]);
    // What a game server builds from the items' own datagrams, without re-encoding.
    let items = [
        encode_body(&DatagramDown::Event(event(1, b"a"))),
        encode_body(&DatagramDown::Event(event(2, b"b"))),
    ];
    assert_eq!(doc, &messages::game::batch_datagram(&items)[..]);
}

#[test]
fn cluster_register_and_load() {
    let register = GsToMaster::Register(Register {
        server_id: "a".into(),
        address: "b".into(),
        secret: "c".into(),
        priority: 2,
        replace: true,
    });
    assert_eq!(
        doc_bytes("body `01 01 61 01 62 01 63 02 01`"),
        &encode_body(&register)[..]
    );
    let load = GsToMaster::Load(LoadReport {
        peers: 300,
        games: 2,
        level: 9,
        state: ServerState::OutOfRotation,
        controllers: ControllerLevels {
            cpu: 3,
            bandwidth: 0,
            peers: 9,
        },
    });
    assert_eq!(
        doc_bytes("body `02 ac 02 02 09 01 03 00 09`"),
        &encode_body(&load)[..]
    );
}

#[test]
fn games_digest_example() {
    let g = GameState {
        game: "g".into(),
        lobby: Lobby::default(),
        max_players: 0,
        is_open: true,
        is_visible: false,
        lobby_properties: BTreeMap::new(),
        users: vec!["u".into()],
        expected_users: vec![],
    };
    let tuple = (
        &g.game,
        &g.lobby,
        g.max_players,
        g.is_open,
        g.is_visible,
        &g.lobby_properties,
        &g.users,
    );
    assert_eq!(
        doc_bytes("is `01 67 00 00 00 01 00 00 01 01\n75`"),
        &encode_body(&tuple)[..]
    );
    assert!(DOC.contains("`digest` is `0x54ae7a24b662c887`"));
    assert_eq!(games_digest([&g]).digest, 0x54ae_7a24_b662_c887);
}

#[test]
fn ticket_terms_example() {
    assert_eq!(
        doc_bytes("encodes as `00 00`"),
        &encode_body(&(None::<RoomOptions>, Vec::<String>::new()))[..]
    );
    assert!(DOC.contains("its `terms` is\n`0xc685f224d296a296`"));
    assert_eq!(terms_digest(None, &[], "u"), 0xc685_f224_d296_a296);
}

#[test]
fn host_changed() {
    let event = |handover| {
        GameToClient::Event(RoomEvent::HostChanged {
            host: 2,
            previous: 1,
            reason: HostChange::Left,
            handover,
        })
    };
    let new_host = event(Some(Handover {
        snapshot: Some(HostSnapshot {
            data: Bytes::from_static(b"S1"),
            age_ms: 1500,
        }),
        replay: 1,
        replay_truncated: false,
    }));
    assert_eq!(
        doc_bytes("body\n`02 07 02 01 00 01 01 02 53 31 dc 0b 01 00`"),
        &encode_body(&new_host)[..]
    );
    assert_eq!(
        doc_bytes("the others get body `02 07 02 01 00 00`"),
        &encode_body(&event(None))[..]
    );
}

#[test]
fn state_update_datagram() {
    let d = DatagramUp::UpdateState(StateUpdate {
        object: 3,
        tick: 300,
        state: Bytes::from_static(b"ab"),
    });
    assert_eq!(doc_bytes("`01 03 ac 02 02\n61 62`"), &encode_body(&d)[..]);
}
