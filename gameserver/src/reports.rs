//! What the game server tells the master about its rooms: each room's lobby-relevant
//! state as its actor last published it, the rooms changed since the last report, and
//! the games clients were sent to that this server does not host.
//!
//! Every change to the published states and every batch of report frames happens under
//! one lock, so a batch is exact: a snapshot or a digest covers precisely the updates
//! sent before it on the link, never one still waiting. That is what lets the master
//! compare digests without false alarms.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::Bytes;
use dashmap::DashMap;
use switchboard_protocol::{GameState, GsToMaster, encode_frame, games_digest};
use tokio::sync::Notify;

/// What a batch of reports ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Only the changes.
    Changes,
    /// The changes, then a digest of every room.
    Digest,
    /// A snapshot of every room instead of the changes.
    Snapshot,
}

#[derive(Debug, Default)]
struct Pending {
    /// Rooms whose published state changed (or that ended) since the last batch.
    dirty: HashSet<String>,
    /// Games clients came to with a valid ticket that are not here.
    unknown: HashSet<String>,
    /// Joins with a valid ticket that were refused: (game, user).
    refused: HashSet<(String, String)>,
}

/// The reporting state.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    /// The lobby-relevant state of every room, as last published by its actor. Read
    /// freely; changed only under `pending`'s lock.
    published: DashMap<String, GameState>,
    pending: Mutex<Pending>,
    /// Wakes the master link when something is pending.
    pub(crate) changed: Notify,
}

/// Most unknown games remembered between two batches (clients cannot grow it further).
const MAX_UNKNOWN: usize = 1024;

impl Reports {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a room's new lobby-relevant state.
    pub(crate) fn publish(&self, state: GameState) {
        let mut p = self.pending();
        p.dirty.insert(state.game.clone());
        self.published.insert(state.game.clone(), state);
        drop(p);
        self.changed.notify_one();
    }

    /// A room ended.
    pub(crate) fn remove(&self, game: &str) {
        let mut p = self.pending();
        if self.published.remove(game).is_some() {
            p.dirty.insert(game.to_string());
        }
        drop(p);
        self.changed.notify_one();
    }

    /// A client came with a valid ticket for `game`, which is not here.
    pub(crate) fn unknown(&self, game: &str) {
        let mut p = self.pending();
        if p.unknown.len() < MAX_UNKNOWN {
            p.unknown.insert(game.to_string());
        }
        drop(p);
        self.changed.notify_one();
    }

    /// The join or create of `user` with a valid ticket for `game` was refused.
    pub(crate) fn join_refused(&self, game: &str, user: &str) {
        let mut p = self.pending();
        if p.refused.len() < MAX_UNKNOWN {
            p.refused.insert((game.to_string(), user.to_string()));
        }
        drop(p);
        self.changed.notify_one();
    }

    /// The published states (for metrics).
    pub(crate) fn published(&self) -> &DashMap<String, GameState> {
        &self.published
    }

    /// The frames to send now: the pending changes (or a snapshot instead), then what
    /// `closing` asks for; everything in one consistent cut.
    pub(crate) fn take(&self, closing: Closing) -> Vec<Bytes> {
        let mut p = self.pending();
        let dirty = std::mem::take(&mut p.dirty);
        let unknown = std::mem::take(&mut p.unknown);
        let refused = std::mem::take(&mut p.refused);
        let mut frames = Vec::new();
        if closing == Closing::Snapshot {
            let all: Vec<GameState> = self.published.iter().map(|e| e.value().clone()).collect();
            frames.push(encode_frame(&GsToMaster::Snapshot(all)));
        } else {
            for game in dirty {
                let msg = match self.published.get(&game) {
                    Some(state) => GsToMaster::GameUpdate(state.clone()),
                    None => GsToMaster::GameRemoved { game },
                };
                frames.push(encode_frame(&msg));
            }
        }
        for game in unknown {
            if !self.published.contains_key(&game) {
                frames.push(encode_frame(&GsToMaster::GameUnknown { game }));
            }
        }
        for (game, user_id) in refused {
            frames.push(encode_frame(&GsToMaster::JoinRefused { game, user_id }));
        }
        if closing == Closing::Digest {
            let all: Vec<GameState> = self.published.iter().map(|e| e.value().clone()).collect();
            frames.push(encode_frame(&GsToMaster::Digest(games_digest(&all))));
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{Lobby, decode_body};

    fn state(name: &str, users: &[&str]) -> GameState {
        GameState {
            game: name.into(),
            lobby: Lobby::default(),
            max_players: 0,
            is_open: true,
            is_visible: true,
            lobby_properties: Default::default(),
            users: users.iter().map(|u| u.to_string()).collect(),
            expected_users: vec![],
        }
    }

    fn decode(frames: &[Bytes]) -> Vec<GsToMaster> {
        frames
            .iter()
            .map(|f| decode_body(&f[4..]).unwrap())
            .collect()
    }

    #[test]
    fn changes_then_a_digest_of_exactly_what_was_sent() {
        let r = Reports::default();
        r.publish(state("a", &["x"]));
        r.publish(state("b", &[]));
        r.remove("b");
        r.unknown("ghost");
        let msgs = decode(&r.take(Closing::Digest));
        assert!(msgs.contains(&GsToMaster::GameUpdate(state("a", &["x"]))));
        assert!(msgs.contains(&GsToMaster::GameRemoved { game: "b".into() }));
        assert!(msgs.contains(&GsToMaster::GameUnknown {
            game: "ghost".into()
        }));
        let GsToMaster::Digest(d) = msgs.last().unwrap() else {
            panic!("the batch ends with a digest");
        };
        assert_eq!(*d, games_digest([&state("a", &["x"])]));
        assert!(r.take(Closing::Changes).is_empty(), "nothing is sent twice");
    }

    #[test]
    fn a_snapshot_replaces_the_changes() {
        let r = Reports::default();
        r.publish(state("a", &[]));
        r.publish(state("a", &["y"]));
        let msgs = decode(&r.take(Closing::Snapshot));
        assert_eq!(msgs, vec![GsToMaster::Snapshot(vec![state("a", &["y"])])]);
        let empty = decode(&r.take(Closing::Digest));
        assert_eq!(
            empty,
            vec![GsToMaster::Digest(games_digest([&state("a", &["y"])]))]
        );
    }

    #[test]
    fn unknown_games_are_bounded_and_a_hosted_game_is_never_called_unknown() {
        let r = Reports::default();
        for i in 0..5000 {
            r.unknown(&format!("g{i}"));
        }
        r.publish(state("g1", &[]));
        let msgs = decode(&r.take(Closing::Changes));
        let unknown = msgs
            .iter()
            .filter(|m| matches!(m, GsToMaster::GameUnknown { .. }))
            .count();
        assert_eq!(unknown, MAX_UNKNOWN - 1, "g1 is hosted after all");
    }
}
