//! Token buckets for per-peer rate limits, sans-IO: a bucket holds up to `burst` tokens,
//! refills at `rate` tokens a second, and an action passes when it can take one. Time is
//! passed in.

use std::time::Instant;

/// A rate and a burst; a rate of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held (the largest burst after a quiet spell).
    pub burst: f64,
}

impl Rate {
    /// `per_second` with a burst of `burst`.
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Rate { per_second, burst }
    }

    /// No limit.
    pub const UNLIMITED: Rate = Rate::new(0.0, 0.0);

    /// Whether this is no limit at all.
    pub fn is_unlimited(&self) -> bool {
        self.per_second <= 0.0
    }
}

/// The per-peer rate limits of the servers' listeners. The defaults leave a real game
/// alone (a few joins and property changes a second; 60 state updates a second plus
/// bursts of reliable calls) and stop a peer that sends thousands; a deployment raises
/// them with flags (the bench sets its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// CreateGame, JoinGame, JoinRandomGame (master), CreateGame and JoinGame (game
    /// server), per connection.
    pub joins: Rate,
    /// Every other operation, per connection.
    pub ops: Rate,
    /// Events (reliable and unreliable together), per connection on a game server.
    pub events: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            joins: Rate::new(2.0, 5.0),
            ops: Rate::new(10.0, 30.0),
            events: Rate::new(300.0, 600.0),
        }
    }
}

impl RateLimits {
    /// No limits.
    pub const UNLIMITED: RateLimits = RateLimits {
        joins: Rate::UNLIMITED,
        ops: Rate::UNLIMITED,
        events: Rate::UNLIMITED,
    };
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> Self {
        TokenBucket {
            rate,
            tokens: rate.burst.max(1.0),
            last: None,
        }
    }

    /// Takes a token at `now` if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.rate.is_unlimited() {
            return true;
        }
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens =
                (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst.max(1.0));
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::new(10.0, 5.0));
        let passed = (0..20).filter(|_| b.try_take(t0)).count();
        assert_eq!(passed, 5, "the burst");
        // One second later: ten more tokens, capped at the burst of five.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| b.try_take(t1)).count(), 5);
        // Steady at the rate: one every 100 ms passes.
        for i in 1..=50 {
            assert!(b.try_take(t1 + Duration::from_millis(100 * i)), "take {i}");
        }
        // Twice the rate: half pass.
        let t2 = t1 + Duration::from_secs(5);
        let passed = (1..=100)
            .filter(|i| b.try_take(t2 + Duration::from_millis(50 * i)))
            .count();
        assert!((50..=56).contains(&passed), "{passed}");
    }

    #[test]
    fn unlimited_always_passes() {
        let mut b = TokenBucket::new(Rate::UNLIMITED);
        assert!((0..100_000).all(|_| b.try_take(Instant::now())));
    }
}
