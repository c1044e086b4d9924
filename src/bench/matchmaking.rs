//! `matchmaking`: M listed games, C clients doing JoinRandomGame on the master
//! (operations per second and p99); against C clients doing request/echo round trips of the
//! same size and framing with a bare quinn server. Given several game counts, it measures
//! each in turn (its own lobby, its own baseline), so the curve shows how the master's
//! cost grows with the games it lists.
//!
//! The answers place the player from the first second to the last and at every game
//! count: the listed games take any number of players, and each client takes turns among
//! many users (`--users-per-client`; a user already on its way to a game is not matched
//! there again, so one user would run out of games), spread over the games by random
//! matching. With rooms of 8 the games filled within the run, more or less quickly
//! depending on their number, and the figure measured how fast they filled as much as
//! the master.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use switchboard_client::Client;
use switchboard_protocol::{
    JoinRandom, Lobby, LobbyKind, MasterOp, MatchmakingMode, ResultCode, RoomOptions, Value,
    encode_frame,
};

/// Matches that found a game, in the first and the second half of the run.
static MATCHED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Operations, in the first and the second half of the run.
static OPERATIONS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::baseline::{BaselineServer, Kind, baseline_frame, connect_baseline};
use super::{Latency, Report, Row, Target, histogram, progress};

/// Flags of `bench matchmaking`.
#[derive(Debug, Clone, Args)]
pub struct MatchmakingArgs {
    /// Listed games; several, comma-separated (`1000,10000,100000`), measure each.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub games: Vec<usize>,
    /// Clients matching at once.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of matching.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Percent of the operations that are CreateGame (the rest are JoinRandomGame).
    #[arg(long, default_value_t = 10)]
    pub create_percent: usize,
    /// Users (connections) each client takes turns among, one operation at a time.
    #[arg(long, default_value_t = 64)]
    pub users_per_client: usize,
}

/// A listed game: any number of players (it never fills during a run), a lobby-listed
/// property, in the run's own lobby.
fn listed_options(lobby: &Lobby) -> RoomOptions {
    let mut o = RoomOptions {
        max_players: 0,
        lobby: lobby.clone(),
        ..RoomOptions::default()
    };
    o.properties.insert("mode".into(), Value::Int(1));
    o.lobby_properties.push("mode".into());
    o
}

/// A random match by the lobby-listed property (every listed game has it: the search
/// goes through its posting list).
fn query(lobby: &Lobby) -> JoinRandom {
    let mut q = JoinRandom {
        lobby: lobby.clone(),
        mode: MatchmakingMode::RandomMatching,
        ..JoinRandom::default()
    };
    q.expected_properties.insert("mode".into(), Value::Int(1));
    q
}

