//! Load sampling: every `sampling.interval_ms` the game server feeds its feedback
//! controllers with its CPU usage, the bytes it moved (in + out, counted by the server
//! itself) and its peer count, and reports a change of level to the master at once.
//!
//! CPU is, by default, the **process's** own CPU time as a percent of the machine's
//! capacity (`sampling.cpu = "process"`): on a machine shared with a build, a load
//! generator or another service, that work does not make this server refuse games.
//! `sampling.cpu = "machine"` measures the whole machine instead, as Photon does, for a
//! host dedicated to one game server. The first measurement after start (the server's
//! own start-up) is not fed, and the controllers start from an idle window.
//!
//! [`LoadHook`] replaces the measured inputs with synthetic ones (tests, drills).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_workload::{ControlSystem, CpuSource, Levels, ProcessCpu, Sample};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::Shared;

/// Overrides the measured load inputs; `None` fields keep the measured value.
#[derive(Debug, Clone, Default)]
pub struct LoadHook {
    inner: Arc<Mutex<Option<SyntheticLoad>>>,
}

/// Synthetic inputs for [`LoadHook`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyntheticLoad {
    /// CPU percent to report instead of the machine's.
    pub cpu_percent: Option<u64>,
    /// Bytes per second to report instead of the counted ones.
    pub bandwidth: Option<u64>,
    /// Peers to report instead of the connected ones.
    pub peers: Option<u64>,
}

impl LoadHook {
    /// Feeds these inputs from the next sample on.
    pub fn set(&self, load: SyntheticLoad) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Some(load);
    }

    /// Back to measured inputs.
    pub fn clear(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn apply(&self, measured: Sample) -> Sample {
        match *self.inner.lock().unwrap_or_else(|p| p.into_inner()) {
            None => measured,
            Some(s) => Sample {
                cpu_percent: s.cpu_percent.unwrap_or(measured.cpu_percent),
                bandwidth: s.bandwidth.unwrap_or(measured.bandwidth),
                peers: s.peers.unwrap_or(measured.peers),
            },
        }
    }
}

/// Reads the CPU input: the process's share of the machine, or the machine's usage.
struct CpuInput {
    source: CpuSource,
    /// `None` where the system cannot be read: no CPU input, the other controllers work.
    sys: Option<System>,
    pid: Option<Pid>,
    process: ProcessCpu,
}

impl CpuInput {
    fn new(source: CpuSource) -> Self {
        let mut sys = System::new()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read the CPU: no CPU load input"))
            .ok();
        if let Some(s) = sys.as_mut() {
            s.refresh_cpu_usage();
        }
        let cores = sys.as_ref().map_or(0, |s| s.cpus().len()).max(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        );
        let mut input = CpuInput {
            source,
            sys,
            pid: sysinfo::get_current_pid().ok(),
            process: ProcessCpu::new(cores as u32),
        };
        // The baseline reading.
        let _ = input.read();
        input
    }

    /// Percent since the last reading (`None` if the process cannot be read).
    fn read(&mut self) -> Option<u64> {
        let sys = self.sys.as_mut()?;
        match self.source {
            CpuSource::Machine => {
                sys.refresh_cpu_usage();
                Some(sys.global_cpu_usage().round() as u64)
            }
            CpuSource::Process => {
                let pid = self.pid?;
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_cpu(),
                );
                let cpu_ms = sys.process(pid)?.accumulated_cpu_time();
                self.process.sample(Instant::now(), cpu_ms)
            }
        }
    }
}

/// Samples forever (the task is aborted on shutdown). The first tick comes one interval
/// after start: the measurement would otherwise be the start-up itself.
pub(crate) async fn run(shared: Arc<Shared>) {
    let w = &shared.config.workload;
    let mut control = ControlSystem::new(w);
    let mut cpu = CpuInput::new(w.sampling.cpu);
    let period = Duration::from_millis(w.sampling.interval_ms);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_bytes = shared.stats.bytes_in.load(Ordering::Relaxed)
        + shared.stats.bytes_out.load(Ordering::Relaxed);
    let mut last_at = Instant::now();
    loop {
        tick.tick().await;
        let bytes = shared.stats.bytes_in.load(Ordering::Relaxed)
            + shared.stats.bytes_out.load(Ordering::Relaxed);
        let elapsed = last_at.elapsed().as_secs_f64().max(1e-3);
        last_at = Instant::now();
        let measured = Sample {
            cpu_percent: cpu.read().unwrap_or(0),
            bandwidth: ((bytes - last_bytes) as f64 / elapsed) as u64,
            peers: u64::from(shared.stats.peers.load(Ordering::Relaxed)),
        };
        last_bytes = bytes;
        let levels = control.feed(shared.load_hook.apply(measured));
        shared.set_levels(levels);
    }
}

impl Shared {
    /// Records new controller levels; a change of the overall level is reported at once.
    fn set_levels(&self, levels: Levels) {
        let old = std::mem::replace(
            &mut *self.levels.lock().unwrap_or_else(|p| p.into_inner()),
            levels,
        );
        if old.overall() != levels.overall() {
            tracing::info!(
                from = old.overall(),
                to = levels.overall(),
                "load level changed"
            );
            self.report_now.notify_one();
        }
    }
}
