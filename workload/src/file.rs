//! The file: load-balancer weights and feedback-controller thresholds, with the
//! repository's `workload.toml` embedded as the default. Loading validates every field and names the
//! one that is wrong.

use std::path::Path;

use serde::Deserialize;

use crate::{LEVELS, LoadBalancerConfig};

/// The repository's `workload.toml`, the default.
pub const DEFAULT_WORKLOAD: &str = include_str!("../../workload.toml");

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// `[load_balancer]`.
    pub load_balancer: LoadBalancerConfig,
    /// `[sampling]`.
    pub sampling: Sampling,
    /// `[controllers.*]`.
    pub controllers: Controllers,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// Milliseconds between samples.
    pub interval_ms: u64,
    /// Samples averaged.
    pub window: usize,
    /// Whose CPU the CPU controller measures (default `process`).
    #[serde(default)]
    pub cpu: CpuSource,
}

/// Whose CPU the CPU controller measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuSource {
    /// The game server process's own CPU time, as a percent of the machine's capacity
    /// (all its cores): a build or another service on the same machine does not make
    /// this server look busy. The default.
    #[default]
    Process,
    /// The whole machine's CPU usage: the server takes fewer games when anything on the
    /// host is busy (Photon's behaviour; right for a machine dedicated to one server).
    Machine,
}

/// `[controllers]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controllers {
    /// CPU percent.
    pub cpu: Thresholds,
    /// Bytes per second in + out.
    pub bandwidth: Thresholds,
    /// Connected clients.
    pub peers: Thresholds,
}

/// Up and down thresholds of one controller, one per level boundary.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// `value[i]`: above it the level climbs from i to i + 1.
    pub value: [u64; LEVELS - 1],
    /// `value_down[i]`: below it the level descends from i + 1 to i.
    pub value_down: [u64; LEVELS - 1],
}

/// A workload file that cannot be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct WorkloadError {
    source_name: String,
    message: String,
}

impl Thresholds {
    fn validate(&self, name: &str) -> Result<(), String> {
        for i in 0..LEVELS - 1 {
            if i > 0 && self.value[i] <= self.value[i - 1] {
                return Err(format!(
                    "controllers.{name}.value must increase (entry {i})"
                ));
            }
            if self.value_down[i] > self.value[i] {
                return Err(format!(
                    "controllers.{name}.value_down[{i}] exceeds value[{i}]"
                ));
            }
        }
        Ok(())
    }
}

impl Workload {
    /// Parses and validates `text`; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, WorkloadError> {
        let err = |message: String| WorkloadError {
            source_name: source_name.to_string(),
            message,
        };
        // One line: the message and where (TOML's own display draws the line with a caret).
        let w: Workload = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let start = s.start.min(text.len());
                    let line = text[..start].matches('\n').count() + 1;
                    let content = text.lines().nth(line - 1).unwrap_or("").trim();
                    format!("line {line} `{content}`: ")
                })
                .unwrap_or_default();
            err(format!("{at}{}", e.message().trim()))
        })?;
        w.load_balancer.validate().map_err(err)?;
        if w.sampling.interval_ms == 0 || w.sampling.window == 0 {
            return Err(err(
                "sampling.interval_ms and sampling.window must be above 0".into(),
            ));
        }
        for (name, t) in [
            ("cpu", &w.controllers.cpu),
            ("bandwidth", &w.controllers.bandwidth),
            ("peers", &w.controllers.peers),
        ] {
            t.validate(name).map_err(err)?;
        }
        Ok(w)
    }

    /// Loads a file.
    pub fn load(path: &Path) -> Result<Self, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkloadError {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The embedded default.
    pub fn default_embedded() -> Self {
        Self::parse(DEFAULT_WORKLOAD, "embedded workload.toml")
            .expect("the shipped workload.toml is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_valid_and_matches_the_defaults() {
        let w = Workload::default_embedded();
        assert_eq!(
            w.load_balancer.weights,
            LoadBalancerConfig::default().weights
        );
        assert_eq!(w.controllers.peers.value[0], 200);
    }

    #[test]
    fn errors_name_the_field() {
        let broken = DEFAULT_WORKLOAD.replace("reserve_ratio = 0.2", "reserve_ratio = \"lots\"");
        let e = Workload::parse(&broken, "w.toml").unwrap_err().to_string();
        assert!(e.contains("w.toml") && e.contains("reserve_ratio"), "{e}");

        let broken = DEFAULT_WORKLOAD.replace(
            "weights = [20, 17, 15, 13, 11, 9, 7, 5, 3, 0]",
            "weights = [1, 2]",
        );
        let e = Workload::parse(&broken, "w.toml").unwrap_err().to_string();
        assert!(e.contains("weights"), "{e}");

        let broken = DEFAULT_WORKLOAD.replace("value_down = [180,", "value_down = [280,");
        let e = Workload::parse(&broken, "w.toml").unwrap_err().to_string();
        assert!(e.contains("controllers.peers.value_down[0]"), "{e}");

        let broken = DEFAULT_WORKLOAD.replace("cpu = \"process\"", "cpu = \"box\"");
        let e = Workload::parse(&broken, "w.toml").unwrap_err().to_string();
        assert!(e.contains("box") && e.contains("process"), "{e}");

        let machine = DEFAULT_WORKLOAD.replace("cpu = \"process\"", "cpu = \"machine\"");
        let w = Workload::parse(&machine, "w.toml").unwrap();
        assert_eq!(w.sampling.cpu, CpuSource::Machine);
        let unset = DEFAULT_WORKLOAD.replace("cpu = \"process\"", "");
        let w = Workload::parse(&unset, "w.toml").unwrap();
        assert_eq!(w.sampling.cpu, CpuSource::Process, "the default");

        let broken = DEFAULT_WORKLOAD.replace("[sampling]", "[sampling]\nspeed = 3");
        let e = Workload::parse(&broken, "w.toml").unwrap_err().to_string();
        assert!(e.contains("speed"), "{e}");

        let e = Workload::load(Path::new("/nonexistent/workload.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/workload.toml"), "{e}");
    }
}
