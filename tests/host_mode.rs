//! Host-mode rooms end to end over QUIC: a host that drops is replaced at once, the new
//! host gets the last snapshot and every event the old host was sent since, the others
//! are told, and nobody reconnects; a host hands the role over; clients cannot talk
//! around the host.

mod common;

use bytes::Bytes;
use common::{expect_event, start};
use switchboard_client::{Delivery, Room};
use switchboard_protocol::{
    EventCaching, EventData, HostChange, RaiseEvent, ReceiverGroup, ResultCode, RoomEvent,
    RoomMode, RoomOptions,
};

fn host_room() -> RoomOptions {
    RoomOptions {
        mode: RoomMode::Host,
        player_ttl_ms: 60_000,
        ..RoomOptions::default()
    }
}

fn to_host(code: u8, data: &'static [u8]) -> RaiseEvent {
    RaiseEvent {
        code,
        receivers: ReceiverGroup::Host,
        targets: vec![],
        group: 0,
        cache: EventCaching::DoNotCache,
        channel: 0,
        data: Bytes::from_static(data),
    }
}

fn custom(sender: u32, code: u8, data: &'static [u8]) -> RoomEvent {
    RoomEvent::Custom(EventData {
        sender,
        code,
        data: Bytes::from_static(data),
    })
}

fn is_host_changed(e: &RoomEvent) -> bool {
    matches!(e, RoomEvent::HostChanged { .. })
}

/// A host room "match" with alice hosting, bob and carol playing.
async fn match_of_three(t: &common::TestCluster) -> (Room, Room, Room) {
    let alice = t.client("alice").await;
    let a = alice.create_game(Some("match"), host_room()).await.unwrap();
    assert_eq!((a.joined().mode, a.joined().host), (RoomMode::Host, 1));
    let bob = t.client("bob").await;
    let b = bob.join_game("match").await.unwrap();
    let carol = t.client("carol").await;
    let c = carol.join_game("match").await.unwrap();
    assert_eq!(c.joined().host, 1);
    std::mem::forget((alice, bob, carol));
    (a, b, c)
}

