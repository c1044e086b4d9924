//! Games and the per-lobby indexes that serve game lists and random matchmaking without
//! scanning every game.
//!
//! Each lobby keeps its listed games in creation order, the subset that is joinable, and
//! posting lists from each (lobby-listed property, value) and each `max_players` to the
//! joinable games that have it. [`MasterState::reindex`] is the one place that keeps them
//! in step with a game: every change to a game ends with a call to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use switchboard_protocol::{GameListEntry, GameState, Lobby, ServerState, Value};

use crate::state::MasterState;

/// A game as the master knows it.
#[derive(Debug, Clone)]
pub struct Game {
    /// The game's name.
    pub name: String,
    /// The hosting server's id.
    pub server: String,
    /// Creation order (for FillRoom and serial matching).
    pub seq: u64,
    /// Reported state; until the game server confirms the game, built from the request.
    pub state: GameState,
    /// Whether the game server has reported the game.
    pub confirmed: bool,
    /// Players sent here who have not arrived yet, with the time they stop counting.
    pub joining: Joining,
    pub(crate) indexed: Option<Indexed>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Indexed {
    lobby: Lobby,
    listed: bool,
    joinable: bool,
    keys: Vec<(String, Vec<u8>)>,
    max_players: u32,
}

/// One lobby's indexes and subscribers.
#[derive(Debug, Default)]
pub struct LobbyIndex {
    /// Listed (visible) games by creation order.
    pub(crate) listed: BTreeMap<u64, String>,
    /// Joinable games by creation order.
    pub(crate) joinable: BTreeSet<u64>,
    /// (key, encoded value) → joinable games with that lobby-listed property.
    pub(crate) postings: HashMap<(String, Vec<u8>), BTreeSet<u64>>,
    /// max_players → joinable games with it.
    pub(crate) by_max_players: HashMap<u32, BTreeSet<u64>>,
    /// Games whose list entry changed since the last update, with the change's version.
    pub(crate) dirty: BTreeMap<String, u64>,
    /// Peers in the lobby, with the version at which they received their full list.
    pub(crate) subscribers: BTreeMap<u64, u64>,
    /// Sequence number of the last serial match.
    pub(crate) serial_cursor: u64,
}

impl LobbyIndex {
    pub(crate) fn is_unused(&self) -> bool {
        self.listed.is_empty() && self.subscribers.is_empty() && self.dirty.is_empty()
    }
}

/// The canonical bytes of a property value, for exact-match indexing.
pub(crate) fn value_key(v: &Value) -> Vec<u8> {
    postcard::to_stdvec(v).expect("encoding into memory cannot fail")
}

/// Players sent to a game who have not arrived yet, each with the time it stops counting
/// (a user may be on its way twice, with two tickets), and how many entries each user
/// has: whether a user is on its way is one lookup, however many are (it is asked for
/// every candidate of a random match).
#[derive(Debug, Clone, Default)]
pub struct Joining {
    list: Vec<(String, Instant)>,
    users: HashMap<String, u32>,
}

impl Joining {
    /// Adds an entry.
    pub fn push(&mut self, entry: (String, Instant)) {
        *self.users.entry(entry.0.clone()).or_default() += 1;
        self.list.push(entry);
    }

    /// Keeps the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&(String, Instant)) -> bool) {
        let users = &mut self.users;
        self.list.retain(|e| {
            let kept = keep(e);
            if !kept && let Some(n) = users.get_mut(&e.0) {
                *n -= 1;
                if *n == 0 {
                    users.remove(&e.0);
                }
            }
            kept
        });
    }

    /// The entries, in the order they were added.
    pub fn iter(&self) -> std::slice::Iter<'_, (String, Instant)> {
        self.list.iter()
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `user` is on its way.
    pub fn contains_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Each user on its way, once.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }
}

impl From<Vec<(String, Instant)>> for Joining {
    fn from(list: Vec<(String, Instant)>) -> Self {
        let mut j = Joining::default();
        for e in list {
            j.push(e);
        }
        j
    }
}

/// Entries (actors, joining players, reserved slots) up to which a game is counted by
/// comparing each with the ones before it.
const SMALL_GAME: usize = 32;

