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

// ---- Server rooms ----

fn server_room(join_approval: bool) -> RoomOptions {
    RoomOptions {
        mode: RoomMode::Server,
        join_approval,
        ..RoomOptions::default()
    }
}

/// A Server room created by dedicated server "ds" (actor 1), with clients "b" and "c".
fn served() -> Harness {
    let mut h = Harness::new(server_room(false));
    assert_eq!(h.create_as("ds", true), 1);
    h.join("b", JoinMode::JoinOnly).unwrap();
    h.join("c", JoinMode::JoinOnly).unwrap();
    for n in 1..=3 {
        h.take(n);
    }
    h
}

#[test]
fn only_a_dedicated_server_creates_a_server_room_and_it_cannot_be_displaced() {
    let mut h = Harness::new(server_room(false));
    let input = crate::Input::Create {
        id: 1,
        user_id: "mallory".into(),
        authority: false,
        expected_users: vec![],
        properties: Default::default(),
    };
    let joiner = h.joiner();
    assert_eq!(
        h.input(joiner, input).unwrap().unwrap_err().result_code(),
        Some(ResultCode::NotAllowed)
    );
    let mut h = served();
    assert_eq!(h.room.host(), 1);
    for who in [1, 2] {
        let op = GameOp::SetMasterClient {
            actor: 2,
            expected: 1,
        };
        assert_eq!(
            h.request(who, op).unwrap_err().result_code(),
            Some(ResultCode::NotAllowed)
        );
    }
    // Join approval needs a Server room.
    let mut relay = Harness::new(RoomOptions {
        join_approval: true,
        ..RoomOptions::default()
    });
    let input = crate::Input::Create {
        id: 1,
        user_id: "a".into(),
        authority: false,
        expected_users: vec![],
        properties: Default::default(),
    };
    let joiner = relay.joiner();
    assert_eq!(
        relay
            .input(joiner, input)
            .unwrap()
            .unwrap_err()
            .result_code(),
        Some(ResultCode::InvalidRequestParameters)
    );
}

#[test]
fn clients_speak_to_the_authority_only_and_it_to_anyone() {
    let mut h = served();
    h.raise(2, event(1, ReceiverGroup::Others, b"psst"));
    assert_eq!(
        error_code(&h.take(2)),
        Some(ResultCode::NotAllowed.to_wire())
    );
    assert!(h.take(1).is_empty() && h.take(3).is_empty());
    h.raise(2, event(2, ReceiverGroup::Host, b"input"));
    assert_eq!(h.take(1), vec![relay(2, 2, b"input")]);
    h.raise(1, event(3, ReceiverGroup::Others, b"world"));
    assert_eq!(h.take(2), vec![relay(1, 3, b"world")]);
    assert_eq!(h.take(3), vec![relay(1, 3, b"world")]);
}

#[test]
fn properties_are_the_authoritys_unless_it_opens_them() {
    use switchboard_protocol::{SetProperties, Value};
    let set = |target: u32| {
        GameOp::SetProperties(SetProperties {
            target,
            properties: [("k".to_string(), Value::Int(1))].into(),
            ..SetProperties::default()
        })
    };
    let mut h = served();
    for target in [0, 2, 3] {
        assert_eq!(
            h.request(2, set(target)).unwrap_err().result_code(),
            Some(ResultCode::NotAllowed),
            "a client, target {target}"
        );
        assert_eq!(h.request(1, set(target)), Ok(GameReply::PropertiesSet));
    }
    let mut open = Harness::new(RoomOptions {
        property_policy: PropertyPolicy::Open,
        ..server_room(false)
    });
    open.create_as("ds", true);
    open.join("b", JoinMode::JoinOnly).unwrap();
    assert_eq!(open.request(2, set(2)), Ok(GameReply::PropertiesSet));
    assert_eq!(
        open.request(2, set(0)).unwrap_err().result_code(),
        Some(ResultCode::NotAllowed)
    );
}

fn join_request(got: &[Got]) -> (u32, String, switchboard_protocol::Properties) {
    got.iter()
        .find_map(|g| match g {
            Got::Event(RoomEvent::JoinRequest {
                request,
                user_id,
                claims,
                ..
            }) => Some((*request, user_id.clone(), claims.clone())),
            _ => None,
        })
        .expect("a JoinRequest")
}

fn approve(request: u32, approve: bool, reason: &str) -> GameOp {
    GameOp::ApproveJoin {
        request,
        approve,
        reason: reason.into(),
    }
}

