//! The room modes on the harness: virtual clock, in-memory members.

use std::time::Duration;

use bytes::Bytes;
use switchboard_protocol::{
    EventData, GameOp, GameReply, Handover, HostChange, HostSnapshot, JoinMode, PropertyPolicy,
    ReceiverGroup, ResultCode, RoomEvent, RoomMode, RoomOptions,
};

use crate::RoomLimits;
use crate::harness::{Got, Harness, event};

fn host_room(player_ttl_ms: i32) -> RoomOptions {
    RoomOptions {
        mode: RoomMode::Host,
        player_ttl_ms,
        empty_room_ttl_ms: 10_000,
        ..RoomOptions::default()
    }
}

/// A host room with actors 1 (the host), 2 and 3; inboxes emptied.
fn three(player_ttl_ms: i32) -> Harness {
    let mut h = Harness::new(host_room(player_ttl_ms));
    assert_eq!(h.create("a"), 1);
    h.join("b", JoinMode::JoinOnly).unwrap();
    h.join("c", JoinMode::JoinOnly).unwrap();
    for n in 1..=3 {
        h.take(n);
    }
    h
}

fn upload(h: &mut Harness, actor: u32, data: &'static [u8]) -> Result<GameReply, ResultCode> {
    h.request(
        actor,
        GameOp::UploadSnapshot {
            data: Bytes::from_static(data),
        },
    )
    .map_err(|e| e.result_code().unwrap())
}

fn relay(sender: u32, code: u8, data: &'static [u8]) -> Got {
    Got::Relay {
        data: EventData {
            sender,
            code,
            data: Bytes::from_static(data),
        },
        reliable: true,
        channel: 0,
    }
}

fn error_code(got: &[Got]) -> Option<i16> {
    got.iter().find_map(|g| match g {
        Got::Event(RoomEvent::ErrorInfo { code, .. }) => Some(*code),
        _ => None,
    })
}

#[test]
fn the_creator_hosts_and_the_others_send_to_it_only() {
    let mut h = three(0);
    assert_eq!(h.room.host(), 1);
    // To the host: delivered to it alone.
    h.raise(2, event(1, ReceiverGroup::Host, b"in"));
    assert_eq!(h.take(1), vec![relay(2, 1, b"in")]);
    assert!(h.take(3).is_empty());
    let mut to_host = event(2, ReceiverGroup::Others, b"t");
    to_host.targets = vec![1];
    h.raise(3, to_host);
    assert_eq!(h.take(1), vec![relay(3, 2, b"t")]);
    // Around the host: refused, to the sender only, nobody else gets anything.
    for bad in [
        event(3, ReceiverGroup::Others, b"x"),
        event(3, ReceiverGroup::All, b"x"),
    ] {
        h.raise(2, bad);
        assert_eq!(
            error_code(&h.take(2)),
            Some(ResultCode::NotAllowed.to_wire())
        );
    }
    let mut sideways = event(3, ReceiverGroup::Host, b"x");
    sideways.targets = vec![1, 3];
    h.raise(2, sideways);
    assert_eq!(
        error_code(&h.take(2)),
        Some(ResultCode::NotAllowed.to_wire())
    );
    assert!(h.take(1).is_empty() && h.take(3).is_empty());
    // The host sends to anyone.
    h.raise(1, event(4, ReceiverGroup::Others, b"state"));
    assert_eq!(h.take(2), vec![relay(1, 4, b"state")]);
    assert_eq!(h.take(3), vec![relay(1, 4, b"state")]);
}

