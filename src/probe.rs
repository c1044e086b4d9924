//! `switchboard probe`: an end-to-end smoke check of a running deployment. Two clients
//! authenticate; the first creates a room, the second joins it by name; each sends one
//! reliable and one unreliable event to the other; both leave. Every step is timed; the
//! report is one JSON line.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use switchboard_client::{Client, ClientConfig, Delivery, Room};
use switchboard_protocol::{ResultCode, RoomEvent, RoomOptions};
use switchboard_transport::Trust;

/// One timed step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was checked.
    pub name: &'static str,
    /// Milliseconds it took.
    pub ms: f64,
}

/// The probe's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// Whether every step held.
    pub ok: bool,
    /// The master probed.
    pub master: String,
    /// The room used.
    pub game: String,
    /// The game server the room was placed on.
    pub game_server: String,
    /// The steps that succeeded, in order.
    pub steps: Vec<Step>,
    /// The failure, if any.
    pub error: Option<String>,
    /// Total milliseconds.
    pub elapsed_ms: f64,
}

/// Event codes the probe uses.
const RELIABLE_CODE: u8 = 1;
const UNRELIABLE_CODE: u8 = 2;

/// Runs the probe against `master`, giving up after `timeout`.
/// Who the probe's two clients log in as: (user id, token) each. The defaults suit a
/// master with the `dev` provider; a `jwt` or `http` master needs real credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The first client (it creates the room).
    pub a: (String, String),
    /// The second client (it joins).
    pub b: (String, String),
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            a: ("probe-a".into(), String::new()),
            b: ("probe-b".into(), String::new()),
        }
    }
}

/// Runs the probe with the `dev` provider's credentials.
pub async fn probe(master: &str, trust: Trust, timeout: Duration) -> ProbeReport {
    probe_as(master, trust, timeout, &Credentials::default()).await
}

/// Runs the probe, its clients logging in with `creds`.
pub async fn probe_as(
    master: &str,
    trust: Trust,
    timeout: Duration,
    creds: &Credentials,
) -> ProbeReport {
    let started = Instant::now();
    let mut report = ProbeReport {
        ok: false,
        master: master.to_string(),
        game: format!("probe-{:016x}", rand::random::<u64>()),
        game_server: String::new(),
        steps: Vec::new(),
        error: None,
        elapsed_ms: 0.0,
    };
    let outcome = tokio::time::timeout(timeout, run(&mut report, trust, creds, timeout)).await;
    match outcome {
        Ok(Ok(())) => report.ok = true,
        Ok(Err(e)) => {
            let mut why = crate::one_line(&e);
            if why.contains("UnknownIssuer") {
                why.push_str(
                    " (the master's certificate is not trusted: give --ca with the file it chains to)",
                );
            }
            report.error = Some(why);
        }
        Err(_) => report.error = Some(format!("timed out after {timeout:?}")),
    }
    report.elapsed_ms = ms(started);
    report
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

async fn step<T>(
    report: &mut ProbeReport,
    name: &'static str,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let t = Instant::now();
    let out = fut.await.with_context(|| name)?;
    report.steps.push(Step { name, ms: ms(t) });
    Ok(out)
}

async fn run(
    report: &mut ProbeReport,
    trust: Trust,
    creds: &Credentials,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut config = ClientConfig::new(trust);
    config.connect_timeout = timeout;
    let master = report.master.clone();
    let game = report.game.clone();
    let mut a = step(report, "connect_a", async {
        Ok(Client::connect(&master, config.clone()).await?)
    })
    .await?;
    step(report, "authenticate_a", async {
        Ok(a.authenticate(&creds.a.0, &creds.a.1).await?)
    })
    .await?;
    let mut room_a = step(report, "create_game", async {
        // A deployment still starting has no game server yet: ask again until one is
        // there (within the probe's time).
        loop {
            match a.create_game(Some(&game), RoomOptions::default()).await {
                Err(e) if e.result_code() == Some(ResultCode::ServerFull) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return Ok(other?),
            }
        }
    })
    .await?;
    report.game_server = room_a.address().to_string();
    let mut b = step(report, "connect_b", async {
        Ok(Client::connect(&master, config.clone()).await?)
    })
    .await?;
    step(report, "authenticate_b", async {
        Ok(b.authenticate(&creds.b.0, &creds.b.1).await?)
    })
    .await?;
    let mut room_b = step(report, "join_game", async { Ok(b.join_game(&game).await?) }).await?;
    if room_b.address() != room_a.address() {
        bail!(
            "joined on {} but the room is on {}",
            room_b.address(),
            room_a.address()
        );
    }
    let b_actor = room_b.actor();
    step(report, "join_seen", async {
        wait_for(
            &mut room_a,
            |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == b_actor),
        )
        .await
    })
    .await?;
    step(report, "reliable_a_to_b", reliable(&room_a, &mut room_b)).await?;
    step(report, "reliable_b_to_a", reliable(&room_b, &mut room_a)).await?;
    step(
        report,
        "unreliable_a_to_b",
        unreliable(&room_a, &mut room_b),
    )
    .await?;
    step(
        report,
        "unreliable_b_to_a",
        unreliable(&room_b, &mut room_a),
    )
    .await?;
    step(report, "leave_b", async { Ok(room_b.leave().await?) }).await?;
    step(report, "leave_seen", async {
        wait_for(
            &mut room_a,
            |e| matches!(e, RoomEvent::Leave { actor, .. } if *actor == b_actor),
        )
        .await
    })
    .await?;
    step(report, "leave_a", async { Ok(room_a.leave().await?) }).await?;
    a.close().await;
    b.close().await;
    Ok(())
}

async fn wait_for(room: &mut Room, pred: impl Fn(&RoomEvent) -> bool) -> anyhow::Result<RoomEvent> {
    loop {
        let ev = room
            .next_event()
            .await
            .ok_or_else(|| anyhow!("connection closed: {:?}", room.close_reason()))?;
        if pred(&ev) {
            return Ok(ev);
        }
    }
}

async fn reliable(from: &Room, to: &mut Room) -> anyhow::Result<()> {
    let payload = format!("reliable from {}", from.actor());
    from.raise_event(
        RELIABLE_CODE,
        payload.clone().into_bytes(),
        Delivery::Reliable,
    )
    .await?;
    let sender = from.actor();
    wait_for(to, |e| {
        matches!(e, RoomEvent::Custom(d) if d.code == RELIABLE_CODE && d.sender == sender && d.data == payload.as_bytes())
    })
    .await?;
    Ok(())
}

/// Datagrams may be lost, even on loopback: send again every 100 ms until one arrives.
async fn unreliable(from: &Room, to: &mut Room) -> anyhow::Result<()> {
    let sender = from.actor();
    for attempt in 0u32.. {
        from.raise_event(
            UNRELIABLE_CODE,
            attempt.to_le_bytes().to_vec(),
            Delivery::Unreliable,
        )
        .await?;
        let got = tokio::time::timeout(
            Duration::from_millis(100),
            wait_for(to, |e| matches!(e, RoomEvent::Custom(d) if d.code == UNRELIABLE_CODE && d.sender == sender)),
        )
        .await;
        if let Ok(r) = got {
            r?;
            return Ok(());
        }
    }
    unreachable!("the loop only ends by returning")
}
