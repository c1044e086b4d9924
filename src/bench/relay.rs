//! `relay`: N clients in rooms of R players, each sending F events per second of B bytes
//! to the others, reliable or unreliable; against the bare quinn fan-out relay with the
//! same clients, rates and sizes.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use hdrhistogram::Histogram;
use switchboard_client::{Client, Delivery, Room};
use switchboard_protocol::{
    ResultCode, RoomEvent, RoomMode, RoomOptions, SpawnObject, StateUpdate,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::task::yield_now;

use super::baseline::{BaselineServer, Kind, baseline_frame, connect_baseline};
use super::target::SyscallCount;
use super::{Latency, Report, Row, Target, histogram, progress};

/// Flags of `bench relay`.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Players per room.
    #[arg(long, default_value_t = 8)]
    pub room_size: usize,
    /// Events per second per client.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Payload bytes per event (at least 8: a timestamp).
    #[arg(long, default_value_t = 100)]
    pub bytes: usize,
    /// Send reliably (streams) instead of as datagrams.
    #[arg(long)]
    pub reliable: bool,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Send network-object state updates in Shared rooms (each client holds one object)
    /// instead of events; the same-run baseline is then the plain relay of events of the
    /// same size.
    #[arg(long)]
    pub objects: bool,
    /// The rooms' flush window in ms (`RoomOptions::flush_window_ms`; 0 sends every event
    /// at once); the game server's default if not given.
    #[arg(long)]
    pub flush_window_ms: Option<u32>,
}

/// One run's numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Events sent.
    pub sent: u64,
    /// Deliveries expected (sent × (room size − 1)).
    pub expected: u64,
    /// Deliveries seen.
    pub delivered: u64,
    /// Deliveries per second of sending.
    pub per_second: f64,
    /// Share of expected deliveries that never arrived.
    pub loss: f64,
    /// Latency.
    pub latency: Latency,
    /// Server CPU microseconds per delivery (local servers only).
    pub cpu_us_per_delivery: Option<f64>,
    /// UDP packets the server sent the clients per delivery (counted by the clients'
    /// QUIC connections: every packet, acknowledgements included).
    pub packets_per_delivery: Option<f64>,
    /// The server's system calls per delivery (counted by `perf stat`, when there).
    pub syscalls_per_delivery: Option<f64>,
    /// The load generator's own CPU microseconds per delivery (this process: it shares
    /// the machine with the server, so a costly generator starves the server).
    pub generator_us_per_delivery: Option<f64>,
}

/// UDP packets these connections have received so far.
fn packets_in(conns: &[quinn::Connection]) -> u64 {
    conns.iter().map(|c| c.stats().udp_rx.datagrams).sum()
}

pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn payload(bytes: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(bytes.max(8));
    b.put_u64_le(epoch().elapsed().as_nanos() as u64);
    b.resize(bytes.max(8), 0xab);
    b.freeze()
}

pub(crate) fn record(h: &mut Histogram<u64>, data: &[u8]) {
    if data.len() >= 8 {
        let sent = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let now = epoch().elapsed().as_nanos() as u64;
        let _ = h.record((now.saturating_sub(sent) / 1000).max(1));
    }
}

#[derive(Debug)]
struct Tally {
    sent: u64,
    received: u64,
    hist: Histogram<u64>,
}

/// The send/receive window of a run.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: tokio::time::Instant,
    end: tokio::time::Instant,
    drain_end: tokio::time::Instant,
    period: Duration,
}

impl Window {
    fn new(a: &RelayArgs) -> Window {
        let start = tokio::time::Instant::now() + Duration::from_millis(200);
        let end = start + super::secs(a.seconds);
        Window {
            start,
            end,
            drain_end: end + Duration::from_secs(1),
            period: Duration::from_secs_f64(1.0 / a.rate.max(0.001)),
        }
    }

