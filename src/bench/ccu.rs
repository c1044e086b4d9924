//! `ccu`: raises the number of clients step by step (rooms of R, each client sending F
//! unreliable events per second of B bytes) until p99 latency or loss passes its bound,
//! then bisects between the last count that held and the first that did not, down to a
//! resolution, and reports the largest number that held; the bare quinn fan-out relay is
//! measured the same way. A count whose clients cannot even join (a loaded machine) counts
//! as over the bounds instead of ending the run.

use clap::Args;

use super::relay::{self, Measured, RelayArgs};
use super::{Report, Row, Target};

/// Flags of `bench ccu`.
#[derive(Debug, Clone, Args)]
pub struct CcuArgs {
    /// First number of clients.
    #[arg(long, default_value_t = 500)]
    pub start: usize,
    /// Clients added per step before bisecting.
    #[arg(long, default_value_t = 500)]
    pub step: usize,
    /// Bisect until the last count that held and the first that did not are this close.
    #[arg(long, default_value_t = 50)]
    pub resolution: usize,
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
    /// The rooms' flush window in ms (0 sends every event at once); the game server's
    /// default if not given.
    #[arg(long)]
    pub flush_window_ms: Option<u32>,
}

fn holds(a: &CcuArgs, m: &Measured) -> bool {
    m.latency.p99_ms <= a.p99_ms && m.loss * 100.0 <= a.loss_percent
}

/// What one count gave.
enum Tried {
    Held(Measured),
    Over,
    /// Nothing to measure with (a baseline that does not exist here).
    Unavailable,
}

/// Measures `n` clients; a failure to run them (joins too slow on a loaded machine) is a
/// count over the bounds, not the end of the run.
async fn try_count<F, Fut>(a: &CcuArgs, n: usize, measure: &mut F) -> Tried
where
    F: FnMut(RelayArgs) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<Measured>>>,
{
    let args = RelayArgs {
        clients: n,
        room_size: a.room_size,
        rate: a.rate,
        bytes: a.bytes,
        reliable: false,
        seconds: a.seconds,
        objects: false,
        flush_window_ms: a.flush_window_ms,
    };
    match measure(args).await {
        Ok(Some(m)) => {
            let held = holds(a, &m);
            eprintln!(
                "  {n:>6} clients: p99 {:.2} ms, loss {:.3} %{}",
                m.latency.p99_ms,
                m.loss * 100.0,
                if held { "" } else { "  (over the bounds)" }
            );
            if held { Tried::Held(m) } else { Tried::Over }
        }
        Ok(None) => Tried::Unavailable,
        Err(e) => {
            eprintln!("  {n:>6} clients: could not run ({e:#}): over the bounds");
            Tried::Over
        }
    }
}

/// One number of a run.
type Measure = fn(&Measured) -> Option<f64>;

