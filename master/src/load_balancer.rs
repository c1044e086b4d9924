//! Choosing the game server for a new game, sans-IO (Photon's LoadBalancer).
//!
//! Each server reports a load level 0 (lowest) to 9 (highest); each level has a weight,
//! and a server is picked by weighted random among the candidates. Weight 0 means never.
//! Servers sit in priority groups (lower number first). Within a group, a reserve share of
//! the servers (by id order, the last ones) is held back until the average level of the
//! servers in use reaches `priority_threshold`; when a whole group is that loaded, the next
//! group is opened as well.

use rand::Rng;

pub use switchboard_workload::{LEVELS, LoadBalancerConfig};

/// A server that could take a game (already filtered to state Normal and reachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Server id.
    pub id: &'a str,
    /// Priority group.
    pub priority: u8,
    /// Effective load level (reported, or predicted if higher).
    pub level: u8,
}

/// Picks a server, or `None` when no candidate has a weight above 0.
pub fn choose<'a, R: Rng>(
    cfg: &LoadBalancerConfig,
    candidates: &[Candidate<'a>],
    rng: &mut R,
) -> Option<&'a str> {
    let pool = in_use(cfg, candidates);
    let total: u64 = pool.iter().map(|c| u64::from(cfg.weight(c.level))).sum();
    if total == 0 {
        return None;
    }
    let mut pick = rng.random_range(0..total);
    for c in &pool {
        let w = u64::from(cfg.weight(c.level));
        if pick < w {
            return Some(c.id);
        }
        pick -= w;
    }
    unreachable!("pick < total")
}

/// The servers currently in use: groups in priority order, each without its reserve
/// unless loaded, further groups only while the previous ones are loaded.
pub fn in_use<'a>(cfg: &LoadBalancerConfig, candidates: &[Candidate<'a>]) -> Vec<Candidate<'a>> {
    let mut usable: Vec<Candidate<'a>> = candidates
        .iter()
        .copied()
        .filter(|c| cfg.weight(c.level) > 0)
        .collect();
    usable.sort_by(|a, b| (a.priority, a.id).cmp(&(b.priority, b.id)));
    let mut pool = Vec::new();
    for group in usable.chunk_by(|a, b| a.priority == b.priority) {
        let reserve = ((group.len() as f64) * cfg.reserve_ratio).floor() as usize;
        let active = (group.len() - reserve).max(1);
        let mut used = &group[..active];
        if average(used) >= f64::from(cfg.priority_threshold) {
            used = group;
        }
        pool.extend_from_slice(used);
        if average(used) < f64::from(cfg.priority_threshold) {
            break;
        }
    }
    pool
}

fn average(servers: &[Candidate<'_>]) -> f64 {
    let sum: u32 = servers.iter().map(|c| u32::from(c.level)).sum();
    f64::from(sum) / servers.len().max(1) as f64
}

/// The level a peer count reaches with the given up-thresholds (`value[i]` is the input
/// above which level `i + 1` is reached).
pub fn level_for(thresholds: &[u64], input: u64) -> u8 {
    thresholds
        .iter()
        .take_while(|t| input > **t)
        .count()
        .min(LEVELS - 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashMap;

    fn c(id: &str, priority: u8, level: u8) -> Candidate<'_> {
        Candidate {
            id,
            priority,
            level,
        }
    }

    #[test]
    fn weight_zero_is_never_chosen() {
        let cfg = LoadBalancerConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(choose(&cfg, &[c("full", 0, 9)], &mut rng), None);
        for _ in 0..1000 {
            assert_eq!(
                choose(&cfg, &[c("full", 0, 9), c("ok", 0, 5)], &mut rng),
                Some("ok")
            );
        }
        assert_eq!(choose(&cfg, &[], &mut rng), None);
    }

    #[test]
    fn placements_follow_the_weights() {
        // Levels 0, 4 and 8 have weights 20, 11 and 3: expected shares 20/34, 11/34, 3/34.
        let cfg = LoadBalancerConfig {
            reserve_ratio: 0.0,
            priority_threshold: 9,
            ..LoadBalancerConfig::default()
        };
        let servers = [c("a", 0, 0), c("b", 0, 4), c("c", 0, 8)];
        let mut rng = StdRng::seed_from_u64(42);
        let n = 34_000;
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for _ in 0..n {
            *counts
                .entry(choose(&cfg, &servers, &mut rng).unwrap())
                .or_default() += 1;
        }
        // Chi-squared with 2 degrees of freedom; 13.8 is the 0.1% critical value.
        let expected = [("a", 20.0), ("b", 11.0), ("c", 3.0)];
        let chi2: f64 = expected
            .iter()
            .map(|(id, w)| {
                let e = f64::from(n) * w / 34.0;
                let o = f64::from(counts[id]);
                (o - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 13.8, "chi2 {chi2}, counts {counts:?}");
    }

    #[test]
    fn reserve_is_held_back_until_the_group_is_loaded() {
        let cfg = LoadBalancerConfig {
            reserve_ratio: 0.2,
            priority_threshold: 6,
            ..LoadBalancerConfig::default()
        };
        let ids =
            |pool: Vec<Candidate<'_>>| pool.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
        let light: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| c(id, 0, 1))
            .collect();
        assert_eq!(
            ids(in_use(&cfg, &light)),
            ["a", "b", "c", "d"],
            "e is the reserve"
        );
        let loaded: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| c(id, 0, 7))
            .collect();
        assert_eq!(ids(in_use(&cfg, &loaded)).len(), 5, "the reserve opens");
    }

    #[test]
    fn the_next_priority_group_opens_only_when_the_first_is_loaded() {
        let cfg = LoadBalancerConfig {
            reserve_ratio: 0.0,
            priority_threshold: 6,
            ..LoadBalancerConfig::default()
        };
        let ids =
            |pool: Vec<Candidate<'_>>| pool.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
        let calm = [c("p0", 0, 2), c("p1", 1, 0)];
        assert_eq!(ids(in_use(&cfg, &calm)), ["p0"]);
        let busy = [c("p0", 0, 7), c("p1", 1, 0)];
        assert_eq!(ids(in_use(&cfg, &busy)), ["p0", "p1"]);
        // A group whose servers are all at weight 0 is skipped entirely.
        let full = [c("p0", 0, 9), c("p1", 1, 3)];
        assert_eq!(ids(in_use(&cfg, &full)), ["p1"]);
    }

    #[test]
    fn the_same_seed_gives_the_same_placements() {
        let cfg = LoadBalancerConfig::default();
        let servers = [c("a", 0, 0), c("b", 0, 3), c("c", 0, 5)];
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| choose(&cfg, &servers, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
    }

    #[test]
    fn levels_from_thresholds() {
        let t = [10, 20, 30];
        assert_eq!(level_for(&t, 0), 0);
        assert_eq!(level_for(&t, 10), 0);
        assert_eq!(level_for(&t, 11), 1);
        assert_eq!(level_for(&t, 31), 3);
    }

    #[test]
    fn bad_config_names_the_field() {
        let cfg = LoadBalancerConfig {
            reserve_ratio: 1.5,
            ..LoadBalancerConfig::default()
        };
        assert!(cfg.validate().unwrap_err().contains("reserve_ratio"));
    }
}
