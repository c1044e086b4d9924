//! Feedback controllers (Photon's FeedbackControlSystem): each turns an input (CPU
//! percent, bytes per second, peers) into a load level 0 to 9. The input is averaged over
//! the last `window` samples; the level climbs while the average is above the current
//! level's `value` and descends while it is below the `value_down` of the level beneath.
//! Because `value_down` is at or below `value`, a load sitting at a boundary does not
//! flap. The server's level is the highest of its controllers.

use std::collections::VecDeque;

use crate::{LEVELS, Thresholds, Workload};

/// One controller.
#[derive(Debug, Clone)]
pub struct FeedbackController {
    thresholds: Thresholds,
    samples: VecDeque<u64>,
    window: usize,
    level: u8,
}

impl FeedbackController {
    /// A controller at level 0 whose window starts full of idle samples: a fresh server
    /// climbs only as fast as sustained load makes it, whatever its first sample says.
    pub fn new(thresholds: Thresholds, window: usize) -> Self {
        let window = window.max(1);
        FeedbackController {
            thresholds,
            samples: std::iter::repeat_n(0, window).collect(),
            window,
            level: 0,
        }
    }

    /// Adds a sample and returns the new level.
    pub fn feed(&mut self, input: u64) -> u8 {
        if self.samples.len() == self.window {
            self.samples.pop_front();
        }
        self.samples.push_back(input);
        let avg = self.average();
        let max = (LEVELS - 1) as u8;
        while self.level < max && avg > self.thresholds.value[usize::from(self.level)] {
            self.level += 1;
        }
        while self.level > 0 && avg < self.thresholds.value_down[usize::from(self.level) - 1] {
            self.level -= 1;
        }
        self.level
    }

    /// The average of the samples in the window.
    pub fn average(&self) -> u64 {
        let n = self.samples.len().max(1) as u64;
        self.samples.iter().sum::<u64>() / n
    }

    /// The current level.
    pub fn level(&self) -> u8 {
        self.level
    }
}

/// One sample of a game server's inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// CPU percent (0 to 100).
    pub cpu_percent: u64,
    /// Bytes in plus out per second.
    pub bandwidth: u64,
    /// Connected clients.
    pub peers: u64,
}

/// The level of each controller and of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels {
    /// CPU controller.
    pub cpu: u8,
    /// Bandwidth controller.
    pub bandwidth: u8,
    /// Peer-count controller.
    pub peers: u8,
}

impl Levels {
    /// The server's level: the highest of its controllers.
    pub fn overall(&self) -> u8 {
        self.cpu.max(self.bandwidth).max(self.peers)
    }
}

/// The three controllers of a game server.
#[derive(Debug, Clone)]
pub struct ControlSystem {
    cpu: FeedbackController,
    bandwidth: FeedbackController,
    peers: FeedbackController,
}

impl ControlSystem {
    /// Controllers with the thresholds and window of a workload file.
    pub fn new(w: &Workload) -> Self {
        let window = w.sampling.window;
        ControlSystem {
            cpu: FeedbackController::new(w.controllers.cpu.clone(), window),
            bandwidth: FeedbackController::new(w.controllers.bandwidth.clone(), window),
            peers: FeedbackController::new(w.controllers.peers.clone(), window),
        }
    }

    /// Feeds one sample to every controller.
    pub fn feed(&mut self, s: Sample) -> Levels {
        Levels {
            cpu: self.cpu.feed(s.cpu_percent),
            bandwidth: self.bandwidth.feed(s.bandwidth),
            peers: self.peers.feed(s.peers),
        }
    }

    /// The current levels.
    pub fn levels(&self) -> Levels {
        Levels {
            cpu: self.cpu.level(),
            bandwidth: self.bandwidth.level(),
            peers: self.peers.level(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        Thresholds {
            value: [10, 20, 30, 40, 50, 60, 70, 80, 90],
            value_down: [8, 18, 28, 38, 48, 58, 68, 78, 88],
        }
    }

    #[test]
    fn levels_climb_and_descend_with_the_input() {
        let mut c = FeedbackController::new(thresholds(), 1);
        assert_eq!(c.feed(0), 0);
        assert_eq!(c.feed(10), 0, "at the boundary: not above it");
        assert_eq!(c.feed(11), 1);
        assert_eq!(c.feed(55), 5, "several levels at once");
        assert_eq!(c.feed(100), 9);
        assert_eq!(c.feed(0), 0);
    }

    #[test]
    fn hysteresis_stops_flapping_at_a_boundary() {
        let mut c = FeedbackController::new(thresholds(), 1);
        c.feed(21);
        assert_eq!(c.level(), 2);
        // Oscillating around 20 (between value_down 18 and value 20) keeps level 2...
        for input in [19, 20, 19, 20, 19] {
            assert_eq!(c.feed(input), 2, "input {input}");
        }
        // ...only going below 18 descends, and then going back to 19 does not climb.
        assert_eq!(c.feed(17), 1);
        assert_eq!(c.feed(19), 1);
        assert_eq!(c.feed(20), 1);
        assert_eq!(c.feed(21), 2);
    }

    #[test]
    fn the_input_is_averaged_over_the_window() {
        let mut c = FeedbackController::new(thresholds(), 4);
        // One spike does not move a 4-sample average far.
        for _ in 0..3 {
            c.feed(0);
        }
        assert_eq!(c.feed(100), 2, "average 25");
        // Sustained load does.
        for _ in 0..3 {
            c.feed(100);
        }
        assert_eq!(c.level(), 9);
        assert_eq!(c.average(), 100);
    }

    #[test]
    fn a_fresh_controller_starts_idle() {
        let mut c = FeedbackController::new(thresholds(), 5);
        assert_eq!(c.average(), 0);
        // A start-up spike is one sample of five.
        assert_eq!(c.feed(100), 1, "average 20, not 100");
        for _ in 0..4 {
            c.feed(100);
        }
        assert_eq!(c.level(), 9, "sustained load climbs all the way");
    }

    #[test]
    fn the_server_level_is_the_highest_controller() {
        let w = Workload::default_embedded();
        let mut s = ControlSystem::new(&w);
        let mut last = Levels::default();
        for _ in 0..w.sampling.window {
            last = s.feed(Sample {
                cpu_percent: 35,
                bandwidth: 0,
                peers: 1900,
            });
        }
        assert_eq!(last.cpu, 3);
        assert_eq!(last.peers, 9);
        assert_eq!(last.overall(), 9);
        assert_eq!(s.levels(), last);
    }
}
