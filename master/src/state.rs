//! The master's whole view, sans-IO: servers, games, lobbies, online users. The QUIC
//! shells lock it briefly (never across `.await`), call a method with `now`, and send what
//! it returns. `registry`, `games` and `matchmaking` add the methods of their concern.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_protocol::{FriendStatus, GameListEntry, Lobby, LobbyStats};

use crate::games::{Game, LobbyIndex};
use crate::load_balancer::LoadBalancerConfig;
use crate::registry::ServerEntry;

/// Tunables of the master's logic.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Load-balancer weights, reserve and priority threshold.
    pub load_balancer: LoadBalancerConfig,
    /// Peer-count thresholds per level, for load prediction.
    pub peer_levels: Vec<u64>,
    /// Most games in one `GameList` or `GameListUpdate`.
    pub game_list_limit: usize,
    /// How long a game server's context is kept after its link drops.
    pub link_ttl: Duration,
    /// A game server that sends nothing for this long (it reports every second) gets no
    /// new games and no joins until it reports again.
    pub report_timeout: Duration,
    /// How long a player the master sent to a game counts toward it before arriving.
    pub joining_ttl: Duration,
    /// Largest encoded size of the properties in one request.
    pub max_property_bytes: usize,
    /// Reservations (joins issued, not yet arrived or expired) one user may hold.
    pub max_reservations_per_user: usize,
    /// Joins one master connection may have in progress (redirects not yet followed);
    /// 0 = no limit.
    pub max_joins_in_flight: usize,
    /// Most lobby-listed properties of a game, and their most encoded bytes.
    pub max_lobby_props: usize,
    /// Most encoded bytes of a game's lobby-listed property values.
    pub max_lobby_prop_bytes: usize,
    /// Persistent rooms (Photon's AsyncJoin): a join of a game that is not listed goes to
    /// a game server anyway, which asks the studio's backend for its saved state.
    pub async_join: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            load_balancer: LoadBalancerConfig::default(),
            peer_levels: vec![200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800],
            game_list_limit: 500,
            link_ttl: Duration::from_secs(20),
            report_timeout: Duration::from_secs(3),
            joining_ttl: Duration::from_secs(30),
            max_property_bytes: 51_000,
            max_reservations_per_user: 3,
            max_joins_in_flight: 1,
            max_lobby_props: 16,
            max_lobby_prop_bytes: 2048,
            async_join: false,
        }
    }
}

/// A batch of game-list changes for the subscribers of one lobby.
#[derive(Debug, Clone, PartialEq)]
pub struct ListUpdate {
    /// The lobby.
    pub lobby: Lobby,
    /// The changed games (removals flagged).
    pub games: Vec<GameListEntry>,
    /// The peers to send it to.
    pub subscribers: Vec<u64>,
}

/// The master's state.
#[derive(Debug)]
pub struct MasterState {
    pub(crate) settings: Settings,
    pub(crate) servers: HashMap<String, ServerEntry>,
    pub(crate) games: HashMap<String, Game>,
    pub(crate) lobbies: HashMap<Lobby, LobbyIndex>,
    pub(crate) next_seq: u64,
    /// Counts list-relevant changes; versions the entries of the lobbies' dirty sets.
    pub(crate) changes: u64,
    /// The game each user is an actor of, from the game servers' reports.
    pub(crate) user_games: HashMap<String, String>,
    /// Authenticated master connections per user.
    pub(crate) online: HashMap<String, u32>,
    /// Joining players in order of expiry: (expires, game, user).
    pub(crate) joining_expiry: VecDeque<(Instant, String, String)>,
    /// The joins each user has on their way: (expires, game).
    pub(crate) user_joining: HashMap<String, Vec<(Instant, String)>>,
    /// Unconfirmed reservations in order of expiry: (expires, game, seq).
    pub(crate) reservation_expiry: VecDeque<(Instant, String, u64)>,
    /// The lobby each subscribed peer is in.
    pub(crate) lobby_peers: HashMap<u64, Lobby>,
    pub(crate) rng: StdRng,
}

