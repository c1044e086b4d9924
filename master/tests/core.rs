//! The master's sans-IO core, driven directly: no sockets, explicit `now`, seeded RNG.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use switchboard_master::state::{MasterState, Settings};
use switchboard_protocol::{
    CreateSpec, GameState, JoinMode, JoinRandom, LoadReport, Lobby, LobbyKind, MatchmakingMode,
    Register, ResultCode, RoomOptions, ServerState, TicketAction, Value, games_digest,
};

fn state() -> MasterState {
    let mut settings = Settings::default();
    settings.load_balancer.reserve_ratio = 0.0;
    // One user makes many games in these tests; the quota has its own test.
    settings.max_reservations_per_user = 0;
    MasterState::new(settings, Some(7))
}

fn register(s: &mut MasterState, id: &str, link: u64, games: Vec<GameState>) {
    let reg = Register {
        server_id: id.into(),
        address: format!("{id}.example:5056"),
        secret: String::new(),
        priority: 0,
        replace: false,
    };
    s.register(&reg, link, Instant::now()).unwrap();
    s.reconcile(id, &games);
}

fn game(name: &str, lobby: Lobby, users: &[&str], max: u32, props: &[(&str, Value)]) -> GameState {
    GameState {
        game: name.into(),
        lobby,
        max_players: max,
        is_open: true,
        is_visible: true,
        lobby_properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        users: users.iter().map(|u| u.to_string()).collect(),
        expected_users: vec![],
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, switchboard_protocol::OpError>) -> ResultCode {
    r.unwrap_err().result_code().unwrap()
}

fn opts(max: u32) -> RoomOptions {
    RoomOptions {
        max_players: max,
        ..RoomOptions::default()
    }
}

fn random(lobby: Lobby) -> JoinRandom {
    JoinRandom {
        lobby,
        ..JoinRandom::default()
    }
}

#[test]
fn create_reserves_the_name_and_join_goes_to_the_same_server() {
    let now = Instant::now();
    let mut s = state();
    assert_eq!(
        code(s.create_game("a", false, Some("g".into()), opts(0), &[], now)),
        ResultCode::ServerFull
    );
    register(&mut s, "gs1", 1, vec![]);
    let a = s
        .create_game("a", false, Some("g".into()), opts(0), &[], now)
        .unwrap();
    assert_eq!(a.action, TicketAction::Create);
    assert_eq!(a.placement.address, "gs1.example:5056");
    assert_eq!(
        code(s.create_game("b", false, Some("g".into()), opts(0), &[], now)),
        ResultCode::GameIdAlreadyExists
    );
    let b = s
        .join_game("b", false, "g", JoinMode::JoinOnly, &[], opts(0), now)
        .unwrap();
    assert_eq!((b.action, b.placement), (TicketAction::Join, a.placement));
    let generated = s.create_game("c", false, None, opts(0), &[], now).unwrap();
    assert_eq!(generated.game.len(), 32);
}

#[test]
fn joining_players_count_until_they_arrive_or_expire() {
    let now = Instant::now();
    let mut s = state();
    register(&mut s, "gs1", 1, vec![]);
    s.create_game("a", false, Some("g".into()), opts(2), &[], now)
        .unwrap();
    s.join_game("b", false, "g", JoinMode::JoinOnly, &[], opts(0), now)
        .unwrap();
    // Neither has arrived, but both count.
    assert_eq!(
        code(s.join_game("c", false, "g", JoinMode::JoinOnly, &[], opts(0), now)),
        ResultCode::GameFull
    );
    // Only a arrives: b still counts until the joining TTL.
    assert!(s.update_game("gs1", game("g", Lobby::default(), &["a"], 2, &[])));
    assert_eq!(
        code(s.join_game("c", false, "g", JoinMode::JoinOnly, &[], opts(0), now)),
        ResultCode::GameFull
    );
    let later = now + s.settings().joining_ttl;
    s.heard_from("gs1", 1, later);
    s.tick(later);
    s.join_game("c", false, "g", JoinMode::JoinOnly, &[], opts(0), later)
        .unwrap();
}

#[test]
fn slot_reservations_must_fit() {
    let now = Instant::now();
    let mut s = state();
    register(&mut s, "gs1", 1, vec![]);
    let friends: Vec<String> = vec!["b".into(), "c".into()];
    assert_eq!(
        code(s.create_game("a", false, Some("g".into()), opts(2), &friends, now)),
        ResultCode::SlotError
    );
    s.create_game("a", false, Some("g".into()), opts(3), &friends, now)
        .unwrap();
    // The room is full for strangers but not for the expected.
    assert_eq!(
        code(s.join_game("x", false, "g", JoinMode::JoinOnly, &[], opts(0), now)),
        ResultCode::GameFull
    );
    s.join_game("b", false, "g", JoinMode::JoinOnly, &[], opts(0), now)
        .unwrap();
    s.create_game("a", false, Some("h".into()), opts(3), &[], now)
        .unwrap();
    assert_eq!(
        code(s.join_game(
            "b",
            false,
            "h",
            JoinMode::JoinOnly,
            &["y".into(), "z".into()],
            opts(0),
            now
        )),
        ResultCode::SlotError
    );
}

#[test]
fn join_modes() {
    let now = Instant::now();
    let mut s = state();
    register(
        &mut s,
        "gs1",
        1,
        vec![game("live", Lobby::default(), &["a"], 0, &[])],
    );
    assert_eq!(
        code(s.join_game("b", false, "none", JoinMode::JoinOnly, &[], opts(0), now)),
        ResultCode::GameDoesNotExist
    );
    let c = s
        .join_game(
            "b",
            false,
            "none",
            JoinMode::CreateIfNotExists,
            &[],
            opts(4),
            now,
        )
        .unwrap();
    assert_eq!(c.action, TicketAction::Create);
    assert_eq!(
        s.game("none").unwrap().state.max_players,
        4,
        "created with the create options"
    );
    let j = s
        .join_game(
            "c",
            false,
            "none",
            JoinMode::CreateIfNotExists,
            &[],
            opts(0),
            now,
        )
        .unwrap();
    assert_eq!(j.action, TicketAction::Join);
    assert_eq!(
        code(s.join_game("b", false, "live", JoinMode::RejoinOnly, &[], opts(0), now)),
        ResultCode::JoinFailedWithRejoinerNotFound
    );
    assert_eq!(
        s.join_game("a", false, "live", JoinMode::RejoinOnly, &[], opts(0), now)
            .unwrap()
            .action,
        TicketAction::Join
    );
    assert_eq!(
        code(s.join_game(
            "a",
            false,
            "nowhere",
            JoinMode::RejoinOrJoin,
            &[],
            opts(0),
            now
        )),
        ResultCode::GameDoesNotExist
    );
}

#[test]
fn closed_and_offline_games_refuse_joins() {
    let now = Instant::now();
    let mut s = state();
    let mut closed = game("closed", Lobby::default(), &["a"], 0, &[]);
    closed.is_open = false;
    register(
        &mut s,
        "gs1",
        1,
        vec![closed, game("open", Lobby::default(), &["a"], 0, &[])],
    );
    assert_eq!(
        code(s.join_game("b", false, "closed", JoinMode::JoinOnly, &[], opts(0), now)),
        ResultCode::GameClosed
    );
    s.update_load(
        "gs1",
        LoadReport {
            state: ServerState::Offline,
            ..LoadReport::default()
        },
    );
    assert_eq!(
        code(s.join_game("b", false, "open", JoinMode::JoinOnly, &[], opts(0), now)),
        ResultCode::GameServerUnavailable
    );
    assert!(
        s.join_lobby(1, Lobby::default()).is_empty(),
        "an offline server's games leave the lobby"
    );
}

fn reg(id: &str, address: &str, replace: bool) -> Register {
    Register {
        server_id: id.into(),
        address: address.into(),
        secret: String::new(),
        priority: 0,
        replace,
    }
}

#[test]
fn a_silent_server_gets_no_new_games_and_no_joins_until_it_reports_again() {
    let t0 = Instant::now();
    let mut s = state();
    s.register(&reg("quiet", "q:1", false), 1, t0).unwrap();
    s.reconcile("quiet", &[game("old", Lobby::default(), &["a"], 4, &[])]);
    s.register(&reg("busy", "b:1", false), 2, t0).unwrap();
    // Both report for two seconds; then only "busy" does.
    let t2 = t0 + Duration::from_secs(2);
    assert!(!s.heard_from("quiet", 1, t2));
    let t4 = t0 + Duration::from_millis(4500);
    assert!(!s.heard_from("busy", 2, t4));
    assert!(
        !s.heard_from("busy", 1, t4),
        "a message on another link is not a report"
    );
    // 2.5 s of silence is within the 3 s timeout; 3.5 s is not.
    assert!(s.routable("quiet", t4 - Duration::from_secs(1)));
    assert!(!s.routable("quiet", t4 + Duration::from_secs(1)));
    let t = t4 + Duration::from_secs(1);
    for i in 0..20 {
        let a = s
            .create_game("x", false, Some(format!("new{i}")), opts(0), &[], t)
            .unwrap();
        assert_eq!(
            a.placement.server, "busy",
            "no new game goes to a silent server"
        );
    }
    assert_eq!(
        code(s.join_game("b", false, "old", JoinMode::JoinOnly, &[], opts(0), t)),
        ResultCode::GameServerUnavailable
    );
    assert_eq!(
        code(s.join_game("a", false, "old", JoinMode::RejoinOnly, &[], opts(0), t)),
        ResultCode::GameServerUnavailable,
        "not even a rejoin"
    );
    let q = JoinRandom {
        expected_max_players: 4,
        ..random(Lobby::default())
    };
    assert_eq!(
        code(s.join_random("b", false, &q, t)),
        ResultCode::NoMatchFound
    );
    // The incident is reported once; its games stay listed until the link TTL.
    assert_eq!(s.silent_servers(t), vec!["quiet".to_string()]);
    assert!(s.silent_servers(t).is_empty());
    assert!(
        s.join_lobby(7, Lobby::default())
            .iter()
            .any(|g| g.game == "old")
    );
    // It reports again: back in rotation.
    assert!(s.heard_from("quiet", 1, t));
    assert!(!s.heard_from("quiet", 1, t));
    assert_eq!(
        s.join_random("b", false, &q, t).unwrap().game,
        "old",
        "joinable again"
    );
}

#[test]
fn a_server_id_belongs_to_one_live_server() {
    let t0 = Instant::now();
    let mut s = state();
    assert_eq!(
        s.register(&reg("gs", "a:1", false), 1, t0)
            .unwrap()
            .displaced,
        None
    );
    // Another address while the first reports: refused, unless asked to replace.
    let e = s.register(&reg("gs", "b:1", false), 2, t0).unwrap_err();
    assert_eq!(e.result_code(), Some(ResultCode::ServerIdInUse));
    assert!(e.message.contains("a:1"), "{}", e.message);
    assert_eq!(
        s.server("gs").unwrap().address,
        "a:1",
        "the first one keeps it"
    );
    assert_eq!(s.server("gs").unwrap().link, Some(1));
    let r = s.register(&reg("gs", "b:1", true), 3, t0).unwrap();
    assert_eq!(
        r.displaced,
        Some(1),
        "the operator's choice displaces the first"
    );
    assert_eq!(s.server("gs").unwrap().address, "b:1");
    // The same address is the same server coming back: its old link gives way.
    let r = s.register(&reg("gs", "b:1", false), 4, t0).unwrap();
    assert_eq!(r.displaced, Some(3));
    // A server silent past the report timeout does not hold its id.
    let later = t0 + Duration::from_secs(4);
    let r = s.register(&reg("gs", "c:1", false), 5, later).unwrap();
    assert_eq!(r.displaced, Some(4));
    // An old link's end does not touch the new registration.
    assert!(!s.link_lost("gs", 4, later));
    assert_eq!(s.server("gs").unwrap().link, Some(5));
}

#[test]
fn snapshots_reconcile_and_digests_compare_the_views() {
    let t0 = Instant::now();
    let mut s = state();
    let a = game("a", Lobby::default(), &["x"], 4, &[]);
    let b = game("b", Lobby::default(), &["y"], 4, &[]);
    s.register(&reg("gs", "gs:1", false), 1, t0).unwrap();
    let r = s.reconcile("gs", &[a.clone(), b.clone()]);
    assert_eq!((r.dropped, r.changed), (0, 2));
    assert_eq!(s.digest_of("gs"), games_digest([&a, &b]));
    // A joiner on its way and a reservation the game server has not confirmed yet do not
    // make the views differ.
    s.join_game(
        "z",
        false,
        "a",
        JoinMode::JoinOnly,
        &["w".into()],
        opts(0),
        t0,
    )
    .unwrap();
    s.create_game("x", false, Some("reserved".into()), opts(0), &[], t0)
        .unwrap();
    assert_eq!(s.digest_of("gs"), games_digest([&a, &b]));
    // A lost update: the game server has b changed and c, and no a.
    let mut b2 = b.clone();
    b2.users.push("v".into());
    let c = game("c", Lobby::default(), &[], 0, &[]);
    assert_ne!(s.digest_of("gs"), games_digest([&b2, &c]));
    let r = s.reconcile("gs", &[b2.clone(), c.clone()]);
    assert_eq!((r.dropped, r.changed), (1, 2));
    assert_eq!(
        s.digest_of("gs"),
        games_digest([&c, &b2]),
        "order does not matter"
    );
    assert!(
        s.game("reserved").is_some(),
        "reservations survive a snapshot"
    );
    assert!(!s.reconcile("gs", &[b2, c]).any(), "nothing left to change");
}

#[test]
fn a_game_the_server_does_not_host_is_dropped_on_its_word() {
    let t0 = Instant::now();
    let mut s = state();
    register(
        &mut s,
        "gs1",
        1,
        vec![game("g", Lobby::default(), &["x"], 0, &[])],
    );
    register(
        &mut s,
        "gs2",
        2,
        vec![game("h", Lobby::default(), &["y"], 0, &[])],
    );
    s.create_game("x", false, Some("on-its-way".into()), opts(0), &[], t0)
        .unwrap();
    assert!(!s.game_unknown("gs2", "g"), "another server cannot drop it");
    assert!(!s.game_unknown("gs1", "on-its-way") && !s.game_unknown("gs2", "on-its-way"));
    assert!(s.game("on-its-way").is_some(), "a reservation is not stale");
    assert!(s.game_unknown("gs1", "g"));
    assert!(s.game("g").is_none());
    assert_eq!(
        code(s.join_game("b", false, "g", JoinMode::JoinOnly, &[], opts(0), t0)),
        ResultCode::GameDoesNotExist
    );
}

#[test]
fn placement_skips_weight_zero_and_servers_not_in_rotation() {
    let now = Instant::now();
    let mut s = state();
    register(&mut s, "busy", 1, vec![]);
    register(&mut s, "resting", 2, vec![]);
    register(&mut s, "ok", 3, vec![]);
    s.update_load(
        "busy",
        LoadReport {
            level: 9,
            ..LoadReport::default()
        },
    );
    s.update_load(
        "resting",
        LoadReport {
            state: ServerState::OutOfRotation,
            ..LoadReport::default()
        },
    );
    for i in 0..200 {
        let a = s
            .create_game("u", false, Some(format!("g{i}")), opts(0), &[], now)
            .unwrap();
        assert_eq!(a.placement.server, "ok");
    }
    s.update_load(
        "ok",
        LoadReport {
            level: 9,
            ..LoadReport::default()
        },
    );
    assert_eq!(
        code(s.create_game("u", false, None, opts(0), &[], now)),
        ResultCode::ServerFull
    );
}

#[test]
fn load_prediction_counts_the_players_sent() {
    let now = Instant::now();
    let mut settings = Settings::default();
    settings.load_balancer.predict_load = true;
    settings.load_balancer.reserve_ratio = 0.0;
    // Level 9 (weight 0) from the 10th player on.
    settings.peer_levels = vec![1, 2, 3, 4, 5, 6, 7, 8, 9];
    settings.max_reservations_per_user = 0;
    let mut s = MasterState::new(settings, Some(1));
    register(&mut s, "solo", 1, vec![]);
    // 10 players sent: above the 9th threshold, level 9.
    for i in 0..10 {
        s.create_game("u", false, Some(format!("g{i}")), opts(0), &[], now)
            .unwrap();
    }
    assert_eq!(
        code(s.create_game("u", false, None, opts(0), &[], now)),
        ResultCode::ServerFull
    );
    // A report resets the prediction to what the server says.
    s.update_load(
        "solo",
        LoadReport {
            peers: 0,
            ..LoadReport::default()
        },
    );
    s.create_game("u", false, None, opts(0), &[], now).unwrap();
}

#[test]
fn join_random_fill_room_takes_the_oldest_joinable_match() {
    let now = Instant::now();
    let mut s = state();
    let l = Lobby::default();
    let eu = ("region", Value::Str("eu".into()));
    let us = ("region", Value::Str("us".into()));
    let mut hidden = game("hidden", l.clone(), &["x"], 0, std::slice::from_ref(&eu));
    hidden.is_visible = false;
    register(
        &mut s,
        "gs1",
        1,
        vec![
            hidden,
            game("full", l.clone(), &["x", "y"], 2, std::slice::from_ref(&eu)),
            game("us", l.clone(), &["x"], 0, std::slice::from_ref(&us)),
            game("eu-old", l.clone(), &["x"], 4, std::slice::from_ref(&eu)),
            game("eu-new", l.clone(), &["x"], 8, std::slice::from_ref(&eu)),
        ],
    );
    let mut q = random(l.clone());
    q.expected_properties
        .insert("region".into(), Value::Str("eu".into()));
    assert_eq!(s.join_random("u", false, &q, now).unwrap().game, "eu-old");
    q.expected_max_players = 8;
    assert_eq!(s.join_random("u2", false, &q, now).unwrap().game, "eu-new");
    q.expected_max_players = 3;
    assert_eq!(
        code(s.join_random("u3", false, &q, now)),
        ResultCode::NoMatchFound
    );
    let mut q = random(l.clone());
    q.expected_properties
        .insert("region".into(), Value::Str("mars".into()));
    assert_eq!(
        code(s.join_random("u", false, &q, now)),
        ResultCode::NoMatchFound
    );
    q.create_if_none = Some(CreateSpec {
        game: Some("mars-1".into()),
        options: opts(4),
    });
    let created = s.join_random("u", false, &q, now).unwrap();
    assert_eq!(
        (created.game.as_str(), created.action),
        ("mars-1", TicketAction::Create)
    );
    // A game the user already holds a place in is not matched again.
    let q = random(Lobby::new("empty", LobbyKind::Default));
    assert_eq!(
        code(s.join_random("u", false, &q, now)),
        ResultCode::NoMatchFound
    );
}

#[test]
fn serial_matching_cycles_and_random_matching_spreads() {
    let now = Instant::now();
    let mut s = state();
    let l = Lobby::default();
    let games: Vec<GameState> = (0..5)
        .map(|i| game(&format!("g{i}"), l.clone(), &["host"], 0, &[]))
        .collect();
    register(&mut s, "gs1", 1, games);
    let mut q = random(l.clone());
    q.mode = MatchmakingMode::SerialMatching;
    let picks: Vec<String> = (0..7)
        .map(|i| {
            s.join_random(&format!("p{i}"), false, &q, now)
                .unwrap()
                .game
        })
        .collect();
    assert_eq!(picks, ["g0", "g1", "g2", "g3", "g4", "g0", "g1"]);
    q.mode = MatchmakingMode::RandomMatching;
    let distinct: std::collections::HashSet<String> = (0..40)
        .map(|i| {
            s.join_random(&format!("r{i}"), false, &q, now)
                .unwrap()
                .game
        })
        .collect();
    assert!(
        distinct.len() >= 3,
        "random matching spreads over games: {distinct:?}"
    );
}

#[test]
fn sql_lobbies_filter_and_default_lobbies_refuse_filters() {
    let now = Instant::now();
    let mut s = state();
    let sql = Lobby::new("ranked", LobbyKind::Sql);
    register(
        &mut s,
        "gs1",
        1,
        vec![
            game(
                "low",
                sql.clone(),
                &["x"],
                0,
                &[("C0", Value::Str("eu".into())), ("C1", Value::Int(5))],
            ),
            game(
                "high",
                sql.clone(),
                &["x"],
                0,
                &[("C0", Value::Str("eu".into())), ("C1", Value::Int(50))],
            ),
        ],
    );
    let mut q = random(sql.clone());
    q.sql_filter = r#"C0 = "eu" AND C1 > 10"#.into();
    assert_eq!(s.join_random("u", false, &q, now).unwrap().game, "high");
    q.sql_filter = "C1 >".into();
    assert_eq!(
        code(s.join_random("u", false, &q, now)),
        ResultCode::InvalidRequestParameters
    );
    let mut q = random(Lobby::default());
    q.sql_filter = "C0 = 1".into();
    assert_eq!(
        code(s.join_random("u", false, &q, now)),
        ResultCode::InvalidRequestParameters
    );
}

#[test]
fn game_lists_start_full_and_then_carry_only_changes() {
    let now = Instant::now();
    let mut s = state();
    let l = Lobby::default();
    let mut invisible = game("invisible", l.clone(), &["x"], 0, &[]);
    invisible.is_visible = false;
    register(
        &mut s,
        "gs1",
        1,
        vec![
            game(
                "a",
                l.clone(),
                &["x"],
                4,
                &[("map", Value::Str("dust".into()))],
            ),
            game("b", l.clone(), &["y"], 0, &[]),
            game(
                "other-lobby",
                Lobby::new("x", LobbyKind::Default),
                &["z"],
                0,
                &[],
            ),
            invisible,
        ],
    );
    s.tick(now);
    let list = s.join_lobby(10, l.clone());
    let names: Vec<&str> = list.iter().map(|e| e.game.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(list[0].player_count, 1);
    assert_eq!(
        list[0].properties.get("map"),
        Some(&Value::Str("dust".into()))
    );
    assert!(s.tick(now).is_empty(), "nothing changed");
    // One game changes, one ends.
    s.update_game("gs1", game("a", l.clone(), &["x", "w"], 4, &[]));
    s.remove_game("gs1", "b");
    let updates = s.tick(now);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].subscribers, vec![10]);
    let by_name: BTreeMap<&str, &switchboard_protocol::GameListEntry> = updates[0]
        .games
        .iter()
        .map(|e| (e.game.as_str(), e))
        .collect();
    assert_eq!(by_name.len(), 2);
    assert_eq!(by_name["a"].player_count, 2);
    assert!(by_name["b"].removed);
    // Hiding a game is a removal from the list.
    let mut hidden = game("a", l.clone(), &["x"], 4, &[]);
    hidden.is_visible = false;
    s.update_game("gs1", hidden);
    assert!(s.tick(now)[0].games[0].removed);
    assert!(s.leave_lobby(10));
    assert!(!s.leave_lobby(10));
}

