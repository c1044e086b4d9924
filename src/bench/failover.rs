//! `switchboard bench failover`: faults against a local deployment of separate processes,
//! timed. Each fault is also a function the chaos tests call, which then check the
//! promise (with bounds several times the target) instead of printing the time.
//!
//! - **master restart**: the master is killed (SIGKILL) under live rooms and started
//!   again on the same ports; measured from the moment it is listening until every room
//!   is listed in the lobby and joinable by name (target 2 s), and the longest pause in
//!   a room relaying events throughout (target: none beyond its sending interval);
//! - **game server killed**: a game server with rooms is killed (SIGKILL); measured from
//!   the kill until the master stops placing games there and routing joins to its rooms
//!   (target 3 s, the report timeout);
//! - **drain**: a game server with a room is sent SIGTERM while joiners keep arriving;
//!   counted: joins that worked, joins refused with a code a client can act on, and
//!   joins that hung (target: none); measured: the last redirect of a new game to it
//!   after the SIGTERM (target: none) and of a join after it went Offline (target: none).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use switchboard_client::{Delivery, Room};
use switchboard_protocol::{MasterEvent, MasterOp, ResultCode, RoomEvent, RoomOptions};

use super::deployment::{Deployment, DeploymentOptions};
use super::{Report, Row};

/// Flags of `bench failover`.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Rooms live on the deployment during the master restart.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// The faults to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<Fault>,
}

/// A fault scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// Kill the master under live rooms and restart it.
    MasterRestart,
    /// Kill a game server with rooms.
    GameserverKill,
    /// SIGTERM a game server while joiners arrive.
    Drain,
}

/// What the master restart took.
#[derive(Debug, Clone, Serialize)]
pub struct MasterRestart {
    /// Rooms live during the restart.
    pub rooms: usize,
    /// From kill to the new master listening (the operator's part).
    pub master_down: Duration,
    /// From the new master listening to every room listed in the lobby.
    pub all_listed: Duration,
    /// From the new master listening to every room joinable by name (redirects), and
    /// one joined for real.
    pub all_joinable: Duration,
    /// Longest pause between two events of the relaying room, from the kill until the
    /// end.
    pub longest_relay_pause: Duration,
    /// Events of the relaying room that never arrived.
    pub events_lost: u64,
    /// The sending interval of the relaying room.
    pub relay_interval: Duration,
}

/// Raises a numbered reliable event every `interval` in `room`; another actor counts them.
struct Relay {
    stop: tokio::sync::watch::Sender<bool>,
    sender: tokio::task::JoinHandle<u64>,
    receiver: tokio::task::JoinHandle<(u64, Duration)>,
    /// From when pauses count.
    watch_from: Arc<Mutex<Option<Instant>>>,
}

impl Relay {
    fn start(sending: Room, mut receiving: Room, interval: Duration) -> Relay {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut stopped_tx = stopped.clone();
        let sender = tokio::spawn(async move {
            let mut n = 0u64;
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped_tx.wait_for(|s| *s) => break,
                }
                if sending
                    .raise_event(1, n.to_le_bytes().to_vec(), Delivery::Reliable)
                    .await
                    .is_err()
                {
                    break;
                }
                n += 1;
            }
            // Keep the room open until the last events are read.
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(sending);
            n
        });
        let watch_from: Arc<Mutex<Option<Instant>>> = Arc::default();
        let from = watch_from.clone();
        let mut stopped_rx = stopped;
        let receiver = tokio::spawn(async move {
            let mut got = 0u64;
            let mut last: Option<Instant> = None;
            let mut longest = Duration::ZERO;
            loop {
                let ev = tokio::select! {
                    ev = receiving.next_event() => ev,
                    _ = async {
                        let _ = stopped_rx.wait_for(|s| *s).await;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    } => break,
                };
                let Some(ev) = ev else { break };
                if let RoomEvent::Custom(d) = ev
                    && d.code == 1
                {
                    let now = Instant::now();
                    got += 1;
                    let watching = from
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_some_and(|t| now > t);
                    if watching && let Some(prev) = last {
                        longest = longest.max(now - prev);
                    }
                    last = Some(now);
                }
            }
            (got, longest)
        });
        Relay {
            stop,
            sender,
            receiver,
            watch_from,
        }
    }

    fn watch_from_now(&self) {
        *self.watch_from.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    async fn finish(self) -> anyhow::Result<(u64, Duration)> {
        let _ = self.stop.send(true);
        let sent = self.sender.await.context("the relay sender")?;
        let (got, longest) = self.receiver.await.context("the relay receiver")?;
        Ok((sent.saturating_sub(got), longest))
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{what} did not happen within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The games a fresh client sees in the default lobby's `GameList`.
async fn listed_games(d: &Deployment) -> Option<Vec<String>> {
    let mut c = d.client("lobby-watcher").await.ok()?;
    c.join_lobby(Default::default()).await.ok()?;
    let list = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match c.next_event().await? {
                MasterEvent::GameList { games, .. } => {
                    return Some(games.into_iter().map(|g| g.game).collect::<Vec<_>>());
                }
                _ => continue,
            }
        }
    })
    .await
    .ok()
    .flatten();
    c.disconnect();
    list
}