impl Game {
    /// Actors, joining players and reserved slots, each user counted once. Small games
    /// (the usual case; this runs for every candidate of a random match) are counted
    /// without allocating; a large one through a set, so that a game many players are
    /// sent to costs linear time per count, not quadratic.
    pub fn player_count(&self) -> u32 {
        let users = &self.state.users;
        let joining = &self.joining;
        let expected = &self.state.expected_users;
        if users.len() + joining.len() + expected.len() > SMALL_GAME {
            let mut all: std::collections::HashSet<&str> =
                users.iter().map(String::as_str).collect();
            all.extend(joining.users());
            all.extend(expected.iter().map(String::as_str));
            return all.len() as u32;
        }
        let mut n = users.len();
        n += joining
            .users()
            .filter(|u| !users.iter().any(|v| v == u))
            .count();
        for (i, u) in expected.iter().enumerate() {
            if !users.contains(u) && !joining.contains_user(u) && !expected[..i].contains(u) {
                n += 1;
            }
        }
        n as u32
    }

    /// Whether `user` already holds a place (actor, joining, or expected).
    pub fn counts(&self, user: &str) -> bool {
        self.state.users.iter().any(|u| u == user)
            || self.joining.contains_user(user)
            || self.state.expected_users.iter().any(|u| u == user)
    }

    /// Whether the game has room for one more player (not counting `user` twice).
    pub fn has_room_for(&self, user: &str, extra_expected: usize) -> bool {
        let max = self.state.max_players;
        let joiner = usize::from(!self.counts(user));
        max == 0 || self.player_count() as usize + joiner + extra_expected <= max as usize
    }

    fn listed(&self, server_state: ServerState) -> bool {
        self.state.is_visible && server_state != ServerState::Offline
    }

    /// Listed, open, not full, and its server reporting.
    fn joinable(&self, server_state: ServerState, server_responsive: bool) -> bool {
        let max = self.state.max_players;
        self.listed(server_state)
            && server_responsive
            && self.state.is_open
            && (max == 0 || self.player_count() < max)
    }
}

impl MasterState {
    pub(crate) fn server_state(&self, server: &str) -> ServerState {
        self.servers
            .get(server)
            .map(|s| s.load.state)
            .unwrap_or(ServerState::Normal)
    }

    fn server_responsive(&self, server: &str) -> bool {
        self.servers.get(server).is_some_and(|s| s.responsive)
    }

    /// Brings the lobby indexes and the user index in step with game `name` (present or
    /// gone) and marks its list entry changed.
    pub(crate) fn reindex(&mut self, name: &str) {
        // The usual change (a player admitted, arrived or gone) moves the game in no
        // index: only its list entry changed.
        if let Some(g) = self.games.get(name)
            && let Some(old) = &g.indexed
        {
            let st = self.server_state(&g.server);
            if old.listed == g.listed(st)
                && old.joinable == g.joinable(st, self.server_responsive(&g.server))
                && old.max_players == g.state.max_players
                && old.lobby == g.state.lobby
                && old.keys.len() == g.state.lobby_properties.len()
                && old
                    .keys
                    .iter()
                    .zip(&g.state.lobby_properties)
                    .all(|((k, v), (nk, nv))| k == nk && *v == value_key(nv))
            {
                if old.listed
                    && let Some(index) = self.lobbies.get_mut(&old.lobby)
                {
                    self.changes += 1;
                    index.dirty.insert(name.to_string(), self.changes);
                }
                return;
            }
        }
        let new = self.games.get(name).map(|g| {
            let st = self.server_state(&g.server);
            Indexed {
                lobby: g.state.lobby.clone(),
                listed: g.listed(st),
                joinable: g.joinable(st, self.server_responsive(&g.server)),
                keys: g
                    .state
                    .lobby_properties
                    .iter()
                    .map(|(k, v)| (k.clone(), value_key(v)))
                    .collect(),
                max_players: g.state.max_players,
            }
        });
        let (old, seq) = match self.games.get_mut(name) {
            Some(g) => (g.indexed.take(), g.seq),
            None => (None, 0),
        };
        if let Some(old) = &old {
            self.unindex(name, old, seq);
        }
        if let Some(new) = new {
            let index = self.lobbies.entry(new.lobby.clone()).or_default();
            if new.listed {
                index.listed.insert(seq, name.to_string());
            }
            if new.joinable {
                index.joinable.insert(seq);
                for key in &new.keys {
                    index.postings.entry(key.clone()).or_default().insert(seq);
                }
                index
                    .by_max_players
                    .entry(new.max_players)
                    .or_default()
                    .insert(seq);
            }
            if new.listed
                || old
                    .as_ref()
                    .is_some_and(|o| o.listed && o.lobby == new.lobby)
            {
                self.changes += 1;
                index.dirty.insert(name.to_string(), self.changes);
            }
            self.games.get_mut(name).expect("present").indexed = Some(new);
        }
    }