#[test]
fn game_lists_are_capped() {
    let settings = Settings {
        game_list_limit: 3,
        ..Settings::default()
    };
    let mut s = MasterState::new(settings, Some(1));
    let games = (0..10)
        .map(|i| game(&format!("g{i}"), Lobby::default(), &["x"], 0, &[]))
        .collect();
    register(&mut s, "gs1", 1, games);
    assert_eq!(s.join_lobby(1, Lobby::default()).len(), 3);
}

#[test]
fn reregistration_reconciles_and_the_link_ttl_keeps_context() {
    let now = Instant::now();
    let mut s = state();
    let l = Lobby::default();
    register(
        &mut s,
        "gs1",
        1,
        vec![game("old", l.clone(), &["a"], 0, &[])],
    );
    s.create_game("b", false, Some("pending".into()), opts(0), &[], now)
        .unwrap();
    assert!(s.link_lost("gs1", 1, now));
    // Within the TTL the games stay; the server takes no new games.
    s.tick(now + Duration::from_secs(10));
    assert!(s.game("old").is_some());
    assert_eq!(
        code(s.create_game("c", false, None, opts(0), &[], now)),
        ResultCode::ServerFull
    );
    // Re-attach with what exists now: "old" ended meanwhile, "new" was created.
    register(
        &mut s,
        "gs1",
        2,
        vec![game("new", l.clone(), &["a"], 0, &[])],
    );
    assert!(s.game("old").is_none());
    assert!(s.game("new").is_some());
    assert!(
        s.game("pending").is_some(),
        "an unconfirmed reservation is kept"
    );
    assert!(
        !s.link_lost("gs1", 1, now),
        "the old link's end changes nothing"
    );
    // Past the TTL the server and its games are gone.
    assert!(s.link_lost("gs1", 2, now));
    s.tick(now + s.settings().link_ttl);
    assert_eq!(s.server_count(), 0);
    assert!(s.game("new").is_none());
}

