//! Client ↔ game server, on a game server's client listener (ALPN `switchboard-game/4`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::common::{JoinMode, Response, RoomMode, RoomOptions};
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
    /// 3: (`Shared` rooms) a reliable update of an object's state by its state
    /// authority; no response.
    UpdateState(StateUpdate),
    /// 4: a reliable event that is also forwarded to the studio's backend (a webhook),
    /// at once or batched; relayed exactly as `RaiseEvent`; no response.
    ForwardEvent {
        /// The event.
        event: RaiseEvent,
        /// How to forward it.
        forward: Forward,
    },
}

/// How a forwarded event reaches the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forward {
    /// 0: a webhook of its own, at once.
    Now,
    /// 1: collected with the room's other batched events, sent every batch interval
    /// and when the room ends.
    Batched,
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
        /// The creator's actor properties.
        actor_properties: Properties,
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
        /// The actor's properties (on a rejoin they replace nothing: the old ones stay).
        actor_properties: Properties,
    },
    /// 2: leave the room; the connection may then be closed or join again.
    LeaveGame {
        /// Become inactive (and able to rejoin within the room's PlayerTtl) instead of
        /// leaving for good.
        will_come_back: bool,
    },
    /// 3: set room or actor properties, optionally as a compare-and-set.
    SetProperties(SetProperties),
    /// 4: hand the master client role to another actor, if it is still `expected`.
    SetMasterClient {
        /// The new master client.
        actor: u32,
        /// The master client the sender believes is current (compare-and-set).
        expected: u32,
    },
    /// 5: leave and join interest groups (removals first).
    ChangeGroups {
        /// Groups to leave; `Some([])` leaves all; `None` leaves none.
        remove: Option<Vec<u8>>,
        /// Groups to join (1 to 255; group 0 is everyone and cannot be joined).
        add: Vec<u8>,
    },
    /// 6: (the host of a `Host` room) keep this snapshot of the game state; it replaces
    /// the previous one and is handed to the next host.
    UploadSnapshot {
        /// The host's game state, opaque to the server.
        data: Bytes,
    },
    /// 7: (the authority of a `Server` room) approve or refuse a held join.
    ApproveJoin {
        /// The `request` of the `JoinRequest` event.
        request: u32,
        /// Let the joiner in, or not.
        approve: bool,
        /// For a refusal: why, for the joiner (at most 256 bytes).
        reason: String,
    },
    /// 8: (`Shared` rooms) spawn a network object; the sender is its state and input
    /// authority.
    Spawn(SpawnObject),
    /// 9: (`Shared` rooms) despawn an object and its nested objects.
    Despawn {
        /// The object.
        object: u32,
    },
    /// 10: (`Shared` rooms) take an object's state authority: granted when it has none
    /// or allows override; the reply names who holds it afterwards.
    RequestStateAuthority {
        /// The object.
        object: u32,
    },
    /// 11: (`Shared` rooms) give up an object's state authority.
    ReleaseStateAuthority {
        /// The object.
        object: u32,
    },
    /// 12: (`Shared` rooms; the object's state authority) set its input authority.
    AssignInputAuthority {
        /// The object.
        object: u32,
        /// The new input authority (an active actor), or 0 for none.
        actor: u32,
    },
    /// 13: `SetProperties`, and the change is also sent to the studio's backend (a
    /// `GameProperties` webhook). Answered with `PropertiesSet`.
    SetPropertiesForwarded(SetProperties),
}

/// Changes of a room's own settings (only with `target` 0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoomChange {
    /// New `max_players` (not below the actors and reserved slots).
    pub max_players: Option<u32>,
    /// Open or close the room.
    pub is_open: Option<bool>,
    /// Show or hide the room in lobbies.
    pub is_visible: Option<bool>,
    /// Replace the reserved slots.
    pub expected_users: Option<Vec<String>>,
}

/// `SetProperties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SetProperties {
    /// 0 for the room, else an actor number.
    pub target: u32,
    /// Properties to set (keys starting with `#` are reserved for the server).
    pub properties: Properties,
    /// Compare-and-set: every pair must match the current value (`Null` = absent), or
    /// nothing is changed.
    pub expected: Properties,
    /// Broadcast the change (always done when `expected` is not empty).
    pub broadcast: bool,
    /// Room settings to change (target 0 only).
    pub room: RoomChange,
}

