//! The flush window over real QUIC (PROTOCOL.md §6.3–§6.4): what a client's connection
//! carries when a room holds events for a window, read raw from the datagrams, and what
//! the Rust client makes of it.

mod common;

use std::time::Duration;

use common::{expect_event, start};
use switchboard_client::{Delivery, Room};
use switchboard_protocol::{
    ClientToGame, DatagramDown, GameOp, GameToClient, JoinMode, Properties, RoomEvent, RoomOptions,
    SetProperties, TicketAction, Unreliable, Value, decode_body,
};

/// A raw connection in `game`, joined through the master; nothing of the Rust client
/// reads its datagrams.
async fn raw_player(t: &common::TestCluster, user: &str, game: &str) -> common::raw::RawGame {
    let c = t.client(user).await;
    let redirect = c.redirect(common::join_op(game)).await.unwrap();
    assert_eq!(redirect.action, TicketAction::Join);
    let mut g = common::raw::RawGame::game_hello(t, &redirect.address).await;
    let op = GameOp::JoinGame {
        ticket: redirect.ticket,
        game: game.into(),
        mode: JoinMode::JoinOnly,
        expected_users: vec![],
        actor_properties: Properties::new(),
    };
    g.call(1, op).await.unwrap();
    std::mem::forget(c);
    g
}

/// The datagrams `g` receives until it has seen `events` events (a batch counts its
/// items), each decoded into the codes it carries; `batch` tells a batch from a single.
async fn datagrams(g: &common::raw::RawGame, events: usize) -> Vec<(bool, Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < events {
        let d = tokio::time::timeout(Duration::from_secs(5), g.conn.read_datagram())
            .await
            .unwrap_or_else(|_| panic!("only {seen} of {events} events arrived"))
            .unwrap();
        let down: DatagramDown = decode_body(&d).expect("a datagram decodes");
        let batch = matches!(down, DatagramDown::Batch(_));
        let codes: Vec<u8> = down
            .into_items()
            .into_iter()
            .map(|i| match i {
                Unreliable::Event(e) => e.code,
                Unreliable::State(_) => panic!("no states in a Relay room"),
            })
            .collect();
        seen += codes.len();
        out.push((batch, codes, d.len()));
    }
    out
}

async fn creator(t: &common::TestCluster, game: &str, window: Option<u32>) -> Room {
    let alice = t.client("alice").await;
    let options = RoomOptions {
        flush_window_ms: window,
        ..RoomOptions::default()
    };
    let room = alice.create_game(Some(game), options).await.unwrap();
    std::mem::forget(alice);
    room
}

#[tokio::test]
async fn events_within_a_window_arrive_batched_in_order_and_spill_into_the_next_datagram() {
    let t = start(1).await;
    // The longest window the server allows by default, so that a loaded machine does not
    // spread the burst over several windows.
    let mut a = creator(&t, "batched", Some(50)).await;
    let raw = raw_player(&t, "bob", "batched").await;
    let carol = t.client("carol").await;
    let mut c = carol.join_game("batched").await.unwrap();
    expect_event(
        &mut a,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 3),
    )
    .await;

    // 31 events of 100 bytes at once: the first leaves alone (Bob was quiet), the other
    // 30 are held for the window and leave packed, 11 to a datagram.
    for code in 0..31u8 {
        a.raise_event(code, vec![code; 100], Delivery::Unreliable)
            .await
            .unwrap();
    }
    let got = datagrams(&raw, 31).await;
    let codes: Vec<u8> = got.iter().flat_map(|(_, c, _)| c.clone()).collect();
    assert_eq!(codes, (0..31).collect::<Vec<_>>(), "every event, in order");
    assert_eq!(got[0], (false, vec![0], 104), "the first event is not held");
    assert!(
        got.iter()
            .any(|(batch, codes, _)| *batch && codes.len() > 1),
        "held events share datagrams: {got:?}"
    );
    let max = raw.conn.max_datagram_size().unwrap();
    assert!(got.iter().all(|(_, _, len)| *len <= max), "{got:?}");
    // 30 events of 104 bytes need at least 3 datagrams of at most `max` bytes.
    assert!(got.len() >= 4 && got.len() < 31, "{got:?}");

    // The Rust client unpacks the batches into the events, in order.
    for code in 0..31u8 {
        let e = expect_event(&mut c, |e| matches!(e, RoomEvent::Custom(_))).await;
        let RoomEvent::Custom(e) = e else {
            unreachable!()
        };
        assert_eq!((e.code, e.sender, e.data.len()), (code, 1, 100));
    }
}

