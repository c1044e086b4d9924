//! `connect`: connect → authenticate → redirected → joined (a new room each time), per
//! second and time to joined; against a bare quinn connect plus one request/echo round
//! trip with the same framing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use switchboard_client::Client;
use switchboard_protocol::RoomOptions;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use super::baseline::{BaselineServer, Kind, baseline_frame, connect_baseline};
use super::{Latency, Report, Row, Target, histogram, progress};

/// Flags of `bench connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Flows to run.
    #[arg(long, default_value_t = 300)]
    pub count: usize,
    /// Flows at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

async fn timed<F, Fut>(
    a: &ConnectArgs,
    quiet: bool,
    what: &str,
    flow: F,
) -> anyhow::Result<(f64, Latency)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Duration>> + Send,
{
    let bar = progress(a.count as u64, what, quiet);
    let hist = Arc::new(Mutex::new(histogram()));
    let limit = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let flow = Arc::new(flow);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..a.count {
        let (hist, limit, flow, bar) = (hist.clone(), limit.clone(), flow.clone(), bar.clone());
        set.spawn(async move {
            let _p = limit.acquire().await;
            let t = Instant::now();
            flow(i).await?;
            let _ = hist
                .lock()
                .await
                .record((t.elapsed().as_micros() as u64).max(1));
            bar.inc(1);
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    bar.finish_and_clear();
    let per_second = a.count as f64 / started.elapsed().as_secs_f64();
    let h = hist.lock().await;
    Ok((per_second, Latency::of(&h)))
}

/// The scenario.
pub async fn run(target: &Target, a: &ConnectArgs, quiet: bool) -> anyhow::Result<Report> {
    let nonce: u32 = rand::random();
    let (endpoints, config, master) = (
        (0..8).map(|i| target.endpoint(i)).collect::<Vec<_>>(),
        target.client_config(),
        target.master.clone(),
    );
    let (sb_rate, sb) = timed(a, quiet, "switchboard connect", move |i| {
        let (endpoint, config, master) = (
            endpoints[i % endpoints.len()].clone(),
            config.clone(),
            master.clone(),
        );
        async move {
            let t = Instant::now();
            let mut c = Client::connect_on(endpoint, &master, config).await?;
            c.authenticate(&format!("connect-{i}"), "").await?;
            let room = c
                .create_game(
                    Some(&format!("connect-{nonce:08x}-{i}")),
                    RoomOptions::default(),
                )
                .await?;
            let took = t.elapsed();
            room.leave().await?;
            c.disconnect();
            Ok(took)
        }
    })
    .await?;
    let mut rows = vec![
        Row::alone("flows per second", sb_rate, "/s"),
        Row::alone("time to joined p50", sb.p50_ms, "ms"),
        Row::alone("time to joined p99", sb.p99_ms, "ms"),
    ];
    if let Some(tls) = &target.tls_dir {
        let server = Arc::new(BaselineServer::start(Kind::Echo, tls)?);
        let (endpoints, trust) = (
            (0..8).map(|i| target.endpoint(i)).collect::<Vec<_>>(),
            target.trust.clone(),
        );
        let s = server.clone();
        let (b_rate, b) = timed(a, quiet, "baseline connect", move |i| {
            let (endpoint, trust, s) = (
                endpoints[i % endpoints.len()].clone(),
                trust.clone(),
                s.clone(),
            );
            async move {
                let t = Instant::now();
                let conn = connect_baseline(&endpoint, &trust, &s.addr).await?;
                let (mut send, mut recv) = conn.open_bi().await?;
                send.write_all(&baseline_frame(&[0u8; 40])).await?;
                let mut buf = [0u8; 44];
                recv.read_exact(&mut buf).await?;
                let took = t.elapsed();
                conn.close(0u32.into(), b"done");
                Ok(took)
            }
        })
        .await?;
        rows = vec![
            Row::vs("flows per second", sb_rate, b_rate, "/s"),
            Row::vs("time to joined p50", sb.p50_ms, b.p50_ms, "ms"),
            Row::vs("time to joined p99", sb.p99_ms, b.p99_ms, "ms"),
        ];
        drop(server);
    }
    Ok(Report {
        scenario: format!(
            "connect: {} flows, {} at once: connect, authenticate, create a room (master, then its game server); timed to joined",
            a.count, a.concurrency
        ),
        baseline: "bare quinn connect plus one request/echo round trip with the same framing"
            .into(),
        reference: None,
        rounds: 1,
        rows,
    })
}