#[tokio::test]
async fn a_host_that_drops_is_replaced_and_nothing_sent_to_it_is_lost() {
    let t = start(1).await;
    let (mut a, mut b, mut c) = match_of_three(&t).await;
    a.upload_snapshot(&b"tick 100"[..]).await.unwrap();
    // Inputs for the host after its snapshot; it never reads them: it is about to crash.
    b.raise(to_host(1, b"bob moves"), Delivery::Reliable)
        .await
        .unwrap();
    c.raise(to_host(2, b"carol shoots"), Delivery::Reliable)
        .await
        .unwrap();
    expect_event(&mut a, |e| *e == custom(3, 2, b"carol shoots")).await;
    a.disconnect();

    // Bob (the lowest active actor) hosts now: he gets the snapshot and the inputs.
    let changed = expect_event(&mut b, is_host_changed).await;
    let RoomEvent::HostChanged {
        host,
        previous,
        reason,
        handover: Some(handover),
    } = changed
    else {
        panic!("the new host gets the handover: {changed:?}");
    };
    assert_eq!((host, previous, reason), (2, 1, HostChange::Inactive));
    let snapshot = handover.snapshot.expect("the snapshot");
    assert_eq!(&snapshot.data[..], b"tick 100");
    assert_eq!(handover.replay, 2);
    assert_eq!(b.next_event().await, Some(custom(2, 1, b"bob moves")));
    assert_eq!(b.next_event().await, Some(custom(3, 2, b"carol shoots")));
    // Carol is told, without the state, on the same connection as before.
    let changed = expect_event(&mut c, is_host_changed).await;
    assert_eq!(
        changed,
        RoomEvent::HostChanged {
            host: 2,
            previous: 1,
            reason: HostChange::Inactive,
            handover: None
        }
    );
    // The match goes on: carol's inputs reach the new host, its state reaches carol.
    c.raise(to_host(3, b"again"), Delivery::Reliable)
        .await
        .unwrap();
    expect_event(&mut b, |e| *e == custom(3, 3, b"again")).await;
    b.raise_event(4, &b"tick 101"[..], Delivery::Reliable)
        .await
        .unwrap();
    expect_event(&mut c, |e| *e == custom(2, 4, b"tick 101")).await;
    b.upload_snapshot(&b"tick 101"[..]).await.unwrap();
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_host_hands_the_role_over_on_purpose() {
    let t = start(1).await;
    let (a, mut b, mut c) = match_of_three(&t).await;
    a.upload_snapshot(&b"lobby state"[..]).await.unwrap();
    // Nobody but the host moves the role.
    assert_eq!(
        common::code(c.set_master_client(3, 1).await),
        ResultCode::NotAllowed
    );
    a.set_master_client(2, 1).await.unwrap();
    let changed = expect_event(&mut b, is_host_changed).await;
    match changed {
        RoomEvent::HostChanged {
            host: 2,
            previous: 1,
            reason: HostChange::HandedOver,
            handover: Some(h),
        } => assert_eq!(&h.snapshot.unwrap().data[..], b"lobby state"),
        other => panic!("{other:?}"),
    }
    let changed = expect_event(&mut c, is_host_changed).await;
    assert!(matches!(
        changed,
        RoomEvent::HostChanged {
            host: 2,
            handover: None,
            ..
        }
    ));
    // The old host is a client now: only the new host takes uploads.
    assert_eq!(
        common::code(a.upload_snapshot(&b"x"[..]).await),
        ResultCode::NotAllowed
    );
    b.upload_snapshot(&b"y"[..]).await.unwrap();
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn clients_cannot_talk_around_the_host() {
    let t = start(1).await;
    let (a, mut b, mut c) = match_of_three(&t).await;
    c.raise_event(9, &b"psst"[..], Delivery::Reliable)
        .await
        .unwrap();
    let refused = expect_event(&mut c, |e| matches!(e, RoomEvent::ErrorInfo { .. })).await;
    assert!(matches!(
        refused,
        RoomEvent::ErrorInfo { code, .. } if code == ResultCode::NotAllowed.to_wire()
    ));
    // Bob never saw it; the host did not either. What bob gets next is the host's.
    a.raise_event(1, &b"state"[..], Delivery::Reliable)
        .await
        .unwrap();
    let next = expect_event(&mut b, |e| matches!(e, RoomEvent::Custom(_))).await;
    assert_eq!(next, custom(1, 1, b"state"));
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_full_replay_is_handed_over_without_disconnecting_the_new_host() {
    let t = start(1).await;
    let (mut a, mut b, c) = match_of_three(&t).await;
    // More events for the host than the replay keeps; the host never reads them.
    for i in 0..1100u32 {
        let data = bytes::Bytes::from(i.to_le_bytes().to_vec());
        let e = RaiseEvent {
            data,
            ..to_host(1, b"")
        };
        c.raise(e, Delivery::Reliable).await.unwrap();
    }
    // The host has them all (its queue holds them) when it crashes.
    let mut seen = 0;
    while seen < 1100 {
        if let RoomEvent::Custom(_) =
            expect_event(&mut a, |e| matches!(e, RoomEvent::Custom(_))).await
        {
            seen += 1;
        }
    }
    a.disconnect();
    let changed = expect_event(&mut b, is_host_changed).await;
    let RoomEvent::HostChanged {
        handover: Some(h), ..
    } = changed
    else {
        panic!("{changed:?}");
    };
    assert_eq!((h.replay, h.replay_truncated), (512, true));
    // The newest 512, in order, and bob is still connected to host the match.
    for i in 588..1100u32 {
        match b.next_event().await {
            Some(RoomEvent::Custom(d)) => assert_eq!(&d.data[..], &i.to_le_bytes()[..]),
            other => panic!("event {i}: {other:?}"),
        }
    }
    b.upload_snapshot(&b"still here"[..]).await.unwrap();
    t.cluster.shutdown().await;
}