    /// Each client starts at its own offset so sends are spread over the period.
    fn ticker(&self, i: usize, n: usize) -> tokio::time::Interval {
        let offset = self.period.mul_f64(i as f64 / n.max(1) as f64);
        let mut t = tokio::time::interval_at(self.start + offset, self.period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        t
    }
}

async fn switchboard_client(
    mut room: Room,
    bytes: usize,
    delivery: Delivery,
    w: Window,
    mut tick: tokio::time::Interval,
    object: Option<u32>,
) -> Tally {
    let mut t = Tally {
        sent: 0,
        received: 0,
        hist: histogram(),
    };
    let mut n = 0u64;
    let drain = tokio::time::sleep_until(w.drain_end);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            now = tick.tick(), if tokio::time::Instant::now() < w.end => {
                if now < w.end {
                    n += 1;
                    let sent = match object {
                        Some(object) => {
                            let update = StateUpdate { object, tick: n, state: payload(bytes) };
                            room.update_state(update, delivery).await
                        }
                        None => room.raise_event(1, payload(bytes), delivery).await,
                    };
                    t.sent += u64::from(sent.is_ok());
                }
            }
            ev = room.next_event() => match ev {
                Some(RoomEvent::Custom(d)) => {
                    t.received += 1;
                    record(&mut t.hist, &d.data);
                }
                Some(RoomEvent::ObjectState(s)) => {
                    t.received += 1;
                    record(&mut t.hist, &s.state);
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut drain => break,
        }
    }
    t
}

pub(crate) async fn join_rooms(
    target: &Target,
    a: &RelayArgs,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<(Client, Room)>> {
    let rooms = a.clients / a.room_size.max(2);
    anyhow::ensure!(rooms > 0, "--clients must be at least --room-size");
    let nonce: u32 = rand::random();
    let limit = std::sync::Arc::new(Semaphore::new(32));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut set = JoinSet::new();
    for r in 0..rooms {
        for p in 0..a.room_size {
            let i = r * a.room_size + p;
            let (endpoint, config, master, limit) = (
                target.endpoint(i),
                target.client_config(),
                target.master.clone(),
                limit.clone(),
            );
            let (game, max) = (format!("bench-{nonce:08x}-{r}"), a.room_size as u32);
            let (objects, window) = (a.objects, a.flush_window_ms);
            set.spawn(async move {
                let _permit = limit.acquire().await;
                let mut c = Client::connect_on(endpoint, &master, config).await?;
                c.authenticate(&format!("bench-{i}"), "").await?;
                // The first player creates; the others retry until the room exists. A
                // game server whose load level is 9 (the previous step's traffic can leave
                // it there for its averaging window) takes no new games: the master then
                // answers ServerFull, and the creator retries as a client should.
                let room = if p == 0 {
                    let options = RoomOptions {
                        max_players: max,
                        mode: if objects {
                            RoomMode::Shared
                        } else {
                            RoomMode::Relay
                        },
                        flush_window_ms: window,
                        ..RoomOptions::default()
                    };
                    loop {
                        match c.create_game(Some(&game), options.clone()).await {
                            Ok(room) => break room,
                            Err(e)
                                if e.result_code() == Some(ResultCode::ServerFull)
                                    && Instant::now() < deadline =>
                            {
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                            Err(e) => return Err(anyhow::Error::from(e)),
                        }
                    }
                } else {
                    loop {
                        match c.join_game(&game).await {
                            Ok(room) => break room,
                            Err(_) if Instant::now() < deadline => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(e) => return Err(anyhow::Error::from(e)),
                        }
                    }
                };
                Ok::<_, anyhow::Error>((c, room))
            });
        }
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r??);
        bar.inc(1);
    }
    Ok(out)
}

/// Runs the scenario against Switchboard.
pub async fn measure_switchboard(
    target: &Target,
    a: &RelayArgs,
    quiet: bool,
) -> anyhow::Result<Measured> {
    let bar = progress(
        (a.clients / a.room_size.max(2) * a.room_size) as u64,
        "joining rooms",
        quiet,
    );
    let joined = join_rooms(target, a, &bar).await?;
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivery = if a.reliable {
        Delivery::Reliable
    } else {
        Delivery::Unreliable
    };
    let w = Window::new(a);
    let n = joined.len();
    let quic: Vec<quinn::Connection> = joined.iter().map(|(_, r)| r.quic()).collect();
    let packets_before = packets_in(&quic);
    let meters = Meters::start(target.pid);
    let mut clients = Vec::new();
    let mut set = JoinSet::new();
    for (i, (c, room)) in joined.into_iter().enumerate() {
        clients.push(c);
        let object = if a.objects {
            Some(room.spawn(SpawnObject::default()).await?)
        } else {
            None
        };
        set.spawn(switchboard_client(
            room,
            a.bytes,
            delivery,
            w,
            w.ticker(i, n),
            object,
        ));
    }
    let tallies = collect(set, a, quiet, "switchboard relay").await;
    let packets = packets_in(&quic) - packets_before;
    for c in &clients {
        c.disconnect();
    }
    Ok(meters.finish(&tallies, a, Some(packets)))
}

async fn collect(mut set: JoinSet<Tally>, a: &RelayArgs, quiet: bool, what: &str) -> Vec<Tally> {
    let bar = progress(a.seconds.ceil() as u64 + 1, what, quiet);
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                bar.inc(1);
            }
        })
    };
    let mut out = Vec::new();
    while let Some(t) = set.join_next().await {
        if let Ok(t) = t {
            out.push(t);
        }
        yield_now().await;
    }
    ticker.abort();
    bar.finish_and_clear();
    out
}