#[tokio::test]
async fn a_room_without_a_window_sends_every_event_in_its_own_datagram() {
    let t = start(1).await;
    let a = creator(&t, "at-once", Some(0)).await;
    let raw = raw_player(&t, "bob", "at-once").await;
    for code in 0..10u8 {
        a.raise_event(code, vec![code; 100], Delivery::Unreliable)
            .await
            .unwrap();
    }
    let got = datagrams(&raw, 10).await;
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(batch, _, _)| !batch), "{got:?}");
}

#[tokio::test]
async fn reliable_events_held_for_a_window_are_not_overtaken_by_a_room_event() {
    let t = start(1).await;
    let a = creator(&t, "ordered", Some(50)).await;
    let mut raw = raw_player(&t, "bob", "ordered").await;
    // Alice's Join is on the stream before anything relayed.
    assert!(matches!(
        raw.next().await,
        GameToClient::Event(RoomEvent::Join { .. })
    ));
    for code in 1..=3u8 {
        a.raise_event(code, vec![code], Delivery::Reliable)
            .await
            .unwrap();
    }
    let mut props = Properties::new();
    props.insert("ready".into(), Value::Bool(true));
    a.set_properties(SetProperties {
        target: 1,
        properties: props,
        broadcast: true,
        ..SetProperties::default()
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        match raw.next().await {
            GameToClient::Event(RoomEvent::Custom(e)) => seen.push(format!("event {}", e.code)),
            GameToClient::Event(RoomEvent::PropertiesChanged { .. }) => {
                seen.push("properties".into())
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["event 1", "event 2", "event 3", "properties"]);
    // Bob can still talk: the raw connection is in good standing.
    raw.send(&ClientToGame::Request {
        id: 9,
        op: GameOp::ChangeGroups {
            remove: None,
            add: vec![],
        },
    })
    .await;
    assert!(matches!(raw.next().await, GameToClient::Response(_)));
}

#[tokio::test]
async fn a_refused_request_is_answered_in_order_and_after_what_is_held() {
    // Three operations, then every further one is refused as RateLimited.
    let t = common::start_all(
        1,
        |_| {},
        |_| {},
        |g| {
            g.rate_limits.ops = switchboard_workload::Rate {
                per_second: 0.001,
                burst: 3.0,
            }
        },
    )
    .await;
    let a = creator(&t, "refusals", Some(50)).await;
    let mut raw = raw_player(&t, "bob", "refusals").await;
    assert!(matches!(
        raw.next().await,
        GameToClient::Event(RoomEvent::Join { .. })
    ));
    let no_op = || GameOp::ChangeGroups {
        remove: None,
        add: vec![],
    };
    // Ten requests at once: the room answers the first three, the connection refuses
    // the rest; the answers still come in the order the requests were sent (§14.1).
    for id in 10..20 {
        raw.send(&ClientToGame::Request { id, op: no_op() }).await;
    }
    let mut answers = Vec::new();
    while answers.len() < 10 {
        match raw.next().await {
            GameToClient::Response(r) => answers.push((r.id, r.result.is_ok())),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ids: Vec<u32> = answers.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (10..20).collect::<Vec<_>>(), "{answers:?}");
    assert_eq!(answers.iter().filter(|(_, ok)| *ok).count(), 3);
    // A refusal does not overtake events held for Bob: e1 leaves at once (Bob was
    // quiet), e2 is held for the window, then Bob's refused request is answered.
    for code in [1u8, 2] {
        a.raise_event(code, vec![code], Delivery::Reliable)
            .await
            .unwrap();
    }
    // e2 is with the room before the request is sent (the Join above proves nothing
    // about it): wait for e1, which the room handled first.
    assert!(matches!(
        raw.next().await,
        GameToClient::Event(RoomEvent::Custom(e)) if e.code == 1
    ));
    raw.send(&ClientToGame::Request {
        id: 77,
        op: no_op(),
    })
    .await;
    assert!(matches!(
        raw.next().await,
        GameToClient::Event(RoomEvent::Custom(e)) if e.code == 2
    ));
    match raw.next().await {
        GameToClient::Response(r) => assert_eq!(
            (r.id, r.result.map_err(|e| e.code)),
            (
                77,
                Err(switchboard_protocol::ResultCode::RateLimited.to_wire())
            )
        ),
        other => panic!("unexpected {other:?}"),
    }
}
