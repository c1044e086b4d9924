//! Client ↔ game server, on a game server's client listener (ALPN `switchboard-game/1`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::common::{JoinMode, Response, RoomOptions};
use crate::{Hello, Properties, Welcome};

/// Frames a client sends on its control stream to a game server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientToGame {
    /// 0: the version handshake; must be the first frame, and only the first.
    Hello(Hello),
    /// 1: an operation; answered by a `Response` with the same id.
    Request {
        /// Chosen by the client, echoed in the response.
        id: u32,
        /// The operation.
        op: GameOp,
    },
    /// 2: a reliable event for other actors of the room; no response.
    RaiseEvent(RaiseEvent),
}

/// Operations on a game server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GameOp {
    /// 0: create the room named in the ticket.
    CreateGame {
        /// The ticket from the master's `Redirect`.
        ticket: Bytes,
        /// The game's name (must match the ticket).
        game: String,
        /// Room options.
        options: RoomOptions,
        /// Users for whom slots are reserved.
        expected_users: Vec<String>,
    },
    /// 1: join the room named in the ticket.
    JoinGame {
        /// The ticket from the master's `Redirect`.
        ticket: Bytes,
        /// The game's name (must match the ticket).
        game: String,
        /// Join or rejoin (`CreateIfNotExists` acts as `JoinOnly` here: the master decided).
        mode: JoinMode,
        /// Users for whom slots are reserved.
        expected_users: Vec<String>,
    },
    /// 2: leave the room; the connection may then be closed or join again.
    LeaveGame,
}

/// Who receives an event when no target actors are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ReceiverGroup {
    /// 0: every other actor of the room.
    #[default]
    Others,
    /// 1: every actor, the sender included.
    All,
    /// 2: the master client only.
    MasterClient,
}

/// An event for other actors. The server stamps the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaiseEvent {
    /// Application event code.
    pub code: u8,
    /// Recipients when `targets` is empty.
    pub receivers: ReceiverGroup,
    /// Explicit recipient actor numbers; when not empty they take precedence.
    pub targets: Vec<u32>,
    /// Application payload.
    pub data: Bytes,
}

/// Successful replies of a game server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GameReply {
    /// 0: the client is now an actor of the room.
    Joined(Joined),
    /// 1: the client left the room.
    Left,
}

/// The room as the joining actor first sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Joined {
    /// The game's name.
    pub game: String,
    /// The actor number assigned to this client.
    pub actor: u32,
    /// The master client's actor number.
    pub master_client: u32,
    /// Every actor in the room, this one included, ascending by actor number.
    pub actors: Vec<ActorInfo>,
    /// The room's properties.
    pub properties: Properties,
    /// Largest number of actors (0 = unlimited).
    pub max_players: u32,
}

/// One actor of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorInfo {
    /// The actor number.
    pub actor: u32,
    /// The user id, or empty when the room does not publish user ids.
    pub user_id: String,
}

/// Events a game server sends to room members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoomEvent {
    /// 0: an actor joined (also sent to the joiner itself).
    Join {
        /// The new actor.
        actor: ActorInfo,
        /// Every actor number now in the room, ascending.
        actors: Vec<u32>,
    },
    /// 1: an actor left.
    Leave {
        /// The actor that left.
        actor: u32,
        /// The master client after the leave (0 when the room is empty).
        master_client: u32,
    },
    /// 2: an application event.
    Custom(EventData),
}

/// An application event as delivered: the payload and the server-stamped sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// The sending actor, stamped by the server.
    pub sender: u32,
    /// Application event code.
    pub code: u8,
    /// Application payload.
    pub data: Bytes,
}

/// Frames a game server sends on a client's control stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GameToClient {
    /// 0: answer to an accepted `Hello`.
    Welcome(Welcome),
    /// 1: the answer to a request.
    Response(Response<GameReply>),
    /// 2: a room event.
    Event(RoomEvent),
}

/// A QUIC datagram from a client to a game server (no length prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatagramUp {
    /// 0: an unreliable event.
    RaiseEvent(RaiseEvent),
}

/// A QUIC datagram from a game server to a client (no length prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatagramDown {
    /// 0: an unreliable event.
    Event(EventData),
}

/// Turns an encoded [`DatagramDown::Event`] into the reliable frame
/// `GameToClient::Event(RoomEvent::Custom(..))` carrying the same event, without decoding:
/// both encodings end with the same `EventData` bytes. A game server uses it when a
/// datagram is too large for the path. Returns the frame as header and body parts, or
/// `None` if `datagram` is not an encoded event.
pub fn event_datagram_to_frame(datagram: &Bytes) -> Option<[Bytes; 2]> {
    if datagram.first() != Some(&0) {
        return None;
    }
    let event = datagram.slice(1..);
    // GameToClient::Event = 2, RoomEvent::Custom = 2.
    let len = u32::try_from(event.len() + 2).ok()?;
    let mut head = Vec::with_capacity(6);
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&[2, 2]);
    Some([Bytes::from(head), event])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_body, encode_frame};

    #[test]
    fn datagram_converts_to_the_same_event_as_a_frame() {
        let ev = EventData {
            sender: 3,
            code: 9,
            data: Bytes::from(vec![7; 300]),
        };
        let dg = encode_body(&DatagramDown::Event(ev.clone()));
        let [head, body] = event_datagram_to_frame(&dg).unwrap();
        let mut joined = head.to_vec();
        joined.extend_from_slice(&body);
        assert_eq!(
            joined,
            encode_frame(&GameToClient::Event(RoomEvent::Custom(ev))).to_vec()
        );
        assert_eq!(event_datagram_to_frame(&Bytes::from_static(&[5, 1])), None);
    }
}