/// Kills the master under `rooms` live rooms, restarts it, and times the recovery.
pub async fn master_restart(d: &mut Deployment, rooms: usize) -> anyhow::Result<MasterRestart> {
    let rooms = rooms.max(1);
    let host = d.client("host").await?;
    let mut held = Vec::new();
    for i in 0..rooms {
        let name = format!("room-{i}");
        held.push(
            host.create_game(Some(&name), RoomOptions::default())
                .await?,
        );
    }
    let listener = d.client("listener").await?;
    let receiving = listener.join_game("room-0").await?;
    let sending = held.remove(0);
    let interval = Duration::from_millis(20);
    let relay = Relay::start(sending, receiving, interval);
    tokio::time::sleep(Duration::from_millis(300)).await;

    relay.watch_from_now();
    let killed = d.kill_master().await?;
    let listening = d.start_master().await?;
    let limit = Duration::from_secs(30);
    let want: Vec<String> = (0..rooms).map(|i| format!("room-{i}")).collect();
    until(limit, "every room listed", || async {
        let listed = listed_games(d).await?;
        want.iter().all(|n| listed.contains(n)).then_some(())
    })
    .await?;
    let all_listed = listening.elapsed();
    until(limit, "every room joinable by name", || async {
        let c = d.client("late-joiner").await.ok()?;
        for name in &want {
            c.redirect(crate::bench::join_op(name)).await.ok()?;
        }
        let room = c.join_game(&want[want.len() - 1]).await.ok()?;
        drop(room);
        c.disconnect();
        Some(())
    })
    .await?;
    let all_joinable = listening.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (events_lost, longest_relay_pause) = relay.finish().await?;
    drop(held);
    host.disconnect();
    listener.disconnect();
    Ok(MasterRestart {
        rooms,
        master_down: listening - killed,
        all_listed,
        all_joinable,
        longest_relay_pause,
        events_lost,
        relay_interval: interval,
    })
}

/// What the kill of a game server took.
#[derive(Debug, Clone, Serialize)]
pub struct GameServerKill {
    /// From the kill to the last new game the master placed on the dead server (zero
    /// if none was).
    pub last_placement: Duration,
    /// From the kill to the last join the master routed to the dead server's room.
    pub last_join_routed: Duration,
    /// From the kill to the admin API showing it as not reporting.
    pub admin_not_reporting: Duration,
    /// Placements tried after the kill.
    pub placements_tried: u32,
    /// The code joins to its room got once refused.
    pub join_refusal: Option<i16>,
}

/// A `CreateGame` for a name the master makes up.
fn new_game() -> MasterOp {
    MasterOp::CreateGame {
        game: None,
        options: RoomOptions::default(),
        expected_users: vec![],
    }
}

/// Whether the master would place a new game on the server at `address` now.
async fn places_on(c: &switchboard_client::Client, address: &str) -> bool {
    c.redirect(new_game())
        .await
        .is_ok_and(|r| r.address == address)
}

/// Creates games until one lands on game server `id`; returns it and the client holding
/// it.
async fn room_on(
    d: &Deployment,
    id: &str,
    user: &str,
) -> anyhow::Result<(switchboard_client::Client, Room)> {
    let address = d.game_server(id).address.clone();
    let c = d.client(user).await?;
    for _ in 0..200 {
        let redirect = c.redirect(new_game()).await?;
        if redirect.address == address {
            let room = c.follow(redirect, &Default::default()).await?;
            return Ok((c, room));
        }
    }
    bail!("no game was placed on {id} in 200 tries")
}

