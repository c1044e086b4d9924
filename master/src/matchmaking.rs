//! CreateGame, JoinGame (with its join modes) and JoinRandomGame, sans-IO.
//!
//! Every successful call returns an [`Admission`]: where to send the player and whether
//! to create or join there. The player then counts toward the game ("joining") until the
//! game server reports it as an actor or `joining_ttl` passes.

use std::collections::BTreeSet;
use std::time::Instant;

use rand::Rng;
use switchboard_protocol::messages::common::{
    MAX_GAME_NAME, check_expected_users, check_game_name,
};
use switchboard_protocol::{
    GameState, JoinMode, JoinRandom, LobbyKind, MatchmakingMode, OpError, Properties, ResultCode,
    RoomMode, RoomOptions, ServerState, TicketAction, terms_digest,
};

use crate::games::{Game, LobbyIndex, value_key};
use crate::registry::Placement;
use crate::sql_filter::{self, Expr};
use crate::state::MasterState;

/// Where a player goes, and what to do there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The game server.
    pub placement: Placement,
    /// The game's name.
    pub game: String,
    /// Create or join.
    pub action: TicketAction,
    /// What was decided ([`terms_digest`]), signed into the ticket.
    pub terms: u64,
}

fn limit(message: String) -> OpError {
    OpError::new(ResultCode::OperationLimitReached, message)
}

impl MasterState {
    fn check_properties(&self, props: &Properties) -> Result<(), OpError> {
        let size = postcard::to_stdvec(props)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        let max = self.settings.max_property_bytes;
        if size > max {
            return Err(limit(format!(
                "properties of {size} bytes exceed the limit of {max}"
            )));
        }
        // As on the game servers: keys starting with # are the server's.
        if props.keys().any(|k| k.starts_with('#')) {
            return Err(OpError::new(
                ResultCode::InvalidRequestParameters,
                "property keys starting with # are reserved for the server",
            ));
        }
        Ok(())
    }

    /// Reserves a new game on a chosen server.
    pub fn create_game(
        &mut self,
        user: &str,
        authority: bool,
        name: Option<String>,
        options: RoomOptions,
        expected_users: &[String],
        now: Instant,
    ) -> Result<Admission, OpError> {
        check_expected_users(expected_users)?;
        let terms = terms_digest(Some(&options), expected_users, user);
        // A name reserved by a create whose ticket has expired is free again now, not
        // at the next tick.
        self.expire_joining(now);
        self.expire_reservations(now);
        self.check_reservations(user, now)?;
        self.check_properties(&options.properties)?;
        if options.join_approval && options.mode != RoomMode::Server {
            return Err(OpError::new(
                ResultCode::InvalidRequestParameters,
                "join approval needs a Server room",
            ));
        }
        if options.mode == RoomMode::Server && !authority {
            return Err(OpError::new(
                ResultCode::NotAllowed,
                "only a dedicated server (AuthenticateServer) creates Server rooms",
            ));
        }
        if options.lobby.name.len() > MAX_GAME_NAME {
            return Err(OpError::new(
                ResultCode::InvalidRequestParameters,
                format!("lobby names are at most {MAX_GAME_NAME} bytes"),
            ));
        }
        let mut expected: Vec<String> = expected_users
            .iter()
            .filter(|u| *u != user)
            .cloned()
            .collect();
        expected.sort();
        expected.dedup();
        if options.max_players != 0 && 1 + expected.len() > options.max_players as usize {
            return Err(OpError::new(
                ResultCode::SlotError,
                format!(
                    "{} expected users do not fit {} players",
                    expected.len(),
                    options.max_players
                ),
            ));
        }
        let name = match name {
            Some(n) => {
                check_game_name(&n)?;
                n
            }
            None => format!("{:032x}", self.rng.random::<u128>()),
        };
        if self.games.contains_key(&name) {
            return Err(OpError::new(
                ResultCode::GameIdAlreadyExists,
                format!("a game named {name:?} already exists"),
            ));
        }
        let placement = self.choose_server(now)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let lobby_properties: switchboard_protocol::Properties = options
            .lobby_properties
            .iter()
            .filter_map(|k| Some((k.clone(), options.properties.get(k)?.clone())))
            .collect();
        let listed_bytes = switchboard_protocol::frame::encoded_len(&lobby_properties);
        if options.lobby_properties.len() > self.settings.max_lobby_props
            || listed_bytes > self.settings.max_lobby_prop_bytes
        {
            return Err(limit(format!(
                "at most {} lobby-listed properties of {} bytes in all",
                self.settings.max_lobby_props, self.settings.max_lobby_prop_bytes
            )));
        }
        let ttl = self.settings.joining_ttl;
        self.games.insert(
            name.clone(),
            Game {
                name: name.clone(),
                server: placement.server.clone(),
                seq,
                state: GameState {
                    game: name.clone(),
                    lobby: options.lobby,
                    max_players: options.max_players,
                    is_open: options.is_open,
                    is_visible: options.is_visible,
                    lobby_properties,
                    users: Vec::new(),
                    expected_users: expected,
                },
                confirmed: false,
                joining: vec![(user.to_string(), now + ttl)].into(),
                indexed: None,
            },
        );
        // The creator's ticket expires with the TTL: the reservation goes with it.
        self.reservation_expiry
            .push_back((now + ttl, name.clone(), seq));
        self.add_joining(&name, user, now + ttl);
        self.sent_to(&placement.server);
        self.reindex(&name);
        Ok(Admission {
            placement,
            game: name,
            action: TicketAction::Create,
            terms,
        })
    }

