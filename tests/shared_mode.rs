//! Shared rooms end to end over QUIC: two players trade the state authority over a
//! network object, updates flow from whoever holds it, and a late joiner sees the
//! object with its current state and authorities.

mod common;

use bytes::Bytes;
use common::{code, expect_event, start};
use switchboard_client::Delivery;
use switchboard_protocol::{
    ObjectState, ResultCode, RoomEvent, RoomMode, RoomOptions, SpawnObject, StateUpdate,
};

fn shared_room() -> RoomOptions {
    RoomOptions {
        mode: RoomMode::Shared,
        ..RoomOptions::default()
    }
}

fn state(object: u32, tick: u64, s: &'static [u8]) -> StateUpdate {
    StateUpdate {
        object,
        tick,
        state: Bytes::from_static(s),
    }
}

#[tokio::test]
async fn two_players_trade_authority_and_a_late_joiner_sees_the_current_state() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("coop"), shared_room())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let mut b = bob.join_game("coop").await.unwrap();

    // Alice spawns a ball she may hand over; both see it spawned with her as authority.
    let ball = a
        .spawn(SpawnObject {
            type_id: 42,
            state: Bytes::from_static(b"x=0"),
            tick: 1,
            allow_override: true,
            ..SpawnObject::default()
        })
        .await
        .unwrap();
    let spawned = expect_event(&mut b, |e| matches!(e, RoomEvent::ObjectSpawned(_))).await;
    assert!(
        matches!(spawned, RoomEvent::ObjectSpawned(o) if o.object == ball && o.state_authority == 1)
    );
    a.update_state(state(ball, 2, b"x=1"), Delivery::Reliable)
        .await
        .unwrap();
    let got = expect_event(&mut b, |e| matches!(e, RoomEvent::ObjectState(_))).await;
    assert_eq!(
        got,
        RoomEvent::ObjectState(ObjectState {
            object: ball,
            sender: 1,
            tick: 2,
            state: Bytes::from_static(b"x=1"),
        })
    );
    // Bob may not move it while alice holds it...
    b.update_state(state(ball, 3, b"x=9"), Delivery::Reliable)
        .await
        .unwrap();
    let refused = expect_event(&mut b, |e| matches!(e, RoomEvent::ErrorInfo { .. })).await;
    assert!(
        matches!(refused, RoomEvent::ErrorInfo { code, .. } if code == ResultCode::NotAllowed.to_wire())
    );
    // ...but it allows override: he takes it, and both are told.
    assert_eq!(b.request_state_authority(ball).await.unwrap(), 2);
    let moved = |e: &RoomEvent| matches!(e, RoomEvent::AuthorityChanged { .. });
    assert_eq!(
        expect_event(&mut a, moved).await,
        RoomEvent::AuthorityChanged {
            object: ball,
            state_authority: 2,
            input_authority: 1
        }
    );
    b.update_state(state(ball, 4, b"x=4"), Delivery::Reliable)
        .await
        .unwrap();
    let got = expect_event(&mut a, |e| matches!(e, RoomEvent::ObjectState(_))).await;
    assert!(matches!(got, RoomEvent::ObjectState(s) if s.sender == 2 && s.tick == 4));
    // Alice, no longer the authority, cannot despawn it.
    assert_eq!(code(a.despawn(ball).await), ResultCode::NotAllowed);

    // Carol joins late: the ball with bob's latest state and authority, before anything
    // newer.
    let carol = t.client("carol").await;
    let mut c = carol.join_game("coop").await.unwrap();
    let seen = expect_event(&mut c, |e| matches!(e, RoomEvent::ObjectSpawned(_))).await;
    match seen {
        RoomEvent::ObjectSpawned(o) => {
            assert_eq!((o.object, o.type_id, o.state_authority), (ball, 42, 2));
            assert_eq!((o.tick, &o.state[..]), (4, &b"x=4"[..]));
        }
        _ => unreachable!(),
    }
    b.update_state(state(ball, 5, b"x=5"), Delivery::Reliable)
        .await
        .unwrap();
    let got = expect_event(&mut c, |e| matches!(e, RoomEvent::ObjectState(_))).await;
    assert!(matches!(got, RoomEvent::ObjectState(s) if s.tick == 5));
    // Unreliable updates travel as datagrams (retried: a datagram may be lost).
    let mut got_one = false;
    for tick in 10..60 {
        b.update_state(state(ball, tick, b"fast"), Delivery::Unreliable)
            .await
            .unwrap();
        let next =
            tokio::time::timeout(std::time::Duration::from_millis(100), c.next_event()).await;
        if let Ok(Some(RoomEvent::ObjectState(s))) = next {
            assert_eq!((s.sender, &s.state[..]), (2, &b"fast"[..]));
            got_one = true;
            break;
        }
    }
    assert!(got_one, "an unreliable update arrived");
    // Bob releases it; carol takes it.
    b.release_state_authority(ball).await.unwrap();
    assert_eq!(c.request_state_authority(ball).await.unwrap(), 3);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn an_owners_objects_follow_their_flags_when_it_leaves() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("coop"), shared_room())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let b = bob.join_game("coop").await.unwrap();
    let torch = b
        .spawn(SpawnObject {
            despawn_on_leave: true,
            ..SpawnObject::default()
        })
        .await
        .unwrap();
    let chest = b
        .spawn(SpawnObject {
            master_client_object: true,
            ..SpawnObject::default()
        })
        .await
        .unwrap();
    b.leave().await.unwrap();
    let gone = expect_event(&mut a, |e| matches!(e, RoomEvent::ObjectsDespawned { .. })).await;
    assert_eq!(
        gone,
        RoomEvent::ObjectsDespawned {
            objects: vec![torch],
            sender: 0
        }
    );
    let passed = expect_event(&mut a, |e| matches!(e, RoomEvent::AuthorityChanged { .. })).await;
    assert_eq!(
        passed,
        RoomEvent::AuthorityChanged {
            object: chest,
            state_authority: 1,
            input_authority: 0
        }
    );
    t.cluster.shutdown().await;
}