/// Kills game server `victim` (which hosts a room) and times how long the master keeps
/// routing to it.
pub async fn gameserver_kill(d: &mut Deployment, victim: &str) -> anyhow::Result<GameServerKill> {
    let (holder, room) = room_on(d, victim, "victim-host").await?;
    let game = room.game().to_string();
    let address = d.game_server(victim).address.clone();
    let prober = d.client("prober").await?;
    let killed = {
        let gs = d
            .game_servers
            .iter_mut()
            .find(|g| g.id == victim)
            .context("victim")?;
        gs.proc.kill();
        Instant::now()
    };
    let mut last_placement = Duration::ZERO;
    let mut last_join_routed = Duration::ZERO;
    let mut admin_not_reporting = None;
    let mut placements_tried = 0;
    let mut join_refusal = None;
    let mut quiet_since = Instant::now();
    // Until the master has routed nothing there for 2 s (and at least 4 s passed).
    while killed.elapsed() < Duration::from_secs(20)
        && (killed.elapsed() < Duration::from_secs(4)
            || quiet_since.elapsed() < Duration::from_secs(2))
    {
        placements_tried += 1;
        if places_on(&prober, &address).await {
            last_placement = killed.elapsed();
            quiet_since = Instant::now();
        }
        match prober.redirect(crate::bench::join_op(&game)).await {
            Ok(r) if r.address == address => {
                last_join_routed = killed.elapsed();
                quiet_since = Instant::now();
            }
            Ok(_) => {}
            Err(e) => join_refusal = e.result_code().map(|c| c.to_wire()),
        }
        if admin_not_reporting.is_none()
            && let Ok(Some(v)) = d.server_view(victim).await
            && v["reporting"] == false
        {
            admin_not_reporting = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(room);
    holder.disconnect();
    prober.disconnect();
    Ok(GameServerKill {
        last_placement,
        last_join_routed,
        admin_not_reporting: admin_not_reporting
            .context("the admin API never showed the killed server as not reporting")?,
        placements_tried,
        join_refusal,
    })
}

/// How the joiners of a drain fared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Drain {
    /// Joins that ended in the room.
    pub joined: u32,
    /// Joins refused with `GameServerUnavailable` (go back to the master).
    pub refused_unavailable: u32,
    /// Joins refused with `GameDoesNotExist`: they came after the server and its room
    /// were gone.
    pub room_gone: u32,
    /// Joins refused otherwise, with their errors (target: none).
    pub refused_other: Vec<String>,
    /// Joins that neither worked nor got an answer within 5 s.
    pub hung: u32,
    /// From the SIGTERM to the last new game placed on the draining server (zero if
    /// none was).
    pub last_placement: Duration,
    /// From the admin API showing it Offline to the last join routed there (zero if
    /// none was).
    pub join_routed_after_offline: Duration,
    /// From the SIGTERM to the process's exit.
    pub drain_took: Duration,
    /// The game server's exit status.
    pub exit_ok: bool,
}

/// SIGTERMs game server `victim` (which hosts a room) while a joiner arrives every
/// 100 ms; counts how the joins end.
pub async fn drain(d: &mut Deployment, victim: &str) -> anyhow::Result<Drain> {
    let (holder, room) = room_on(d, victim, "drain-host").await?;
    let game = room.game().to_string();
    let address = d.game_server(victim).address.clone();
    let prober = d.client("drain-prober").await?;
    let gs = d
        .game_servers
        .iter()
        .position(|g| g.id == victim)
        .context("victim")?;
    d.game_servers[gs].proc.sigterm()?;
    let termed = Instant::now();
    let outcomes: Arc<Mutex<Drain>> = Arc::default();
    let mut joiners = tokio::task::JoinSet::new();
    let mut offline_seen: Option<Instant> = None;
    let mut last_join_routed: Option<Instant> = None;
    let mut last_placement = Duration::ZERO;
    let mut exited = None;
    let mut n = 0u32;
    while termed.elapsed() < Duration::from_secs(30) {
        // A joiner: to the master, redirected, to the game server; bounded.
        n += 1;
        let client = d.client(&format!("joiner-{n}")).await;
        let out = outcomes.clone();
        let name = game.clone();
        joiners.spawn(async move {
            let Ok(c) = client else { return };
            let r = tokio::time::timeout(Duration::from_secs(5), c.join_game(&name)).await;
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            match r {
                Ok(Ok(room)) => {
                    o.joined += 1;
                    drop(room);
                }
                Ok(Err(e)) if e.result_code() == Some(ResultCode::GameServerUnavailable) => {
                    o.refused_unavailable += 1
                }
                Ok(Err(e)) if e.result_code() == Some(ResultCode::GameDoesNotExist) => {
                    o.room_gone += 1
                }
                Ok(Err(e)) => o.refused_other.push(e.to_string()),
                Err(_) => o.hung += 1,
            }
            drop(o);
            c.disconnect();
        });
        if places_on(&prober, &address).await {
            last_placement = termed.elapsed();
        }
        if let Ok(r) = prober.redirect(crate::bench::join_op(&game)).await
            && r.address == address
        {
            last_join_routed = Some(Instant::now());
        }
        if offline_seen.is_none()
            && let Ok(Some(v)) = d.server_view(victim).await
            && v["state"] == "Offline"
        {
            offline_seen = Some(Instant::now());
        }
        if exited.is_none()
            && let Ok(Some(status)) = d.game_servers[gs].proc.try_exit()
        {
            exited = Some((termed.elapsed(), status.success()));
        }
        if let Some((at, _)) = exited
            && termed.elapsed() > at + Duration::from_secs(1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while joiners.join_next().await.is_some() {}
    drop(room);
    holder.disconnect();
    prober.disconnect();
    let (drain_took, exit_ok) =
        exited.context("the drained game server did not exit within 30 s")?;
    let mut out = outcomes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    out.last_placement = last_placement;
    out.join_routed_after_offline = match (offline_seen, last_join_routed) {
        (Some(off), Some(join)) if join > off => join - off,
        _ => Duration::ZERO,
    };
    out.drain_took = drain_took;
    out.exit_ok = exit_ok;
    Ok(out)
}

/// Runs the chosen faults, each on a fresh deployment, and reports their times against
/// the targets.
pub async fn run(args: &FailoverArgs, quiet: bool) -> anyhow::Result<Report> {
    let bin = crate::procs::this_binary()?;
    let faults = if args.faults.is_empty() {
        vec![Fault::MasterRestart, Fault::GameserverKill, Fault::Drain]
    } else {
        args.faults.clone()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut rows = Vec::new();
    for fault in faults {
        if !quiet {
            eprintln!("fault: {fault:?}");
        }
        let mut d = Deployment::start(DeploymentOptions::new(bin.clone(), 2)).await?;
        match fault {
            Fault::MasterRestart => {
                let r = master_restart(&mut d, args.rooms).await?;
                rows.push(Row::vs(
                    format!("master restart: {} rooms listed", r.rooms),
                    ms(r.all_listed),
                    2000.0,
                    "ms",
                ));
                rows.push(Row::vs(
                    "master restart: all joinable by name",
                    ms(r.all_joinable),
                    2000.0,
                    "ms",
                ));
                rows.push(Row::vs(
                    "master restart: longest relay pause",
                    ms(r.longest_relay_pause),
                    ms(r.relay_interval),
                    "ms",
                ));
                rows.push(Row::alone(
                    "master restart: relayed events lost",
                    r.events_lost as f64,
                    "",
                ));
                rows.push(Row::alone(
                    "master restart: master down (kill to listening)",
                    ms(r.master_down),
                    "ms",
                ));
            }
            Fault::GameserverKill => {
                let r = gameserver_kill(&mut d, "gs-1").await?;
                rows.push(Row::vs(
                    "game server killed: last new game placed there",
                    ms(r.last_placement),
                    3000.0,
                    "ms",
                ));
                rows.push(Row::vs(
                    "game server killed: last join routed there",
                    ms(r.last_join_routed),
                    3000.0,
                    "ms",
                ));
                rows.push(Row::vs(
                    "game server killed: admin shows it not reporting",
                    ms(r.admin_not_reporting),
                    3000.0,
                    "ms",
                ));
            }
            Fault::Drain => {
                let r = drain(&mut d, "gs-1").await?;
                if !quiet {
                    let mut other = r.refused_other.clone();
                    other.sort();
                    other.dedup();
                    for e in other {
                        eprintln!("drain: a join was refused: {e}");
                    }
                }
                rows.push(Row::alone(
                    "drain: joins that worked",
                    f64::from(r.joined),
                    "",
                ));
                rows.push(Row::alone(
                    "drain: joins refused with GameServerUnavailable",
                    f64::from(r.refused_unavailable),
                    "",
                ));
                rows.push(Row::alone(
                    "drain: joins after the room was gone (GameDoesNotExist)",
                    f64::from(r.room_gone),
                    "",
                ));
                rows.push(Row::alone(
                    "drain: joins refused otherwise (target 0)",
                    r.refused_other.len() as f64,
                    "",
                ));
                rows.push(Row::alone(
                    "drain: joins that hung (target 0)",
                    f64::from(r.hung),
                    "",
                ));
                rows.push(Row::alone(
                    "drain: last new game placed after SIGTERM (target 0)",
                    ms(r.last_placement),
                    "ms",
                ));
                rows.push(Row::alone(
                    "drain: last join routed after Offline (target 0)",
                    ms(r.join_routed_after_offline),
                    "ms",
                ));
                rows.push(Row::alone("drain: SIGTERM to exit", ms(r.drain_took), "ms"));
            }
        }
    }
    Ok(Report {
        scenario: "failover: faults against master + 2 game servers as processes on loopback"
            .into(),
        baseline: "the target of each promise (ratio < 1 meets it)".into(),
        reference: None,
        rounds: 1,
        rows,
    })
}