#[test]
fn a_name_stays_with_its_first_owner() {
    let mut s = state();
    register(
        &mut s,
        "a",
        1,
        vec![game("g", Lobby::default(), &["x"], 0, &[])],
    );
    register(&mut s, "b", 2, vec![]);
    assert!(!s.update_game("b", game("g", Lobby::default(), &["y"], 0, &[])));
    s.remove_game("b", "g");
    assert_eq!(s.game("g").unwrap().server, "a");
    assert!(!s.update_game("nobody", game("x", Lobby::default(), &[], 0, &[])));
}

#[test]
fn friends_stats_and_app_stats() {
    let mut s = state();
    register(
        &mut s,
        "gs1",
        1,
        vec![game("g", Lobby::default(), &["ann", "bob"], 0, &[])],
    );
    s.user_online("cat");
    let f = s.find_friends(&["ann".into(), "cat".into(), "dan".into()]);
    assert_eq!((f[0].online, f[0].game.as_deref()), (true, Some("g")));
    assert_eq!((f[1].online, f[1].game.as_deref()), (true, None));
    assert_eq!((f[2].online, f[2].game.as_deref()), (false, None));
    s.peer_gone(99, Some("cat"));
    assert!(!s.find_friends(&["cat".into()])[0].online);
    s.join_lobby(5, Lobby::default());
    let stats = s.lobby_stats();
    assert_eq!((stats[0].peers, stats[0].games), (1, 1));
    assert_eq!(s.app_stats(), (2, 1));
}

