//! Types shared by several links: responses, errors, room options.

use serde::{Deserialize, Serialize};

use crate::{Properties, ResultCode};

/// Largest game name, in bytes of UTF-8.
pub const MAX_GAME_NAME: usize = 128;
/// Largest user id, in bytes of UTF-8.
pub const MAX_USER_ID: usize = 128;

/// A failed operation: a [`ResultCode`] number and a message a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct OpError {
    /// A [`ResultCode`] wire number.
    pub code: i16,
    /// Human-readable detail.
    pub message: String,
}

impl OpError {
    /// An error with a known code.
    pub fn new(code: ResultCode, message: impl Into<String>) -> Self {
        OpError {
            code: code.to_wire(),
            message: message.into(),
        }
    }

    /// The code, if this version knows it.
    pub fn result_code(&self) -> Option<ResultCode> {
        ResultCode::from_wire(self.code)
    }
}

/// The answer to a request: the request's id and the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response<T> {
    /// The id the client gave the request.
    pub id: u32,
    /// `Ok` (variant 0) with the reply or `Err` (variant 1) with the error.
    pub result: Result<T, OpError>,
}

/// The kind of a lobby.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum LobbyKind {
    /// 0: random matchmaking filters by exact equality on lobby-listed properties.
    #[default]
    Default,
    /// 1: random matchmaking takes an SQL-like filter over the lobby-listed properties
    /// `C0` to `C9`.
    Sql,
}

/// A lobby: a name and a kind. The empty name with kind `Default` is the default lobby.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Lobby {
    /// The lobby's name; empty for the default lobby.
    pub name: String,
    /// The lobby's kind.
    pub kind: LobbyKind,
}

impl Lobby {
    /// A lobby of the given name and kind.
    pub fn new(name: impl Into<String>, kind: LobbyKind) -> Self {
        Lobby {
            name: name.into(),
            kind,
        }
    }
}

/// How `JoinGame` treats a game that does not exist or an actor that was in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum JoinMode {
    /// 0: join an existing game only.
    #[default]
    JoinOnly,
    /// 1: create the game if it does not exist.
    CreateIfNotExists,
    /// 2: take back this user's inactive actor if there is one, else join.
    RejoinOrJoin,
    /// 3: take back this user's inactive actor, or fail.
    RejoinOnly,
}

/// The state of a game server, set by its operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ServerState {
    /// 0: takes new games.
    #[default]
    Normal,
    /// 1: takes no new games; existing games stay listed and joinable.
    OutOfRotation,
    /// 2: refuses every join; its games leave the lobbies.
    Offline,
}

impl ServerState {
    /// The state's name: `Normal`, `OutOfRotation` or `Offline`.
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Normal => "Normal",
            ServerState::OutOfRotation => "OutOfRotation",
            ServerState::Offline => "Offline",
        }
    }

    /// Parses a state name in any case, with `_` and `-` ignored.
    pub fn parse(s: &str) -> Option<ServerState> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        match norm.as_str() {
            "normal" => Some(ServerState::Normal),
            "outofrotation" => Some(ServerState::OutOfRotation),
            "offline" => Some(ServerState::Offline),
            _ => None,
        }
    }
}

