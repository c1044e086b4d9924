//! Shared rooms on the harness: network objects and their authorities.

use std::time::Duration;

use bytes::Bytes;
use switchboard_protocol::{
    GameOp, GameReply, JoinMode, ObjectInfo, ObjectState, ResultCode, RoomEvent, RoomMode,
    RoomOptions, SpawnObject, StateUpdate,
};

use crate::RoomLimits;
use crate::harness::{Got, Harness};

fn shared_room(player_ttl_ms: i32) -> RoomOptions {
    RoomOptions {
        mode: RoomMode::Shared,
        player_ttl_ms,
        empty_room_ttl_ms: 10_000,
        ..RoomOptions::default()
    }
}

/// A shared room with actors 1, 2 and 3, inboxes emptied.
fn three(player_ttl_ms: i32, limits: RoomLimits) -> Harness {
    let mut h = Harness::with_limits(shared_room(player_ttl_ms), limits);
    h.create("a");
    h.join("b", JoinMode::JoinOnly).unwrap();
    h.join("c", JoinMode::JoinOnly).unwrap();
    for n in 1..=3 {
        h.take(n);
    }
    h
}

fn spawn_op(parent: u32, state: &'static [u8]) -> SpawnObject {
    SpawnObject {
        type_id: 7,
        parent,
        state: Bytes::from_static(state),
        tick: 1,
        ..SpawnObject::default()
    }
}

fn spawn(h: &mut Harness, actor: u32, s: SpawnObject) -> Result<u32, ResultCode> {
    match h.request(actor, GameOp::Spawn(s)) {
        Ok(GameReply::Spawned { object }) => Ok(object),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.result_code().unwrap()),
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, switchboard_protocol::OpError>) -> ResultCode {
    r.unwrap_err().result_code().unwrap()
}

fn take_authority(h: &mut Harness, actor: u32, object: u32) -> u32 {
    match h.request(actor, GameOp::RequestStateAuthority { object }) {
        Ok(GameReply::StateAuthority { holder, .. }) => holder,
        other => panic!("{other:?}"),
    }
}

fn update(object: u32, tick: u64, state: &'static [u8]) -> StateUpdate {
    StateUpdate {
        object,
        tick,
        state: Bytes::from_static(state),
    }
}

fn events(got: Vec<Got>) -> Vec<RoomEvent> {
    got.into_iter()
        .filter_map(|g| match g {
            Got::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn changed(object: u32, state_authority: u32, input_authority: u32) -> RoomEvent {
    RoomEvent::AuthorityChanged {
        object,
        state_authority,
        input_authority,
    }
}

#[test]
fn a_spawner_holds_its_object_and_everyone_sees_spawns_in_one_order() {
    let mut h = three(0, RoomLimits::default());
    let a = spawn(&mut h, 1, spawn_op(0, b"s1")).unwrap();
    let b = spawn(&mut h, 2, spawn_op(0, b"s2")).unwrap();
    assert!(a < b);
    for n in 1..=3 {
        let spawned: Vec<(u32, u32)> = events(h.take(n))
            .into_iter()
            .filter_map(|e| match e {
                RoomEvent::ObjectSpawned(o) => Some((o.object, o.state_authority)),
                _ => None,
            })
            .collect();
        assert_eq!(spawned, vec![(a, 1), (b, 2)], "actor {n}");
    }
    // A parent that does not exist.
    assert_eq!(
        spawn(&mut h, 1, spawn_op(99, b"")),
        Err(ResultCode::InvalidRequestParameters)
    );
}

#[test]
fn only_the_state_authority_updates_and_updates_are_relayed_as_asked() {
    let mut h = three(0, RoomLimits::default());
    let o = spawn(&mut h, 1, spawn_op(0, b"s")).unwrap();
    for n in 1..=3 {
        h.take(n);
    }
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(o, 5, b"moved"),
            via: crate::Via::Control,
        },
    );
    let relayed = Got::State {
        state: ObjectState {
            object: o,
            sender: 1,
            tick: 5,
            state: Bytes::from_static(b"moved"),
        },
        reliable: true,
    };
    assert_eq!(h.take(2), vec![relayed.clone()]);
    assert_eq!(h.take(3), vec![relayed]);
    assert!(h.take(1).is_empty(), "not back to the sender");
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(o, 6, b"fast"),
            via: crate::Via::Datagram,
        },
    );
    assert!(matches!(
        &h.take(2)[..],
        [Got::State {
            reliable: false,
            ..
        }]
    ));
    // A datagram overtaken by a newer update is dropped: nobody gets tick 4 after 6,
    // and the room keeps 6 (a late joiner's state). A reliable update always applies
    // (the authority may start its ticks over).
    assert_eq!(h.take(3).len(), 1);
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(o, 4, b"stale"),
            via: crate::Via::Datagram,
        },
    );
    assert!(
        h.take(2).is_empty() && h.take(3).is_empty(),
        "tick 4 after 6"
    );
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(o, 6, b"fast"),
            via: crate::Via::Datagram,
        },
    );
    assert_eq!(h.take(2).len(), 1, "the same tick again is not older");
    // Anyone else is refused, and nothing changes.
    h.input(
        crate::Origin::Actor(2),
        crate::Input::Update {
            update: update(o, 7, b"cheat"),
            via: crate::Via::Control,
        },
    );
    assert!(matches!(
        &h.take(2)[..],
        [Got::Event(RoomEvent::ErrorInfo { code, .. })] if *code == ResultCode::NotAllowed.to_wire()
    ));
    assert!(
        h.take(3)
            .iter()
            .all(|g| matches!(g, Got::State { state, .. } if state.tick == 6))
    );
    // A reliable update with an older tick applies: it cannot have been overtaken.
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(o, 1, b"restart"),
            via: crate::Via::Control,
        },
    );
    assert!(matches!(&h.take(3)[..], [Got::State { state, .. }] if state.tick == 1));
}

