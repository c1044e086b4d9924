//! The Switchboard wire protocol, sans-IO: no sockets, no async runtime.
//!
//! - [`frame`] — length-prefixed postcard frames on QUIC streams, with a size limit checked
//!   before a body is buffered;
//! - [`version`] — ALPN identifiers and the `Hello`/`Welcome` handshake;
//! - [`messages`] — every message of the client↔master, client↔game server and
//!   game server↔master links, and the datagram encoding of unreliable events;
//! - [`codes`] — the stable result-code and close-code tables;
//! - [`ticket`] — signed, expiring join tickets;
//! - [`value`] — property values.
//!
//! `docs/PROTOCOL.md` describes the same protocol for implementers in other languages.

pub mod codes;
pub mod frame;
pub mod messages;
pub mod ticket;
pub mod value;
pub mod version;

pub use codes::{CloseCode, ResultCode};
pub use frame::{FrameDecoder, FrameError, decode_body, encode_body, encode_frame};
pub use messages::cluster::{
    ControllerLevels, GameState, GamesDigest, GsToMaster, LoadReport, MasterToGs, Register,
    games_digest,
};
pub use messages::common::{
    JoinMode, Lobby, LobbyKind, OpError, PropertyPolicy, Response, RoomMode, RoomOptions,
    ServerState,
};
pub use messages::game::{
    ActorInfo, ChannelHeader, ClientToGame, DatagramDown, DatagramUp, EventCaching, EventData,
    Forward, GameOp, GameReply, GameToClient, Handover, HostChange, HostSnapshot, Joined,
    ObjectInfo, ObjectState, RaiseEvent, ReceiverGroup, RoomChange, RoomEvent, SetProperties,
    SpawnObject, StateUpdate, Unreliable,
};
pub use messages::master::{
    ClientToMaster, CreateSpec, FriendStatus, GameListEntry, JoinRandom, LobbyStats, MasterEvent,
    MasterOp, MasterReply, MasterToClient, MatchmakingMode, Redirect,
};
pub use ticket::{TicketAction, TicketClaims, TicketError, TicketKeys, terms_digest};
pub use value::{Properties, Value};
pub use version::{ALPN_CLUSTER, ALPN_GAME, ALPN_MASTER, Hello, PROTOCOL_VERSION, Welcome};
