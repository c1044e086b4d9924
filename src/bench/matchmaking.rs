//! `matchmaking`: M listed games, C clients doing JoinRandomGame on the master
//! (operations per second and p99); against C clients doing request/echo round trips of the
//! same size and framing with a bare quinn server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use switchboard_client::Client;
use switchboard_protocol::{JoinRandom, MasterOp, ResultCode, RoomOptions, Value, encode_frame};

/// Matches that found a game, over all matchers.
static MATCHED: AtomicU64 = AtomicU64::new(0);
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::baseline::{BaselineServer, Kind, baseline_frame, connect_baseline};
use super::{Latency, Report, Row, Target, histogram, progress};

/// Flags of `bench matchmaking`.
#[derive(Debug, Clone, Args)]
pub struct MatchmakingArgs {
    /// Listed games.
    #[arg(long, default_value_t = 10_000)]
    pub games: usize,
    /// Clients matching at once.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of matching.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Percent of the operations that are CreateGame (the rest are JoinRandomGame).
    #[arg(long, default_value_t = 10)]
    pub create_percent: usize,
}

fn created_options(i: usize) -> RoomOptions {
    let mut o = RoomOptions {
        max_players: 8,
        ..RoomOptions::default()
    };
    o.properties
        .insert("mode".into(), Value::Int((i % 4) as i64));
    o.lobby_properties.push("mode".into());
    o
}

fn query(i: usize) -> JoinRandom {
    let mut q = JoinRandom::default();
    q.expected_properties
        .insert("mode".into(), Value::Int((i % 4) as i64));
    q
}

/// Creates `n` listed games that outlive their creators for 60 s (EmptyRoomTtl).
async fn list_games(target: &Target, n: usize, quiet: bool) -> anyhow::Result<()> {
    let bar = progress(n as u64, "listing games", quiet);
    let workers = 16.min(n.max(1));
    let nonce: u32 = rand::random();
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (endpoint, config, master, bar) = (
            target.endpoint(w),
            target.client_config(),
            target.master.clone(),
            bar.clone(),
        );
        set.spawn(async move {
            let mut c = Client::connect_on(endpoint, &master, config).await?;
            c.authenticate(&format!("lister-{w}"), "").await?;
            for i in (w..n).step_by(workers) {
                let mut o = RoomOptions {
                    max_players: 8,
                    empty_room_ttl_ms: 60_000,
                    ..RoomOptions::default()
                };
                o.properties
                    .insert("mode".into(), Value::Int((i % 4) as i64));
                o.lobby_properties.push("mode".into());
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

/// The scenario.
pub async fn run(target: &Target, a: &MatchmakingArgs, quiet: bool) -> anyhow::Result<Report> {
    list_games(target, a.games, quiet).await?;
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
        set.spawn(async move {
            let mut c = Client::connect_on(endpoint, &master, config).await?;
            c.authenticate(&format!("matcher-{w}"), "").await?;
            let _go = start.acquire().await;
            let mut h = histogram();
            let t0 = Instant::now();
            let (mut i, mut matched) = (w, 0u64);
            while t0.elapsed() < window {
                let t = Instant::now();
                // A share of the operations create games (the master reserves the name and
                // places it); the rest join random ones.
                let op = if (i % 100) < create_percent {
                    MasterOp::CreateGame {
                        game: None,
                        options: created_options(i),
                        expected_users: vec![],
                    }
                } else {
                    MasterOp::JoinRandomGame(query(i))
                };
                // NoMatchFound is an answer too (once every game is full for this user);
                // ServerFull is the load prediction holding creations back until the next
                // load report.
                match c.redirect(op).await {
                    Ok(_) => matched += 1,
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
            c.disconnect();
            MATCHED.fetch_add(matched, Ordering::Relaxed);
            Ok::<_, anyhow::Error>(h)
        });
    }
    let bar = progress(a.seconds.ceil() as u64, "switchboard matchmaking", quiet);
    start.add_permits(a.clients);
    let (sb_rate, sb) = gather(&mut set, a.seconds, &bar).await?;
    let matched = MATCHED.load(Ordering::Relaxed) as f64 / sb.samples.max(1) as f64 * 100.0;
    let mut rows = vec![
        Row::alone("operations per second", sb_rate, "/s"),
        Row::alone("latency p50", sb.p50_ms, "ms"),
        Row::alone("latency p99", sb.p99_ms, "ms"),
    ];
    if let Some(tls) = &target.tls_dir {
        let server = BaselineServer::start(Kind::Echo, tls)?;
        // The same request bytes Switchboard's client sends.
        let request = encode_frame(&switchboard_protocol::ClientToMaster::Request {
            id: 1,
            op: MasterOp::JoinRandomGame(query(0)),
        });
        let body = request.slice(4..);
        let mut set = JoinSet::new();
        let start = Arc::new(Semaphore::new(0));
        for w in 0..a.clients {
            let conn = connect_baseline(&target.endpoint(w), &target.trust, &server.addr).await?;
            let (start, body) = (start.clone(), body.clone());
            set.spawn(async move {
                let (mut send, mut recv) = conn.open_bi().await?;
                let _go = start.acquire().await;
                let mut h = histogram();
                let mut buf = vec![0u8; body.len() + 4];
                let t0 = Instant::now();
                while t0.elapsed() < window {
                    let t = Instant::now();
                    send.write_all(&baseline_frame(&body)).await?;
                    recv.read_exact(&mut buf).await?;
                    let _ = h.record((t.elapsed().as_micros() as u64).max(1));
                }
                conn.close(0u32.into(), b"done");
                Ok::<_, anyhow::Error>(h)
            });
        }
        let bar = progress(a.seconds.ceil() as u64, "baseline echo", quiet);
        start.add_permits(a.clients);
        let (b_rate, b) = gather(&mut set, a.seconds, &bar).await?;
        rows = vec![
            Row::vs("operations per second", sb_rate, b_rate, "/s"),
            Row::vs("latency p50", sb.p50_ms, b.p50_ms, "ms"),
            Row::vs("latency p99", sb.p99_ms, b.p99_ms, "ms"),
        ];
    }
    rows.push(Row::alone("answers that placed the player", matched, "%"));
    Ok(Report {
        scenario: format!(
            "matchmaking: {} listed games, {} clients doing JoinRandomGame (by a lobby property) and CreateGame ({} %) for {} s",
            a.games, a.clients, a.create_percent, a.seconds
        ),
        baseline: "bare quinn request/echo, same request size and framing".into(),
        reference: None,
        rounds: 1,
        rows,
    })
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