#[test]
fn authority_is_granted_refused_overridden_and_released_as_the_seed_says() {
    let mut h = three(0, RoomLimits::default());
    let locked = spawn(&mut h, 1, spawn_op(0, b"")).unwrap();
    let open = spawn(
        &mut h,
        1,
        SpawnObject {
            allow_override: true,
            ..spawn_op(0, b"")
        },
    )
    .unwrap();
    for n in 1..=3 {
        h.take(n);
    }
    // Held and not overridable: the request is ignored, and the answer says by whom.
    assert_eq!(take_authority(&mut h, 2, locked), 1);
    assert!(h.take(3).is_empty(), "nothing changed, nobody told");
    // Overridable: taken.
    assert_eq!(take_authority(&mut h, 2, open), 2);
    assert_eq!(events(h.take(3)), vec![changed(open, 2, 1)]);
    // Released: nobody holds it; then anyone may take it.
    assert_eq!(
        code(h.request(2, GameOp::ReleaseStateAuthority { object: locked })),
        ResultCode::NotAllowed
    );
    assert_eq!(
        h.request(1, GameOp::ReleaseStateAuthority { object: locked }),
        Ok(GameReply::StateAuthority {
            object: locked,
            holder: 0
        })
    );
    assert_eq!(events(h.take(3)), vec![changed(locked, 0, 1)]);
    assert_eq!(take_authority(&mut h, 3, locked), 3);
    // Only the state authority assigns the input authority.
    assert_eq!(
        code(h.request(
            1,
            GameOp::AssignInputAuthority {
                object: locked,
                actor: 2
            }
        )),
        ResultCode::NotAllowed
    );
    assert_eq!(
        h.request(
            3,
            GameOp::AssignInputAuthority {
                object: locked,
                actor: 2
            }
        ),
        Ok(GameReply::InputAuthoritySet)
    );
    assert_eq!(events(h.take(1)).last(), Some(&changed(locked, 3, 2)));
    assert_eq!(
        code(h.request(
            3,
            GameOp::AssignInputAuthority {
                object: locked,
                actor: 42
            }
        )),
        ResultCode::InvalidRequestParameters
    );
}

#[test]
fn despawning_an_object_despawns_what_is_nested_in_it() {
    let mut h = three(0, RoomLimits::default());
    let car = spawn(&mut h, 1, spawn_op(0, b"")).unwrap();
    let wheel = spawn(&mut h, 1, spawn_op(car, b"")).unwrap();
    let bolt = spawn(&mut h, 2, spawn_op(wheel, b"")).unwrap();
    let other = spawn(&mut h, 2, spawn_op(0, b"")).unwrap();
    h.take(3);
    // Not the state authority: refused.
    assert_eq!(
        code(h.request(2, GameOp::Despawn { object: car })),
        ResultCode::NotAllowed
    );
    assert_eq!(
        h.request(1, GameOp::Despawn { object: car }),
        Ok(GameReply::Despawned)
    );
    assert_eq!(
        events(h.take(3)),
        vec![RoomEvent::ObjectsDespawned {
            objects: vec![car, wheel, bolt],
            sender: 1
        }]
    );
    assert_eq!(
        code(h.request(1, GameOp::Despawn { object: car })),
        ResultCode::InvalidRequestParameters
    );
    assert_eq!(take_authority(&mut h, 2, other), 2);
}

fn spawned_with(h: &mut Harness, actor: u32, s: SpawnObject) -> u32 {
    spawn(h, actor, s).unwrap()
}

