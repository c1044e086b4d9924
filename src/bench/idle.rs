//! `idle`: K idle clients joined in rooms; the server's resident memory per client; against
//! K idle bare quinn connections to the baseline server. Local deployments only (the
//! memory is read from `/proc`).

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::baseline::{BaselineServer, Kind, baseline_frame, connect_baseline};
use super::relay::RelayArgs;
use super::{ProcStats, Report, Row, Target, progress};

/// Flags of `bench idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Idle clients.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Players per room.
    #[arg(long, default_value_t = 8)]
    pub room_size: usize,
}

/// The scenario.
pub async fn run(target: &Target, a: &IdleArgs, quiet: bool) -> anyhow::Result<Report> {
    let pid = target
        .pid
        .context("idle measures the server's memory: run it without --master")?;
    let before = ProcStats::read(pid).context("reading /proc")?;
    let relay = RelayArgs {
        clients: a.clients,
        room_size: a.room_size,
        rate: 1.0,
        bytes: 8,
        reliable: true,
        seconds: 0.0,
        objects: false,
        flush_window_ms: None,
    };
    let bar = progress(a.clients as u64, "joining rooms", quiet);
    let joined = super::relay::join_rooms(target, &relay, &bar).await?;
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = ProcStats::read(pid).context("reading /proc")?;
    let n = joined.len() as f64;
    let per_client = after.rss_bytes.saturating_sub(before.rss_bytes) as f64 / n / 1024.0;
    let mut rows = vec![Row::alone(
        "server memory per idle client (2 connections)",
        per_client,
        "KiB",
    )];
    if let Some(tls) = &target.tls_dir {
        let server = BaselineServer::start(Kind::Echo, tls)?;
        let b_before = ProcStats::read(server.pid).context("reading /proc")?;
        let mut conns = Vec::new();
        for i in 0..joined.len() * 2 {
            let conn = connect_baseline(&target.endpoint(i), &target.trust, &server.addr).await?;
            let (mut send, recv) = conn.open_bi().await?;
            send.write_all(&baseline_frame(&[0u8; 8])).await?;
            conns.push((conn, send, recv));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let b_after = ProcStats::read(server.pid).context("reading /proc")?;
        let per_conn = b_after.rss_bytes.saturating_sub(b_before.rss_bytes) as f64
            / conns.len() as f64
            / 1024.0;
        rows = vec![
            Row::vs(
                "server memory per idle client (2 connections)",
                per_client,
                per_conn * 2.0,
                "KiB",
            ),
            Row::vs(
                "server memory per connection",
                per_client / 2.0,
                per_conn,
                "KiB",
            ),
        ];
    }
    for (c, room) in joined {
        room.disconnect();
        c.disconnect();
    }
    Ok(Report {
        scenario: format!(
            "idle: {} clients in rooms of {}, each with a master and a game-server connection",
            a.clients, a.room_size
        ),
        baseline: "the same number of idle bare quinn connections (one open stream each)".into(),
        reference: None,
        rounds: 1,
        rows,
    })
}
