//! Hive room behaviour end to end over QUIC: rejoin within and after PlayerTtl, interest
//! groups, event cache replay and overflow, properties compare-and-set, SetMasterClient,
//! reliable channels, replayed tickets.

mod common;

use bytes::Bytes;
use common::{code, eventually, expect_event, start};
use switchboard_client::{Delivery, JoinOptions, Room};
use switchboard_protocol::{
    EventCaching, JoinMode, Properties, PropertyPolicy, RaiseEvent, ReceiverGroup, ResultCode,
    RoomEvent, RoomOptions, SetProperties, Value,
};

fn event(code: u8) -> RaiseEvent {
    RaiseEvent {
        code,
        receivers: ReceiverGroup::Others,
        targets: vec![],
        group: 0,
        cache: EventCaching::DoNotCache,
        channel: 0,
        data: Bytes::new(),
    }
}

fn rejoin() -> JoinOptions {
    JoinOptions {
        mode: JoinMode::RejoinOnly,
        ..JoinOptions::default()
    }
}

/// Collects the codes of custom events until the marker code arrives.
async fn codes_until(room: &mut Room, marker: u8) -> Vec<u8> {
    let mut codes = Vec::new();
    loop {
        let RoomEvent::Custom(d) = expect_event(room, |e| matches!(e, RoomEvent::Custom(_))).await
        else {
            unreachable!()
        };
        if d.code == marker {
            return codes;
        }
        codes.push(d.code);
    }
}