/// Steps up until the bounds break, then bisects down to `resolution` (counts stay
/// whole rooms); returns the largest count that held and its numbers.
async fn step<F, Fut>(a: &CcuArgs, mut measure: F) -> anyhow::Result<(usize, Option<Measured>)>
where
    F: FnMut(RelayArgs) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<Measured>>>,
{
    let room = a.room_size.max(1);
    let whole = |n: usize| (n / room).max(1) * room;
    let mut best = (0, None);
    let mut over = None;
    let mut n = whole(a.start.max(room));
    while n <= a.max {
        match try_count(a, n, &mut measure).await {
            Tried::Held(m) => best = (n, Some(m)),
            Tried::Over => {
                over = Some(n);
                break;
            }
            Tried::Unavailable => return Ok(best),
        }
        n = whole(n + a.step.max(room));
    }
    // Between the last count that held and the first that did not.
    if let Some(mut hi) = over {
        let mut lo = best.0;
        while hi - lo > a.resolution.max(room) {
            let mid = whole(lo + (hi - lo) / 2);
            if mid <= lo || mid >= hi {
                break;
            }
            match try_count(a, mid, &mut measure).await {
                Tried::Held(m) => {
                    best = (mid, Some(m));
                    lo = mid;
                }
                Tried::Over => hi = mid,
                Tried::Unavailable => break,
            }
        }
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
    let (mut base, mut reference) = (None, None);
    let mut held = Row::alone("clients that held the bounds", sb_n as f64, "");
    if target.tls_dir.is_some() {
        eprintln!("baseline (bare quinn relay):");
        let (b_n, b) = step(a, |r| async move {
            relay::measure_baseline(target, &r, quiet).await
        })
        .await?;
        eprintln!("reference (plain UDP):");
        let (r_n, r) = step(
            a,
            |r| async move { relay::measure_reference(target, &r).await },
        )
        .await?;
        held = Row::vs("clients that held the bounds", sb_n as f64, b_n as f64, "")
            .with_reference(Some(r_n as f64));
        (base, reference) = (b, r);
    }
    let mut rows = vec![held];
    // Each at its own knee: what a delivery cost the server and the generator there.
    let at_knee: [(&str, &'static str, Measure); 6] = [
        ("p99 latency at the knee", "ms", |m| Some(m.latency.p99_ms)),
        ("loss at the knee", "%", |m| Some(m.loss * 100.0)),
        ("server CPU per delivery at the knee", "µs", |m| {
            m.cpu_us_per_delivery
        }),
        ("server packets per delivery at the knee", "", |m| {
            m.packets_per_delivery
        }),
        ("server syscalls per delivery at the knee", "", |m| {
            m.syscalls_per_delivery
        }),
        ("generator CPU per delivery at the knee", "µs", |m| {
            m.generator_us_per_delivery
        }),
    ];
    if let Some(m) = &sb {
        for (name, unit, f) in at_knee {
            let Some(v) = f(m) else { continue };
            let row = match base.as_ref().and_then(f) {
                Some(b) => Row::vs(name, v, b, unit),
                None => Row::alone(name, v, unit),
            };
            rows.push(row.with_reference(reference.as_ref().and_then(f)));
        }
    }
    Ok(Report {
        scenario: format!(
            "ccu: rooms of {}, {} unreliable events/s of {} bytes per client, {} s per step from {} by {} up to {}, then bisected to {} clients; bounds p99 ≤ {} ms, loss ≤ {} %",
            a.room_size,
            a.rate,
            a.bytes,
            a.seconds,
            a.start,
            a.step,
            a.max,
            a.resolution,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Latency;

    fn measured(p99_ms: f64) -> Measured {
        Measured {
            sent: 1,
            expected: 1,
            delivered: 1,
            per_second: 1.0,
            loss: 0.0,
            latency: Latency {
                p50_ms: p99_ms,
                p99_ms,
                p999_ms: p99_ms,
                samples: 1,
            },
            cpu_us_per_delivery: None,
            packets_per_delivery: None,
            syscalls_per_delivery: None,
            generator_us_per_delivery: None,
        }
    }

    fn args() -> CcuArgs {
        CcuArgs {
            start: 500,
            step: 500,
            resolution: 50,
            max: 6000,
            room_size: 8,
            rate: 20.0,
            bytes: 100,
            seconds: 1.0,
            p99_ms: 20.0,
            loss_percent: 0.1,
            flush_window_ms: None,
        }
    }

    #[tokio::test]
    async fn the_knee_is_found_by_bisection_within_the_resolution() {
        // A server that holds up to 2,130 clients; from 2,400 on they fail to even join.
        let mut tried = Vec::new();
        let (n, m) = step(&args(), |r| {
            tried.push(r.clients);
            async move {
                match r.clients {
                    c if c <= 2130 => Ok(Some(measured(5.0))),
                    c if c < 2400 => Ok(Some(measured(50.0))),
                    _ => anyhow::bail!("joins timed out"),
                }
            }
        })
        .await
        .unwrap();
        assert!(m.is_some());
        assert!(n <= 2130 && 2130 - n < 50, "found {n}");
        assert_eq!(n % 8, 0, "whole rooms");
        // Stepped to 2,480 (could not run: over), then about log2(500 / 50) more tries, not 250-client steps.
        assert_eq!(&tried[..5], &[496, 992, 1488, 1984, 2480]);
        assert!(tried.len() <= 10, "{tried:?}");
    }
}
