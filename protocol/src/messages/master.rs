//! Client ↔ master, on the master's client listener (ALPN `switchboard-master/2`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::common::{JoinMode, Lobby, Response, RoomOptions};
use crate::{Hello, Properties, TicketAction, Welcome};

/// Frames a client sends on its control stream to the master.
#[allow(clippy::large_enum_variant)] // decoded, matched once and dropped: boxing would cost an allocation per message
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientToMaster {
    /// 0: the version handshake; must be the first frame, and only the first.
    Hello(Hello),
    /// 1: an operation; answered by a `Response` with the same id.
    Request {
        /// Chosen by the client, echoed in the response.
        id: u32,
        /// The operation.
        op: MasterOp,
    },
}

/// Operations on the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterOp {
    /// 0: authenticate; every other operation is refused before it succeeds.
    Authenticate {
        /// The user id (what the providers do with it: see the protocol document).
        user_id: String,
        /// A credential for the configured provider.
        token: String,
    },
    /// 1: create a game; the master picks a game server and answers with a redirect.
    CreateGame {
        /// The game's name; `None` lets the master generate an unguessable one.
        game: Option<String>,
        /// Room options (checked here, applied by the game server).
        options: RoomOptions,
        /// Users for whom slots are reserved.
        expected_users: Vec<String>,
    },
    /// 2: join a game by name.
    JoinGame {
        /// The game's name.
        game: String,
        /// What to do if the game does not exist, or to take back an inactive actor.
        mode: JoinMode,
        /// Users for whom slots are reserved.
        expected_users: Vec<String>,
        /// Options of the room if `mode` is `CreateIfNotExists` and it creates it.
        create_options: RoomOptions,
    },
    /// 3: join a random joinable game of a lobby that matches the filter.
    JoinRandomGame(JoinRandom),
    /// 4: join a lobby and receive its game list.
    JoinLobby {
        /// The lobby.
        lobby: Lobby,
    },
    /// 5: leave the lobby (no more game lists).
    LeaveLobby,
    /// 6: the peer and game counts of every lobby.
    GetLobbyStats,
    /// 7: which of these users are online, and in which game.
    FindFriends {
        /// The users (at most 64).
        user_ids: Vec<String>,
    },
    /// 8: authenticate as a dedicated server, with the master's server secret; a
    /// dedicated server may create `Server` rooms, whose authority it is.
    AuthenticateServer {
        /// The server's name (its user id, 1 to 128 bytes).
        name: String,
        /// The master's server secret.
        secret: String,
    },
}

/// The matchmaking mode of `JoinRandomGame`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MatchmakingMode {
    /// 0: the oldest matching game first, so rooms fill up.
    #[default]
    FillRoom,
    /// 1: the matching game after the one matched last in this lobby, wrapping around.
    SerialMatching,
    /// 2: a matching game from a random starting point.
    RandomMatching,
}

/// The parameters of `JoinRandomGame`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JoinRandom {
    /// The lobby to search.
    pub lobby: Lobby,
    /// Lobby-listed properties a game must have, with equal values (`Default` lobbies).
    pub expected_properties: Properties,
    /// The game's `max_players` must equal this; 0 = any.
    pub expected_max_players: u32,
    /// A filter over the columns `C0`..`C9` (`Sql` lobbies); empty = none.
    pub sql_filter: String,
    /// Which matching game to choose.
    pub mode: MatchmakingMode,
    /// Users for whom slots are reserved.
    pub expected_users: Vec<String>,
    /// Create a game when none matches, instead of failing with `NoMatchFound`.
    pub create_if_none: Option<CreateSpec>,
}

/// A game to create when `JoinRandomGame` finds none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateSpec {
    /// The name; `None` lets the master generate one.
    pub game: Option<String>,
    /// Room options (`options.lobby` is replaced by the searched lobby).
    pub options: RoomOptions,
}

/// Successful replies of the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterReply {
    /// 0: authentication succeeded.
    Authenticated {
        /// The user id the master will put in join tickets.
        user_id: String,
    },
    /// 1: go to this game server with this ticket.
    Redirect(Redirect),
    /// 2: the client is in the lobby; the `GameList` event follows.
    JoinedLobby,
    /// 3: the client left its lobby.
    LeftLobby,
    /// 4: statistics of every lobby that has peers or games.
    LobbyStats(Vec<LobbyStats>),
    /// 5: the status of each user asked for, in the order asked.
    Friends(Vec<FriendStatus>),
}

/// Where to create or join a game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The game's name (generated by the master if the client gave none).
    pub game: String,
    /// The game server's client address, `host:port`; `host` is also the TLS server name.
    pub address: String,
    /// The join ticket to present to the game server, opaque to the client.
    pub ticket: Bytes,
    /// Whether to send `CreateGame` (Create) or `JoinGame` (Join) to the game server.
    pub action: TicketAction,
}

/// The counts of one lobby.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyStats {
    /// The lobby.
    pub lobby: Lobby,
    /// Clients in the lobby (joined with `JoinLobby`).
    pub peers: u32,
    /// Listed games.
    pub games: u32,
}

/// Whether a user is online, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendStatus {
    /// The user.
    pub user_id: String,
    /// Connected to the master or in a game.
    pub online: bool,
    /// The game the user is an actor of, if any.
    pub game: Option<String>,
}

/// One game of a game list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameListEntry {
    /// The game's name.
    pub game: String,
    /// True when the game left the list (ended, hidden, or its server went away); the
    /// other fields are then empty.
    pub removed: bool,
    /// The lobby-listed properties.
    pub properties: Properties,
    /// Actors, joining players and reserved slots.
    pub player_count: u32,
    /// Largest number of actors (0 = unlimited).
    pub max_players: u32,
    /// Whether the game accepts joins.
    pub is_open: bool,
}

/// Events the master pushes to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterEvent {
    /// 0: the lobby's games, once after `JoinLobby` (at most the list limit).
    GameList {
        /// The lobby.
        lobby: Lobby,
        /// The games.
        games: Vec<GameListEntry>,
    },
    /// 1: games of the lobby that changed since the last list or update.
    GameListUpdate {
        /// The lobby.
        lobby: Lobby,
        /// The changed games.
        games: Vec<GameListEntry>,
    },
    /// 2: application statistics, every few seconds to authenticated clients.
    AppStats {
        /// Clients connected to the master.
        peers_on_master: u32,
        /// Actors in games on all game servers.
        peers_in_games: u32,
        /// Games.
        games: u32,
    },
}

/// Frames the master sends on a client's control stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterToClient {
    /// 0: answer to an accepted `Hello`.
    Welcome(Welcome),
    /// 1: the answer to a request.
    Response(Response<MasterReply>),
    /// 2: an event.
    Event(MasterEvent),
}