    /// Joins a game by name according to `mode`. (`user` and `authority` are who asks;
    /// the rest is the request as sent.)
    #[allow(clippy::too_many_arguments)]
    pub fn join_game(
        &mut self,
        user: &str,
        authority: bool,
        name: &str,
        mode: JoinMode,
        expected_users: &[String],
        create_options: RoomOptions,
        now: Instant,
    ) -> Result<Admission, OpError> {
        check_game_name(name)?;
        check_expected_users(expected_users)?;
        let Some(game) = self.games.get(name) else {
            return match mode {
                JoinMode::CreateIfNotExists => self.create_game(
                    user,
                    authority,
                    Some(name.to_string()),
                    create_options,
                    expected_users,
                    now,
                ),
                // A persistent room the backend may hold: reserve the name on a game
                // server, which loads the room (or refuses, freeing the name).
                _ if self.settings.async_join => {
                    let mut a = self.create_game(
                        user,
                        authority,
                        Some(name.to_string()),
                        RoomOptions::default(),
                        expected_users,
                        now,
                    )?;
                    a.action = TicketAction::Join;
                    a.terms = terms_digest(None, expected_users, user);
                    Ok(a)
                }
                _ => Err(OpError::new(
                    ResultCode::GameDoesNotExist,
                    format!("no game named {name:?}"),
                )),
            };
        };
        self.check_routable(&game.server, now)?;
        let server = game.server.clone();
        self.check_reservations(user, now)?;
        let game = self.games.get(name).expect("looked up above");
        debug_assert_eq!(game.server, server);
        let member = game.state.users.iter().any(|u| u == user);
        // A game not confirmed yet (being created, or loaded from the backend) does not
        // know its actors here: its game server decides about a rejoin.
        if mode == JoinMode::RejoinOnly && !member && game.confirmed {
            return Err(OpError::new(
                ResultCode::JoinFailedWithRejoinerNotFound,
                "this user has no actor in the game to rejoin",
            ));
        }
        // A member holds its place already; the game server decides about it.
        if !member {
            self.check_can_join(game, user, expected_users)?;
        }
        Ok(self.admit(name, user, expected_users, now))
    }

