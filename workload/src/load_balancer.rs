//! `[load_balancer]`: weights per level, reserve ratio, priority threshold, prediction.

use serde::Deserialize;

use crate::LEVELS;

/// Load-balancer settings (`[load_balancer]` in workload.toml).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// Weight of each level 0..=9; 0 = never chosen.
    pub weights: [u32; LEVELS],
    /// Share of each priority group's servers held in reserve, 0.0 to 1.0.
    pub reserve_ratio: f64,
    /// Average level at which a group's reserve, then the next group, is used.
    pub priority_threshold: u8,
    /// Whether to also derive a level from the players the master has sent.
    #[serde(default)]
    pub predict_load: bool,
}

impl Default for LoadBalancerConfig {
    fn default() -> Self {
        LoadBalancerConfig {
            weights: [20, 17, 15, 13, 11, 9, 7, 5, 3, 0],
            reserve_ratio: 0.2,
            priority_threshold: 6,
            predict_load: false,
        }
    }
}

impl LoadBalancerConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.reserve_ratio) {
            return Err("load_balancer.reserve_ratio must be between 0 and 1".into());
        }
        if usize::from(self.priority_threshold) >= LEVELS {
            return Err("load_balancer.priority_threshold must be a level 0 to 9".into());
        }
        Ok(())
    }

    /// The weight of a level (levels above 9 count as 9).
    pub fn weight(&self, level: u8) -> u32 {
        self.weights[usize::from(level).min(LEVELS - 1)]
    }
}
