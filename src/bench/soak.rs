//! `soak`: clients come and go for a long time (connect, authenticate, then one of:
//! leave at once, browse a lobby, create a room and leave it, join a room and drop);
//! the server's resident memory is sampled throughout and after the load stops. A
//! server that keeps something per connection grows without bound; one that does not
//! levels off. The baseline is its own memory after the first sampling period.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use switchboard_client::Client;
use switchboard_protocol::{Lobby, RoomOptions};
use tokio::sync::Semaphore;

use super::{ProcStats, Report, Row, Target, progress, secs};

/// Flags of `bench soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Seconds of load.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// New client connections per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10.0)]
    pub sample: f64,
}

/// One client's visit.
async fn visit(
    endpoint: quinn::Endpoint,
    master: String,
    config: switchboard_client::ClientConfig,
    i: u64,
) -> anyhow::Result<()> {
    let mut c = Client::connect_on(endpoint, &master, config).await?;
    c.authenticate(&format!("soak-{i}"), "").await?;
    match i % 4 {
        0 => {}
        1 => {
            c.join_lobby(Lobby::default()).await?;
            let _ = tokio::time::timeout(Duration::from_millis(200), c.next_event()).await;
        }
        2 => {
            let room = c.create_game(None, RoomOptions::default()).await?;
            room.leave().await?;
        }
        _ => {
            // Joins a room of its own and drops both connections, as a crash would.
            let room = c.create_game(None, RoomOptions::default()).await?;
            room.disconnect();
        }
    }
    c.disconnect();
    Ok(())
}

/// The scenario (local deployments only: memory comes from `/proc`).
pub async fn run(target: &Target, a: &SoakArgs, quiet: bool) -> anyhow::Result<Report> {
    let pid = target
        .pid
        .context("soak measures the server's memory: run it without --master")?;
    let rss = || -> anyhow::Result<f64> {
        Ok(ProcStats::read(pid).context("reading /proc")?.rss_bytes as f64 / (1024.0 * 1024.0))
    };
    let started = Instant::now();
    let length = secs(a.seconds);
    let every = secs(a.sample.max(0.1));
    let spacing = secs(1.0 / a.rate.max(0.01));
    let made = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(Semaphore::new(256));
    let bar = progress(length.as_secs(), "soaking (seconds)", quiet);
    let mut samples: Vec<(f64, f64)> = vec![(0.0, rss()?)];
    let mut next_sample = started + every;
    let mut tick = tokio::time::interval(spacing);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = 0u64;
    while started.elapsed() < length {
        tick.tick().await;
        let permit = limit.clone().acquire_owned().await.expect("open");
        let (made, failed) = (made.clone(), failed.clone());
        let (endpoint, master, config) = (
            target.endpoint(i as usize),
            target.master.clone(),
            target.client_config(),
        );
        tasks.spawn(async move {
            match visit(endpoint, master, config, i).await {
                Ok(()) => made.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        });
        i += 1;
        while tasks.try_join_next().is_some() {}
        if Instant::now() >= next_sample {
            samples.push((started.elapsed().as_secs_f64(), rss()?));
            next_sample += every;
        }
        bar.set_position(started.elapsed().as_secs());
    }
    while tasks.join_next().await.is_some() {}
    bar.finish_and_clear();
    let end = rss()?;
    samples.push((started.elapsed().as_secs_f64(), end));
    // Idle: what the server gives back once the clients are gone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = rss()?;
    let base = samples.get(1).map(|s| s.1).unwrap_or(samples[0].1);
    let made = made.load(Ordering::Relaxed);
    let mut rows = vec![
        Row::alone("client visits completed", made as f64, ""),
        Row::alone(
            "client visits failed",
            failed.load(Ordering::Relaxed) as f64,
            "",
        ),
        Row::alone("server RSS before the load", samples[0].1, "MiB"),
    ];
    for (t, m) in samples.iter().skip(1) {
        rows.push(Row::vs(format!("server RSS at {t:.0} s"), *m, base, "MiB"));
    }
    rows.push(Row::vs("server RSS 5 s after the load", idle, base, "MiB"));
    rows.push(Row::alone(
        "growth after the first sample, per 1000 visits",
        (end - base) * 1024.0 / (made.max(1) as f64) * 1000.0,
        "KiB",
    ));
    Ok(Report {
        scenario: format!(
            "soak: {:.0} s of {:.0} client visits/s (connect, authenticate; then leave, browse a lobby, create and leave a room, or create and drop)",
            a.seconds, a.rate
        ),
        baseline: format!(
            "the server's own RSS at the first sample ({:.0} s)",
            a.sample
        ),
        reference: None,
        rounds: 1,
        rows,
    })
}