    /// Refuses a join or create when `user` holds as many open reservations as it may.
    fn check_reservations(&mut self, user: &str, now: Instant) -> Result<(), OpError> {
        let max = self.settings.max_reservations_per_user;
        if max != 0 && self.open_reservations(user, now) >= max {
            return Err(OpError::new(
                ResultCode::TooManyReservations,
                format!(
                    "{max} joins are already on their way for this user; complete or let them expire"
                ),
            ));
        }
        Ok(())
    }

    /// Refuses joins to games of a server that stopped reporting or is going offline.
    fn check_routable(&self, server: &str, now: Instant) -> Result<(), OpError> {
        if self.routable(server, now) {
            return Ok(());
        }
        let why = if self.server_state(server) == ServerState::Offline {
            "the game's server is going offline"
        } else {
            "the game's server is not responding"
        };
        Err(OpError::new(ResultCode::GameServerUnavailable, why))
    }

    fn check_can_join(&self, g: &Game, user: &str, expected: &[String]) -> Result<(), OpError> {
        if !g.state.is_open {
            return Err(OpError::new(ResultCode::GameClosed, "the game is closed"));
        }
        if !g.has_room_for(user, 0) {
            return Err(OpError::new(ResultCode::GameFull, "the game is full"));
        }
        let new_expected = new_expected(g, user, expected);
        if !g.has_room_for(user, new_expected.len()) {
            return Err(OpError::new(
                ResultCode::SlotError,
                format!("{} more expected users do not fit", new_expected.len()),
            ));
        }
        Ok(())
    }

    /// Counts `user` (and the new expected users) toward the game and returns where to go.
    fn admit(&mut self, name: &str, user: &str, expected: &[String], now: Instant) -> Admission {
        let ttl = self.settings.joining_ttl;
        let game = self.games.get_mut(name).expect("checked by the caller");
        let added = new_expected(game, user, expected);
        game.state.expected_users.extend(added);
        game.joining.push((user.to_string(), now + ttl));
        let server = game.server.clone();
        self.add_joining(name, user, now + ttl);
        self.sent_to(&server);
        self.reindex(name);
        let address = self
            .servers
            .get(&server)
            .map(|s| s.address.clone())
            .unwrap_or_default();
        Admission {
            placement: Placement { server, address },
            game: name.to_string(),
            action: TicketAction::Join,
            terms: terms_digest(None, expected, user),
        }
    }

    /// Joins a random matching game of a lobby, or creates one if asked to.
    pub fn join_random(
        &mut self,
        user: &str,
        authority: bool,
        q: &JoinRandom,
        now: Instant,
    ) -> Result<Admission, OpError> {
        self.check_reservations(user, now)?;
        if let Some(name) = self.find_random(user, q, now)? {
            return Ok(self.admit(&name, user, &q.expected_users, now));
        }
        match &q.create_if_none {
            Some(spec) => {
                let mut options = spec.options.clone();
                options.lobby = q.lobby.clone();
                self.create_game(
                    user,
                    authority,
                    spec.game.clone(),
                    options,
                    &q.expected_users,
                    now,
                )
            }
            None => Err(OpError::new(ResultCode::NoMatchFound, "no game matches")),
        }
    }

    /// The game `join_random` would choose, without admitting the player (the serial
    /// cursor and the random generator do advance).
    pub fn find_random(
        &mut self,
        user: &str,
        q: &JoinRandom,
        now: Instant,
    ) -> Result<Option<String>, OpError> {
        check_expected_users(&q.expected_users)?;
        self.check_properties(&q.expected_properties)?;
        // The limit is on what the client sent, spaces included.
        if q.sql_filter.len() > sql_filter::MAX_FILTER_LEN {
            return Err(OpError::new(
                ResultCode::InvalidRequestParameters,
                format!(
                    "the SQL filter is {} bytes; the limit is {}",
                    q.sql_filter.len(),
                    sql_filter::MAX_FILTER_LEN
                ),
            ));
        }
        let filter =
            match (q.lobby.kind, q.sql_filter.trim()) {
                (_, "") => None,
                (LobbyKind::Sql, src) => Some(sql_filter::parse(src).map_err(|e| {
                    OpError::new(ResultCode::InvalidRequestParameters, e.to_string())
                })?),
                (LobbyKind::Default, _) => {
                    return Err(OpError::new(
                        ResultCode::InvalidRequestParameters,
                        "an SQL filter needs a lobby of kind Sql",
                    ));
                }
            };
        Ok(self.find_match(user, q, filter.as_ref(), now))
    }