#[test]
fn the_authority_approves_and_refuses_joins_with_the_claims_it_was_given() {
    use switchboard_protocol::Value;
    let mut h = Harness::new(server_room(true));
    h.create_as("ds", true);
    let claims: switchboard_protocol::Properties = [("level".to_string(), Value::Int(12))].into();
    // A join is held: nothing for the joiner yet, a JoinRequest for the authority.
    let joiner = h.joiner();
    let input = h.join_input("bob", JoinMode::JoinOnly, claims.clone());
    assert_eq!(h.input(joiner, input), None);
    let (request, user, got_claims) = join_request(&h.take(1));
    assert_eq!((user.as_str(), got_claims), ("bob", claims));
    // Only the authority answers.
    let (carol, input) = (
        h.joiner(),
        h.join_input("carol", JoinMode::JoinOnly, Default::default()),
    );
    h.input(carol, input);
    let (carol_request, ..) = join_request(&h.take(1));
    assert_eq!(
        h.request(1, approve(request, true, "")),
        Ok(GameReply::JoinAnswered)
    );
    assert_eq!(h.room.actor(2).map(|a| a.user_id.as_str()), Some("bob"));
    let got = h.take(2);
    assert!(matches!(
        &got[0],
        Got::Reply(_, Ok(GameReply::Joined(j))) if j.actor == 2 && j.host == 1
    ));
    assert_eq!(
        h.request(2, approve(carol_request, true, ""))
            .unwrap_err()
            .result_code(),
        Some(ResultCode::NotAllowed)
    );
    // A refusal reaches the joiner with the authority's reason.
    assert_eq!(
        h.request(1, approve(carol_request, false, "banned")),
        Ok(GameReply::JoinAnswered)
    );
    let (_, _, refusal) = h.refused.last().cloned().unwrap();
    let e = refusal.unwrap_err();
    assert_eq!(e.result_code(), Some(ResultCode::JoinNotApproved));
    assert_eq!(e.message, "banned");
    // An answer to a join that is not waiting.
    assert_eq!(
        h.request(1, approve(carol_request, true, ""))
            .unwrap_err()
            .result_code(),
        Some(ResultCode::InvalidRequestParameters)
    );
}

#[test]
fn a_join_the_authority_never_answers_is_refused_at_the_deadline() {
    let mut h = Harness::new(server_room(true));
    h.create_as("ds", true);
    let joiner = h.joiner();
    let input = h.join_input("bob", JoinMode::JoinOnly, Default::default());
    h.input(joiner, input);
    let timeout = RoomLimits::default().approval_timeout;
    assert_eq!(h.room.next_deadline(), Some(h.now + timeout));
    h.advance(timeout - Duration::from_millis(1));
    assert!(h.refused.is_empty());
    h.advance(Duration::from_millis(1));
    let (_, _, r) = h.refused.last().cloned().unwrap();
    assert_eq!(
        r.unwrap_err().result_code(),
        Some(ResultCode::JoinNotApproved)
    );
}

#[test]
fn when_the_authority_leaves_everyone_is_told_and_the_room_ends_after_the_grace() {
    let mut h = Harness::new(server_room(true));
    h.create_as("ds", true);
    let (b, input) = (
        h.joiner(),
        h.join_input("b", JoinMode::JoinOnly, Default::default()),
    );
    h.input(b, input);
    let (request, ..) = join_request(&h.take(1));
    h.request(1, approve(request, true, "")).unwrap();
    let (c, input) = (
        h.joiner(),
        h.join_input("c", JoinMode::JoinOnly, Default::default()),
    );
    h.input(c, input);
    h.take(2);
    h.leave(1, true);
    let grace = RoomLimits::default().authority_grace;
    assert!(h.take(2).contains(&Got::Event(RoomEvent::AuthorityLeft {
        closes_in_ms: grace.as_millis() as u32
    })));
    // The held join is refused; new ones find the room closing.
    let (_, _, r) = h.refused.last().cloned().unwrap();
    assert_eq!(
        r.unwrap_err().result_code(),
        Some(ResultCode::JoinNotApproved)
    );
    assert_eq!(
        h.join("d", JoinMode::JoinOnly).unwrap_err().result_code(),
        Some(ResultCode::GameClosed)
    );
    h.advance(grace - Duration::from_millis(1));
    assert!(!h.lifecycle.contains(&crate::Out::Closed));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.lifecycle.last(), Some(&crate::Out::Closed));
}

#[test]
fn a_held_join_whose_joiner_left_is_withdrawn_and_makes_no_actor() {
    let mut h = Harness::new(server_room(true));
    h.create_as("ds", true);
    let joiner = h.joiner();
    let input = h.join_input("bob", JoinMode::JoinOnly, Default::default());
    h.input(joiner, input);
    let (request, ..) = join_request(&h.take(1));
    h.input(joiner, crate::Input::Withdraw);
    assert_eq!(
        h.take(1),
        vec![Got::Event(RoomEvent::JoinWithdrawn { request })]
    );
    assert_eq!(
        h.request(1, approve(request, true, ""))
            .unwrap_err()
            .result_code(),
        Some(ResultCode::InvalidRequestParameters)
    );
    assert!(h.room.actor(2).is_none(), "no ghost actor");
}

#[test]
fn a_client_removes_only_its_own_cached_events_in_a_host_room() {
    use switchboard_protocol::EventCaching;
    let mut h = three(0);
    let mut cached = event(1, ReceiverGroup::Others, b"host state");
    cached.cache = EventCaching::AddToRoomCacheGlobal;
    h.raise(1, cached);
    let mut wipe = event(0, ReceiverGroup::Host, b"");
    wipe.cache = EventCaching::RemoveFromRoomCache;
    h.raise(2, wipe.clone());
    assert_eq!(h.room.cached_events(), 1, "the host's event stays");
    wipe.cache = EventCaching::RemoveFromRoomCacheForActorsLeft;
    h.raise(2, wipe);
    assert_eq!(
        error_code(&h.take(2)),
        Some(ResultCode::NotAllowed.to_wire())
    );
    assert_eq!(h.room.cached_events(), 1);
}