/// Options of a new room, given with `CreateGame`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomOptions {
    /// Largest number of actors; 0 = unlimited.
    pub max_players: u32,
    /// Whether the room accepts joins.
    pub is_open: bool,
    /// Whether the room is listed in lobbies and found by random matchmaking.
    pub is_visible: bool,
    /// Initial room properties.
    pub properties: Properties,
    /// Keys of the properties that are listed in the lobby.
    pub lobby_properties: Vec<String>,
    /// Whether actors see each other's user ids in `Join` events and actor lists.
    pub publish_user_id: bool,
    /// The lobby the room is listed in.
    pub lobby: Lobby,
    /// Milliseconds an actor that dropped or left to come back stays inactive (and may
    /// rejoin); 0 = it leaves at once; negative = for as long as the room exists.
    pub player_ttl_ms: i32,
    /// Milliseconds the room stays after its last active actor is gone (capped by the
    /// server, 60 s by default).
    pub empty_room_ttl_ms: u32,
    /// Remove an actor's cached events when it leaves for good.
    pub cleanup_cache_on_leave: bool,
    /// Send no `Join` and `Leave` events.
    pub suppress_room_events: bool,
    /// Send `PropertiesChanged` to the sender too (not only to the others).
    pub broadcast_props_change_to_all: bool,
    /// Setting a property to `Null` deletes it.
    pub delete_null_props: bool,
    /// Who may change what.
    pub property_policy: PropertyPolicy,
    /// Who holds authority in the room and how events are routed.
    pub mode: RoomMode,
    /// (`Server` rooms) Hold every join until the authority approves or refuses it.
    pub join_approval: bool,
    /// Milliseconds the game server may hold events bound for one client to send them
    /// together (several unreliable events in one datagram, reliable ones in one
    /// write): `None` = the server's default, `Some(0)` = send every event at once;
    /// capped by the server. The first event after a quiet period longer than the
    /// window is never held.
    #[serde(default)]
    pub flush_window_ms: Option<u32>,
}

/// Who holds authority in a room, chosen at creation for the room's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RoomMode {
    /// 0: every actor talks to every other (Photon's Hive rooms). The default.
    #[default]
    Relay,
    /// 1: one active actor, the host (the master client), is the authority: the others
    /// send to it only; it uploads snapshots of its state, and when it goes the room
    /// migrates the role to another actor with the last snapshot.
    Host,
    /// 2: a dedicated server (authenticated with `AuthenticateServer`) creates the room
    /// and is its authority for the room's life: clients send to it only, only it sends
    /// to clients and changes properties, and it may approve every join.
    Server,
    /// 3: players own network objects; the room manages who holds each one's state
    /// authority.
    Shared,
}

/// Who may change a room's properties and settings and its actors' properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PropertyPolicy {
    /// 0: an actor sets only its own properties; the room's properties and settings
    /// (open, visible, max players, expected users) and the master-client role are
    /// changed only by the master client. The default.
    #[default]
    Guarded,
    /// 1: any active actor changes anything (Photon's behaviour), for rooms whose
    /// players trust each other.
    Open,
}

impl Default for RoomOptions {
    fn default() -> Self {
        RoomOptions {
            max_players: 0,
            is_open: true,
            is_visible: true,
            properties: Properties::new(),
            lobby_properties: Vec::new(),
            publish_user_id: false,
            lobby: Lobby::default(),
            player_ttl_ms: 0,
            empty_room_ttl_ms: 0,
            cleanup_cache_on_leave: true,
            suppress_room_events: false,
            broadcast_props_change_to_all: true,
            delete_null_props: false,
            property_policy: PropertyPolicy::Guarded,
            mode: RoomMode::Relay,
            join_approval: false,
            flush_window_ms: None,
        }
    }
}

/// Largest number of expected users in one request.
pub const MAX_EXPECTED_USERS: usize = 64;

/// Checks a list of expected users: at most [`MAX_EXPECTED_USERS`] valid user ids.
pub fn check_expected_users(users: &[String]) -> Result<(), OpError> {
    if users.len() > MAX_EXPECTED_USERS
        || users.iter().any(|u| u.is_empty() || u.len() > MAX_USER_ID)
    {
        return Err(OpError::new(
            ResultCode::InvalidRequestParameters,
            format!("expected users: at most {MAX_EXPECTED_USERS} ids of 1 to {MAX_USER_ID} bytes"),
        ));
    }
    Ok(())
}

/// Checks a game name: 1 to [`MAX_GAME_NAME`] bytes, no control characters.
pub fn check_game_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.len() > MAX_GAME_NAME || name.chars().any(char::is_control) {
        return Err(OpError::new(
            ResultCode::InvalidRequestParameters,
            format!("game name must be 1 to {MAX_GAME_NAME} bytes without control characters"),
        ));
    }
    Ok(())
}