/// How `RaiseEvent` uses the room's event cache (replayed to joiners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EventCaching {
    /// 0: not cached.
    #[default]
    DoNotCache,
    /// 1: cached; removed when the sender leaves for good (if the room cleans up).
    AddToRoomCache,
    /// 2: cached for the room's lifetime, whoever leaves.
    AddToRoomCacheGlobal,
    /// 3: not delivered; removes cached events with this code (0 = any) from the senders
    /// in `targets` (empty = any sender).
    RemoveFromRoomCache,
    /// 4: not delivered; removes cached events of actors no longer in the room.
    RemoveFromRoomCacheForActorsLeft,
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
    /// 3: the room's authority only: the host in a `Host` room; the master client in a
    /// `Relay` room.
    Host,
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
    /// Interest group (1 to 255): its members except the sender; 0 = no group.
    pub group: u8,
    /// Event cache handling.
    pub cache: EventCaching,
    /// Reliable channel 0 to 15 (ignored for unreliable events): events of one channel
    /// arrive in order, channels do not wait for each other.
    pub channel: u8,
    /// Application payload.
    pub data: Bytes,
}

/// Highest reliable channel number.
pub const MAX_CHANNEL: u8 = 15;

/// Successful replies of a game server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GameReply {
    /// 0: the client is now an actor of the room.
    Joined(Joined),
    /// 1: the client left the room.
    Left,
    /// 2: the properties were set.
    PropertiesSet,
    /// 3: the master client was changed.
    MasterClientSet,
    /// 4: the groups were changed.
    GroupsChanged,
    /// 5: the snapshot was stored.
    SnapshotStored,
    /// 6: the answer to a held join was taken.
    JoinAnswered,
    /// 7: the object was spawned with this number.
    Spawned {
        /// The object's number in the room.
        object: u32,
    },
    /// 8: the object (and its nested objects) were despawned.
    Despawned,
    /// 9: who holds the object's state authority after the request (the requester if
    /// granted; 0 for none).
    StateAuthority {
        /// The object.
        object: u32,
        /// Its state authority now.
        holder: u32,
    },
    /// 10: the input authority was set.
    InputAuthoritySet,
}

/// A network object to spawn (`Shared` rooms).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpawnObject {
    /// The application's type (prefab) id.
    pub type_id: u32,
    /// The object it is nested in, or 0.
    pub parent: u32,
    /// The initial state.
    pub state: Bytes,
    /// The initial state's tick (the application's clock).
    pub tick: u64,
    /// Another actor may take the state authority while it is held.
    pub allow_override: bool,
    /// Despawn the object when its state authority leaves the room.
    pub despawn_on_leave: bool,
    /// When its state authority leaves, the object passes to the master client.
    pub master_client_object: bool,
}

/// A state update of an object by its state authority (`Shared` rooms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateUpdate {
    /// The object.
    pub object: u32,
    /// The state's tick.
    pub tick: u64,
    /// The whole new state.
    pub state: Bytes,
}

/// An object's state as relayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectState {
    /// The object.
    pub object: u32,
    /// Who sent it (the state authority), stamped by the server.
    pub sender: u32,
    /// The state's tick.
    pub tick: u64,
    /// The state.
    pub state: Bytes,
}

/// A live network object as everyone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's number in the room (they increase in spawn order).
    pub object: u32,
    /// The application's type (prefab) id.
    pub type_id: u32,
    /// The object it is nested in, or 0.
    pub parent: u32,
    /// Its state authority, or 0 for none.
    pub state_authority: u32,
    /// Its input authority, or 0 for none.
    pub input_authority: u32,
    /// Another actor may take the state authority while it is held.
    pub allow_override: bool,
    /// Despawned when its state authority leaves.
    pub despawn_on_leave: bool,
    /// Passes to the master client when its state authority leaves.
    pub master_client_object: bool,
    /// Its latest state's tick.
    pub tick: u64,
    /// Its latest state.
    pub state: Bytes,
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
    /// The room's mode.
    pub mode: RoomMode,
    /// The room's authority: the host of a `Host` room, the master client of a `Relay`
    /// room (0 when nobody is active).
    pub host: u32,
    /// The room's flush window as the server applies it, in milliseconds (0: every
    /// relayed event is sent at once): how long a relayed event may be held for this
    /// client at most.
    pub flush_window_ms: u32,
}

