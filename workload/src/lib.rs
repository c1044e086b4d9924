//! `workload.toml` and the feedback controllers, sans-IO.
//!
//! - [`file`] — the file's schema, validation (errors name the field) and the embedded
//!   default;
//! - [`load_balancer`] — the master's `[load_balancer]` settings;
//! - [`controller`] — the game server's feedback controllers: an average over a window,
//!   ten levels, hysteresis between climbing and descending thresholds;
//! - [`cpu`] — a process's CPU time turned into a percent of the machine's capacity;
//! - [`rate`] — token buckets for per-peer rate limits.

pub mod controller;
pub mod cpu;
pub mod file;
pub mod load_balancer;
pub mod rate;

pub use controller::{ControlSystem, FeedbackController, Levels, Sample};
pub use cpu::ProcessCpu;
pub use file::{CpuSource, DEFAULT_WORKLOAD, Thresholds, Workload, WorkloadError};
pub use load_balancer::LoadBalancerConfig;
pub use rate::{Rate, RateLimits, TokenBucket};

/// Number of load levels (0 lowest to 9 highest).
pub const LEVELS: usize = 10;
