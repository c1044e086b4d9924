//! `ccu`: raises the number of clients step by step (rooms of R, each client sending F
//! unreliable events per second of B bytes) until p99 latency or loss passes its bound, and
//! reports the largest number that held; the bare quinn fan-out relay is stepped the same
//! way.

use clap::Args;

use super::relay::{self, Measured, RelayArgs};
use super::{Report, Row, Target};

/// Flags of `bench ccu`.
#[derive(Debug, Clone, Args)]
pub struct CcuArgs {
    /// First number of clients.
    #[arg(long, default_value_t = 500)]
    pub start: usize,
    /// Clients added per step.
    #[arg(long, default_value_t = 500)]
    pub step: usize,
    /// Largest number of clients tried.
    #[arg(long, default_value_t = 6000)]
    pub max: usize,
    /// Players per room.
    #[arg(long, default_value_t = 8)]
    pub room_size: usize,
    /// Events per second per client.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 100)]
    pub bytes: usize,
    /// Seconds per step.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Bound on p99 latency, in milliseconds.
    #[arg(long, default_value_t = 20.0)]
    pub p99_ms: f64,
    /// Bound on loss, in percent.
    #[arg(long, default_value_t = 0.1)]
    pub loss_percent: f64,
}

fn holds(a: &CcuArgs, m: &Measured) -> bool {
    m.latency.p99_ms <= a.p99_ms && m.loss * 100.0 <= a.loss_percent
}

/// Steps until the bounds break; returns the largest count that held and its numbers.
async fn step<F, Fut>(a: &CcuArgs, mut measure: F) -> anyhow::Result<(usize, Option<Measured>)>
where
    F: FnMut(RelayArgs) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<Measured>>>,
{
    let mut best = (0, None);
    let mut n = a.start.max(a.room_size);
    while n <= a.max {
        let args = RelayArgs {
            clients: n,
            room_size: a.room_size,
            rate: a.rate,
            bytes: a.bytes,
            reliable: false,
            seconds: a.seconds,
            objects: false,
        };
        let Some(m) = measure(args).await? else { break };
        eprintln!(
            "  {n:>6} clients: p99 {:.2} ms, loss {:.3} %{}",
            m.latency.p99_ms,
            m.loss * 100.0,
            if holds(a, &m) {
                ""
            } else {
                "  (over the bounds)"
            }
        );
        if !holds(a, &m) {
            break;
        }
        best = (n, Some(m));
        n += a.step.max(1);
    }
    Ok(best)
}

/// The scenario.
pub async fn run(target: &Target, a: &CcuArgs, quiet: bool) -> anyhow::Result<Report> {
    eprintln!("switchboard:");
    let (sb_n, sb) = step(a, |r| async move {
        relay::measure_switchboard(target, &r, quiet)
            .await
            .map(Some)
    })
    .await?;
    let mut held = Row::alone("clients that held the bounds", sb_n as f64, "");
    if target.tls_dir.is_some() {
        eprintln!("baseline (bare quinn relay):");
        let (b_n, _) = step(a, |r| async move {
            relay::measure_baseline(target, &r, quiet).await
        })
        .await?;
        eprintln!("reference (plain UDP):");
        let (r_n, _) = step(
            a,
            |r| async move { relay::measure_reference(target, &r).await },
        )
        .await?;
        held = Row::vs("clients that held the bounds", sb_n as f64, b_n as f64, "")
            .with_reference(Some(r_n as f64));
    }
    let mut rows = vec![held];
    if let Some(m) = sb {
        rows.push(Row::alone(
            "p99 latency at that count",
            m.latency.p99_ms,
            "ms",
        ));
        rows.push(Row::alone("loss at that count", m.loss * 100.0, "%"));
        if let Some(cpu) = m.cpu_us_per_delivery {
            rows.push(Row::alone(
                "server CPU per delivery at that count",
                cpu,
                "µs",
            ));
        }
    }
    Ok(Report {
        scenario: format!(
            "ccu: rooms of {}, {} unreliable events/s of {} bytes per client, {} s per step from {} by {} up to {}; bounds p99 ≤ {} ms, loss ≤ {} %",
            a.room_size,
            a.rate,
            a.bytes,
            a.seconds,
            a.start,
            a.step,
            a.max,
            a.p99_ms,
            a.loss_percent
        ),
        baseline: "the bare quinn fan-out relay, stepped the same way".into(),
        reference: target.tls_dir.as_ref().map(|_| {
            "plain-UDP fan-out relay with recvmmsg/sendmmsg (no encryption), stepped the same way"
                .into()
        }),
        rounds: 1,
        rows,
    })
}