    /// The matching game, searched in the smallest index that every match must be in.
    fn find_match(
        &mut self,
        user: &str,
        q: &JoinRandom,
        filter: Option<&Expr>,
        now: Instant,
    ) -> Option<String> {
        let mut required: Vec<(String, Vec<u8>)> = q
            .expected_properties
            .iter()
            .map(|(k, v)| (k.clone(), value_key(v)))
            .collect();
        if let Some(f) = filter {
            required.extend(
                f.required_equalities()
                    .iter()
                    .map(|(k, v)| (k.clone(), value_key(v))),
            );
        }
        // 1. Which index to scan: the smallest one every match is in.
        let index = self.lobbies.get(&q.lobby)?;
        let mut best = (SetKey::Joinable, index.joinable.len());
        for key in required {
            let len = index.postings.get(&key)?.len();
            if len < best.1 {
                best = (SetKey::Posting(key), len);
            }
        }
        if q.expected_max_players != 0 {
            let len = index.by_max_players.get(&q.expected_max_players)?.len();
            if len < best.1 {
                best = (SetKey::MaxPlayers(q.expected_max_players), len);
            }
        }
        let key = best.0;
        let set = key.set(index)?;
        let (first, last) = (*set.first()?, *set.last()?);
        // 2. Where to start.
        let start = match q.mode {
            MatchmakingMode::FillRoom => first,
            MatchmakingMode::SerialMatching => index.serial_cursor.saturating_add(1),
            MatchmakingMode::RandomMatching => self.rng.random_range(first..=last),
        };
        // 3. Scan from there, wrapping around.
        let index = self.lobbies.get(&q.lobby)?;
        let set = key.set(index)?;
        let found = set
            .range(start..)
            .chain(set.range(..start))
            .filter_map(|seq| index.listed.get(seq))
            .find(|name| {
                self.games.get(*name).is_some_and(|g| {
                    self.matches(g, user, q, filter) && self.routable(&g.server, now)
                })
            })
            .cloned();
        if q.mode == MatchmakingMode::SerialMatching
            && let Some(name) = &found
        {
            let seq = self.games[name].seq;
            self.lobbies
                .get_mut(&q.lobby)
                .expect("found in it")
                .serial_cursor = seq;
        }
        found
    }

    fn matches(&self, g: &Game, user: &str, q: &JoinRandom, filter: Option<&Expr>) -> bool {
        (q.expected_max_players == 0 || g.state.max_players == q.expected_max_players)
            && q.expected_properties
                .iter()
                .all(|(k, v)| g.state.lobby_properties.get(k) == Some(v))
            && filter.is_none_or(|f| f.matches(&g.state.lobby_properties))
            && !g.counts(user)
            && g.has_room_for(user, new_expected(g, user, &q.expected_users).len())
    }
}

/// An index of a lobby, by what selects it.
enum SetKey {
    Joinable,
    Posting((String, Vec<u8>)),
    MaxPlayers(u32),
}

impl SetKey {
    fn set<'a>(&self, index: &'a LobbyIndex) -> Option<&'a BTreeSet<u64>> {
        match self {
            SetKey::Joinable => Some(&index.joinable),
            SetKey::Posting(k) => index.postings.get(k),
            SetKey::MaxPlayers(n) => index.by_max_players.get(n),
        }
    }
}

fn new_expected(g: &Game, user: &str, expected: &[String]) -> Vec<String> {
    let mut out: Vec<String> = expected
        .iter()
        .filter(|u| *u != user && !g.counts(u))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}
