//! Unit tests of the room state machine: explicit `now`, no sockets, no tasks.

use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_protocol::{
    EventCaching, JoinMode, OpError, Properties, PropertyPolicy, RaiseEvent, ReceiverGroup,
    ResultCode, RoomChange, RoomEvent, RoomOptions, SetProperties, Value,
};

use super::{Out, Presence, Room, RoomLimits};

fn room(options: RoomOptions) -> Room {
    Room::new("g".into(), options, RoomLimits::default())
}

fn props(pairs: &[(&str, Value)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn code(e: OpError) -> ResultCode {
    e.result_code().unwrap()
}

/// A room with actors 1..=n (users "u1".."un").
fn with_actors(options: RoomOptions, n: u32, now: Instant) -> Room {
    let mut r = room(options);
    r.create("u1", false, &[], Properties::new(), now).unwrap();
    for i in 2..=n {
        r.join(
            &format!("u{i}"),
            JoinMode::JoinOnly,
            &[],
            Properties::new(),
            now,
        )
        .unwrap();
    }
    r
}

fn ev(code: u8) -> RaiseEvent {
    RaiseEvent {
        code,
        receivers: ReceiverGroup::Others,
        targets: vec![],
        group: 0,
        cache: EventCaching::DoNotCache,
        channel: 0,
        data: Bytes::from_static(b"x"),
    }
}

fn relayed_to(outs: &[Out]) -> Vec<u32> {
    outs.iter()
        .find_map(|o| match o {
            Out::Relay { to, .. } => Some(to.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn events(outs: &[Out]) -> Vec<(Vec<u32>, RoomEvent)> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Event { to, event } => Some((to.clone(), event.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn actors_are_numbered_announced_and_see_the_room() {
    let now = Instant::now();
    let mut r = room(RoomOptions {
        publish_user_id: true,
        properties: props(&[("map", Value::Str("dust".into()))]),
        ..RoomOptions::default()
    });
    let (j, outs) = r
        .create(
            "alice",
            false,
            &[],
            props(&[("nick", Value::Str("A".into()))]),
            now,
        )
        .unwrap();
    assert_eq!((j.actor, j.master_client), (1, 1));
    assert_eq!(j.properties.get("map"), Some(&Value::Str("dust".into())));
    assert_eq!(events(&outs)[0].0, vec![1], "the creator gets its own Join");
    let (j, outs) = r
        .join("bob", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(j.actor, 2);
    assert_eq!(j.actors[0].user_id, "alice");
    assert_eq!(
        j.actors[0].properties.get("nick"),
        Some(&Value::Str("A".into()))
    );
    let (to, join) = &events(&outs)[0];
    assert_eq!(to, &vec![1, 2]);
    assert!(
        matches!(join, RoomEvent::Join { actor, actors } if actor.actor == 2 && actors == &vec![1, 2])
    );
    assert!(outs.contains(&Out::Publish));
}

#[test]
fn joined_tells_the_flush_window_the_server_applies() {
    let now = Instant::now();
    let window = |asked: Option<u32>| {
        let mut r = room(RoomOptions {
            flush_window_ms: asked,
            ..RoomOptions::default()
        });
        let (j, _) = r.create("u", false, &[], Properties::new(), now).unwrap();
        assert_eq!(
            Duration::from_millis(j.flush_window_ms.into()),
            r.flush_window()
        );
        j.flush_window_ms
    };
    // The server's default, what the room asks for, and no more than the server's cap.
    assert_eq!(window(None), 5);
    assert_eq!(window(Some(0)), 0);
    assert_eq!(window(Some(20)), 20);
    assert_eq!(window(Some(60_000)), 50);
}

#[test]
fn user_ids_are_hidden_unless_published() {
    let now = Instant::now();
    let r = with_actors(RoomOptions::default(), 2, now);
    let mut r2 = r.clone();
    let (j, _) = r2
        .join("u3", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert!(j.actors.iter().all(|a| a.user_id.is_empty()));
}

#[test]
fn full_closed_and_duplicate_joins_are_refused() {
    let now = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            max_players: 2,
            ..RoomOptions::default()
        },
        2,
        now,
    );
    let j = |r: &mut Room, u: &str| {
        r.join(u, JoinMode::JoinOnly, &[], Properties::new(), now)
            .unwrap_err()
    };
    assert_eq!(
        code(j(&mut r, "u1")),
        ResultCode::JoinFailedPeerAlreadyJoined
    );
    assert_eq!(code(j(&mut r, "u3")), ResultCode::GameFull);
    let mut closed = room(RoomOptions {
        is_open: false,
        ..RoomOptions::default()
    });
    closed
        .create("owner", false, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(code(j(&mut closed, "x")), ResultCode::GameClosed);
}

#[test]
fn expected_users_hold_slots() {
    let now = Instant::now();
    let mut r = room(RoomOptions {
        max_players: 3,
        ..RoomOptions::default()
    });
    let friends = ["bob".to_string(), "carol".to_string()];
    r.create("alice", false, &friends, Properties::new(), now)
        .unwrap();
    assert_eq!(r.game_state().expected_users, friends.to_vec());
    let join = |r: &mut Room, u: &str, exp: &[String]| {
        r.join(u, JoinMode::JoinOnly, exp, Properties::new(), now)
    };
    assert_eq!(
        code(join(&mut r, "mallory", &[]).unwrap_err()),
        ResultCode::GameFull
    );
    join(&mut r, "bob", &[]).unwrap();
    assert_eq!(r.game_state().expected_users, vec!["carol".to_string()]);
    let mut small = room(RoomOptions {
        max_players: 2,
        ..RoomOptions::default()
    });
    let e = small
        .create(
            "a",
            false,
            &["b".into(), "c".into()],
            Properties::new(),
            now,
        )
        .unwrap_err();
    assert_eq!(code(e), ResultCode::SlotError);
    small
        .create("a", false, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(
        code(join(&mut small, "b", &["c".into()]).unwrap_err()),
        ResultCode::SlotError
    );
}

#[test]
fn leaving_moves_the_master_client_and_numbers_are_not_reused() {
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 2, now);
    let outs = r.leave(1, false, now);
    assert_eq!(
        events(&outs),
        vec![(
            vec![2],
            RoomEvent::Leave {
                actor: 1,
                inactive: false,
                master_client: 2
            }
        )]
    );
    assert!(
        r.leave(1, false, now).is_empty(),
        "leaving twice is a no-op"
    );
    let (j, _) = r
        .join("u1", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(j.actor, 3);
}

#[test]
fn player_ttl_makes_actors_inactive_and_rejoin_restores_them() {
    let t0 = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            player_ttl_ms: 1000,
            ..RoomOptions::default()
        },
        2,
        t0,
    );
    r.set_properties(
        2,
        SetProperties {
            target: 2,
            properties: props(&[("hp", Value::Int(7))]),
            ..Default::default()
        },
    )
    .unwrap();
    let outs = r.leave(2, true, t0);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::Leave {
            actor: 2,
            inactive: true,
            master_client: 1
        }
    );
    assert_eq!(
        r.actor(2).unwrap().presence,
        Presence::Inactive {
            until: Some(t0 + Duration::from_secs(1))
        }
    );
    assert_eq!(
        r.game_state().users.len(),
        2,
        "an inactive actor still holds its place"
    );
    // Joining as if new is refused; RejoinOnly takes the actor back with its properties.
    let e = r
        .join("u2", JoinMode::JoinOnly, &[], Properties::new(), t0)
        .unwrap_err();
    assert_eq!(code(e), ResultCode::JoinFailedFoundInactiveJoiner);
    let (j, outs) = r
        .join(
            "u2",
            JoinMode::RejoinOnly,
            &[],
            Properties::new(),
            t0 + Duration::from_millis(900),
        )
        .unwrap();
    assert_eq!(j.actor, 2);
    assert_eq!(
        r.actor(2).unwrap().properties.get("hp"),
        Some(&Value::Int(7))
    );
    assert!(
        matches!(&events(&outs)[0].1, RoomEvent::Join { actor, .. } if actor.actor == 2 && !actor.inactive)
    );
    // Dropping again and waiting out the TTL removes it.
    r.leave(2, true, t0 + Duration::from_secs(2));
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(3)));
    assert!(r.tick(t0 + Duration::from_millis(2999)).is_empty());
    let outs = r.tick(t0 + Duration::from_secs(3));
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::Leave {
            actor: 2,
            inactive: false,
            master_client: 1
        }
    );
    assert!(r.actor(2).is_none());
    let e = r
        .join(
            "u2",
            JoinMode::RejoinOnly,
            &[],
            Properties::new(),
            t0 + Duration::from_secs(4),
        )
        .unwrap_err();
    assert_eq!(code(e), ResultCode::JoinFailedWithRejoinerNotFound);
    r.join(
        "u2",
        JoinMode::RejoinOrJoin,
        &[],
        Properties::new(),
        t0 + Duration::from_secs(4),
    )
    .unwrap();
}

#[test]
fn without_player_ttl_leaving_is_for_good_and_negative_is_forever() {
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 2, now);
    r.leave(2, true, now);
    assert!(r.actor(2).is_none());
    let mut forever = with_actors(
        RoomOptions {
            player_ttl_ms: -1,
            ..RoomOptions::default()
        },
        2,
        now,
    );
    forever.leave(2, true, now);
    assert_eq!(
        forever.actor(2).unwrap().presence,
        Presence::Inactive { until: None }
    );
    assert!(forever.tick(now + Duration::from_secs(86_400)).is_empty());
}

#[test]
fn empty_room_ttl_is_capped_and_waits_for_inactive_actors() {
    let t0 = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            empty_room_ttl_ms: 10_000,
            ..RoomOptions::default()
        },
        1,
        t0,
    );
    assert_eq!(r.close_at(), None);
    r.leave(1, false, t0);
    assert_eq!(r.close_at(), Some(t0 + Duration::from_secs(10)));
    assert!(!r.is_done(t0 + Duration::from_secs(9)));
    // Someone joins in the meantime: the room lives on.
    r.join(
        "late",
        JoinMode::JoinOnly,
        &[],
        Properties::new(),
        t0 + Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.close_at(), None);

    let capped = room(RoomOptions {
        empty_room_ttl_ms: u32::MAX,
        ..RoomOptions::default()
    });
    assert_eq!(capped.options().empty_room_ttl_ms, 60_000);

    let mut r = with_actors(
        RoomOptions {
            player_ttl_ms: 30_000,
            empty_room_ttl_ms: 1000,
            ..RoomOptions::default()
        },
        1,
        t0,
    );
    r.leave(1, true, t0);
    assert_eq!(
        r.close_at(),
        Some(t0 + Duration::from_secs(30)),
        "kept until the inactive actor expires"
    );
    let mut plain = with_actors(RoomOptions::default(), 1, t0);
    plain.leave(1, false, t0);
    assert!(
        plain.is_done(t0),
        "EmptyRoomTtl 0: the room ends with its last actor"
    );
}

#[test]
fn recipients_follow_targets_then_groups_then_receivers() {
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 4, now);
    let mut e = ev(1);
    assert_eq!(r.recipients(2, &e), vec![1, 3, 4]);
    e.receivers = ReceiverGroup::All;
    assert_eq!(r.recipients(2, &e), vec![1, 2, 3, 4]);
    e.receivers = ReceiverGroup::MasterClient;
    assert_eq!(r.recipients(2, &e), vec![1]);
    r.change_groups(3, None, vec![7]).unwrap();
    r.change_groups(2, None, vec![7, 8]).unwrap();
    e.group = 7;
    assert_eq!(
        r.recipients(2, &e),
        vec![3],
        "group members except the sender"
    );
    e.group = 9;
    assert!(
        r.recipients(2, &e).is_empty(),
        "a group nobody joined reaches nobody"
    );
    e.targets = vec![4, 4, 99, 1];
    assert_eq!(
        r.recipients(2, &e),
        vec![1, 4],
        "targets win; absent ones skipped"
    );
    r.change_groups(3, Some(vec![]), vec![]).unwrap();
    e.targets.clear();
    e.group = 7;
    assert!(r.recipients(2, &e).is_empty(), "Some([]) leaves all groups");
    assert_eq!(
        code(r.change_groups(3, None, vec![0]).unwrap_err()),
        ResultCode::InvalidRequestParameters
    );
    // An inactive sender reaches nobody.
    r.leave(4, false, now);
    assert!(r.raise(4, ev(1), true).is_empty());
}