#[tokio::test]
async fn rejoin_within_player_ttl_restores_the_actor() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let options = RoomOptions {
        player_ttl_ms: 30_000,
        ..RoomOptions::default()
    };
    let mut a = alice.create_game(Some("g"), options).await.unwrap();
    let bob = t.client("bob").await;
    let b = bob.join_game("g").await.unwrap();
    assert_eq!(b.actor(), 2);
    b.disconnect();
    let leave = expect_event(&mut a, |e| matches!(e, RoomEvent::Leave { .. })).await;
    assert_eq!(
        leave,
        RoomEvent::Leave {
            actor: 2,
            inactive: true,
            master_client: 1
        }
    );
    // The master learns that bob still has an actor there; then bob takes it back.
    let back = eventually(|| bob.join_game_with("g", rejoin()), |r| r.is_ok())
        .await
        .unwrap();
    assert_eq!(back.actor(), 2, "the same actor number");
    assert!(back.joined().actors.iter().all(|x| !x.inactive));
    expect_event(
        &mut a,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 2),
    )
    .await;
    // Joining as a new actor is refused while the old one exists.
    back.disconnect();
    expect_event(&mut a, |e| {
        matches!(e, RoomEvent::Leave { inactive: true, .. })
    })
    .await;
    let e = eventually(
        || bob.join_game("g"),
        |r| {
            r.as_ref()
                .is_err_and(|e| e.result_code() != Some(ResultCode::GameFull))
        },
    )
    .await;
    assert_eq!(code(e), ResultCode::JoinFailedFoundInactiveJoiner);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn after_player_ttl_the_actor_is_gone() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let options = RoomOptions {
        player_ttl_ms: 200,
        ..RoomOptions::default()
    };
    let mut a = alice.create_game(Some("g"), options).await.unwrap();
    let bob = t.client("bob").await;
    bob.join_game("g")
        .await
        .unwrap()
        .leave_for_now()
        .await
        .unwrap();
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
    // The room removes it when the TTL passes and tells the others.
    expect_event(&mut a, |e| {
        matches!(
            e,
            RoomEvent::Leave {
                actor: 2,
                inactive: false,
                ..
            }
        )
    })
    .await;
    let e = eventually(
        || bob.join_game_with("g", rejoin()),
        |r| {
            r.as_ref()
                .is_err_and(|e| e.result_code() == Some(ResultCode::JoinFailedWithRejoinerNotFound))
        },
    )
    .await;
    assert!(e.is_err());
    // RejoinOrJoin joins as a new actor.
    let again = bob
        .join_game_with(
            "g",
            JoinOptions {
                mode: JoinMode::RejoinOrJoin,
                ..JoinOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(again.actor(), 3);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn interest_groups() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    let (bob, carol) = (t.client("bob").await, t.client("carol").await);
    let mut b = bob.join_game("g").await.unwrap();
    let mut c = carol.join_game("g").await.unwrap();
    b.change_groups(None, vec![5]).await.unwrap();
    expect_event(
        &mut a,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 3),
    )
    .await;
    let mut grouped = event(1);
    grouped.group = 5;
    a.raise(grouped.clone(), Delivery::Reliable).await.unwrap();
    a.raise(event(9), Delivery::Reliable).await.unwrap();
    assert_eq!(codes_until(&mut b, 9).await, vec![1]);
    assert_eq!(
        codes_until(&mut c, 9).await,
        Vec::<u8>::new(),
        "carol is not in group 5"
    );
    // Leaving all groups.
    b.change_groups(Some(vec![]), vec![]).await.unwrap();
    a.raise(grouped, Delivery::Reliable).await.unwrap();
    a.raise(event(9), Delivery::Reliable).await.unwrap();
    assert_eq!(codes_until(&mut b, 9).await, Vec::<u8>::new());
    assert_eq!(
        code(b.change_groups(None, vec![0]).await),
        ResultCode::InvalidRequestParameters
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn the_event_cache_is_replayed_to_joiners() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let a = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    for code in [1, 2] {
        let mut e = event(code);
        e.cache = EventCaching::AddToRoomCache;
        e.data = Bytes::from(vec![code; 3]);
        a.raise(e, Delivery::Reliable).await.unwrap();
    }
    let mut rm = event(1);
    rm.cache = EventCaching::RemoveFromRoomCache;
    a.raise(rm, Delivery::Reliable).await.unwrap();
    // A request after the events: when it is answered, the room has handled them.
    a.change_groups(None, vec![]).await.unwrap();
    let bob = t.client("bob").await;
    let mut b = bob.join_game("g").await.unwrap();
    // Join first, then the cache.
    expect_event(
        &mut b,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 2),
    )
    .await;
    let RoomEvent::Custom(d) = expect_event(&mut b, |e| matches!(e, RoomEvent::Custom(_))).await
    else {
        unreachable!()
    };
    assert_eq!((d.sender, d.code, &d.data[..]), (1, 2, &[2u8, 2, 2][..]));
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_cache_overflow_closes_the_room_with_error_info() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    let mut e = event(1);
    e.cache = EventCaching::AddToRoomCache;
    e.receivers = ReceiverGroup::All;
    for _ in 0..1001 {
        a.raise(e.clone(), Delivery::Reliable).await.unwrap();
    }
    let info = expect_event(&mut a, |e| matches!(e, RoomEvent::ErrorInfo { .. })).await;
    assert!(
        matches!(info, RoomEvent::ErrorInfo { code, .. } if code == ResultCode::EventCacheExceeded.to_wire())
    );
    let bob = t.client("bob").await;
    let e = eventually(
        || bob.join_game("g"),
        |r| {
            r.as_ref()
                .is_err_and(|e| e.result_code() == Some(ResultCode::GameClosed))
        },
    )
    .await;
    assert!(e.is_err());
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn properties_compare_and_set_and_master_client() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let options = RoomOptions {
        broadcast_props_change_to_all: false,
        // Photon's semantics: any actor may CAS the room's properties.
        property_policy: PropertyPolicy::Open,
        ..RoomOptions::default()
    };
    let mut a = alice.create_game(Some("g"), options).await.unwrap();
    let bob = t.client("bob").await;
    let mut b = bob.join_game("g").await.unwrap();
    let turn = |v: i64| -> Properties { [("turn".to_string(), Value::Int(v))].into() };
    a.set_properties(SetProperties {
        properties: turn(1),
        broadcast: true,
        ..SetProperties::default()
    })
    .await
    .unwrap();
    let ev = expect_event(&mut b, |e| matches!(e, RoomEvent::PropertiesChanged { .. })).await;
    assert!(matches!(
        ev,
        RoomEvent::PropertiesChanged {
            target: 0,
            sender: 1,
            ..
        }
    ));
    // Bob wins the CAS; Alice's stale CAS fails and changes nothing.
    b.set_properties(SetProperties {
        properties: turn(2),
        expected: turn(1),
        ..SetProperties::default()
    })
    .await
    .unwrap();
    let stale = a
        .set_properties(SetProperties {
            properties: turn(3),
            expected: turn(1),
            ..SetProperties::default()
        })
        .await;
    assert_eq!(code(stale), ResultCode::OperationInvalid);
    // A CAS change goes to everyone, the sender too.
    let ev = expect_event(&mut b, |e| {
        matches!(e, RoomEvent::PropertiesChanged { sender: 2, .. })
    })
    .await;
    assert!(matches!(ev, RoomEvent::PropertiesChanged { properties, .. } if properties == turn(2)));
    // Reserved keys.
    let reserved: Properties = [("#user_id".to_string(), Value::Str("x".into()))].into();
    let e = b
        .set_properties(SetProperties {
            target: 2,
            properties: reserved,
            ..SetProperties::default()
        })
        .await;
    assert_eq!(code(e), ResultCode::InvalidRequestParameters);
    // SetMasterClient: compare-and-set on the current master client.
    assert_eq!(
        code(b.set_master_client(2, 2).await),
        ResultCode::OperationInvalid
    );
    b.set_master_client(2, 1).await.unwrap();
    let ev = expect_event(&mut a, |e| {
        matches!(e, RoomEvent::MasterClientChanged { .. })
    })
    .await;
    assert_eq!(
        ev,
        RoomEvent::MasterClientChanged {
            master_client: 2,
            sender: 2
        }
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn reliable_channels_keep_order_within_a_channel() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let a = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let mut b = bob.join_game("g").await.unwrap();
    for i in 0..200u32 {
        let ch = if i % 2 == 0 { 3 } else { 7 };
        a.raise_event(ch, i.to_le_bytes().to_vec(), Delivery::Channel(ch))
            .await
            .unwrap();
    }
    let mut seen: std::collections::HashMap<u8, Vec<u32>> = Default::default();
    while seen.values().map(Vec::len).sum::<usize>() < 200 {
        let RoomEvent::Custom(d) =
            expect_event(&mut b, |e| matches!(e, RoomEvent::Custom(_))).await
        else {
            unreachable!()
        };
        assert_eq!(d.sender, 1);
        seen.entry(d.code)
            .or_default()
            .push(u32::from_le_bytes(d.data[..].try_into().unwrap()));
    }
    let evens: Vec<u32> = (0..200).step_by(2).collect();
    let odds: Vec<u32> = (1..200).step_by(2).collect();
    assert_eq!(seen[&3], evens, "channel 3 in order");
    assert_eq!(seen[&7], odds, "channel 7 in order");
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_replayed_ticket_never_makes_a_second_actor() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let _a = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let redirect = bob.redirect(common::join_op("g")).await.unwrap();
    let _first = bob
        .follow(redirect.clone(), &JoinOptions::default())
        .await
        .unwrap();
    let second = bob.follow(redirect, &JoinOptions::default()).await;
    assert_eq!(code(second), ResultCode::JoinFailedPeerAlreadyJoined);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn the_master_protocol_is_refused_by_a_game_server() {
    let t = start(1).await;
    let ep = switchboard_transport::client_endpoint(false).unwrap();
    let cfg = switchboard_transport::endpoint::client_config(
        &t.trust,
        switchboard_protocol::ALPN_MASTER,
        &switchboard_transport::Limits::default(),
    )
    .unwrap();
    let gs = t.cluster.game_servers[0].to_string();
    assert!(switchboard_transport::connect(&ep, cfg, &gs).await.is_err());
    t.cluster.shutdown().await;
}