fn summarize(tallies: &[Tally], a: &RelayArgs, cpu_seconds: Option<f64>) -> Measured {
    let mut hist = histogram();
    let (mut sent, mut delivered) = (0, 0);
    for t in tallies {
        sent += t.sent;
        delivered += t.received;
        let _ = hist.add(&t.hist);
    }
    let expected = sent * (a.room_size.saturating_sub(1)) as u64;
    Measured {
        sent,
        expected,
        delivered,
        per_second: delivered as f64 / a.seconds,
        loss: if expected == 0 {
            0.0
        } else {
            1.0 - (delivered as f64 / expected as f64).min(1.0)
        },
        latency: Latency::of(&hist),
        cpu_us_per_delivery: cpu_seconds
            .filter(|_| delivered > 0)
            .map(|s| s * 1e6 / delivered as f64),
        packets_per_delivery: None,
        syscalls_per_delivery: None,
        generator_us_per_delivery: None,
    }
}

/// What the server (a local process) and the generator (this one) were at when a run
/// started.
struct Meters {
    server: Option<u32>,
    server_cpu: Option<super::ProcStats>,
    generator: Option<super::ProcStats>,
    syscalls: Option<SyscallCount>,
}

impl Meters {
    fn start(server: Option<u32>) -> Meters {
        Meters {
            server,
            server_cpu: server.and_then(super::ProcStats::read),
            generator: super::ProcStats::read(std::process::id()),
            syscalls: SyscallCount::start(server),
        }
    }

    /// The run's numbers: the tallies, with the server's CPU and system calls, the
    /// generator's CPU and the packets the clients received (if counted), per delivery.
    fn finish(self, tallies: &[Tally], a: &RelayArgs, packets: Option<u64>) -> Measured {
        let server_cpu = self
            .server_cpu
            .zip(self.server.and_then(super::ProcStats::read))
            .map(|(b, x)| x.cpu_seconds - b.cpu_seconds);
        let mut m = summarize(tallies, a, server_cpu);
        let syscalls = self.syscalls.and_then(SyscallCount::stop);
        let generator = self
            .generator
            .zip(super::ProcStats::read(std::process::id()))
            .map(|(b, a)| (a.cpu_seconds - b.cpu_seconds) * 1e6);
        let delivered = m.delivered;
        let per = |n: f64| (delivered > 0).then(|| n / delivered as f64);
        m.packets_per_delivery = packets.and_then(|p| per(p as f64));
        m.syscalls_per_delivery = syscalls.and_then(|n| per(n as f64));
        m.generator_us_per_delivery = generator.and_then(per);
        m
    }
}

/// Runs the same load against the bare quinn fan-out relay.
pub async fn measure_baseline(
    target: &Target,
    a: &RelayArgs,
    quiet: bool,
) -> anyhow::Result<Option<Measured>> {
    let Some(tls) = &target.tls_dir else {
        return Ok(None);
    };
    let server = BaselineServer::start(Kind::Relay, tls)?;
    let rooms = a.clients / a.room_size.max(2);
    let mut conns = Vec::new();
    for i in 0..rooms * a.room_size {
        let conn = connect_baseline(&target.endpoint(i), &target.trust, &server.addr).await?;
        let (mut send, recv) = conn.open_bi().await?;
        send.write_all(&((i / a.room_size) as u32).to_le_bytes())
            .await?;
        conns.push((conn, send, recv));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = Window::new(a);
    let n = conns.len();
    let quic: Vec<quinn::Connection> = conns.iter().map(|(c, _, _)| c.clone()).collect();
    let packets_before = packets_in(&quic);
    let meters = Meters::start(Some(server.pid));
    let mut set = JoinSet::new();
    for (i, (conn, mut send, recv)) in conns.into_iter().enumerate() {
        let (bytes, reliable, mut tick) = (a.bytes, a.reliable, w.ticker(i, n));
        set.spawn(async move {
            let mut t = Tally {
                sent: 0,
                received: 0,
                hist: histogram(),
            };
            let mut frames = switchboard_transport::FramedRecv::new(
                recv,
                switchboard_protocol::frame::DEFAULT_MAX_FRAME,
            );
            let drain = tokio::time::sleep_until(w.drain_end);
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    now = tick.tick(), if tokio::time::Instant::now() < w.end => {
                        if now < w.end {
                            let p = payload(bytes);
                            let ok = if reliable {
                                send.write_chunk(baseline_frame(&p)).await.is_ok()
                            } else {
                                conn.send_datagram(p).is_ok()
                            };
                            t.sent += u64::from(ok);
                        }
                    }
                    dg = conn.read_datagram(), if !reliable => {
                        let Ok(dg) = dg else { break };
                        t.received += 1;
                        record(&mut t.hist, &dg);
                    }
                    body = frames.next_body(), if reliable => {
                        let Ok(Some(body)) = body else { break };
                        t.received += 1;
                        record(&mut t.hist, &body);
                    }
                    _ = &mut drain => break,
                }
            }
            conn.close(0u32.into(), b"done");
            t
        });
    }
    let tallies = collect(set, a, quiet, "baseline relay").await;
    let packets = packets_in(&quic) - packets_before;
    Ok(Some(meters.finish(&tallies, a, Some(packets))))
}