#[test]
fn an_actor_gone_for_good_leaves_its_objects_by_their_flags() {
    let mut h = three(0, RoomLimits::default());
    let keep = spawned_with(&mut h, 2, spawn_op(0, b""));
    let temp = spawned_with(
        &mut h,
        2,
        SpawnObject {
            despawn_on_leave: true,
            ..spawn_op(0, b"")
        },
    );
    let nested = spawned_with(&mut h, 3, spawn_op(temp, b""));
    let boss = spawned_with(
        &mut h,
        2,
        SpawnObject {
            master_client_object: true,
            ..spawn_op(0, b"")
        },
    );
    h.take(3);
    h.leave(2, false);
    let got = events(h.take(3));
    assert!(got.contains(&RoomEvent::ObjectsDespawned {
        objects: vec![temp, nested],
        sender: 0
    }));
    assert!(got.contains(&changed(keep, 0, 0)), "free for anyone");
    assert!(got.contains(&changed(boss, 1, 0)), "to the master client");
    assert_eq!(take_authority(&mut h, 3, keep), 3);
}

#[test]
fn an_inactive_actor_keeps_its_objects_until_its_player_ttl_runs_out() {
    let mut h = three(1000, RoomLimits::default());
    let o = spawned_with(&mut h, 2, spawn_op(0, b""));
    h.take(3);
    h.leave(2, true);
    assert!(
        !events(h.take(3))
            .iter()
            .any(|e| matches!(e, RoomEvent::AuthorityChanged { .. })),
        "still its"
    );
    assert_eq!(take_authority(&mut h, 3, o), 2);
    // Back within its PlayerTtl: still its own.
    assert_eq!(h.join("b", JoinMode::RejoinOnly), Ok(2));
    h.leave(2, true);
    h.take(3);
    h.advance(Duration::from_millis(1000));
    assert!(events(h.take(3)).contains(&changed(o, 0, 0)));
}

#[test]
fn a_late_joiner_sees_every_live_object_with_its_latest_state_in_spawn_order() {
    let mut h = three(0, RoomLimits::default());
    let a = spawned_with(&mut h, 1, spawn_op(0, b"a0"));
    let b = spawned_with(&mut h, 2, spawn_op(0, b"b0"));
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(a, 9, b"a9"),
            via: crate::Via::Datagram,
        },
    );
    assert_eq!(take_authority(&mut h, 3, b), 2);
    h.request(2, GameOp::ReleaseStateAuthority { object: b })
        .unwrap();
    let d = h.join("d", JoinMode::JoinOnly).unwrap();
    let got = events(h.take(d));
    let objects: Vec<ObjectInfo> = got
        .into_iter()
        .filter_map(|e| match e {
            RoomEvent::ObjectSpawned(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(
        (objects[0].object, objects[0].tick, &objects[0].state[..]),
        (a, 9, &b"a9"[..])
    );
    assert_eq!((objects[1].object, objects[1].state_authority), (b, 0));
}

#[test]
fn limits_refuse_and_change_nothing() {
    let limits = RoomLimits {
        max_objects: 3,
        max_objects_per_actor: 2,
        max_object_state_bytes: 4,
        max_room_state_bytes: 6,
        ..RoomLimits::default()
    };
    let mut h = three(0, limits);
    assert_eq!(
        spawn(&mut h, 1, spawn_op(0, b"12345")),
        Err(ResultCode::OperationLimitReached),
        "state over 4 bytes"
    );
    let a = spawn(&mut h, 1, spawn_op(0, b"1234")).unwrap();
    spawn(&mut h, 1, spawn_op(0, b"")).unwrap();
    assert_eq!(
        spawn(&mut h, 1, spawn_op(0, b"")),
        Err(ResultCode::OperationLimitReached),
        "two per actor"
    );
    assert_eq!(
        spawn(&mut h, 2, spawn_op(0, b"123")),
        Err(ResultCode::OperationLimitReached),
        "6 bytes per room"
    );
    spawn(&mut h, 2, spawn_op(0, b"12")).unwrap();
    assert_eq!(
        spawn(&mut h, 3, spawn_op(0, b"")),
        Err(ResultCode::OperationLimitReached),
        "three per room"
    );
    for n in 1..=3 {
        h.take(n);
    }
    // An update that would pass the room's bytes: refused, the old state stays.
    h.input(
        crate::Origin::Actor(1),
        crate::Input::Update {
            update: update(a, 2, b"12345"),
            via: crate::Via::Control,
        },
    );
    assert!(matches!(
        &h.take(1)[..],
        [Got::Event(RoomEvent::ErrorInfo { code, .. })] if *code == ResultCode::OperationLimitReached.to_wire()
    ));
    assert!(h.take(2).is_empty());
    // Objects outside Shared rooms.
    let mut relay = Harness::new(RoomOptions::default());
    relay.create("a");
    assert_eq!(
        code(relay.request(1, GameOp::Spawn(spawn_op(0, b"")))),
        ResultCode::OperationInvalid
    );
}
