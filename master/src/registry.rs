//! The master's view of the cluster, sans-IO: registered game servers, the games they
//! host, and names reserved by `CreateGame` that the game server has not confirmed yet.
//!
//! Everything here is soft state rebuilt from the game servers' reports: `register`
//! replaces a server's games with the snapshot it sends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_protocol::{GameState, LoadReport, OpError, Register, ResultCode};

/// A registered game server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// Address clients connect to.
    pub address: String,
    /// Identifies the link that registered it; a newer link replaces an older one.
    pub link: u64,
    /// Last reported load.
    pub load: LoadReport,
}

/// A game as the master knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GameEntry {
    /// The hosting game server's id.
    pub server: String,
    /// Reported state; `None` while the name is only reserved by a `CreateGame`.
    pub state: Option<GameState>,
    /// When the reservation was made (for unconfirmed games).
    pub reserved_at: Instant,
}

/// Where to send a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Game server id (goes into the ticket).
    pub server: String,
    /// Game server client address (goes into the redirect).
    pub address: String,
}

/// Servers and games.
#[derive(Debug, Default)]
pub struct Registry {
    servers: HashMap<String, ServerEntry>,
    games: HashMap<String, GameEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or re-attaches) a game server through link `link`, replacing its games
    /// with the snapshot in `reg`. Reservations on this server that the snapshot does not
    /// contain are kept: their clients may still be on their way.
    pub fn register(&mut self, reg: &Register, link: u64, now: Instant) {
        self.servers.insert(
            reg.server_id.clone(),
            ServerEntry {
                address: reg.address.clone(),
                link,
                load: LoadReport {
                    peers: 0,
                    games: reg.games.len() as u32,
                },
            },
        );
        self.games
            .retain(|_, g| g.server != reg.server_id || g.state.is_none());
        for state in &reg.games {
            self.put_game(&reg.server_id, state.clone(), now);
        }
    }

    /// Forgets a server and its games when the link that registered it ends. A later link
    /// of the same server id is left alone.
    pub fn link_lost(&mut self, server: &str, link: u64) -> bool {
        if self.servers.get(server).is_none_or(|s| s.link != link) {
            return false;
        }
        self.servers.remove(server);
        self.games.retain(|_, g| g.server != server);
        true
    }

    /// Records a server's load report.
    pub fn update_load(&mut self, server: &str, load: LoadReport) {
        if let Some(s) = self.servers.get_mut(server) {
            s.load = load;
        }
    }

    /// A game was created or changed on `server`. A report for a name another server
    /// owns is ignored (returns false): the first owner keeps it.
    pub fn update_game(&mut self, server: &str, state: GameState, now: Instant) -> bool {
        if !self.servers.contains_key(server) {
            return false;
        }
        self.put_game(server, state, now)
    }

    fn put_game(&mut self, server: &str, state: GameState, now: Instant) -> bool {
        match self.games.get_mut(&state.game) {
            Some(g) if g.server != server => false,
            Some(g) => {
                g.state = Some(state);
                true
            }
            None => {
                self.games.insert(
                    state.game.clone(),
                    GameEntry {
                        server: server.to_string(),
                        state: Some(state),
                        reserved_at: now,
                    },
                );
                true
            }
        }
    }

    /// A game on `server` ended.
    pub fn remove_game(&mut self, server: &str, game: &str) {
        if self.games.get(game).is_some_and(|g| g.server == server) {
            self.games.remove(game);
        }
    }

    /// Chooses the game server for a new game: the one with the fewest peers, then the
    /// fewest games, then the smallest id (deterministic).
    pub fn choose_server(&self) -> Result<Placement, OpError> {
        self.servers
            .iter()
            .min_by(|(a_id, a), (b_id, b)| {
                (a.load.peers, a.load.games, a_id).cmp(&(b.load.peers, b.load.games, b_id))
            })
            .map(|(id, s)| Placement {
                server: id.clone(),
                address: s.address.clone(),
            })
            .ok_or_else(|| OpError::new(ResultCode::ServerFull, "no game server is available"))
    }

    /// Reserves `game` for creation on a chosen server.
    pub fn reserve_game(&mut self, game: &str, now: Instant) -> Result<Placement, OpError> {
        if self.games.contains_key(game) {
            return Err(OpError::new(
                ResultCode::GameIdAlreadyExists,
                format!("a game named {game:?} already exists"),
            ));
        }
        let placement = self.choose_server()?;
        self.games.insert(
            game.to_string(),
            GameEntry {
                server: placement.server.clone(),
                state: None,
                reserved_at: now,
            },
        );
        if let Some(s) = self.servers.get_mut(&placement.server) {
            s.load.games += 1;
        }
        Ok(placement)
    }

    /// Where to join `game`, if it exists and is joinable.
    pub fn join_target(&self, game: &str) -> Result<Placement, OpError> {
        let entry = self.games.get(game).ok_or_else(|| {
            OpError::new(
                ResultCode::GameDoesNotExist,
                format!("no game named {game:?}"),
            )
        })?;
        if let Some(state) = &entry.state {
            if !state.is_open {
                return Err(OpError::new(ResultCode::GameClosed, "the game is closed"));
            }
            if state.max_players != 0 && state.player_count >= state.max_players {
                return Err(OpError::new(ResultCode::GameFull, "the game is full"));
            }
        }
        let server = self.servers.get(&entry.server).ok_or_else(|| {
            OpError::new(ResultCode::GameDoesNotExist, "the game's server is gone")
        })?;
        Ok(Placement {
            server: entry.server.clone(),
            address: server.address.clone(),
        })
    }

    /// Drops reservations older than `ttl` that no game server confirmed.
    pub fn expire_reservations(&mut self, now: Instant, ttl: Duration) -> usize {
        let before = self.games.len();
        self.games
            .retain(|_, g| g.state.is_some() || now.duration_since(g.reserved_at) < ttl);
        before - self.games.len()
    }

    /// A game by name.
    pub fn game(&self, game: &str) -> Option<&GameEntry> {
        self.games.get(game)
    }

    /// A server by id.
    pub fn server(&self, id: &str) -> Option<&ServerEntry> {
        self.servers.get(id)
    }

    /// Number of registered servers.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Number of games, reserved ones included.
    pub fn game_count(&self) -> usize {
        self.games.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::Properties;

    fn state(game: &str, players: u32, max: u32, open: bool) -> GameState {
        GameState {
            game: game.into(),
            player_count: players,
            max_players: max,
            is_open: open,
            is_visible: true,
            lobby_properties: Properties::new(),
        }
    }

    fn reg(id: &str, games: Vec<GameState>) -> Register {
        Register {
            server_id: id.into(),
            address: format!("{id}:1"),
            secret: String::new(),
            games,
        }
    }

    #[test]
    fn no_server_means_server_full() {
        let mut r = Registry::new();
        let e = r.reserve_game("g", Instant::now()).unwrap_err();
        assert_eq!(e.result_code(), Some(ResultCode::ServerFull));
    }

    #[test]
    fn create_then_join_goes_to_the_same_server() {
        let now = Instant::now();
        let mut r = Registry::new();
        r.register(&reg("a", vec![]), 1, now);
        r.register(&reg("b", vec![]), 2, now);
        r.update_load("a", LoadReport { peers: 5, games: 1 });
        let p = r.reserve_game("g", now).unwrap();
        assert_eq!(p.server, "b", "least-loaded server");
        assert_eq!(r.join_target("g").unwrap(), p);
        let e = r.reserve_game("g", now).unwrap_err();
        assert_eq!(e.result_code(), Some(ResultCode::GameIdAlreadyExists));
    }

    #[test]
    fn full_closed_and_missing_games_are_refused() {
        let now = Instant::now();
        let mut r = Registry::new();
        r.register(
            &reg(
                "a",
                vec![state("full", 2, 2, true), state("shut", 0, 0, false)],
            ),
            1,
            now,
        );
        let code = |g| r.join_target(g).unwrap_err().result_code();
        assert_eq!(code("full"), Some(ResultCode::GameFull));
        assert_eq!(code("shut"), Some(ResultCode::GameClosed));
        assert_eq!(code("nope"), Some(ResultCode::GameDoesNotExist));
    }

    #[test]
    fn reregistration_reconciles_games() {
        let now = Instant::now();
        let mut r = Registry::new();
        r.register(&reg("a", vec![state("old", 1, 0, true)]), 1, now);
        r.reserve_game("pending", now).unwrap();
        r.register(&reg("a", vec![state("new", 1, 0, true)]), 2, now);
        assert!(r.game("old").is_none(), "ended meanwhile");
        assert!(r.game("new").is_some(), "created meanwhile");
        assert!(r.game("pending").is_some(), "reservation kept");
        assert!(!r.link_lost("a", 1), "the old link's end changes nothing");
        assert_eq!(r.server_count(), 1);
        assert!(r.link_lost("a", 2));
        assert_eq!(r.server_count(), 0);
        assert_eq!(r.game_count(), 0);
    }

    #[test]
    fn a_name_stays_with_its_first_owner() {
        let now = Instant::now();
        let mut r = Registry::new();
        r.register(&reg("a", vec![state("g", 1, 0, true)]), 1, now);
        r.register(&reg("b", vec![]), 2, now);
        assert!(!r.update_game("b", state("g", 3, 0, true), now));
        r.remove_game("b", "g");
        assert_eq!(r.join_target("g").unwrap().server, "a");
        assert!(!r.update_game("unknown", state("x", 1, 0, true), now));
    }

    #[test]
    fn unconfirmed_reservations_expire() {
        let now = Instant::now();
        let mut r = Registry::new();
        r.register(&reg("a", vec![]), 1, now);
        r.reserve_game("g", now).unwrap();
        r.reserve_game("h", now).unwrap();
        r.update_game("a", state("h", 1, 0, true), now);
        assert_eq!(
            r.expire_reservations(now + Duration::from_secs(5), Duration::from_secs(10)),
            0
        );
        assert_eq!(
            r.expire_reservations(now + Duration::from_secs(10), Duration::from_secs(10)),
            1
        );
        assert!(r.game("g").is_none());
        assert!(r.game("h").is_some());
    }
}
