//! `switchboard bench SCENARIO`: a load generator for a running deployment (`--master`) or
//! a local one it starts itself, with a baseline measured in the same run for every
//! scenario, printed as a ratio.
//!
//! A local deployment is `switchboard dev` started as a **child process**, so the
//! server's CPU time and memory are read from `/proc/<pid>` apart from the load
//! generator's. Baselines run in another child process (`switchboard bench-baseline`): a
//! bare quinn fan-out relay and a bare quinn request/echo server with the same framing.

pub mod baseline;
pub mod ccu;
pub mod connect;
pub mod deployment;
pub mod failover;
pub mod idle;
pub mod matchmaking;
pub mod relay;
pub mod soak;
mod target;
#[cfg(target_os = "linux")]
pub mod udp;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use serde::Serialize;

pub use target::{ProcStats, Target};

/// Flags of `switchboard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A running master's client address; without it a local `switchboard dev` is started.
    #[arg(long, env = "SWITCHBOARD_BENCH_MASTER", global = true)]
    pub master: Option<String>,
    /// Certificate(s) to trust for `--master` (PEM).
    #[arg(long, env = "SWITCHBOARD_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Game servers of the local deployment.
    #[arg(long, default_value_t = 1, global = true)]
    pub game_servers: usize,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Runs of the whole scenario (Switchboard, then its baselines, each time). The report
    /// gives each measure's median and each ratio as the median of the per-run ratios:
    /// pairing runs taken close together cancels much of a shared machine's drift.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99), global = true)]
    pub rounds: u32,
    /// Runtime threads of the servers this bench starts (Switchboard and its baselines
    /// alike, their `--threads`); one per core if not given.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub server_threads: Option<u16>,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// N clients in rooms of R players, each sending F events/s of B bytes.
    Relay(relay::RelayArgs),
    /// Raise N until p99 latency or loss passes a bound; the largest N that held.
    Ccu(ccu::CcuArgs),
    /// connect → authenticate → redirected → joined, repeatedly.
    Connect(connect::ConnectArgs),
    /// K idle clients joined in rooms: the server's resident memory per connection.
    Idle(idle::IdleArgs),
    /// M listed games, C clients doing JoinRandomGame.
    Matchmaking(matchmaking::MatchmakingArgs),
    /// Faults against a local deployment of processes (master restart, game server
    /// killed, drain), timed against their targets. Local only.
    Failover(failover::FailoverArgs),
    /// Clients coming and going for a long time: the server's memory over the run.
    Soak(soak::SoakArgs),
}

/// A `JoinGame` (JoinOnly) operation for `game`.
pub fn join_op(game: &str) -> switchboard_protocol::MasterOp {
    switchboard_protocol::MasterOp::JoinGame {
        game: game.into(),
        mode: switchboard_protocol::JoinMode::JoinOnly,
        expected_users: vec![],
        create_options: switchboard_protocol::RoomOptions::default(),
    }
}

/// A latency histogram in microseconds (1 µs to 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Samples.
    pub samples: u64,
}

impl Latency {
    /// From a histogram in microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            samples: h.len(),
        }
    }
}

/// One line of a result table: a measure, the baseline's, and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is measured.
    pub measure: String,
    /// Switchboard's value.
    pub value: f64,
    /// The baseline's value, when it has one.
    pub baseline: Option<f64>,
    /// value / baseline.
    pub ratio: Option<f64>,
    /// The physical reference's value (plain UDP), when the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<f64>,
    /// value / reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_ratio: Option<f64>,
    /// Unit.
    pub unit: &'static str,
}

impl Row {
    /// A row with a baseline.
    pub fn vs(measure: impl Into<String>, value: f64, baseline: f64, unit: &'static str) -> Row {
        Row {
            measure: measure.into(),
            value,
            baseline: Some(baseline),
            ratio: (baseline != 0.0).then(|| value / baseline),
            reference: None,
            reference_ratio: None,
            unit,
        }
    }

    /// The same row with the physical reference's value next to it.
    pub fn with_reference(mut self, reference: Option<f64>) -> Row {
        self.reference = reference;
        self.reference_ratio = reference.filter(|r| *r != 0.0).map(|r| self.value / r);
        self
    }

    /// A row without a baseline.
    pub fn alone(measure: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            measure: measure.into(),
            value,
            baseline: None,
            ratio: None,
            reference: None,
            reference_ratio: None,
            unit,
        }
    }
}

/// A scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario and its parameters.
    pub scenario: String,
    /// What the baseline is.
    pub baseline: String,
    /// What the physical reference is, when the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Runs of the scenario the rows are medians of.
    pub rounds: usize,
    /// The rows.
    pub rows: Vec<Row>,
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