#[test]
fn events_are_stamped_and_channels_checked() {
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 2, now);
    let mut e = ev(5);
    e.channel = 3;
    let outs = r.raise(2, e.clone(), true);
    assert!(
        matches!(&outs[0], Out::Relay { to, data, reliable: true, channel: 3 } if to == &vec![1] && data.sender == 2)
    );
    let outs = r.raise(2, e.clone(), false);
    assert!(
        matches!(
            &outs[0],
            Out::Relay {
                reliable: false,
                channel: 0,
                ..
            }
        ),
        "unreliable has no channel"
    );
    e.channel = 16;
    let outs = r.raise(2, e, true);
    assert!(matches!(&events(&outs)[0].1, RoomEvent::ErrorInfo { .. }));
}

#[test]
fn the_cache_is_replayed_removed_and_cleaned_up() {
    let now = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            player_ttl_ms: 0,
            ..RoomOptions::default()
        },
        2,
        now,
    );
    let mut add = ev(1);
    add.cache = EventCaching::AddToRoomCache;
    r.raise(1, add.clone(), true);
    add.code = 2;
    r.raise(2, add.clone(), true);
    let mut global = ev(3);
    global.cache = EventCaching::AddToRoomCacheGlobal;
    r.raise(2, global, true);
    assert_eq!(r.cached_events(), 3);
    // A joiner gets them after its Join, in order.
    let (_, outs) = r
        .join("u3", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    let replay: Vec<(u32, u8)> = outs
        .iter()
        .filter_map(|o| match o {
            Out::Relay { to, data, .. } if to == &vec![3] => Some((data.sender, data.code)),
            _ => None,
        })
        .collect();
    assert_eq!(replay, vec![(1, 1), (2, 2), (2, 3)]);
    // Actor 2 leaves for good: its own cached event goes, the global one stays.
    r.leave(2, false, now);
    assert_eq!(r.cached_events(), 2);
    // RemoveFromRoomCache by code: not delivered, removes.
    let mut rm = ev(1);
    rm.cache = EventCaching::RemoveFromRoomCache;
    assert!(r.raise(3, rm, true).is_empty());
    assert_eq!(r.cached_events(), 1);
    // Targeted events cannot be cached.
    let mut bad = ev(9);
    bad.cache = EventCaching::AddToRoomCache;
    bad.targets = vec![1];
    let outs = r.raise(1, bad, true);
    assert!(matches!(&events(&outs)[0], (to, RoomEvent::ErrorInfo { .. }) if to == &vec![1]));
}