/// One actor of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorInfo {
    /// The actor number.
    pub actor: u32,
    /// The user id, or empty when the room does not publish user ids.
    pub user_id: String,
    /// Whether the actor is inactive (dropped or left to come back).
    pub inactive: bool,
    /// The actor's properties.
    pub properties: Properties,
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
    /// 1: an actor left, or became inactive.
    Leave {
        /// The actor that left.
        actor: u32,
        /// True if it became inactive and may come back.
        inactive: bool,
        /// The master client after the leave (0 when no actor is active).
        master_client: u32,
    },
    /// 2: an application event.
    Custom(EventData),
    /// 3: room or actor properties changed.
    PropertiesChanged {
        /// 0 for the room, else the actor.
        target: u32,
        /// Who changed them.
        sender: u32,
        /// The properties set (a `Null` value means deleted if the room deletes nulls).
        properties: Properties,
        /// Room settings changed (target 0).
        room: RoomChange,
    },
    /// 4: the master client changed by `SetMasterClient`.
    MasterClientChanged {
        /// The new master client.
        master_client: u32,
        /// Who changed it.
        sender: u32,
    },
    /// 5: an error that is not the answer to a request (e.g. the event cache overflowed).
    ErrorInfo {
        /// A result code.
        code: i16,
        /// Text for people.
        message: String,
    },
    /// 6: the game server is going offline: it stops in `seconds_left` seconds.
    GameServerOffline {
        /// Seconds until the server closes every connection.
        seconds_left: u32,
    },
    /// 7: the room's host changed (`Host` rooms). Only the new host's copy carries the
    /// `handover`; the replayed events follow it.
    HostChanged {
        /// The new host.
        host: u32,
        /// The previous host (0 if nobody was).
        previous: u32,
        /// Why.
        reason: HostChange,
        /// For the new host: what it takes over.
        handover: Option<Handover>,
    },
    /// 8: (to the authority of a `Server` room with join approval) a join waits for
    /// its answer (`ApproveJoin`).
    JoinRequest {
        /// Names this join in `ApproveJoin`.
        request: u32,
        /// The joiner's user id, as the master authenticated it.
        user_id: String,
        /// What the master's authentication verified about the user (JWT claims, the
        /// authentication backend's `Data`); empty with the `dev` provider.
        claims: Properties,
        /// Whether the user comes back to its inactive actor.
        rejoin: bool,
        /// The actor properties the joiner sent.
        properties: Properties,
    },
    /// 9: (`Server` rooms) the authority left: the room ends in `closes_in_ms`, and
    /// every connection in it is then closed with `RoomClosed`.
    AuthorityLeft {
        /// Milliseconds until the room ends.
        closes_in_ms: u32,
    },
    /// 10: (`Shared` rooms) an object was spawned (also sent for every live object to a
    /// joiner, in spawn order).
    ObjectSpawned(ObjectInfo),
    /// 11: (`Shared` rooms) objects were despawned (an object and its nested ones).
    ObjectsDespawned {
        /// The objects, parents before their children.
        objects: Vec<u32>,
        /// Who despawned them (0: the room, when their state authority left).
        sender: u32,
    },
    /// 12: (`Shared` rooms) an object's authorities changed.
    AuthorityChanged {
        /// The object.
        object: u32,
        /// Its state authority now (0: none).
        state_authority: u32,
        /// Its input authority now (0: none).
        input_authority: u32,
    },
    /// 13: (`Shared` rooms) an object's new state, reliably.
    ObjectState(ObjectState),
    /// 14: (to the authority of a `Server` room) a held join was withdrawn: the joiner's
    /// connection closed before the answer.
    JoinWithdrawn {
        /// The `request` of its `JoinRequest`.
        request: u32,
    },
}

/// Why a room's host changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostChange {
    /// 0: the host left the room for good.
    Left,
    /// 1: the host dropped, or left to come back (it is inactive).
    Inactive,
    /// 2: the host handed the role over (`SetMasterClient`).
    HandedOver,
    /// 3: nobody was active; the first actor back is the host.
    Returned,
}

/// What a new host takes over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The last snapshot a host uploaded, if any.
    pub snapshot: Option<HostSnapshot>,
    /// How many reliable events follow this event on the control stream: every one a
    /// host was sent since that snapshot, oldest first.
    pub replay: u32,
    /// Whether older events were dropped from the replay (it is bounded).
    pub replay_truncated: bool,
}

/// A host's uploaded game state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSnapshot {
    /// The bytes the host uploaded.
    pub data: Bytes,
    /// Milliseconds since it was uploaded.
    pub age_ms: u64,
}

/// The first frame on a unidirectional stream: which reliable channel it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelHeader {
    /// Channel 1 to 15.
    pub channel: u8,
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
    /// 1: (`Shared` rooms) an unreliable state update.
    UpdateState(StateUpdate),
}