    fn unindex(&mut self, name: &str, old: &Indexed, seq: u64) {
        let Some(index) = self.lobbies.get_mut(&old.lobby) else {
            return;
        };
        index.listed.remove(&seq);
        if old.joinable {
            index.joinable.remove(&seq);
            for key in &old.keys {
                if let Some(set) = index.postings.get_mut(key) {
                    set.remove(&seq);
                    if set.is_empty() {
                        index.postings.remove(key);
                    }
                }
            }
            if let Some(set) = index.by_max_players.get_mut(&old.max_players) {
                set.remove(&seq);
                if set.is_empty() {
                    index.by_max_players.remove(&old.max_players);
                }
            }
        }
        if old.listed {
            self.changes += 1;
            index.dirty.insert(name.to_string(), self.changes);
        }
    }

    /// Replaces a game's reported state, keeping the user index in step.
    pub(crate) fn set_state(&mut self, name: &str, state: GameState) {
        let Some(game) = self.games.get_mut(name) else {
            return;
        };
        for u in &game.state.users {
            if self.user_games.get(u).is_some_and(|g| g == name) {
                self.user_games.remove(u);
            }
        }
        for u in &state.users {
            self.user_games.insert(u.clone(), name.to_string());
        }
        // Players who arrived no longer count as joining.
        game.joining.retain(|(u, _)| !state.users.contains(u));
        game.state = state;
        self.reindex(name);
    }

    /// Removes a game.
    pub(crate) fn drop_game(&mut self, name: &str) {
        let Some(game) = self.games.get(name) else {
            return;
        };
        let users = game.state.users.clone();
        let indexed = game.indexed.clone();
        let seq = game.seq;
        self.games.remove(name);
        for u in users {
            if self.user_games.get(&u).is_some_and(|g| g == name) {
                self.user_games.remove(&u);
            }
        }
        if let Some(old) = indexed {
            self.unindex(name, &old, seq);
            if let Some(index) = self.lobbies.get(&old.lobby)
                && index.is_unused()
            {
                self.lobbies.remove(&old.lobby);
            }
        }
    }

    /// The list entry of a listed game.
    pub(crate) fn list_entry(&self, name: &str) -> Option<GameListEntry> {
        let g = self.games.get(name)?;
        if !g.indexed.as_ref()?.listed {
            return None;
        }
        Some(GameListEntry {
            game: g.name.clone(),
            removed: false,
            properties: g.state.lobby_properties.clone(),
            player_count: g.player_count(),
            max_players: g.state.max_players,
            is_open: g.state.is_open,
        })
    }

    /// The list entry of a game listed in `lobby`.
    pub(crate) fn list_entry_in(&self, name: &str, lobby: &Lobby) -> Option<GameListEntry> {
        let g = self.games.get(name)?;
        if &g.state.lobby != lobby {
            return None;
        }
        self.list_entry(name)
    }

    /// Records that `user` is on its way to `game` until `until`.
    pub(crate) fn add_joining(&mut self, game: &str, user: &str, until: Instant) {
        self.joining_expiry
            .push_back((until, game.to_string(), user.to_string()));
        self.user_joining
            .entry(user.to_string())
            .or_default()
            .push((until, game.to_string()));
    }

    /// Whether `user`'s join to `game` issued with expiry `until` is still on its way
    /// (neither arrived nor expired at `now`).
    pub fn is_joining(&self, game: &str, user: &str, until: Instant, now: Instant) -> bool {
        until > now
            && self
                .games
                .get(game)
                .is_some_and(|g| g.joining.iter().any(|(u, t)| u == user && *t == until))
    }

