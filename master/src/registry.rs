//! The game-server registry, sans-IO: registration with a full room snapshot, load and
//! state reports, game updates, and a link TTL during which a server that lost its link
//! keeps its context (its games stay listed) and may re-attach under the same id.
//!
//! Liveness: every message on a link counts as a report. A server that has sent nothing
//! for `report_timeout` (3 s by default; it reports every second) is *silent*: no new games
//! go there and no joins are routed to its games from that moment on, although its games
//! stay listed until the link TTL runs out.
//!
//! Identity: a registration under the id of a live (reporting) server from another
//! address is refused with `ServerIdInUse`, unless it asks to replace it; the same address
//! is the same server coming back (its old link is dead or about to be) and takes over.

use std::collections::HashSet;
use std::time::Instant;

use switchboard_protocol::{
    GameState, GamesDigest, LoadReport, OpError, Register, ResultCode, ServerState, games_digest,
};

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
    /// When its link last carried a message.
    pub last_report: Instant,
    /// Whether it was reporting at the last look (`silent_servers` or a report); the lobby
    /// indexes follow this flag, routing decisions check the time itself.
    pub responsive: bool,
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    /// The older link of the same id that this one replaced and that must be closed.
    pub displaced: Option<u64>,
}

/// What a reconciliation with a server's snapshot changed in the master's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconciled {
    /// Games the master listed for the server that the snapshot does not have.
    pub dropped: usize,
    /// Games of the snapshot the master did not know, or knew differently.
    pub changed: usize,
}

impl Reconciled {
    /// Whether the views differed at all.
    pub fn any(&self) -> bool {
        self.dropped + self.changed > 0
    }
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
    /// Registers (or re-attaches) a game server through link `link`; its games keep their
    /// entries until its `Snapshot` ([`MasterState::reconcile`]) follows. Refused with
    /// `ServerIdInUse` when a live server holds the id from another address and `reg`
    /// does not ask to replace it.
    pub fn register(
        &mut self,
        reg: &Register,
        link: u64,
        now: Instant,
    ) -> Result<Registration, OpError> {
        let mut displaced = None;
        if let Some(old) = self.servers.get(&reg.server_id)
            && let Some(old_link) = old.link
            && old_link != link
        {
            let live = self.reporting(old, now);
            if live && old.address != reg.address && !reg.replace {
                return Err(OpError::new(
                    ResultCode::ServerIdInUse,
                    format!(
                        "game server id {:?} is in use by a live server at {}",
                        reg.server_id, old.address
                    ),
                ));
            }
            displaced = Some(old_link);
        }
        let previous_state = self.servers.get(&reg.server_id).map(|s| s.load.state);
        self.servers.insert(
            reg.server_id.clone(),
            ServerEntry {
                address: reg.address.clone(),
                priority: reg.priority,
                link: Some(link),
                down_since: None,
                load: LoadReport {
                    state: previous_state.unwrap_or_default(),
                    ..LoadReport::default()
                },
                sent: 0,
                last_report: now,
                responsive: true,
            },
        );
        for g in self.games_of(&reg.server_id) {
            self.reindex(&g);
        }
        Ok(Registration { displaced })
    }

    /// Makes the master's view of `server`'s games the snapshot `games`: confirmed games
    /// it no longer has go, the others are created or updated; reservations not yet
    /// confirmed are kept.
    pub fn reconcile(&mut self, server: &str, games: &[GameState]) -> Reconciled {
        let reported: HashSet<&str> = games.iter().map(|g| g.game.as_str()).collect();
        let gone: Vec<String> = self
            .games
            .values()
            .filter(|g| g.server == server && g.confirmed && !reported.contains(g.name.as_str()))
            .map(|g| g.name.clone())
            .collect();
        for name in &gone {
            self.drop_game(name);
        }
        let mut changed = 0;
        for state in games {
            let same = self
                .games
                .get(&state.game)
                .is_some_and(|g| g.server == server && g.confirmed && &g.state == state);
            if !same {
                changed += 1;
            }
            self.update_game(server, state.clone());
        }
        Reconciled {
            dropped: gone.len(),
            changed,
        }
    }

    /// A message arrived on `server`'s link `link`. Returns true if the server had been
    /// silent and is reporting again.
    pub fn heard_from(&mut self, server: &str, link: u64, now: Instant) -> bool {
        let Some(s) = self.servers.get_mut(server) else {
            return false;
        };
        if s.link != Some(link) {
            return false;
        }
        s.last_report = now;
        if s.responsive {
            return false;
        }
        s.responsive = true;
        for g in self.games_of(server) {
            self.reindex(&g);
        }
        true
    }

    /// Whether `s` has reported within the report timeout over a live link.
    pub(crate) fn reporting(&self, s: &ServerEntry, now: Instant) -> bool {
        s.link.is_some()
            && now.saturating_duration_since(s.last_report) <= self.settings.report_timeout
    }

    /// Whether `server` has reported within the report timeout over a live link.
    pub fn reporting_now(&self, server: &str, now: Instant) -> bool {
        self.servers
            .get(server)
            .is_some_and(|s| self.reporting(s, now))
    }

    /// Whether joins may be routed to `server`'s games now: it reports and is not Offline.
    pub fn routable(&self, server: &str, now: Instant) -> bool {
        self.servers
            .get(server)
            .is_some_and(|s| self.reporting(s, now) && s.load.state != ServerState::Offline)
    }

    /// Servers that just went silent (no message for the report timeout, or their link
    /// is down): their games stop being joinable in the lobby indexes. Each incident is
    /// returned once.
    pub fn silent_servers(&mut self, now: Instant) -> Vec<String> {
        let silent: Vec<String> = self
            .servers
            .iter()
            .filter(|(_, s)| s.responsive && !self.reporting(s, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &silent {
            if let Some(s) = self.servers.get_mut(id) {
                s.responsive = false;
            }
            for g in self.games_of(id) {
                self.reindex(&g);
            }
        }
        silent
    }

    /// The digest of the master's view of `server`'s confirmed games, to compare with the
    /// server's own `Digest`.
    pub fn digest_of(&self, server: &str) -> GamesDigest {
        games_digest(
            self.games
                .values()
                .filter(|g| g.server == server && g.confirmed)
                .map(|g| &g.state),
        )
    }

    /// A game server says a client came to `game`, which it does not host. Drops the
    /// master's entry if it is a confirmed game of that server (a reservation still on
    /// its way is left alone). Returns whether an entry was dropped.
    pub fn game_unknown(&mut self, server: &str, game: &str) -> bool {
        if self
            .games
            .get(game)
            .is_some_and(|g| g.server == server && g.confirmed)
        {
            self.drop_game(game);
            true
        } else {
            false
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
                s.responsive = false;
                s.load.state == ServerState::Offline
            }
            _ => return false,
        };
        let games = self.games_of(server);
        for g in games {
            if offline {
                self.drop_game(&g);
            } else {
                self.reindex(&g);
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
                        joining: Default::default(),
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

    /// Chooses the game server for a new game among the reporting servers in state
    /// Normal, by the load balancer.
    pub fn choose_server(&mut self, now: Instant) -> Result<Placement, OpError> {
        let candidates: Vec<Candidate<'_>> = self
            .servers
            .iter()
            .filter(|(_, s)| self.reporting(s, now) && s.load.state == ServerState::Normal)
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