#[test]
fn only_the_host_uploads_and_snapshots_are_bounded() {
    let limits = RoomLimits {
        max_snapshot_bytes: 4,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(host_room(0), limits);
    h.create("a");
    h.join("b", JoinMode::JoinOnly).unwrap();
    assert_eq!(upload(&mut h, 2, b"s"), Err(ResultCode::NotAllowed));
    assert_eq!(
        upload(&mut h, 1, b"12345"),
        Err(ResultCode::OperationLimitReached)
    );
    assert_eq!(upload(&mut h, 1, b"1234"), Ok(GameReply::SnapshotStored));
    // A Relay room keeps no snapshot.
    let mut relay = Harness::new(RoomOptions::default());
    relay.create("a");
    assert_eq!(
        upload(&mut relay, 1, b"s"),
        Err(ResultCode::OperationInvalid)
    );
}

/// The new host's `HostChanged`, checked, and what followed it.
fn handover_of(got: &[Got]) -> (u32, u32, HostChange, Handover, Vec<Got>) {
    let i = got
        .iter()
        .position(|g| matches!(g, Got::Event(RoomEvent::HostChanged { .. })))
        .expect("HostChanged");
    match &got[i] {
        Got::Event(RoomEvent::HostChanged {
            host,
            previous,
            reason,
            handover: Some(handover),
        }) => (
            *host,
            *previous,
            *reason,
            handover.clone(),
            got[i + 1..].to_vec(),
        ),
        other => panic!("the new host's copy has the handover: {other:?}"),
    }
}

#[test]
fn a_host_that_leaves_hands_its_snapshot_and_what_it_was_sent_to_the_next() {
    let mut h = three(0);
    h.raise(2, event(1, ReceiverGroup::Host, b"before"));
    assert_eq!(upload(&mut h, 1, b"S1"), Ok(GameReply::SnapshotStored));
    h.now += Duration::from_millis(1500);
    // Sent to the host after its snapshot: these are what the next host must replay.
    h.raise(2, event(2, ReceiverGroup::Host, b"one"));
    h.raise(3, event(3, ReceiverGroup::MasterClient, b"two"));
    // The host's own events and unreliable ones are not replayed.
    h.raise(1, event(9, ReceiverGroup::Others, b"mine"));
    h.raise_via(
        2,
        event(8, ReceiverGroup::Host, b"lossy"),
        crate::Via::Datagram,
    );
    h.take(1);
    h.take(2);
    h.take(3);

    h.leave(1, false);
    let got2 = h.take(2);
    // First the room's own Leave naming the new master client, then the handover.
    assert!(matches!(
        got2[0],
        Got::Event(RoomEvent::Leave {
            actor: 1,
            inactive: false,
            master_client: 2
        })
    ));
    let (host, previous, reason, handover, after) = handover_of(&got2);
    assert_eq!((host, previous, reason), (2, 1, HostChange::Left));
    assert_eq!(
        handover,
        Handover {
            snapshot: Some(HostSnapshot {
                data: Bytes::from_static(b"S1"),
                age_ms: 1500,
            }),
            replay: 2,
            replay_truncated: false,
        }
    );
    assert_eq!(after, vec![relay(2, 2, b"one"), relay(3, 3, b"two")]);
    // Everyone else is told who hosts now, without the state.
    let got3 = h.take(3);
    assert!(got3.contains(&Got::Event(RoomEvent::HostChanged {
        host: 2,
        previous: 1,
        reason: HostChange::Left,
        handover: None,
    })));
    // And the new host is the host: events reach it, it may upload.
    h.raise(3, event(4, ReceiverGroup::Host, b"next"));
    assert_eq!(h.take(2), vec![relay(3, 4, b"next")]);
    assert_eq!(upload(&mut h, 2, b"S2"), Ok(GameReply::SnapshotStored));
}

#[test]
fn a_host_that_drops_is_replaced_at_once_and_a_second_migration_replays_everything_again() {
    let mut h = three(60_000);
    upload(&mut h, 1, b"S").unwrap();
    h.raise(3, event(1, ReceiverGroup::Host, b"x"));
    h.leave(1, true); // dropped: inactive
    let (host, _, reason, handover, after) = handover_of(&h.take(2));
    assert_eq!(
        (host, reason, handover.replay),
        (2, HostChange::Inactive, 1)
    );
    assert_eq!(after, vec![relay(3, 1, b"x")]);
    h.take(3);
    // Host 2 dies before uploading: host 3 gets the same snapshot and the whole replay.
    h.raise(3, event(2, ReceiverGroup::Host, b"y"));
    h.leave(2, true);
    let (host, previous, _, handover, after) = handover_of(&h.take(3));
    assert_eq!((host, previous, handover.replay), (3, 2, 2));
    assert_eq!(after, vec![relay(3, 1, b"x"), relay(3, 2, b"y")]);
}

#[test]
fn a_host_hands_over_on_purpose_and_nobody_else_can_take_it() {
    let mut h = Harness::new(RoomOptions {
        property_policy: PropertyPolicy::Open,
        ..host_room(0)
    });
    h.create("a");
    h.join("b", JoinMode::JoinOnly).unwrap();
    h.take(1);
    h.take(2);
    // Even in an Open room, only the host moves the role.
    let grab = GameOp::SetMasterClient {
        actor: 2,
        expected: 1,
    };
    assert_eq!(
        h.request(2, grab.clone()).unwrap_err().result_code(),
        Some(ResultCode::NotAllowed)
    );
    upload(&mut h, 1, b"S").unwrap();
    assert_eq!(h.request(1, grab), Ok(GameReply::MasterClientSet));
    let (host, previous, reason, handover, _) = handover_of(&h.take(2));
    assert_eq!((host, previous, reason), (2, 1, HostChange::HandedOver));
    assert!(handover.snapshot.is_some());
    let got1 = h.take(1);
    assert!(got1.contains(&Got::Event(RoomEvent::HostChanged {
        host: 2,
        previous: 1,
        reason: HostChange::HandedOver,
        handover: None,
    })));
    // The old host is a client now: it sends to the host only.
    h.raise(1, event(5, ReceiverGroup::Others, b"x"));
    assert_eq!(
        error_code(&h.take(1)),
        Some(ResultCode::NotAllowed.to_wire())
    );
}

#[test]
fn the_replay_is_bounded_and_says_when_it_was_cut() {
    let limits = RoomLimits {
        max_replay_events: 3,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(host_room(0), limits);
    h.create("a");
    h.join("b", JoinMode::JoinOnly).unwrap();
    for code in 1..=5 {
        h.raise(2, event(code, ReceiverGroup::Host, b"e"));
    }
    h.take(2);
    h.leave(1, false);
    let (_, _, _, handover, after) = handover_of(&h.take(2));
    assert!(handover.snapshot.is_none());
    assert_eq!((handover.replay, handover.replay_truncated), (3, true));
    assert_eq!(
        after,
        vec![relay(2, 3, b"e"), relay(2, 4, b"e"), relay(2, 5, b"e")],
        "the newest are kept"
    );
}

#[test]
fn when_everyone_is_gone_the_first_back_hosts_with_the_snapshot() {
    let mut h = three(60_000);
    upload(&mut h, 1, b"S").unwrap();
    for n in 1..=3 {
        h.leave(n, true);
    }
    h.advance(Duration::from_secs(5));
    assert_eq!(h.room.host(), 0);
    for n in 1..=3 {
        h.take(n);
    }
    // The room is still there (EmptyRoomTtl 10 s); actor 3 comes back first.
    assert_eq!(h.join("c", JoinMode::RejoinOnly), Ok(3));
    let (host, previous, reason, handover, _) = handover_of(&h.take(3));
    assert_eq!((host, previous, reason), (3, 0, HostChange::Returned));
    assert_eq!(handover.snapshot.unwrap().age_ms, 5000);
}

#[test]
fn modes_not_available_are_refused_at_creation() {
    for mode in [RoomMode::Server, RoomMode::Shared] {
        let mut h = Harness::new(RoomOptions {
            mode,
            ..RoomOptions::default()
        });
        let input = crate::Input::Create {
            id: 1,
            user_id: "a".into(),
            expected_users: vec![],
            properties: Default::default(),
        };
        match h.input(crate::Origin::Joiner, input) {
            Some(Err(e)) => assert_eq!(e.result_code(), Some(ResultCode::InvalidRequestParameters)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn in_a_relay_room_the_host_receiver_is_the_master_client() {
    let mut h = Harness::new(RoomOptions::default());
    h.create("a");
    h.join("b", JoinMode::JoinOnly).unwrap();
    h.join("c", JoinMode::JoinOnly).unwrap();
    h.take(1);
    h.raise(3, event(1, ReceiverGroup::Host, b"m"));
    assert_eq!(h.take(1), vec![relay(3, 1, b"m")]);
    // And nothing migrates: the master client's leave is announced as always.
    h.take(2);
    h.leave(1, false);
    assert!(
        !h.take(2)
            .iter()
            .any(|g| matches!(g, Got::Event(RoomEvent::HostChanged { .. })))
    );
}
