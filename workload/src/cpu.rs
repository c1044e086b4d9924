//! A process's CPU use as a percent of the machine's capacity, from its accumulated CPU
//! time (the OS's counter) read at explicit instants: sans-IO, so it is tested with
//! made-up readings.

use std::time::Instant;

/// Turns readings of a process's accumulated CPU time into percents of the machine.
#[derive(Debug, Clone)]
pub struct ProcessCpu {
    cores: u32,
    last: Option<(Instant, u64)>,
}

impl ProcessCpu {
    /// A meter for a machine with `cores` logical cores.
    pub fn new(cores: u32) -> Self {
        ProcessCpu {
            cores: cores.max(1),
            last: None,
        }
    }

    /// Feeds the accumulated CPU time (milliseconds) read at `now`; returns the percent
    /// of the machine's capacity used since the previous reading (0 to 100), or `None`
    /// for the first reading.
    pub fn sample(&mut self, now: Instant, cpu_ms: u64) -> Option<u64> {
        let previous = self.last.replace((now, cpu_ms));
        let (then, before) = previous?;
        let wall_ms = now.saturating_duration_since(then).as_secs_f64() * 1000.0;
        if wall_ms <= 0.0 {
            return Some(0);
        }
        let used = cpu_ms.saturating_sub(before) as f64;
        let percent = used / (wall_ms * f64::from(self.cores)) * 100.0;
        Some(percent.round().clamp(0.0, 100.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cpu_time_over_wall_time_and_cores() {
        let t0 = Instant::now();
        let mut m = ProcessCpu::new(4);
        assert_eq!(
            m.sample(t0, 10_000),
            None,
            "the first reading is a baseline"
        );
        // One core busy for the whole second: a quarter of a 4-core machine.
        assert_eq!(m.sample(t0 + Duration::from_secs(1), 11_000), Some(25));
        // Idle.
        assert_eq!(m.sample(t0 + Duration::from_secs(2), 11_000), Some(0));
        // All four cores for half a second: 2 s of CPU in 0.5 s of wall time.
        assert_eq!(
            m.sample(t0 + Duration::from_millis(2500), 13_000),
            Some(100)
        );
        // A counter that went backwards (never, but) reads as idle, not as a wrap.
        assert_eq!(m.sample(t0 + Duration::from_secs(3), 12_000), Some(0));
        // More than the machine can do (rounding in the OS counter) is capped.
        assert_eq!(m.sample(t0 + Duration::from_secs(4), 20_000), Some(100));
    }
}