impl MasterState {
    /// An empty state; `seed` fixes the random choices (for tests).
    pub fn new(settings: Settings, seed: Option<u64>) -> Self {
        MasterState {
            settings,
            servers: HashMap::new(),
            games: HashMap::new(),
            lobbies: HashMap::new(),
            next_seq: 1,
            changes: 0,
            user_games: HashMap::new(),
            online: HashMap::new(),
            joining_expiry: VecDeque::new(),
            user_joining: HashMap::new(),
            reservation_expiry: VecDeque::new(),
            lobby_peers: HashMap::new(),
            rng: match seed {
                Some(s) => StdRng::seed_from_u64(s),
                None => StdRng::from_os_rng(),
            },
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A user authenticated on a master connection.
    pub fn user_online(&mut self, user: &str) {
        *self.online.entry(user.to_string()).or_default() += 1;
    }

    /// A master connection closed.
    pub fn peer_gone(&mut self, peer: u64, user: Option<&str>) {
        self.leave_lobby(peer);
        if let Some(user) = user
            && let Some(n) = self.online.get_mut(user)
        {
            *n -= 1;
            if *n == 0 {
                self.online.remove(user);
            }
        }
    }

    /// Subscribes `peer` to `lobby` (leaving any other) and returns the initial list.
    pub fn join_lobby(&mut self, peer: u64, lobby: Lobby) -> Vec<GameListEntry> {
        self.leave_lobby(peer);
        let limit = self.settings.game_list_limit;
        let index = self.lobbies.entry(lobby.clone()).or_default();
        index.subscribers.insert(peer, self.changes);
        let names: Vec<String> = index.listed.values().take(limit).cloned().collect();
        self.lobby_peers.insert(peer, lobby);
        names.iter().filter_map(|n| self.list_entry(n)).collect()
    }

    /// Unsubscribes `peer`; false if it was in no lobby.
    pub fn leave_lobby(&mut self, peer: u64) -> bool {
        let Some(lobby) = self.lobby_peers.remove(&peer) else {
            return false;
        };
        if let Some(index) = self.lobbies.get_mut(&lobby) {
            index.subscribers.remove(&peer);
            if index.is_unused() {
                self.lobbies.remove(&lobby);
            }
        }
        true
    }

    /// Peers and listed games of every lobby that has either.
    pub fn lobby_stats(&self) -> Vec<LobbyStats> {
        let mut out: Vec<LobbyStats> = self
            .lobbies
            .iter()
            .map(|(lobby, index)| LobbyStats {
                lobby: lobby.clone(),
                peers: index.subscribers.len() as u32,
                games: index.listed.len() as u32,
            })
            .filter(|s| s.peers > 0 || s.games > 0)
            .collect();
        out.sort_by(|a, b| a.lobby.cmp(&b.lobby));
        out
    }

    /// Whether each user is online (on the master or in a game) and in which game.
    pub fn find_friends(&self, users: &[String]) -> Vec<FriendStatus> {
        users
            .iter()
            .map(|u| {
                let game = self.user_games.get(u).cloned();
                FriendStatus {
                    user_id: u.clone(),
                    online: game.is_some() || self.online.contains_key(u),
                    game,
                }
            })
            .collect()
    }

    /// (actors in games, games) for `AppStats`.
    pub fn app_stats(&self) -> (u32, u32) {
        let confirmed = self.games.values().filter(|g| g.confirmed);
        let (players, games) = confirmed.fold((0u32, 0u32), |(p, g), game| {
            (p + game.state.users.len() as u32, g + 1)
        });
        (players, games)
    }

    /// Expires joining players, unconfirmed reservations and servers whose link stayed
    /// down past the TTL, then collects the game-list changes for each lobby's
    /// subscribers.
    pub fn tick(&mut self, now: Instant) -> Vec<ListUpdate> {
        self.expire_joining(now);
        self.expire_reservations(now);
        self.expire_servers(now);
        let limit = self.settings.game_list_limit;
        let mut updates = Vec::new();
        let lobbies: Vec<Lobby> = self
            .lobbies
            .iter()
            .filter(|(_, i)| !i.dirty.is_empty())
            .map(|(l, _)| l.clone())
            .collect();
        for lobby in lobbies {
            let index = self.lobbies.get_mut(&lobby).expect("listed above");
            let dirty = std::mem::take(&mut index.dirty);
            let subscribers: Vec<(u64, u64)> =
                index.subscribers.iter().map(|(p, v)| (*p, *v)).collect();
            if index.is_unused() {
                self.lobbies.remove(&lobby);
            }
            let oldest = dirty.values().copied().min().unwrap_or(0);
            let entries = |since: u64| -> Vec<GameListEntry> {
                dirty
                    .iter()
                    .filter(|(_, v)| **v > since)
                    .take(limit)
                    .map(|(n, _)| {
                        self.list_entry_in(n, &lobby)
                            .unwrap_or_else(|| removed_entry(n))
                    })
                    .collect()
            };
            // Subscribers whose list predates every change share one update; a subscriber
            // that got its list after some of them gets only the later ones.
            let (shared, fresh): (Vec<_>, Vec<_>) =
                subscribers.into_iter().partition(|(_, v)| *v < oldest);
            if !shared.is_empty() {
                updates.push(ListUpdate {
                    lobby: lobby.clone(),
                    games: entries(0),
                    subscribers: shared.into_iter().map(|(p, _)| p).collect(),
                });
            }
            for (peer, since) in fresh {
                let games = entries(since);
                if !games.is_empty() {
                    updates.push(ListUpdate {
                        lobby: lobby.clone(),
                        games,
                        subscribers: vec![peer],
                    });
                }
            }
        }
        updates
    }
}

pub(crate) fn removed_entry(name: &str) -> GameListEntry {
    GameListEntry {
        game: name.to_string(),
        removed: true,
        properties: Default::default(),
        player_count: 0,
        max_players: 0,
        is_open: false,
    }
}