#[test]
fn removing_cached_events_of_actors_that_left() {
    let now = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            cleanup_cache_on_leave: false,
            ..RoomOptions::default()
        },
        2,
        now,
    );
    let mut add = ev(1);
    add.cache = EventCaching::AddToRoomCache;
    r.raise(2, add.clone(), true);
    r.raise(1, add, true);
    r.leave(2, false, now);
    assert_eq!(r.cached_events(), 2, "no cleanup on leave");
    let mut rm = ev(0);
    rm.cache = EventCaching::RemoveFromRoomCacheForActorsLeft;
    r.raise(1, rm, true);
    assert_eq!(r.cached_events(), 1);
}

#[test]
fn a_cache_over_its_limits_closes_the_room() {
    let now = Instant::now();
    let mut r = Room::new(
        "g".into(),
        RoomOptions::default(),
        RoomLimits {
            max_cache_events: 2,
            ..RoomLimits::default()
        },
    );
    r.create("u1", false, &[], Properties::new(), now).unwrap();
    r.join("u2", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    let mut add = ev(1);
    add.cache = EventCaching::AddToRoomCache;
    r.raise(1, add.clone(), true);
    r.raise(1, add.clone(), true);
    let outs = r.raise(1, add, true);
    let errors = events(&outs);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, vec![1, 2]);
    assert!(
        matches!(&errors[0].1, RoomEvent::ErrorInfo { code, .. } if *code == ResultCode::EventCacheExceeded.to_wire())
    );
    assert_eq!(r.cached_events(), 0);
    assert!(!r.options().is_open);
    assert!(outs.contains(&Out::Publish));
}

