//! JoinRandomGame over 10k and 100k listed games, with the baseline measured in the same
//! run: a plain scan over every game applying the same predicate (what the lobby indexes
//! avoid). Prints the ratio baseline / indexed after the criterion output.
//!
//! Games: 8 regions as a lobby-listed property, and a mode: 0..3 for the older 99 % of
//! games, 9 (a newly launched mode) for the newest 1 %. Max 8 players, 90 % full. The
//! queries look for the new mode in one region (a match exists only among the newest
//! games, the case where a scan walks almost everything), and for a mode no game has.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use switchboard_master::sql_filter;
use switchboard_master::state::{MasterState, Settings};
use switchboard_protocol::{GameState, JoinRandom, Lobby, LobbyKind, Properties, Register, Value};

const REGIONS: [&str; 8] = ["eu", "us", "asia", "sa", "oce", "af", "me", "ru"];

fn games(n: usize, lobby: &Lobby, sql: bool) -> Vec<GameState> {
    (0..n)
        .map(|i| {
            let region = REGIONS[i % 8];
            let mode = if i >= n - n / 100 {
                9
            } else {
                (i / 8 % 4) as i64
            };
            let mut props = Properties::new();
            let (k0, k1) = if sql {
                ("C0", "C1")
            } else {
                ("region", "mode")
            };
            props.insert(k0.into(), Value::Str(region.into()));
            props.insert(k1.into(), Value::Int(mode));
            let players = if i % 10 < 9 { 8 } else { 3 };
            GameState {
                game: format!("game-{i}"),
                lobby: lobby.clone(),
                max_players: 8,
                is_open: true,
                is_visible: true,
                lobby_properties: props,
                users: (0..players).map(|p| format!("g{i}-p{p}")).collect(),
                expected_users: vec![],
            }
        })
        .collect()
}

/// The one instant the bench's master lives at: its game server reported then, so it
/// counts as reporting however long the bench runs.
fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn state(games: Vec<GameState>) -> MasterState {
    let mut s = MasterState::new(Settings::default(), Some(1));
    let reg = Register {
        server_id: "gs".into(),
        address: "gs:1".into(),
        secret: String::new(),
        priority: 0,
        replace: false,
    };
    s.register(&reg, 1, t0()).expect("the first registration");
    s.reconcile("gs", &games);
    s
}

/// The baseline: every game checked in creation order, as a matchmaker without indexes.
fn scan(all: &[GameState], pred: &dyn Fn(&GameState) -> bool) -> Option<String> {
    all.iter()
        .find(|g| g.is_open && g.is_visible && (g.users.len() as u32) < g.max_players && pred(g))
        .map(|g| g.game.clone())
}

fn time(iters: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters
}

