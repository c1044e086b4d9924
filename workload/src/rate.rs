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
    /// Bytes of events' and state updates' payloads, per connection on a game server:
    /// what one client may make the server relay, whatever the size of each event.
    pub event_bytes: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            joins: Rate::new(2.0, 5.0),
            ops: Rate::new(10.0, 30.0),
            events: Rate::new(300.0, 600.0),
            // 256 KiB/s is over a hundred times what a 20 Hz game sends. The burst
            // is a second of it: a reader's queue on the server (1 MiB, and 1 MiB in
            // flight) must take several senders' bursts at once, or an honest reader
            // is cut off as a slow consumer. A larger event (a frame may be 512 KiB)
            // passes from a full bucket and leaves a debt.
            event_bytes: Rate::new(256.0 * 1024.0, 256.0 * 1024.0),
        }
    }
}

impl RateLimits {
    /// No limits.
    pub const UNLIMITED: RateLimits = RateLimits {
        joins: Rate::UNLIMITED,
        ops: Rate::UNLIMITED,
        events: Rate::UNLIMITED,
        event_bytes: Rate::UNLIMITED,
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
        self.try_take_n(now, 1.0)
    }

    /// Takes `n` tokens at `now` if there are that many. An action larger than the
    /// burst passes when the bucket is full and leaves it in debt, which the rate pays
    /// back before anything else passes: over time no more than the rate gets through,
    /// and nothing is too large to ever pass.
    pub fn try_take_n(&mut self, now: Instant, n: f64) -> bool {
        if self.rate.is_unlimited() {
            return true;
        }
        let burst = self.rate.burst.max(1.0);
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate.per_second).min(burst);
        }
        self.last = Some(now);
        if self.tokens >= n.min(burst) {
            self.tokens -= n;
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
    fn sized_takes_hold_the_rate_and_a_large_one_passes_into_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::new(1000.0, 4000.0));
        // The burst: 4,000 bytes in 100-byte takes, then nothing at the same instant.
        assert_eq!((0..100).filter(|_| b.try_take_n(t0, 100.0)).count(), 40);
        // One second later: 1,000 more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| b.try_take_n(t1, 100.0)).count(), 10);
        // Larger than the burst: refused until the bucket is full, then passes once and
        // leaves a debt the rate pays back (10,000 bytes: 6 s of debt after the burst).
        let t2 = t1 + Duration::from_secs(2);
        assert!(!b.try_take_n(t2, 10_000.0), "2,000 of 4,000 tokens");
        let t3 = t1 + Duration::from_secs(4);
        assert!(b.try_take_n(t3, 10_000.0), "a full bucket lets it through");
        assert!(
            !b.try_take_n(t3 + Duration::from_millis(5_900), 1.0),
            "in debt"
        );
        assert!(
            b.try_take_n(t3 + Duration::from_millis(6_100), 1.0),
            "paid back"
        );
    }

    #[test]
    fn unlimited_always_passes() {
        let mut b = TokenBucket::new(Rate::UNLIMITED);
        assert!((0..100_000).all(|_| b.try_take(Instant::now())));
    }
}
