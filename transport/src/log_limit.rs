//! Logging that an attacker cannot turn into a flood: at most one line per interval, and
//! that line says how many were left out since the last one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A gate for one kind of log line.
#[derive(Debug)]
pub struct LogLimit {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimit {
    /// At most one line every `every`.
    pub const fn new(every: Duration) -> Self {
        LogLimit {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Whether to log now (at `now`): `Some(n)` with the number of lines left out since
    /// the last one, or `None` to stay quiet (and count this one).
    pub fn check(&self, now: Instant) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match st.0 {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                st.1 += 1;
                None
            }
            _ => {
                st.0 = Some(now);
                Some(std::mem::take(&mut st.1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let l = LogLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(l.check(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(l.check(t0 + Duration::from_millis(100 * i)), None);
        }
        assert_eq!(l.check(t0 + Duration::from_secs(1)), Some(5));
        assert_eq!(l.check(t0 + Duration::from_millis(1500)), None);
    }
}