/// Creates `n` listed games in `lobby` that outlive their creators for 60 s
/// (EmptyRoomTtl).
async fn list_games(target: &Target, n: usize, lobby: &Lobby, quiet: bool) -> anyhow::Result<()> {
    let bar = progress(n as u64, "listing games", quiet);
    let workers = 16.min(n.max(1));
    let nonce: u32 = rand::random();
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (endpoint, config, master, bar, lobby) = (
            target.endpoint(w),
            target.client_config(),
            target.master.clone(),
            bar.clone(),
            lobby.clone(),
        );
        set.spawn(async move {
            let mut c = Client::connect_on(endpoint, &master, config).await?;
            c.authenticate(&format!("lister-{w}"), "").await?;
            for i in (w..n).step_by(workers) {
                let o = RoomOptions {
                    empty_room_ttl_ms: 60_000,
                    ..listed_options(&lobby)
                };
                // Bulk creation outruns the once-a-second load report: the master's load
                // prediction then answers ServerFull until the next report. Retry, as a
                // client should.
                let room = loop {
                    match c
                        .create_game(Some(&format!("mm-{nonce:08x}-{i}")), o.clone())
                        .await
                    {
                        Ok(room) => break room,
                        Err(e) if e.result_code() == Some(ResultCode::ServerFull) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                room.leave().await?;
                bar.inc(1);
            }
            c.disconnect();
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    bar.finish_and_clear();
    Ok(())
}

/// The scenario: each game count in turn.
pub async fn run(target: &Target, a: &MatchmakingArgs, quiet: bool) -> anyhow::Result<Report> {
    let mut rows = Vec::new();
    for &games in &a.games {
        rows.extend(measure(target, a, games, quiet).await?);
    }
    let counts: Vec<String> = a.games.iter().map(usize::to_string).collect();
    Ok(Report {
        scenario: format!(
            "matchmaking: {} listed games, {} clients doing JoinRandomGame (random matching by a lobby property, each by a new user) and CreateGame ({} %) for {} s",
            counts.join(" / "),
            a.clients,
            a.create_percent,
            a.seconds
        ),
        baseline: "bare quinn request/echo, same request size and framing".into(),
        reference: None,
        rounds: 1,
        rows,
    })
}

/// One game count: its rows, labelled with it.
async fn measure(
    target: &Target,
    a: &MatchmakingArgs,
    games: usize,
    quiet: bool,
) -> anyhow::Result<Vec<Row>> {
    let nonce: u32 = rand::random();
    let lobby = Lobby::new(format!("mm-{nonce:08x}"), LobbyKind::Default);
    list_games(target, games, &lobby, quiet).await?;
    for c in MATCHED.iter().chain(&OPERATIONS) {
        c.store(0, Ordering::Relaxed);
    }
    let window = Duration::from_secs_f64(a.seconds);
    // Switchboard: JoinRandomGame on the master (the redirect, not the hop to the room).
    let mut set = JoinSet::new();
    let start = Arc::new(Semaphore::new(0));
    for w in 0..a.clients {
        let (endpoint, config, master, start) = (
            target.endpoint(w),
            target.client_config(),
            target.master.clone(),
            start.clone(),
        );
        let create_percent = a.create_percent.min(100);
        let (lobby, users) = (lobby.clone(), a.users_per_client.max(1));
        set.spawn(async move {
            let mut pool = Vec::with_capacity(users);
            for u in 0..users {
                let mut c = Client::connect_on(endpoint.clone(), &master, config.clone()).await?;
                c.authenticate(&format!("matcher-{nonce:08x}-{w}-{u}"), "")
                    .await?;
                pool.push(c);
            }
            let _go = start.acquire().await;
            let mut h = histogram();
            let t0 = Instant::now();
            let (mut i, mut matched, mut ops) = (w, [0u64; 2], [0u64; 2]);
            while t0.elapsed() < window {
                let half = usize::from(t0.elapsed() >= window / 2);
                let t = Instant::now();
                // A share of the operations create games (the master reserves the name and
                // places it); the rest join random ones.
                let op = if (i % 100) < create_percent {
                    MasterOp::CreateGame {
                        game: None,
                        options: listed_options(&lobby),
                        expected_users: vec![],
                    }
                } else {
                    MasterOp::JoinRandomGame(query(&lobby))
                };
                let c = &pool[i % users];
                // NoMatchFound is an answer too (once every game is full for this user);
                // ServerFull is the load prediction holding creations back until the next
                // load report.
                ops[half] += 1;
                match c.redirect(op).await {
                    Ok(_) => matched[half] += 1,
                    Err(e)
                        if matches!(
                            e.result_code(),
                            Some(ResultCode::NoMatchFound | ResultCode::ServerFull)
                        ) => {}
                    Err(e) => return Err(e.into()),
                }
                let _ = h.record((t.elapsed().as_micros() as u64).max(1));
                i += 1;
            }
            for c in &pool {
                c.disconnect();
            }
            for h in 0..2 {
                MATCHED[h].fetch_add(matched[h], Ordering::Relaxed);
                OPERATIONS[h].fetch_add(ops[h], Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(h)
        });
    }
    let bar = progress(a.seconds.ceil() as u64, "switchboard matchmaking", quiet);
    start.add_permits(a.clients);
    let (sb_rate, sb) = gather(&mut set, a.seconds, &bar).await?;
    let share = |h: usize| {
        MATCHED[h].load(Ordering::Relaxed) as f64
            / OPERATIONS[h].load(Ordering::Relaxed).max(1) as f64
            * 100.0
    };
    let label = |what: &str| format!("{what}, {games} games");
    let mut rows = vec![
        Row::alone(label("operations per second"), sb_rate, "/s"),
        Row::alone(label("latency p50"), sb.p50_ms, "ms"),
        Row::alone(label("latency p99"), sb.p99_ms, "ms"),
    ];
    if let Some(tls) = &target.tls_dir {
        let server = BaselineServer::start(Kind::Echo, tls)?;
        // The same request bytes Switchboard's client sends.
        let request = encode_frame(&switchboard_protocol::ClientToMaster::Request {
            id: 1,
            op: MasterOp::JoinRandomGame(query(&lobby)),
        });
        let body = request.slice(4..);
        let mut set = JoinSet::new();
        let start = Arc::new(Semaphore::new(0));
        // As many connections as Switchboard's clients had users, taken in turns the
        // same way.
        let users = a.users_per_client.max(1);
        for w in 0..a.clients {
            let mut pool = Vec::with_capacity(users);
            for _ in 0..users {
                let conn =
                    connect_baseline(&target.endpoint(w), &target.trust, &server.addr).await?;
                let (send, recv) = conn.open_bi().await?;
                pool.push((conn, send, recv));
            }
            let (start, body) = (start.clone(), body.clone());
            set.spawn(async move {
                let _go = start.acquire().await;
                let mut h = histogram();
                let mut buf = vec![0u8; body.len() + 4];
                let t0 = Instant::now();
                let mut i = 0;
                while t0.elapsed() < window {
                    let t = Instant::now();
                    let (_, send, recv) = &mut pool[i % users];
                    send.write_all(&baseline_frame(&body)).await?;
                    recv.read_exact(&mut buf).await?;
                    let _ = h.record((t.elapsed().as_micros() as u64).max(1));
                    i += 1;
                }
                for (conn, _, _) in &pool {
                    conn.close(0u32.into(), b"done");
                }
                Ok::<_, anyhow::Error>(h)
            });
        }
        let bar = progress(a.seconds.ceil() as u64, "baseline echo", quiet);
        start.add_permits(a.clients);
        let (b_rate, b) = gather(&mut set, a.seconds, &bar).await?;
        rows = vec![
            Row::vs(label("operations per second"), sb_rate, b_rate, "/s"),
            Row::vs(label("latency p50"), sb.p50_ms, b.p50_ms, "ms"),
            Row::vs(label("latency p99"), sb.p99_ms, b.p99_ms, "ms"),
        ];
    }
    rows.push(Row::alone(
        label("placed, first half of the run"),
        share(0),
        "%",
    ));
    rows.push(Row::alone(
        label("placed, second half of the run"),
        share(1),
        "%",
    ));
    Ok(rows)
}

async fn gather(
    set: &mut JoinSet<anyhow::Result<hdrhistogram::Histogram<u64>>>,
    seconds: f64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(f64, Latency)> {
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                bar.inc(1);
            }
        })
    };
    let mut all = histogram();
    while let Some(r) = set.join_next().await {
        let _ = all.add(&r??);
    }
    ticker.abort();
    bar.finish_and_clear();
    Ok((all.len() as f64 / seconds, Latency::of(&all)))
}