/// The plain-UDP reference needs Linux's batched socket calls; elsewhere it is skipped.
#[cfg(not(target_os = "linux"))]
pub async fn measure_reference(_: &Target, _: &RelayArgs) -> anyhow::Result<Option<Measured>> {
    Ok(None)
}

/// Runs the same load against the plain-UDP fan-out relay (the physical reference),
/// with the generator's own batched sockets instead of QUIC clients.
#[cfg(target_os = "linux")]
pub async fn measure_reference(target: &Target, a: &RelayArgs) -> anyhow::Result<Option<Measured>> {
    let Some(tls) = &target.tls_dir else {
        return Ok(None);
    };
    let server = BaselineServer::start(Kind::Udp, tls)?;
    let addr = server.addr.parse()?;
    let load = super::udp::Load {
        clients: a.clients,
        room_size: a.room_size,
        rate: a.rate,
        bytes: a.bytes,
        seconds: a.seconds,
    };
    let meters = Meters::start(Some(server.pid));
    let g = tokio::task::spawn_blocking(move || super::udp::generate(addr, load)).await??;
    let tally = Tally {
        sent: g.sent,
        received: g.received,
        hist: g.hist,
    };
    Ok(Some(meters.finish(&[tally], a, None)))
}

/// The relay scenario: Switchboard, then the baseline, then the physical reference, then
/// the comparison.
pub async fn run(target: &Target, a: &RelayArgs, quiet: bool) -> anyhow::Result<Report> {
    if a.objects {
        // The baseline is Switchboard's own relay of events of the same size.
        let sb = measure_switchboard(target, a, quiet).await?;
        let events = RelayArgs {
            objects: false,
            ..a.clone()
        };
        let base = measure_switchboard(target, &events, quiet).await?;
        let mut r = report(a, &sb, Some(&base), None);
        r.baseline =
            "Switchboard relaying events of the same size in the same rooms (same run)".into();
        return Ok(r);
    }
    let sb = measure_switchboard(target, a, quiet).await?;
    let base = measure_baseline(target, a, quiet).await?;
    let reference = measure_reference(target, a).await?;
    Ok(report(a, &sb, base.as_ref(), reference.as_ref()))
}

/// The table for a relay run.
pub fn report(
    a: &RelayArgs,
    sb: &Measured,
    base: Option<&Measured>,
    reference: Option<&Measured>,
) -> Report {
    let mut rows = Vec::new();
    let mut push = |name: &str, unit: &'static str, f: &dyn Fn(&Measured) -> Option<f64>| {
        let Some(v) = f(sb) else { return };
        let row = match base.and_then(f) {
            Some(b) => Row::vs(name, v, b, unit),
            None => Row::alone(name, v, unit),
        };
        rows.push(row.with_reference(reference.and_then(f)));
    };
    push("deliveries per second", "/s", &|m| Some(m.per_second));
    push("loss", "%", &|m| Some(m.loss * 100.0));
    push("latency p50", "ms", &|m| Some(m.latency.p50_ms));
    push("latency p99", "ms", &|m| Some(m.latency.p99_ms));
    push("latency p99.9", "ms", &|m| Some(m.latency.p999_ms));
    push("server CPU per delivery", "µs", &|m| m.cpu_us_per_delivery);
    push("server packets per delivery", "", &|m| {
        m.packets_per_delivery
    });
    push("server syscalls per delivery", "", &|m| {
        m.syscalls_per_delivery
    });
    push("generator CPU per delivery", "µs", &|m| {
        m.generator_us_per_delivery
    });
    push("events sent", "", &|m| Some(m.sent as f64));
    Report {
        scenario: format!(
            "relay{}{}: {} clients in rooms of {}, {} {}/s of {} bytes each, {}, {} s",
            if a.objects { " --objects" } else { "" },
            match a.flush_window_ms {
                Some(ms) => format!(" --flush-window-ms {ms}"),
                None => String::new(),
            },
            a.clients,
            a.room_size,
            a.rate,
            if a.objects { "state updates" } else { "events" },
            a.bytes,
            if a.reliable { "reliable" } else { "unreliable" },
            a.seconds
        ),
        baseline: "bare quinn fan-out relay (same clients, rates and sizes; no rooms, no protocol)"
            .into(),
        reference: reference.map(|_| {
            "plain-UDP fan-out relay with recvmmsg/sendmmsg (no encryption, no reliability; \
             always unreliable)"
                .into()
        }),
        rounds: 1,
        rows,
    }
}
