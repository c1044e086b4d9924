//! Game server ↔ master, on the master's game-server listener (ALPN
//! `switchboard-cluster/1`). The game server connects, opens the control stream and sends
//! `Hello` then `Register`; afterwards it reports load and game changes.

use serde::{Deserialize, Serialize};

use super::common::{Lobby, OpError, ServerState};
use crate::{Hello, Properties, TicketKeys, Welcome};

/// Largest frame on the cluster link (a `Register` carries every room of the server).
pub const MAX_CLUSTER_FRAME: usize = 16 * 1024 * 1024;

/// Frames a game server sends to the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GsToMaster {
    /// 0: the version handshake.
    Hello(Hello),
    /// 1: registration; the master answers `Registered` or `Refused`.
    Register(Register),
    /// 2: load and peer counts, every second.
    Load(LoadReport),
    /// 3: a game was created or changed.
    GameUpdate(GameState),
    /// 4: a game ended.
    GameRemoved {
        /// The game's name.
        game: String,
    },
}

/// A game server introduces itself, with every room it currently hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// Stable id of the game server; the same id re-attaches after a reconnect.
    pub server_id: String,
    /// The address clients connect to, `host:port`.
    pub address: String,
    /// Cluster secret from the configuration, shared by master and game servers.
    pub secret: String,
    /// Priority group; lower groups are used first.
    pub priority: u8,
    /// Every room the server hosts now (the master replaces its view with this list).
    pub games: Vec<GameState>,
}

/// Load of a game server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// Connected client peers.
    pub peers: u32,
    /// Rooms hosted.
    pub games: u32,
    /// Load level, 0 (lowest) to 9 (highest): the highest of the controllers.
    pub level: u8,
    /// The server's state.
    pub state: ServerState,
    /// The level of each feedback controller.
    pub controllers: ControllerLevels,
}

/// The level of each feedback controller of a game server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ControllerLevels {
    /// CPU usage.
    pub cpu: u8,
    /// Bytes in and out per second.
    pub bandwidth: u8,
    /// Connected clients.
    pub peers: u8,
}

/// The lobby-relevant state of one game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameState {
    /// The game's name.
    pub game: String,
    /// The lobby the game is listed in.
    pub lobby: Lobby,
    /// Largest number of actors (0 = unlimited).
    pub max_players: u32,
    /// Whether the room accepts joins.
    pub is_open: bool,
    /// Whether the room is listed.
    pub is_visible: bool,
    /// The lobby-listed properties.
    pub lobby_properties: Properties,
    /// The user id of every actor (active or inactive); its length is the actor count.
    pub users: Vec<String>,
    /// Users with a reserved slot who have not joined yet.
    pub expected_users: Vec<String>,
}

/// Frames the master sends to a game server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterToGs {
    /// 0: answer to an accepted `Hello`.
    Welcome(Welcome),
    /// 1: registration accepted; the keys verify join tickets from now on.
    Registered {
        /// The master's ticket keys.
        ticket_keys: TicketKeys,
    },
    /// 2: registration refused; the master closes the connection after this.
    Refused(OpError),
    /// 3: an operator asks the game server to change its state.
    SetState {
        /// The new state.
        state: ServerState,
        /// For `Offline`: seconds the players get before the server stops.
        offline_after_secs: u32,
    },
}
