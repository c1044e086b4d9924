//! A small writer of the Prometheus text exposition format, and a latency histogram with
//! fixed buckets. Both servers expose a handful of counters and gauges; this is all they
//! need.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds of [`Histogram`], in seconds.
pub const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];

/// A latency histogram (cumulative buckets, sum, count), safe to share.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// A count of live things (connections, tasks) that a guard keeps up: [`Gauge::enter`]
/// adds one, dropping the returned guard takes it away again, whichever way the holder
/// ends (return, panic, abort).
#[derive(Debug, Default)]
pub struct Gauge(std::sync::Arc<AtomicU64>);

impl Gauge {
    /// Counts one more live thing until the guard is dropped.
    pub fn enter(&self) -> GaugeGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self.0.clone())
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Keeps a [`Gauge`] one higher while it lives.
#[derive(Debug)]
pub struct GaugeGuard(std::sync::Arc<AtomicU64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Builds an exposition text.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty text.
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A gauge with no labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A counter with no labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, help, "counter");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A gauge with one label, one line per value.
    pub fn labeled_gauge(&mut self, name: &str, help: &str, label: &str, values: &[(&str, f64)]) {
        self.header(name, help, "gauge");
        for (l, v) in values {
            let _ = writeln!(self.out, "{name}{{{label}=\"{l}\"}} {v}");
        }
    }

    /// A counter with one label, one line per value.
    pub fn labeled_counter(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        self.header(name, help, "counter");
        for (l, v) in values {
            let _ = writeln!(self.out, "{name}{{{label}=\"{l}\"}} {v}");
        }
    }

    /// Histograms with one label, one series per value.
    pub fn histograms(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        series: &[(&str, &Histogram)],
    ) {
        self.header(name, help, "histogram");
        for (l, h) in series {
            for (b, bound) in h.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    self.out,
                    "{name}_bucket{{{label}=\"{l}\",le=\"{bound}\"}} {}",
                    b.load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                self.out,
                "{name}_bucket{{{label}=\"{l}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(self.out, "{name}_sum{{{label}=\"{l}\"}} {sum}");
            let _ = writeln!(self.out, "{name}_count{{{label}=\"{l}\"}} {count}");
        }
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_counts_live_guards() {
        let g = Gauge::default();
        let a = g.enter();
        let b = g.enter();
        assert_eq!(g.get(), 2);
        drop(a);
        assert_eq!(g.get(), 1);
        let task = std::thread::spawn(move || drop(b));
        task.join().unwrap();
        assert_eq!(g.get(), 0);
    }

    #[test]
    fn text_format() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(200));
        h.observe(Duration::from_millis(20));
        let mut e = Exposition::new();
        e.gauge("sb_rooms", "Rooms.", 3.0);
        e.labeled_gauge("sb_level", "Level.", "controller", &[("cpu", 2.0)]);
        e.histograms("sb_op_seconds", "Latency.", "op", &[("join", &h)]);
        let t = e.finish();
        assert!(t.contains("# TYPE sb_rooms gauge\nsb_rooms 3\n"));
        assert!(t.contains("sb_level{controller=\"cpu\"} 2\n"));
        assert!(t.contains("sb_op_seconds_bucket{op=\"join\",le=\"0.00025\"} 1\n"));
        assert!(t.contains("sb_op_seconds_bucket{op=\"join\",le=\"0.025\"} 2\n"));
        assert!(t.contains("sb_op_seconds_count{op=\"join\"} 2\n"));
    }
}
