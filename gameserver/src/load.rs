//! Load sampling: every `sampling.interval_ms` the game server feeds its feedback
//! controllers with the machine's CPU usage, the bytes it moved (in + out, counted by
//! the server itself) and its peer count, and reports a change of level to the master at
//! once.
//!
//! CPU is the **machine's**, not the process's: a game server shares its host with the
//! OS and anything else running there, and what limits new games is how busy the machine
//! is (Photon reads the machine's counters too).
//!
//! [`LoadHook`] replaces the measured inputs with synthetic ones (tests, drills).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_workload::{ControlSystem, Levels, Sample};
use sysinfo::System;

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

/// Samples forever (the task is aborted on shutdown).
pub(crate) async fn run(shared: Arc<Shared>) {
    let w = &shared.config.workload;
    let mut control = ControlSystem::new(w);
    let mut sys = System::new();
    sys.refresh_cpu_usage();
    let period = Duration::from_millis(w.sampling.interval_ms);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_bytes = shared.stats.bytes_in.load(Ordering::Relaxed)
        + shared.stats.bytes_out.load(Ordering::Relaxed);
    let mut last_at = Instant::now();
    loop {
        tick.tick().await;
        sys.refresh_cpu_usage();
        let bytes = shared.stats.bytes_in.load(Ordering::Relaxed)
            + shared.stats.bytes_out.load(Ordering::Relaxed);
        let elapsed = last_at.elapsed().as_secs_f64().max(1e-3);
        last_at = Instant::now();
        let measured = Sample {
            cpu_percent: sys.global_cpu_usage().round() as u64,
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