#[test]
fn property_limits_are_enforced() {
    let now = Instant::now();
    let mut s = state();
    register(&mut s, "gs1", 1, vec![]);
    let mut big = opts(0);
    big.properties
        .insert("blob".into(), Value::Bytes(vec![0; 60_000].into()));
    assert_eq!(
        code(s.create_game("u", false, None, big, &[], now)),
        ResultCode::OperationLimitReached
    );
    let too_many: Vec<String> = (0..65).map(|i| format!("u{i}")).collect();
    assert_eq!(
        code(s.create_game("u", false, None, opts(0), &too_many, now)),
        ResultCode::InvalidRequestParameters
    );
}

/// The indexes never disagree with a plain scan: random games and updates, then every
/// FillRoom query is compared with the oldest matching game found by brute force.
#[test]
fn indexes_agree_with_a_full_scan() {
    use rand::{Rng, SeedableRng};
    let now = Instant::now();
    let mut s = state();
    register(&mut s, "gs1", 1, vec![]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let lobby = Lobby::default();
    let mut model: BTreeMap<String, (u64, GameState)> = BTreeMap::new();
    let mut order = 0;
    for step in 0..3000 {
        let name = format!("g{}", rng.random_range(0..60));
        if rng.random_bool(0.15) {
            s.remove_game("gs1", &name);
            model.remove(&name);
            continue;
        }
        let users: Vec<String> = (0..rng.random_range(0..4))
            .map(|i| format!("{name}-u{i}"))
            .collect();
        let mut st = game(
            &name,
            lobby.clone(),
            &[],
            rng.random_range(0..4),
            &[("k", Value::Int(rng.random_range(0..3)))],
        );
        st.users = users;
        st.is_open = rng.random_bool(0.8);
        st.is_visible = rng.random_bool(0.9);
        s.update_game("gs1", st.clone());
        let seq = model.get(&name).map(|(seq, _)| *seq).unwrap_or_else(|| {
            order += 1;
            order
        });
        model.insert(name, (seq, st));
        if step % 10 == 0 {
            let k = rng.random_range(0..3);
            let mut q = random(lobby.clone());
            q.expected_properties.insert("k".into(), Value::Int(k));
            let expected = model
                .values()
                .filter(|(_, g)| {
                    g.is_open
                        && g.is_visible
                        && (g.max_players == 0 || (g.users.len() as u32) < g.max_players)
                        && g.lobby_properties.get("k") == Some(&Value::Int(k))
                })
                .min_by_key(|(seq, _)| *seq)
                .map(|(_, g)| g.game.clone());
            // A fresh user each time, and undo the admission so the model stays exact.
            let user = format!("probe{step}");
            let got = s.join_random(&user, false, &q, now).ok().map(|a| a.game);
            assert_eq!(got, expected, "step {step}");
            if let Some(g) = got {
                let st = model[&g].1.clone();
                s.update_game("gs1", st);
                s.tick(now + s.settings().joining_ttl);
            }
        }
    }
}

#[test]
fn a_late_subscriber_gets_only_changes_after_its_list() {
    let now = Instant::now();
    let mut s = state();
    let l = Lobby::default();
    register(&mut s, "gs1", 1, vec![game("a", l.clone(), &["x"], 0, &[])]);
    s.tick(now);
    s.join_lobby(1, l.clone());
    // "b" appears; then subscriber 2 joins (its list already has "b"); then "c" appears.
    s.update_game("gs1", game("b", l.clone(), &["y"], 0, &[]));
    let list = s.join_lobby(2, l.clone());
    assert_eq!(list.len(), 2);
    s.update_game("gs1", game("c", l.clone(), &["z"], 0, &[]));
    let updates = s.tick(now);
    let for_peer = |p: u64| -> Vec<String> {
        let u = updates.iter().find(|u| u.subscribers.contains(&p)).unwrap();
        u.games.iter().map(|g| g.game.clone()).collect()
    };
    assert_eq!(for_peer(1), ["b", "c"]);
    assert_eq!(for_peer(2), ["c"]);
}

#[test]
fn an_offline_server_that_disconnects_takes_its_games_along() {
    let now = Instant::now();
    let mut s = state();
    register(
        &mut s,
        "gs1",
        1,
        vec![game("g", Lobby::default(), &["a"], 0, &[])],
    );
    s.update_load(
        "gs1",
        LoadReport {
            state: ServerState::Offline,
            ..LoadReport::default()
        },
    );
    assert!(s.link_lost("gs1", 1, now));
    assert!(s.game("g").is_none());
    assert_eq!(
        s.server("gs1").unwrap().load.state,
        ServerState::Offline,
        "still shown until the TTL"
    );
}

#[test]
fn a_user_holds_a_few_reservations_and_they_expire_with_the_ticket() {
    let t0 = Instant::now();
    let settings = Settings {
        max_reservations_per_user: 3,
        ..Settings::default()
    };
    let ttl = settings.joining_ttl;
    let mut s = MasterState::new(settings, Some(7));
    register(
        &mut s,
        "gs1",
        1,
        vec![game("open", Lobby::default(), &["a"], 0, &[])],
    );
    for i in 0..3 {
        s.create_game("greedy", false, Some(format!("r{i}")), opts(0), &[], t0)
            .unwrap();
    }
    assert_eq!(
        code(s.create_game("greedy", false, None, opts(0), &[], t0)),
        ResultCode::TooManyReservations
    );
    assert_eq!(
        code(s.join_game(
            "greedy",
            false,
            "open",
            JoinMode::JoinOnly,
            &[],
            opts(0),
            t0
        )),
        ResultCode::TooManyReservations
    );
    assert_eq!(
        code(s.join_random("greedy", false, &random(Lobby::default()), t0)),
        ResultCode::TooManyReservations
    );
    // Others are not affected, and the flood did not fill the load balancer's view.
    for i in 0..10 {
        s.create_game(&format!("honest{i}"), false, None, opts(0), &[], t0)
            .unwrap();
    }
    // An arrival frees its reservation at once...
    s.update_game("gs1", game("r0", Lobby::default(), &["greedy"], 0, &[]));
    s.create_game("greedy", false, Some("r3".into()), opts(0), &[], t0)
        .unwrap();
    // ...and the others go with the ticket: their names are free again too.
    let later = t0 + ttl + Duration::from_secs(3);
    s.heard_from("gs1", 1, later);
    s.tick(later);
    assert!(s.game("r1").is_none(), "an unconfirmed reservation expired");
    s.create_game("greedy", false, Some("r1".into()), opts(0), &[], later)
        .unwrap();
}

#[test]
fn limits_apply_to_what_was_sent_and_hash_keys_are_the_servers() {
    let now = Instant::now();
    let mut s = state();
    register(&mut s, "gs1", 1, vec![]);
    let lobby = Lobby::new("sql", LobbyKind::Sql);
    let padded = JoinRandom {
        lobby: lobby.clone(),
        sql_filter: format!("C0 = 1{}", " ".repeat(1024 - 6 + 1)),
        ..JoinRandom::default()
    };
    assert_eq!(padded.sql_filter.len(), 1025);
    assert_eq!(
        code(s.join_random("a", false, &padded, now)),
        ResultCode::InvalidRequestParameters,
        "1,025 bytes with spaces is over the 1,024-byte limit"
    );
    let fits = JoinRandom {
        sql_filter: format!("C0 = 1{}", " ".repeat(1024 - 6)),
        ..padded
    };
    assert_eq!(
        code(s.join_random("a", false, &fits, now)),
        ResultCode::NoMatchFound
    );
    let mut hashed = opts(0);
    hashed
        .properties
        .insert("#user_id".into(), Value::Str("x".into()));
    assert_eq!(
        code(s.create_game("a", false, None, hashed, &[], now)),
        ResultCode::InvalidRequestParameters
    );
    let mut expect_hashed = random(Lobby::default());
    expect_hashed
        .expected_properties
        .insert("#x".into(), Value::Int(1));
    assert_eq!(
        code(s.join_random("a", false, &expect_hashed, now)),
        ResultCode::InvalidRequestParameters
    );
}