#[test]
fn set_properties_cas_broadcast_and_limits() {
    let now = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            broadcast_props_change_to_all: false,
            lobby_properties: vec!["map".into()],
            // Photon's semantics: anyone sets the room's properties.
            property_policy: PropertyPolicy::Open,
            ..RoomOptions::default()
        },
        3,
        now,
    );
    // Plain set without broadcast: silent.
    let outs = r
        .set_properties(
            1,
            SetProperties {
                properties: props(&[("score", Value::Int(1))]),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(events(&outs).is_empty());
    // With broadcast: to the others (BroadcastPropsChangeToAll is off).
    let outs = r
        .set_properties(
            1,
            SetProperties {
                properties: props(&[("score", Value::Int(2))]),
                broadcast: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(events(&outs)[0].0, vec![2, 3]);
    // CAS: a mismatch changes nothing; a match broadcasts to all.
    let cas = |expect: i64, set: i64| SetProperties {
        properties: props(&[("score", Value::Int(set))]),
        expected: props(&[("score", Value::Int(expect))]),
        ..Default::default()
    };
    assert_eq!(
        code(r.set_properties(2, cas(1, 5)).unwrap_err()),
        ResultCode::OperationInvalid
    );
    assert_eq!(r.options().properties.get("score"), Some(&Value::Int(2)));
    let outs = r.set_properties(2, cas(2, 5)).unwrap();
    assert_eq!(events(&outs)[0].0, vec![1, 2, 3]);
    // Expected Null means absent.
    r.set_properties(
        2,
        SetProperties {
            properties: props(&[("new", Value::Int(1))]),
            expected: props(&[("new", Value::Null)]),
            ..Default::default()
        },
    )
    .unwrap();
    // Lobby-listed keys are published.
    let outs = r
        .set_properties(
            1,
            SetProperties {
                properties: props(&[("map", Value::Str("x".into()))]),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(outs.contains(&Out::Publish));
    assert_eq!(
        r.game_state().lobby_properties.get("map"),
        Some(&Value::Str("x".into()))
    );
    // Actor properties; reserved keys; limits; unknown actor.
    r.set_properties(
        3,
        SetProperties {
            target: 3,
            properties: props(&[("nick", Value::Str("c".into()))]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.actor(3).unwrap().properties.len(), 1);
    let reserved = SetProperties {
        properties: props(&[("#user_id", Value::Str("x".into()))]),
        ..Default::default()
    };
    assert_eq!(
        code(r.set_properties(1, reserved).unwrap_err()),
        ResultCode::InvalidRequestParameters
    );
    let many: Properties = (0..101).map(|i| (format!("k{i}"), Value::Int(i))).collect();
    assert_eq!(
        code(
            r.set_properties(
                1,
                SetProperties {
                    properties: many,
                    ..Default::default()
                }
            )
            .unwrap_err()
        ),
        ResultCode::OperationLimitReached
    );
    let big = props(&[("blob", Value::Bytes(vec![0; 10_001].into()))]);
    assert_eq!(
        code(
            r.set_properties(
                1,
                SetProperties {
                    properties: big,
                    ..Default::default()
                }
            )
            .unwrap_err()
        ),
        ResultCode::OperationLimitReached
    );
    assert_eq!(
        code(
            r.set_properties(
                1,
                SetProperties {
                    target: 9,
                    ..Default::default()
                }
            )
            .unwrap_err()
        ),
        ResultCode::InvalidRequestParameters
    );
}

#[test]
fn room_properties_have_a_total_size_limit_and_nulls_can_delete() {
    let now = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            delete_null_props: true,
            ..RoomOptions::default()
        },
        1,
        now,
    );
    for i in 0..5 {
        r.set_properties(
            1,
            SetProperties {
                properties: props(&[(&format!("k{i}"), Value::Bytes(vec![0; 9000].into()))]),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let e = r
        .set_properties(
            1,
            SetProperties {
                properties: props(&[("k9", Value::Bytes(vec![0; 9000].into()))]),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(code(e), ResultCode::OperationLimitReached);
    r.set_properties(
        1,
        SetProperties {
            properties: props(&[("k0", Value::Null)]),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!r.options().properties.contains_key("k0"));
}

#[test]
fn room_settings_change_through_set_properties() {
    let now = Instant::now();
    let mut r = with_actors(
        RoomOptions {
            max_players: 4,
            ..RoomOptions::default()
        },
        3,
        now,
    );
    let change = |room: RoomChange| SetProperties {
        room,
        ..Default::default()
    };
    let e = r
        .set_properties(
            1,
            change(RoomChange {
                max_players: Some(2),
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert_eq!(
        code(e),
        ResultCode::InvalidRequestParameters,
        "max players cannot go below the actors"
    );
    let outs = r
        .set_properties(
            1,
            change(RoomChange {
                is_open: Some(false),
                ..Default::default()
            }),
        )
        .unwrap();
    assert!(outs.contains(&Out::Publish));
    assert!(!r.game_state().is_open);
    r.set_properties(
        1,
        change(RoomChange {
            expected_users: Some(vec!["friend".into()]),
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(r.game_state().expected_users, vec!["friend".to_string()]);
    let e = r
        .set_properties(
            1,
            change(RoomChange {
                expected_users: Some(vec!["a".into(), "b".into()]),
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert_eq!(code(e), ResultCode::SlotError);
    let e = r
        .set_properties(
            1,
            SetProperties {
                target: 2,
                room: RoomChange {
                    is_open: Some(true),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(code(e), ResultCode::InvalidRequestParameters);
}

#[test]
fn set_master_client_is_a_compare_and_set() {
    let now = Instant::now();
    let open = RoomOptions {
        property_policy: PropertyPolicy::Open,
        ..RoomOptions::default()
    };
    let mut r = with_actors(open, 3, now);
    assert_eq!(
        code(r.set_master_client(2, 3, 2).unwrap_err()),
        ResultCode::OperationInvalid
    );
    let outs = r.set_master_client(2, 3, 1).unwrap();
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::MasterClientChanged {
            master_client: 3,
            sender: 2
        }
    );
    assert_eq!(r.master_client(), 3);
    assert_eq!(
        code(r.set_master_client(1, 9, 3).unwrap_err()),
        ResultCode::InvalidRequestParameters
    );
    // When the chosen master client leaves, the lowest active actor takes over.
    let outs = r.leave(3, false, now);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::Leave {
            actor: 3,
            inactive: false,
            master_client: 1
        }
    );
}

#[test]
fn suppressed_room_events() {
    let now = Instant::now();
    let mut r = room(RoomOptions {
        suppress_room_events: true,
        ..RoomOptions::default()
    });
    let (_, outs) = r.create("a", false, &[], Properties::new(), now).unwrap();
    assert!(events(&outs).is_empty());
    r.join("b", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert!(events(&r.leave(2, false, now)).is_empty());
    assert_eq!(relayed_to(&r.raise(1, ev(1), true)), Vec::<u32>::new());
    // Without Leave events a change of master client is still announced.
    r.join("c", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(
        events(&r.leave(1, false, now)),
        vec![(
            vec![3],
            RoomEvent::MasterClientChanged {
                master_client: 3,
                sender: 0
            }
        )]
    );
}

#[test]
fn a_guarded_room_lets_actors_change_only_their_own_and_the_master_client_the_room() {
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 3, now);
    let mine = |target: u32| SetProperties {
        target,
        properties: props(&[("nick", Value::Str("z".into()))]),
        ..Default::default()
    };
    // Someone else's properties: refused, and nothing changes.
    assert_eq!(
        code(r.set_properties(2, mine(3)).unwrap_err()),
        ResultCode::NotAllowed
    );
    assert!(r.actor(3).unwrap().properties.is_empty());
    r.set_properties(2, mine(2)).unwrap();
    // The room's properties and settings: the master client (1) only.
    let close = SetProperties {
        room: RoomChange {
            is_open: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        code(r.set_properties(2, close.clone()).unwrap_err()),
        ResultCode::NotAllowed
    );
    assert!(r.options().is_open, "a player cannot close the room");
    let room_props = SetProperties {
        properties: props(&[("map", Value::Int(1))]),
        ..Default::default()
    };
    assert_eq!(
        code(r.set_properties(3, room_props.clone()).unwrap_err()),
        ResultCode::NotAllowed
    );
    r.set_properties(1, room_props).unwrap();
    r.set_properties(1, close).unwrap();
    assert!(!r.options().is_open);
    // The master-client role: handed over by the master client only.
    assert_eq!(
        code(r.set_master_client(2, 2, 1).unwrap_err()),
        ResultCode::NotAllowed
    );
    r.set_master_client(1, 3, 1).unwrap();
    assert_eq!(r.master_client(), 3);
}

#[test]
fn no_change_makes_a_joined_larger_than_clients_accept() {
    let now = Instant::now();
    let limits = RoomLimits {
        max_joined_bytes: 35_000,
        ..RoomLimits::default()
    };
    // (No Debug of a refused Ok: these values are large.)
    let refused = |r: Result<(switchboard_protocol::Joined, Vec<Out>), OpError>| match r {
        Ok(_) => panic!("the join was accepted"),
        Err(e) => code(e),
    };
    let mut r = Room::new("g".into(), RoomOptions::default(), limits);
    r.create("a", false, &[], Properties::new(), now).unwrap();
    let blob = |n: usize| Value::Bytes(Bytes::from(vec![7u8; n]));
    // One actor's properties are capped on their own...
    for i in 0..3 {
        let sp = SetProperties {
            target: 1,
            properties: props(&[(&format!("k{i}"), blob(6_000))]),
            ..Default::default()
        };
        if i < 2 {
            r.set_properties(1, sp).unwrap();
        } else {
            assert_eq!(
                r.set_properties(1, sp).err().map(code),
                Some(ResultCode::OperationLimitReached),
                "18 KB is over the 16 KiB an actor may have"
            );
        }
    }
    // ...and everybody's together with the room's stay within a Joined.
    let heavy = props(&[("k", blob(9_000))]);
    r.join("b", JoinMode::JoinOnly, &[], heavy.clone(), now)
        .unwrap();
    r.join("c", JoinMode::JoinOnly, &[], heavy.clone(), now)
        .unwrap();
    assert_eq!(
        refused(r.join("d", JoinMode::JoinOnly, &[], heavy.clone(), now)),
        ResultCode::OperationLimitReached
    );
    r.join("d", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    let (joined, _) = r
        .join("e", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert!(
        switchboard_protocol::frame::encoded_len(&joined) <= 35_000,
        "the estimate is an upper bound"
    );
    // Room properties count too.
    let sp = SetProperties {
        properties: props(&[("map", blob(10_000))]),
        ..Default::default()
    };
    assert_eq!(
        r.set_properties(1, sp).err().map(code),
        Some(ResultCode::OperationLimitReached)
    );
    // Lobby-listed properties are capped in number and bytes at creation.
    let many: Vec<String> = (0..17).map(|i| format!("l{i}")).collect();
    let mut r2 = room(RoomOptions {
        lobby_properties: many,
        ..RoomOptions::default()
    });
    assert_eq!(
        refused(r2.create("a", false, &[], Properties::new(), now)),
        ResultCode::OperationLimitReached
    );
}

#[test]
fn a_dropped_player_rejoins_a_full_room() {
    let now = Instant::now();
    let mut r = room(RoomOptions {
        max_players: 2,
        player_ttl_ms: 60_000,
        ..RoomOptions::default()
    });
    r.create("a", false, &[], Properties::new(), now).unwrap();
    r.join("b", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    r.leave(2, true, now);
    assert!(
        r.join("c", JoinMode::JoinOnly, &[], Properties::new(), now)
            .is_err(),
        "the inactive actor keeps its place"
    );
    let (joined, _) = r
        .join("b", JoinMode::RejoinOnly, &[], Properties::new(), now)
        .expect("a 1-v-1 gets its dropped player back");
    assert_eq!(joined.actor, 2);
}

#[test]
fn the_master_client_role_stays_where_the_leave_announced_it() {
    let now = Instant::now();
    let mut r = room(RoomOptions {
        player_ttl_ms: 60_000,
        ..RoomOptions::default()
    });
    r.create("a", false, &[], Properties::new(), now).unwrap();
    r.join("b", JoinMode::JoinOnly, &[], Properties::new(), now)
        .unwrap();
    let outs = r.leave(1, true, now);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::Leave {
            actor: 1,
            inactive: true,
            master_client: 2
        }
    );
    let (joined, _) = r
        .join("a", JoinMode::RejoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(joined.master_client, 2, "the rejoiner is told who it is");
    assert_eq!(r.master_client(), 2, "and it does not take the role back");
    // Everyone gone and back: the first to come back is the master client.
    r.leave(2, true, now);
    r.leave(1, true, now);
    let (joined, _) = r
        .join("b", JoinMode::RejoinOnly, &[], Properties::new(), now)
        .unwrap();
    assert_eq!(joined.master_client, 2);
}

#[test]
fn an_events_channel_is_the_channel_of_its_stream() {
    use super::Via;
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 2, now);
    let on = |channel: u8| RaiseEvent { channel, ..ev(1) };
    // A mismatch is refused to the sender and relayed to nobody.
    for (channel, via) in [
        (5, Via::Control),
        (9, Via::Channel(3)),
        (0, Via::Channel(3)),
    ] {
        let outs = r.raise_via(1, on(channel), via);
        assert_eq!(
            relayed_to(&outs),
            Vec::<u32>::new(),
            "{channel} via {via:?}"
        );
        assert!(matches!(
            &events(&outs)[..],
            [(to, RoomEvent::ErrorInfo { code, .. })]
                if to == &vec![1] && *code == ResultCode::InvalidRequestParameters.to_wire()
        ));
    }
    // A match is relayed, on that channel.
    let outs = r.raise_via(1, on(3), Via::Channel(3));
    assert!(
        matches!(&outs[..], [Out::Relay { to, channel: 3, reliable: true, .. }] if to == &vec![2])
    );
    assert_eq!(relayed_to(&r.raise_via(1, on(0), Via::Control)), vec![2]);
    // A datagram's channel is not used.
    let outs = r.raise_via(1, on(7), Via::Datagram);
    assert!(matches!(
        &outs[..],
        [Out::Relay {
            reliable: false,
            ..
        }]
    ));
}

#[test]
fn handle_answers_every_request_and_tells_the_lifecycle_in_order() {
    use super::{Input, Origin};
    use switchboard_protocol::{GameOp, GameReply};
    let now = Instant::now();
    let mut r = room(RoomOptions {
        player_ttl_ms: 1000,
        ..RoomOptions::default()
    });
    let create = Input::Create {
        id: 7,
        user_id: "a".into(),
        authority: false,
        expected_users: vec![],
        properties: Properties::new(),
    };
    let outs = r.handle(Origin::Joiner(1), create, now);
    // Bind first, then the answer, then what the join causes.
    assert!(matches!(&outs[0], Out::Joined { actor: 1, user_id, .. } if user_id == "a"));
    assert!(matches!(
        &outs[1],
        Out::Reply {
            id: 7,
            result: Ok(GameReply::Joined(_)),
            ..
        }
    ));
    assert!(matches!(
        &outs[2],
        Out::Event {
            event: RoomEvent::Join { .. },
            ..
        }
    ));
    // A refused join: the answer only.
    let join = |user: &str, mode| Input::Join {
        id: 8,
        user_id: user.into(),
        mode,
        expected_users: vec![],
        properties: Properties::new(),
        claims: Properties::new(),
    };
    let outs = r.handle(Origin::Joiner(2), join("z", JoinMode::RejoinOnly), now);
    assert!(matches!(
        &outs[..],
        [Out::Reply { id: 8, result: Err(e), .. }]
            if e.result_code() == Some(ResultCode::JoinFailedWithRejoinerNotFound)
    ));
    r.handle(Origin::Joiner(1), join("b", JoinMode::JoinOnly), now);
    // An operation: the answer, then its events.
    let op = GameOp::SetMasterClient {
        actor: 2,
        expected: 1,
    };
    let outs = r.handle(Origin::Actor(1), Input::Request { id: 9, op }, now);
    assert!(matches!(
        &outs[0],
        Out::Reply {
            id: 9,
            result: Ok(GameReply::MasterClientSet),
            ..
        }
    ));
    assert!(matches!(
        &outs[1],
        Out::Event {
            event: RoomEvent::MasterClientChanged { .. },
            ..
        }
    ));
    // A room operation that is not one: refused.
    let leave = GameOp::LeaveGame {
        will_come_back: true,
    };
    let outs = r.handle(Origin::Actor(2), Input::Request { id: 10, op: leave }, now);
    assert!(matches!(
        &outs[..2],
        [
            Out::Reply {
                id: 10,
                result: Ok(GameReply::Left),
                ..
            },
            Out::Left {
                actor: 2,
                inactive: true
            }
        ]
    ));
    // Its PlayerTtl passes: gone for good. Then the last actor leaves and the room closes.
    let later = now + std::time::Duration::from_millis(1001);
    let outs = r.handle(Origin::Server, Input::Tick, later);
    assert!(outs.contains(&Out::Left {
        actor: 2,
        inactive: false
    }));
    let leave = Input::Leave {
        id: None,
        will_come_back: false,
    };
    r.handle(Origin::Actor(1), leave, later);
    assert_eq!(
        r.handle(Origin::Server, Input::Tick, later).last(),
        Some(&Out::Closed)
    );
}

#[test]
fn a_forwarded_event_is_relayed_and_forwarded_unless_refused() {
    use super::{Input, Origin};
    use switchboard_protocol::Forward;
    let now = Instant::now();
    let mut r = with_actors(RoomOptions::default(), 2, now);
    let outs = r.handle(
        Origin::Actor(1),
        Input::Forward {
            event: ev(4),
            forward: Forward::Batched,
        },
        now,
    );
    assert_eq!(relayed_to(&outs), vec![2]);
    assert!(outs.contains(&Out::Forward {
        sender: 1,
        code: 4,
        data: Bytes::from_static(b"x"),
        batched: true
    }));
    // Refused (a channel that is not the control stream's): not forwarded either.
    let mut bad = ev(4);
    bad.channel = 3;
    let outs = r.handle(
        Origin::Actor(1),
        Input::Forward {
            event: bad,
            forward: Forward::Now,
        },
        now,
    );
    assert!(!outs.iter().any(|o| matches!(o, Out::Forward { .. })));
}