fn bench(c: &mut Criterion) {
    let mut ratios = Vec::new();
    let mut admits = Vec::new();
    for n in [10_000usize, 100_000] {
        // Expected properties in the default lobby: the new mode in one region.
        let lobby = Lobby::default();
        let all = games(n, &lobby, false);
        let mut s = state(all.clone());
        let mut q = JoinRandom {
            lobby: lobby.clone(),
            ..JoinRandom::default()
        };
        q.expected_properties
            .insert("region".into(), Value::Str("ru".into()));
        q.expected_properties.insert("mode".into(), Value::Int(9));
        let want = scan(&all, &|g| {
            g.lobby_properties.get("region") == Some(&Value::Str("ru".into()))
                && g.lobby_properties.get("mode") == Some(&Value::Int(9))
        });
        assert!(want.is_some());
        assert_eq!(
            s.find_random("bench", &q, t0()).unwrap(),
            want,
            "index and scan agree"
        );
        c.bench_function(&format!("join_random/properties/{n}"), |b| {
            b.iter(|| black_box(s.find_random("bench", &q, t0()).unwrap()))
        });
        let pred = |g: &GameState| {
            g.lobby_properties.get("region") == Some(&Value::Str("ru".into()))
                && g.lobby_properties.get("mode") == Some(&Value::Int(9))
        };
        c.bench_function(&format!("baseline_scan/properties/{n}"), |b| {
            b.iter(|| black_box(scan(&all, &pred)))
        });
        let indexed = time(200, || {
            black_box(s.find_random("bench", &q, t0()).unwrap());
        });
        let baseline = time(50, || {
            black_box(scan(&all, &pred));
        });
        ratios.push((format!("properties, {n} games"), indexed, baseline));

        // Admitting the player too, then taking the reservation back (the game server
        // refused it), so every iteration starts from the same state: the search plus
        // two index updates, against the search alone.
        let mut admit = || {
            let a = s.join_random("bench", false, &q, t0()).unwrap();
            assert!(s.join_refused("gs", &a.game, "bench"));
        };
        c.bench_function(&format!("join_random+admit+refused/properties/{n}"), |b| {
            b.iter(&mut admit)
        });
        let both = time(2000, &mut admit);
        let search = time(2000, || {
            black_box(s.find_random("bench", &q, t0()).unwrap());
        });
        admits.push((format!("properties, {n} games"), both, search));

        // No game has the mode asked for.
        let mut none = q.clone();
        none.expected_properties
            .insert("mode".into(), Value::Int(7));
        let pred_none = |g: &GameState| g.lobby_properties.get("mode") == Some(&Value::Int(7));
        assert_eq!(s.find_random("bench", &none, t0()).unwrap(), None);
        assert_eq!(scan(&all, &pred_none), None);
        c.bench_function(&format!("join_random/no_match/{n}"), |b| {
            b.iter(|| black_box(s.find_random("bench", &none, t0()).unwrap()))
        });
        let indexed = time(2000, || {
            black_box(s.find_random("bench", &none, t0()).unwrap());
        });
        let baseline = time(50, || {
            black_box(scan(&all, &pred_none));
        });
        ratios.push((format!("no match, {n} games"), indexed, baseline));

        // An SQL filter in an SQL lobby: the equality on C0 uses the index, the range on
        // C1 is evaluated on the joinable games of that region, oldest first.
        let sql = Lobby::new("sql", LobbyKind::Sql);
        let all = games(n, &sql, true);
        let mut s = state(all.clone());
        let q = JoinRandom {
            lobby: sql,
            sql_filter: r#"C0 = "ru" AND C1 > 8"#.into(),
            ..JoinRandom::default()
        };
        let filter = sql_filter::parse(&q.sql_filter).unwrap();
        let pred = |g: &GameState| filter.matches(&g.lobby_properties);
        assert_eq!(s.find_random("bench", &q, t0()).unwrap(), scan(&all, &pred));
        c.bench_function(&format!("join_random/sql/{n}"), |b| {
            b.iter(|| black_box(s.find_random("bench", &q, t0()).unwrap()))
        });
        c.bench_function(&format!("baseline_scan/sql/{n}"), |b| {
            b.iter(|| black_box(scan(&all, &pred)))
        });
        let indexed = time(200, || {
            black_box(s.find_random("bench", &q, t0()).unwrap());
        });
        let baseline = time(50, || {
            black_box(scan(&all, &pred));
        });
        ratios.push((format!("sql filter, {n} games"), indexed, baseline));
    }
    println!("\nJoinRandomGame: indexed search vs. plain scan, same run, same machine");
    println!(
        "{:<28} {:>12} {:>14} {:>8}",
        "case", "indexed", "baseline scan", "ratio"
    );
    for (case, indexed, baseline) in ratios {
        println!(
            "{case:<28} {:>12?} {:>14?} {:>7.0}x",
            indexed,
            baseline,
            baseline.as_secs_f64() / indexed.as_secs_f64()
        );
    }

    println!(
        "\nJoinRandomGame admitting the player (and the reservation taken back) vs. the search alone"
    );
    println!(
        "{:<28} {:>14} {:>12} {:>8}",
        "case", "admit+refused", "search", "ratio"
    );
    for (case, both, search) in admits {
        println!(
            "{case:<28} {:>14?} {:>12?} {:>7.2}x",
            both,
            search,
            both.as_secs_f64() / search.as_secs_f64()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