/// A QUIC datagram from a game server to a client (no length prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatagramDown {
    /// 0: an unreliable event.
    Event(EventData),
    /// 1: (`Shared` rooms) an object's new state, unreliably.
    State(ObjectState),
    /// 2: several of the above for one client, in the order they were relayed (the
    /// server's flush window, `RoomOptions::flush_window_ms`).
    Batch(Vec<Unreliable>),
}

/// One item of a [`DatagramDown::Batch`]: encoded exactly as the `DatagramDown` of the
/// same variant index, so a batch is `02`, the item count, and the items' datagrams
/// one after the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unreliable {
    /// 0: an unreliable event.
    Event(EventData),
    /// 1: (`Shared` rooms) an object's new state, unreliably.
    State(ObjectState),
}

impl DatagramDown {
    /// What the datagram carries, in order: one item, or a batch's items.
    pub fn into_items(self) -> Vec<Unreliable> {
        match self {
            DatagramDown::Event(e) => vec![Unreliable::Event(e)],
            DatagramDown::State(s) => vec![Unreliable::State(s)],
            DatagramDown::Batch(items) => items,
        }
    }
}

/// The size of a batch datagram holding `count` items of `bytes` bytes together.
pub fn batch_len(count: usize, bytes: usize) -> usize {
    1 + varint_len(count) + bytes
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// A [`DatagramDown::Batch`] of already encoded `Event` and `State` datagrams, without
/// decoding them: `02`, the count as a varint, then the datagrams as they are.
pub fn batch_datagram(items: &[Bytes]) -> Bytes {
    let bytes = items.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(batch_len(items.len(), bytes));
    out.push(2);
    let mut n = items.len();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    for item in items {
        debug_assert!(
            matches!(item.first(), Some(0 | 1)),
            "a batch item is an Event or a State"
        );
        out.extend_from_slice(item);
    }
    Bytes::from(out)
}

/// Turns an encoded [`DatagramDown`] into the reliable frames carrying the same things,
/// without decoding an `Event` or a `State`: `GameToClient::Event(RoomEvent::Custom(..))`
/// for an `Event`, `GameToClient::Event(RoomEvent::ObjectState(..))` for a `State` (the
/// encodings end with the same bytes), one for each item of a `Batch`. A game server
/// uses it when a datagram is too large for the path. Each frame comes as header and
/// body parts; `None` if `datagram` does not decode.
pub fn event_datagram_to_frame(datagram: &Bytes) -> Option<Vec<Bytes>> {
    if datagram.first() == Some(&2) {
        let batch: DatagramDown = postcard::from_bytes(datagram).ok()?;
        let mut frames = Vec::new();
        for item in batch.into_items() {
            let one = match item {
                Unreliable::Event(e) => crate::encode_body(&DatagramDown::Event(e)),
                Unreliable::State(s) => crate::encode_body(&DatagramDown::State(s)),
            };
            frames.extend(event_datagram_to_frame(&one)?);
        }
        return Some(frames);
    }
    // GameToClient::Event = 2; RoomEvent::Custom = 2, RoomEvent::ObjectState = 13.
    let room_event = match datagram.first() {
        Some(0) => 2,
        Some(1) => 13,
        _ => return None,
    };
    let event = datagram.slice(1..);
    let len = u32::try_from(event.len() + 2).ok()?;
    let mut head = Vec::with_capacity(6);
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&[2, room_event]);
    Some(vec![Bytes::from(head), event])
}