impl Report {
    /// Combines runs of one scenario: per measure (in order of first appearance), the
    /// median of each column, and each ratio as the median of the runs' own ratios.
    pub fn median(reports: Vec<Report>) -> Option<Report> {
        let first = reports.first()?.clone();
        let mut measures: Vec<(String, &'static str)> = Vec::new();
        for r in &reports {
            for row in &r.rows {
                if !measures.iter().any(|(m, _)| *m == row.measure) {
                    measures.push((row.measure.clone(), row.unit));
                }
            }
        }
        let rows = measures
            .into_iter()
            .map(|(measure, unit)| {
                let of = |f: &dyn Fn(&Row) -> Option<f64>| {
                    median(
                        reports
                            .iter()
                            .flat_map(|r| r.rows.iter().filter(|row| row.measure == measure))
                            .filter_map(f)
                            .collect(),
                    )
                };
                Row {
                    value: of(&|r| Some(r.value)).unwrap_or_default(),
                    baseline: of(&|r| r.baseline),
                    ratio: of(&|r| r.ratio),
                    reference: of(&|r| r.reference),
                    reference_ratio: of(&|r| r.reference_ratio),
                    measure,
                    unit,
                }
            })
            .collect();
        Some(Report {
            rounds: reports.iter().map(|r| r.rounds).sum(),
            rows,
            ..first
        })
    }

    /// A readable table.
    pub fn table(&self) -> String {
        let fmt = |v: f64| {
            if v.abs() >= 1000.0 {
                format!("{v:.0}")
            } else if v.abs() >= 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.3}")
            }
        };
        let value = |v: Option<f64>, unit: &str| {
            v.map(|v| format!("{} {unit}", fmt(v)))
                .unwrap_or_else(|| "-".into())
        };
        let ratio = |x: Option<f64>| x.map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into());
        let with_reference = self.reference.is_some();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.measure.clone(),
                    value(Some(r.value), r.unit),
                    value(r.baseline, r.unit),
                    ratio(r.ratio),
                ];
                if with_reference {
                    row.push(value(r.reference, r.unit));
                    row.push(ratio(r.reference_ratio));
                }
                row
            })
            .collect();
        let mut header = vec!["MEASURE", "SWITCHBOARD", "BASELINE", "RATIO"];
        let mut legend = format!("{}\nbaseline: {}", self.scenario, self.baseline);
        if self.rounds > 1 {
            legend.push_str(&format!(
                "\nmedians of {} rounds (ratios: median of each round's ratio)",
                self.rounds
            ));
        }
        if let Some(reference) = &self.reference {
            header.extend(["UDP REFERENCE", "RATIO"]);
            legend.push_str(&format!("\nreference: {reference}"));
        }
        format!("{legend}\n\n{}", crate::admin::table(&header, &rows))
    }
}

/// A progress bar on standard error (hidden for `--json`).
pub fn progress(len: u64, message: &str, hidden: bool) -> indicatif::ProgressBar {
    let bar = if hidden {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// Runs a scenario and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.rounds > 1 && matches!(args.scenario, Scenario::Idle(_) | Scenario::Soak(_)) {
        // Later rounds would reuse memory the first one freed, and under-count.
        anyhow::bail!(
            "idle and soak measure how much memory a fresh server grows by; run them with --rounds 1"
        );
    }
    if let Scenario::Failover(a) = &args.scenario {
        if args.master.is_some() {
            anyhow::bail!(
                "failover kills and restarts servers: it runs only against a local deployment it starts itself"
            );
        }
        let report = failover::run(a, args.json).await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", report.table());
        }
        return Ok(());
    }
    if let Some(n) = args.server_threads {
        target::set_server_threads(n);
    }
    // Matchmaking's users are sent to games they never reach: their reservations expire
    // after a second, as a real player's would once it arrived or gave up, so that no
    // user holds hundreds (see matchmaking.rs).
    let dev_args: &[&str] = match &args.scenario {
        Scenario::Matchmaking(_) => &["--ticket-ttl", "1"],
        _ => &[],
    };
    let target = Target::open(
        args.master.as_deref(),
        args.ca.as_deref(),
        args.game_servers,
        dev_args,
    )
    .await?;
    let quiet = args.json;
    let mut reports = Vec::new();
    for round in 1..=args.rounds {
        if args.rounds > 1 && !quiet {
            eprintln!("round {round} of {}", args.rounds);
        }
        reports.push(match &args.scenario {
            Scenario::Relay(a) => relay::run(&target, a, quiet).await?,
            Scenario::Ccu(a) => ccu::run(&target, a, quiet).await?,
            Scenario::Connect(a) => connect::run(&target, a, quiet).await?,
            Scenario::Idle(a) => idle::run(&target, a, quiet).await?,
            Scenario::Matchmaking(a) => matchmaking::run(&target, a, quiet).await?,
            Scenario::Soak(a) => soak::run(&target, a, quiet).await?,
            Scenario::Failover(_) => unreachable!("handled above"),
        });
    }
    let mut report = Report::median(reports).expect("at least one round");
    if let (Some(n), None) = (args.server_threads, &args.master) {
        report.scenario += &format!("; servers on {n} runtime thread(s)");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.table());
    }
    target.close().await;
    Ok(())
}

/// Seconds as a duration, for flags.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rows: Vec<Row>) -> Report {
        Report {
            scenario: "s".into(),
            baseline: "b".into(),
            reference: None,
            rounds: 1,
            rows,
        }
    }

    #[test]
    fn medians_take_the_middle_value() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn rounds_combine_per_measure_and_ratios_are_medians_of_each_rounds_ratio() {
        let r = Report::median(vec![
            report(vec![
                Row::vs("ops", 80.0, 100.0, "/s"),
                Row::alone("only", 1.0, ""),
            ]),
            report(vec![Row::vs("ops", 90.0, 90.0, "/s")]),
            report(vec![
                Row::vs("ops", 60.0, 120.0, "/s").with_reference(Some(30.0)),
            ]),
        ])
        .unwrap();
        assert_eq!(r.rounds, 3);
        let ops = &r.rows[0];
        assert_eq!(ops.value, 80.0);
        assert_eq!(ops.baseline, Some(100.0));
        // Ratios 0.8, 1.0 and 0.5: the median of the ratios, not 80 / 100 by chance.
        assert_eq!(ops.ratio, Some(0.8));
        assert_eq!(ops.reference, Some(30.0));
        assert_eq!(ops.reference_ratio, Some(2.0));
        assert_eq!(r.rows[1].measure, "only");
        assert_eq!(r.rows[1].baseline, None);
    }
}