    /// `server` refused `user`'s join or create of `game` (a genuine ticket): the user is
    /// no longer on its way there, and a name reserved only for it is free again.
    /// Returns whether anything changed.
    pub fn join_refused(&mut self, server: &str, game: &str, user: &str) -> bool {
        let Some(g) = self.games.get_mut(game).filter(|g| g.server == server) else {
            return false;
        };
        let before = g.joining.len();
        g.joining.retain(|(u, _)| u != user);
        if g.joining.len() == before {
            return false;
        }
        if !g.confirmed && g.joining.is_empty() {
            self.drop_game(game);
        } else {
            self.reindex(game);
        }
        true
    }

    /// The reservations `user` holds now: joins issued that have neither arrived nor
    /// expired.
    pub(crate) fn open_reservations(&mut self, user: &str, now: Instant) -> usize {
        let Some(list) = self.user_joining.get_mut(user) else {
            return 0;
        };
        let games = &self.games;
        list.retain(|(at, game)| {
            *at > now
                && games
                    .get(game)
                    .is_some_and(|g| g.joining.iter().any(|(u, t)| u == user && t == at))
        });
        let n = list.len();
        if n == 0 {
            self.user_joining.remove(user);
        }
        n
    }

    pub(crate) fn expire_joining(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.joining_expiry.front() {
            if *at > now {
                break;
            }
            let (at, game, user) = self.joining_expiry.pop_front().expect("front exists");
            if let Some(list) = self.user_joining.get_mut(&user) {
                list.retain(|(t, g)| !(*t == at && *g == game));
                if list.is_empty() {
                    self.user_joining.remove(&user);
                }
            }
            if let Some(g) = self.games.get_mut(&game) {
                let before = g.joining.len();
                g.joining.retain(|(u, t)| !(u == &user && *t == at));
                if g.joining.len() != before {
                    self.reindex(&game);
                }
            }
        }
    }

    pub(crate) fn expire_reservations(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.reservation_expiry.front() {
            if *at > now {
                break;
            }
            let (_, game, seq) = self.reservation_expiry.pop_front().expect("front exists");
            if self
                .games
                .get(&game)
                .is_some_and(|g| g.seq == seq && !g.confirmed)
            {
                self.drop_game(&game);
            }
        }
    }

    /// A game by name.
    pub fn game(&self, name: &str) -> Option<&Game> {
        self.games.get(name)
    }

    /// Every game, reserved ones included.
    pub fn games(&self) -> impl Iterator<Item = &Game> {
        self.games.values()
    }

    /// Number of games, reserved ones included.
    pub fn game_count(&self) -> usize {
        self.games.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(users: &[&str], joining: &[&str], expected: &[&str]) -> Game {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Game {
            name: "g".into(),
            server: "gs".into(),
            seq: 1,
            state: GameState {
                game: "g".into(),
                lobby: Lobby::default(),
                max_players: 0,
                is_open: true,
                is_visible: true,
                lobby_properties: Default::default(),
                users: owned(users),
                expected_users: owned(expected),
            },
            confirmed: true,
            joining: joining
                .iter()
                .map(|u| (u.to_string(), Instant::now()))
                .collect::<Vec<_>>()
                .into(),
            indexed: None,
        }
    }

    #[test]
    fn small_and_large_games_count_each_user_once() {
        let g = game(&["a", "b"], &["b", "c", "c"], &["a", "d", "d"]);
        assert_eq!(g.player_count(), 4);
        // Over SMALL_GAME entries the count goes through a set: the same answer.
        let names: Vec<String> = (0..5000).map(|i| format!("u{i}")).collect();
        let n = |r: std::ops::Range<usize>| names[r].iter().map(String::as_str).collect::<Vec<_>>();
        // Users 0..2000, joining 1000..4000 (twice), expected 3500..5000.
        let mut joining = n(1000..4000);
        joining.extend(n(1000..4000));
        let g = game(&n(0..2000), &joining, &n(3500..5000));
        assert_eq!(g.player_count(), 5000);
    }
}