/// The ticket of a frame body that starts `ClientToGame::Request { op: CreateGame | JoinGame }`
/// (the ticket is those operations' first field), read from the body's first bytes
/// alone: a game server checks it before it buffers the rest of a large join. `None` if
/// the bytes do not start like such a request, or end before the ticket does.
pub fn peek_ticket(head: &[u8]) -> Option<&[u8]> {
    fn varint(b: &[u8]) -> Option<(u32, &[u8])> {
        postcard::take_from_bytes::<u32>(b).ok()
    }
    let (message, rest) = varint(head)?;
    if message != 1 {
        return None;
    }
    let (_id, rest) = varint(rest)?;
    let (op, rest) = varint(rest)?;
    if op > 1 {
        return None;
    }
    let (len, rest) = varint(rest)?;
    rest.get(..len as usize)
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
        let [head, body] = <[Bytes; 2]>::try_from(event_datagram_to_frame(&dg).unwrap()).unwrap();
        let mut joined = head.to_vec();
        joined.extend_from_slice(&body);
        assert_eq!(
            joined,
            encode_frame(&GameToClient::Event(RoomEvent::Custom(ev))).to_vec()
        );
        assert_eq!(event_datagram_to_frame(&Bytes::from_static(&[5, 1])), None);
        let st = ObjectState {
            object: 3,
            sender: 1,
            tick: 99,
            state: Bytes::from_static(b"pos"),
        };
        let dg = encode_body(&DatagramDown::State(st.clone()));
        let [head, body] = <[Bytes; 2]>::try_from(event_datagram_to_frame(&dg).unwrap()).unwrap();
        let mut joined = head.to_vec();
        joined.extend_from_slice(&body);
        assert_eq!(
            joined,
            encode_frame(&GameToClient::Event(RoomEvent::ObjectState(st))).to_vec()
        );
    }

    #[test]
    fn a_batch_is_its_items_datagrams_behind_a_tag_and_a_count() {
        let items: Vec<Bytes> = (0..130u32)
            .map(|i| {
                encode_body(&DatagramDown::Event(EventData {
                    sender: i,
                    code: 1,
                    data: Bytes::from_static(b"x"),
                }))
            })
            .collect();
        let batch = batch_datagram(&items);
        // 130 items: the count takes two varint bytes.
        assert_eq!(&batch[..3], &[2, 0x82, 0x01]);
        assert_eq!(
            batch.len(),
            batch_len(130, items.iter().map(Bytes::len).sum())
        );
        let decoded: DatagramDown = crate::decode_body(&batch).unwrap();
        let items = decoded.into_items();
        assert_eq!(items.len(), 130);
        assert!(matches!(&items[129], Unreliable::Event(e) if e.sender == 129));
        // The reliable fallback of a batch is one frame per item, in order.
        let two = batch_datagram(&[
            encode_body(&DatagramDown::Event(EventData {
                sender: 1,
                code: 2,
                data: Bytes::from_static(b"a"),
            })),
            encode_body(&DatagramDown::State(ObjectState {
                object: 7,
                sender: 1,
                tick: 3,
                state: Bytes::from_static(b"s"),
            })),
        ]);
        let parts = event_datagram_to_frame(&two).unwrap();
        let joined: Vec<u8> = parts.iter().flat_map(|b| b.to_vec()).collect();
        let mut expected = encode_frame(&GameToClient::Event(RoomEvent::Custom(EventData {
            sender: 1,
            code: 2,
            data: Bytes::from_static(b"a"),
        })))
        .to_vec();
        expected.extend_from_slice(&encode_frame(&GameToClient::Event(RoomEvent::ObjectState(
            ObjectState {
                object: 7,
                sender: 1,
                tick: 3,
                state: Bytes::from_static(b"s"),
            },
        ))));
        assert_eq!(joined, expected);
        // A batch inside a batch does not decode.
        assert!(crate::decode_body::<DatagramDown>(&[2, 1, 2, 0]).is_err());
    }

    #[test]
    fn the_ticket_of_a_join_is_read_from_its_first_bytes() {
        let ticket = Bytes::from(vec![9u8; 300]);
        let mut props = Properties::new();
        props.insert(
            "big".into(),
            crate::Value::Bytes(Bytes::from(vec![1u8; 40_000])),
        );
        let create = ClientToGame::Request {
            id: 70_000,
            op: GameOp::CreateGame {
                ticket: ticket.clone(),
                game: "g".into(),
                options: RoomOptions {
                    properties: props,
                    ..RoomOptions::default()
                },
                expected_users: vec![],
                actor_properties: Properties::new(),
            },
        };
        let body = encode_body(&create);
        assert!(body.len() > 40_000);
        assert_eq!(
            peek_ticket(&body[..320]),
            Some(&ticket[..]),
            "320 bytes suffice"
        );
        assert_eq!(
            peek_ticket(&body[..200]),
            None,
            "the ticket is not all there"
        );
        let join = encode_body(&ClientToGame::Request {
            id: 1,
            op: GameOp::JoinGame {
                ticket: ticket.clone(),
                game: "g".into(),
                mode: JoinMode::JoinOnly,
                expected_users: vec![],
                actor_properties: Properties::new(),
            },
        });
        assert_eq!(peek_ticket(&join), Some(&ticket[..]));
        let other = encode_body(&ClientToGame::Request {
            id: 1,
            op: GameOp::LeaveGame {
                will_come_back: false,
            },
        });
        assert_eq!(peek_ticket(&other), None);
        assert_eq!(peek_ticket(&[2, 0, 0]), None, "a RaiseEvent");
        assert_eq!(peek_ticket(&[]), None);
    }
}
