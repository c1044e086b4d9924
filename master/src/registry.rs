//! The game-server registry, sans-IO: registration with a full room snapshot, load and
//! state reports, game updates, and a link TTL during which a server that lost its link
//! keeps its context (its games stay listed) and may re-attach under the same id.

use std::time::Instant;

use switchboard_protocol::{GameState, LoadReport, OpError, Register, ResultCode, ServerState};

use crate::games::Game;
use crate::load_balancer::{self, Candidate};
use crate::state::MasterState;

/// A registered game server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// Address clients connect to.
    pub address: String,
    /// Priority group.
    pub priority: u8,
    /// The link that registered it; `None` while the link is down.
    pub link: Option<u64>,
    /// When the link went down.
    pub down_since: Option<Instant>,
    /// Last reported load.
    pub load: LoadReport,
    /// Players sent to it since its last load report (for load prediction).
    pub sent: u32,
}

/// Where to send a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Game server id (goes into the ticket).
    pub server: String,
    /// Game server client address (goes into the redirect).
    pub address: String,
}

impl MasterState {
    /// Registers (or re-attaches) a game server through link `link`, replacing its games
    /// with the snapshot in `reg`: games that ended meanwhile disappear, games created
    /// meanwhile appear. Reservations not yet confirmed are kept.
    pub fn register(&mut self, reg: &Register, link: u64) {
        let previous_state = self.servers.get(&reg.server_id).map(|s| s.load.state);
        self.servers.insert(
            reg.server_id.clone(),
            ServerEntry {
                address: reg.address.clone(),
                priority: reg.priority,
                link: Some(link),
                down_since: None,
                load: LoadReport {
                    games: reg.games.len() as u32,
                    state: previous_state.unwrap_or_default(),
                    ..LoadReport::default()
                },
                sent: 0,
            },
        );
        let reported: std::collections::HashSet<&str> =
            reg.games.iter().map(|g| g.game.as_str()).collect();
        let gone: Vec<String> = self
            .games
            .values()
            .filter(|g| {
                g.server == reg.server_id && g.confirmed && !reported.contains(g.name.as_str())
            })
            .map(|g| g.name.clone())
            .collect();
        for name in gone {
            self.drop_game(&name);
        }
        for state in &reg.games {
            self.update_game(&reg.server_id, state.clone());
        }
    }

    /// The link `link` of `server` ended: the server keeps its context for the link TTL
    /// (a server that was Offline has stopped: its games go at once). A later link of the
    /// same id is left alone. Returns whether it was the current link.
    pub fn link_lost(&mut self, server: &str, link: u64, now: Instant) -> bool {
        let offline = match self.servers.get_mut(server) {
            Some(s) if s.link == Some(link) => {
                s.link = None;
                s.down_since = Some(now);
                s.load.state == ServerState::Offline
            }
            _ => return false,
        };
        if offline {
            let games = self.games_of(server);
            for g in games {
                self.drop_game(&g);
            }
        }
        true
    }

    /// Drops servers whose link has been down for the TTL, with their games.
    pub(crate) fn expire_servers(&mut self, now: Instant) {
        let ttl = self.settings.link_ttl;
        let dead: Vec<String> = self
            .servers
            .iter()
            .filter(|(_, s)| s.down_since.is_some_and(|t| now.duration_since(t) >= ttl))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.servers.remove(&id);
            let games: Vec<String> = self
                .games
                .values()
                .filter(|g| g.server == id)
                .map(|g| g.name.clone())
                .collect();
            for g in games {
                self.drop_game(&g);
            }
        }
    }

    /// Records a load report; a change of state relists the server's games.
    pub fn update_load(&mut self, server: &str, load: LoadReport) {
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        let state_changed = s.load.state != load.state;
        s.load = load;
        s.sent = 0;
        if state_changed {
            let games = self.games_of(server);
            for g in games {
                self.reindex(&g);
            }
        }
    }

    /// A game was created or changed on `server`. A report for a name another server
    /// owns is ignored (returns false): the first owner keeps it.
    pub fn update_game(&mut self, server: &str, state: GameState) -> bool {
        if !self.servers.contains_key(server) {
            return false;
        }
        let name = state.game.clone();
        match self.games.get_mut(&name) {
            Some(g) if g.server != server => return false,
            Some(g) => g.confirmed = true,
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.games.insert(
                    name.clone(),
                    Game {
                        name: name.clone(),
                        server: server.to_string(),
                        seq,
                        state: state.clone(),
                        confirmed: true,
                        joining: Vec::new(),
                        indexed: None,
                    },
                );
            }
        }
        self.set_state(&name, state);
        true
    }

    /// Names of the games hosted by `server`.
    fn games_of(&self, server: &str) -> Vec<String> {
        self.games
            .values()
            .filter(|g| g.server == server)
            .map(|g| g.name.clone())
            .collect()
    }

    /// A game on `server` ended.
    pub fn remove_game(&mut self, server: &str, game: &str) {
        if self.games.get(game).is_some_and(|g| g.server == server) {
            self.drop_game(game);
        }
    }

    /// The effective load level: reported, or predicted from the players sent if that is
    /// higher and prediction is on.
    fn effective_level(&self, s: &ServerEntry) -> u8 {
        if !self.settings.load_balancer.predict_load {
            return s.load.level;
        }
        let expected_peers = u64::from(s.load.peers) + u64::from(s.sent);
        s.load.level.max(load_balancer::level_for(
            &self.settings.peer_levels,
            expected_peers,
        ))
    }

    /// Chooses the game server for a new game among the reachable servers in state
    /// Normal, by the load balancer.
    pub fn choose_server(&mut self) -> Result<Placement, OpError> {
        let candidates: Vec<Candidate<'_>> = self
            .servers
            .iter()
            .filter(|(_, s)| s.link.is_some() && s.load.state == ServerState::Normal)
            .map(|(id, s)| Candidate {
                id,
                priority: s.priority,
                level: self.effective_level(s),
            })
            .collect();
        let chosen =
            load_balancer::choose(&self.settings.load_balancer, &candidates, &mut self.rng)
                .map(str::to_string);
        let id = chosen
            .ok_or_else(|| OpError::new(ResultCode::ServerFull, "no game server is available"))?;
        let s = self.servers.get(&id).expect("chosen from the map");
        Ok(Placement {
            server: id,
            address: s.address.clone(),
        })
    }

    /// Counts a player sent to `server` (for prediction).
    pub(crate) fn sent_to(&mut self, server: &str) {
        if let Some(s) = self.servers.get_mut(server) {
            s.sent += 1;
        }
    }

    /// A server by id.
    pub fn server(&self, id: &str) -> Option<&ServerEntry> {
        self.servers.get(id)
    }

    /// Registered servers, with their ids.
    pub fn servers(&self) -> impl Iterator<Item = (&String, &ServerEntry)> {
        self.servers.iter()
    }

    /// Number of registered servers (links up or within their TTL).
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }
}
