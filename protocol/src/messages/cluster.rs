//! Game server ↔ master, on the master's game-server listener (ALPN
//! `switchboard-cluster/2`). The game server connects, opens the control stream and sends
//! `Hello` then `Register`; afterwards it reports load and game changes.

use serde::{Deserialize, Serialize};

use super::common::{Lobby, OpError, ServerState};
use crate::{Hello, Properties, TicketKeys, Welcome};

/// Largest frame on the cluster link once the game server is registered (a `Snapshot`
/// carries every room of the server).
pub const MAX_CLUSTER_FRAME: usize = 16 * 1024 * 1024;

/// Largest frame on the cluster link before the cluster secret is checked (`Hello`,
/// `Register`): an unauthenticated peer makes the master buffer almost nothing.
pub const MAX_CLUSTER_HANDSHAKE_FRAME: usize = 4 * 1024;

/// Frames a game server sends to the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GsToMaster {
    /// 0: the version handshake.
    Hello(Hello),
    /// 1: registration; the master answers `Registered` (and the server then sends a
    /// `Snapshot` of every room) or `Refused`.
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
    /// 5: a client came with a valid ticket for a game this server does not host: the
    /// master's entry is stale and should go.
    GameUnknown {
        /// The game's name.
        game: String,
    },
    /// 6: the server's view of its rooms, to compare with the master's (every
    /// `sync_interval`, one minute by default). Sent after every report it covers.
    Digest(GamesDigest),
    /// 7: every room the server hosts, right after `Registered` and in answer to
    /// `MasterToGs::Resync`: the master replaces its view of this server's games with it
    /// (games that ended meanwhile disappear, games created meanwhile appear, names it
    /// reserved for clients still on their way are kept).
    Snapshot(Vec<GameState>),
    /// 8: the server refused the join or create of a client with a valid ticket for this
    /// game (the room's rules, or terms that differ from the ticket's): the user is no
    /// longer on its way, and a name reserved for a refused creator is free again.
    JoinRefused {
        /// The game's name.
        game: String,
        /// The ticket's user.
        user_id: String,
    },
}

/// A summary of a set of games that two sides can compare without sending the games.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GamesDigest {
    /// Number of games.
    pub games: u32,
    /// [`games_digest`] of them.
    pub digest: u64,
}

/// An order-independent digest of games: the wrapping sum, over the games, of the first
/// 8 bytes (little-endian) of SHA-256 over the postcard encoding of
/// `(game, lobby, max_players, is_open, is_visible, lobby_properties, users)`.
/// `expected_users` is left out: the master adds joiners' reservations to its copy before
/// the game server hears of them.
pub fn games_digest<'a>(games: impl IntoIterator<Item = &'a GameState>) -> GamesDigest {
    use sha2::{Digest, Sha256};
    let mut out = GamesDigest::default();
    for g in games {
        let key = (
            &g.game,
            &g.lobby,
            g.max_players,
            g.is_open,
            g.is_visible,
            &g.lobby_properties,
            &g.users,
        );
        let bytes = postcard::to_stdvec(&key).expect("encoding into memory cannot fail");
        let hash = Sha256::digest(&bytes);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        out.games += 1;
        out.digest = out.digest.wrapping_add(u64::from_le_bytes(first));
    }
    out
}

/// A game server introduces itself (its rooms follow in a `Snapshot` once it is
/// registered).
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
    /// Take the id over even from a live server at another address (an operator's
    /// explicit choice); that server is told and closed with `CloseCode::Displaced`.
    pub replace: bool,
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
    /// 4: the master's view differs from the last `Digest`: send a `Snapshot`.
    Resync,
}
