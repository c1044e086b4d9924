//! A joined room on a game server.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use quinn::{Endpoint, RecvStream, SendStream};
use switchboard_protocol::messages::game::MAX_CHANNEL;
use switchboard_protocol::{
    ALPN_GAME, ChannelHeader, ClientToGame, CloseCode, DatagramDown, DatagramUp, EventCaching,
    GameOp, GameReply, GameToClient, Hello, Joined, RaiseEvent, ReceiverGroup, Redirect, RoomEvent,
    SetProperties, SpawnObject, StateUpdate, Unreliable, decode_body, encode_body,
    frame::DEFAULT_MAX_FRAME,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{FramedRecv, close, connect, send_frame};
use tokio::sync::{Mutex, mpsc};

use crate::session::{Incoming, Link, Session, closed};
use crate::{ClientConfig, ClientError, JoinOptions};

/// How an event travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Ordered and retransmitted, on reliable channel 0 (the control stream).
    Reliable,
    /// Ordered and retransmitted on reliable channel 1 to 15, each its own QUIC stream,
    /// so a channel never waits for another.
    Channel(u8),
    /// A QUIC datagram: may be lost, never retransmitted. An event too large for a
    /// datagram on this path is sent reliably (channel 0) instead.
    Unreliable,
}

pub(crate) struct GameLink;

impl Link for GameLink {
    type Out = ClientToGame;
    type In = GameToClient;
    type Op = GameOp;
    type Reply = GameReply;
    type Event = RoomEvent;
    fn hello(h: Hello) -> ClientToGame {
        ClientToGame::Hello(h)
    }
    fn request(id: u32, op: GameOp) -> ClientToGame {
        ClientToGame::Request { id, op }
    }
    fn sort(msg: GameToClient) -> Incoming<GameReply, RoomEvent> {
        match msg {
            GameToClient::Welcome(_) => Incoming::Welcome,
            GameToClient::Response(r) => Incoming::Response(r.id, r.result),
            GameToClient::Event(e) => Incoming::Event(e),
        }
    }
}

/// A room the client is an actor of.
#[derive(Debug)]
pub struct Room {
    session: Session<GameLink>,
    /// Events from the control stream and the channel streams.
    events: mpsc::Receiver<RoomEvent>,
    /// Events of a batched datagram not handed out yet.
    unpacked: VecDeque<RoomEvent>,
    joined: Joined,
    address: String,
    channels: Mutex<HashMap<u8, SendStream>>,
}

impl Room {
    async fn open(
        endpoint: &Endpoint,
        config: &ClientConfig,
        redirect: &Redirect,
        op: GameOp,
    ) -> Result<Room, ClientError> {
        let cfg = client_config(&config.trust, ALPN_GAME, &config.limits)?;
        // A game server that went away since the redirect does not answer at all: give
        // up after the connect timeout instead of the idle timeout, and ask the master
        // again.
        let conn = tokio::time::timeout(
            config.connect_timeout,
            connect(endpoint, cfg, &redirect.address),
        )
        .await
        .map_err(|_| ClientError::Timeout(config.connect_timeout))??;
        let (tx, events) = mpsc::channel(config.event_buffer);
        tokio::spawn(accept_channels(conn.clone(), tx.clone()));
        let session = Session::open(conn, &config.agent, config.request_timeout, tx).await?;
        let joined = match session.request_within(op, config.join_timeout).await {
            Ok(GameReply::Joined(j)) => j,
            Ok(other) => return Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
            Err(e) => {
                close(&session.conn, CloseCode::Normal, "join failed");
                return Err(e);
            }
        };
        Ok(Room {
            session,
            events,
            unpacked: VecDeque::new(),
            joined,
            address: redirect.address.clone(),
            channels: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) async fn create(
        endpoint: &Endpoint,
        config: &ClientConfig,
        redirect: Redirect,
        join: &JoinOptions,
    ) -> Result<Room, ClientError> {
        let op = GameOp::CreateGame {
            ticket: redirect.ticket.clone(),
            game: redirect.game.clone(),
            options: join.create_options.clone(),
            expected_users: join.expected_users.clone(),
            actor_properties: join.actor_properties.clone(),
        };
        Self::open(endpoint, config, &redirect, op).await
    }

    pub(crate) async fn join(
        endpoint: &Endpoint,
        config: &ClientConfig,
        redirect: Redirect,
        join: &JoinOptions,
    ) -> Result<Room, ClientError> {
        let op = GameOp::JoinGame {
            ticket: redirect.ticket.clone(),
            game: redirect.game.clone(),
            mode: join.mode,
            expected_users: join.expected_users.clone(),
            actor_properties: join.actor_properties.clone(),
        };
        Self::open(endpoint, config, &redirect, op).await
    }

    /// The room as it was when this client joined.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// The game's name.
    pub fn game(&self) -> &str {
        &self.joined.game
    }

    /// This client's actor number.
    pub fn actor(&self) -> u32 {
        self.joined.actor
    }

    /// The game server's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Raises an event for the other actors (receiver group `Others`, not cached).
    pub async fn raise_event(
        &self,
        code: u8,
        data: impl Into<Bytes>,
        delivery: Delivery,
    ) -> Result<(), ClientError> {
        let event = RaiseEvent {
            code,
            receivers: ReceiverGroup::Others,
            targets: Vec::new(),
            group: 0,
            cache: EventCaching::DoNotCache,
            channel: 0,
            data: data.into(),
        };
        self.raise(event, delivery).await
    }

    /// Raises an event with explicit receivers, targets, group or caching. The event's
    /// `channel` is set from `delivery`.
    pub async fn raise(
        &self,
        mut event: RaiseEvent,
        delivery: Delivery,
    ) -> Result<(), ClientError> {
        // An event the server would refuse to read (it closes the connection for an
        // oversized frame) is refused here, with the protocol's code for a size limit.
        let size =
            switchboard_protocol::frame::encoded_len(&ClientToGame::RaiseEvent(event.clone()));
        if size > DEFAULT_MAX_FRAME {
            return Err(ClientError::Refused(switchboard_protocol::OpError::new(
                switchboard_protocol::ResultCode::OperationLimitReached,
                format!(
                    "an event may take {DEFAULT_MAX_FRAME} bytes encoded; this one takes {size}"
                ),
            )));
        }
        match delivery {
            Delivery::Unreliable => {
                event.channel = 0;
                match self.try_datagram(&DatagramUp::RaiseEvent(event.clone())) {
                    Some(sent) => sent,
                    None => self.session.send(&ClientToGame::RaiseEvent(event)).await,
                }
            }
            Delivery::Reliable | Delivery::Channel(0) => {
                event.channel = 0;
                self.session.send(&ClientToGame::RaiseEvent(event)).await
            }
            Delivery::Channel(ch) => {
                if ch > MAX_CHANNEL {
                    return Err(ClientError::Protocol(format!(
                        "channel {ch} is not 0 to {MAX_CHANNEL}"
                    )));
                }
                event.channel = ch;
                let mut channels = self.channels.lock().await;
                let stream = match channels.entry(ch) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(v) => {
                        let mut stream = self.session.conn.open_uni().await?;
                        send_frame(&mut stream, &ChannelHeader { channel: ch })
                            .await
                            .map_err(|e| closed(&self.session.conn, e.to_string()))?;
                        v.insert(stream)
                    }
                };
                send_frame(stream, &ClientToGame::RaiseEvent(event))
                    .await
                    .map_err(|e| closed(&self.session.conn, e.to_string()))
            }
        }
    }

    async fn expect(&self, op: GameOp, want: GameReply) -> Result<(), ClientError> {
        match self.session.request(op).await? {
            r if r == want => Ok(()),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// Sets room (`target` 0) or actor properties, optionally as a compare-and-set.
    pub async fn set_properties(&self, sp: SetProperties) -> Result<(), ClientError> {
        self.expect(GameOp::SetProperties(sp), GameReply::PropertiesSet)
            .await
    }

    /// Sets properties as `set_properties` does, and has the game server send the change
    /// to the studio's backend (a webhook).
    pub async fn set_properties_forwarded(&self, sp: SetProperties) -> Result<(), ClientError> {
        self.expect(GameOp::SetPropertiesForwarded(sp), GameReply::PropertiesSet)
            .await
    }

    /// Hands the master client role to `actor` if `expected` is still the master client.
    pub async fn set_master_client(&self, actor: u32, expected: u32) -> Result<(), ClientError> {
        self.expect(
            GameOp::SetMasterClient { actor, expected },
            GameReply::MasterClientSet,
        )
        .await
    }

    /// Leaves interest groups (`Some(vec![])` = all) and joins others.
    pub async fn change_groups(
        &self,
        remove: Option<Vec<u8>>,
        add: Vec<u8>,
    ) -> Result<(), ClientError> {
        self.expect(
            GameOp::ChangeGroups { remove, add },
            GameReply::GroupsChanged,
        )
        .await
    }

    /// (The host of a `Host` room) Stores a snapshot of the game state with the room, for
    /// the next host should this one go.
    pub async fn upload_snapshot(&self, data: impl Into<Bytes>) -> Result<(), ClientError> {
        self.expect(
            GameOp::UploadSnapshot { data: data.into() },
            GameReply::SnapshotStored,
        )
        .await
    }

    /// (The authority of a `Server` room) Lets a held join in, or refuses it with a
    /// reason the joiner sees.
    pub async fn approve_join(
        &self,
        request: u32,
        approve: bool,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.expect(
            GameOp::ApproveJoin {
                request,
                approve,
                reason: reason.into(),
            },
            GameReply::JoinAnswered,
        )
        .await
    }

    /// Raises a reliable event that the game server also forwards to the studio's
    /// backend (a webhook), at once or batched.
    pub async fn raise_forwarded(
        &self,
        mut event: RaiseEvent,
        forward: switchboard_protocol::Forward,
    ) -> Result<(), ClientError> {
        event.channel = 0;
        self.session
            .send(&ClientToGame::ForwardEvent { event, forward })
            .await
    }

    /// Sends any room operation and returns its reply (the typed methods above are
    /// this, checked).
    pub async fn request(&self, op: GameOp) -> Result<GameReply, ClientError> {
        self.session.request(op).await
    }

    /// (`Shared` rooms) Spawns a network object; its number in the room.
    pub async fn spawn(&self, object: SpawnObject) -> Result<u32, ClientError> {
        match self.session.request(GameOp::Spawn(object)).await? {
            GameReply::Spawned { object } => Ok(object),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// (`Shared` rooms) Despawns an object and its nested objects.
    pub async fn despawn(&self, object: u32) -> Result<(), ClientError> {
        self.expect(GameOp::Despawn { object }, GameReply::Despawned)
            .await
    }

    /// (`Shared` rooms) Asks for an object's state authority; who holds it afterwards
    /// (this actor if granted).
    pub async fn request_state_authority(&self, object: u32) -> Result<u32, ClientError> {
        self.authority_op(GameOp::RequestStateAuthority { object })
            .await
    }

    /// (`Shared` rooms) Gives up an object's state authority.
    pub async fn release_state_authority(&self, object: u32) -> Result<(), ClientError> {
        self.authority_op(GameOp::ReleaseStateAuthority { object })
            .await
            .map(|_| ())
    }

    async fn authority_op(&self, op: GameOp) -> Result<u32, ClientError> {
        match self.session.request(op).await? {
            GameReply::StateAuthority { holder, .. } => Ok(holder),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// (`Shared` rooms; the object's state authority) Sets its input authority.
    pub async fn assign_input_authority(&self, object: u32, actor: u32) -> Result<(), ClientError> {
        self.expect(
            GameOp::AssignInputAuthority { object, actor },
            GameReply::InputAuthoritySet,
        )
        .await
    }

    /// (`Shared` rooms; the object's state authority) Sends the object's new state,
    /// reliably on the control stream or as a datagram (falling back to the control
    /// stream when it does not fit).
    pub async fn update_state(
        &self,
        update: StateUpdate,
        delivery: Delivery,
    ) -> Result<(), ClientError> {
        if delivery == Delivery::Unreliable
            && let Some(sent) = self.try_datagram(&DatagramUp::UpdateState(update.clone()))
        {
            return sent;
        }
        self.session.send(&ClientToGame::UpdateState(update)).await
    }

    /// Sends `msg` as a datagram if it fits the path; `None` if it does not (send it
    /// reliably instead).
    fn try_datagram(&self, msg: &DatagramUp) -> Option<Result<(), ClientError>> {
        let datagram = encode_body(msg);
        let max = self.session.conn.max_datagram_size()?;
        if datagram.len() > max {
            return None;
        }
        Some(match self.session.conn.send_datagram(datagram) {
            Ok(()) => Ok(()),
            Err(quinn::SendDatagramError::ConnectionLost(e)) => Err(e.into()),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        })
    }

    /// The next room event; `None` once the connection is closed (see
    /// [`Room::close_reason`]).
    pub async fn next_event(&mut self) -> Option<RoomEvent> {
        loop {
            if let Some(e) = self.unpacked.pop_front() {
                return Some(e);
            }
            // Datagrams are read here, in the application's task: a reader task of
            // their own was a wake-up and a channel per datagram. Until the application
            // asks, they wait in the connection's bounded datagram buffer (the oldest
            // dropped first), as unreliable events may be when it is behind.
            tokio::select! {
                e = self.events.recv() => return e,
                d = self.session.conn.read_datagram() => match d {
                    Ok(bytes) => self.unpack(&bytes),
                    // Closed: what the streams delivered still comes out, then None.
                    Err(_) => return self.events.recv().await,
                },
            }
        }
    }

    /// Queues the events of one datagram: one, or a batch's in order (the server's
    /// flush window). A datagram that does not decode is dropped, as a lost one.
    fn unpack(&mut self, bytes: &[u8]) {
        let Ok(datagram) = decode_body::<DatagramDown>(bytes) else {
            return;
        };
        self.unpacked
            .extend(datagram.into_items().into_iter().map(|item| match item {
                Unreliable::Event(ev) => RoomEvent::Custom(ev),
                Unreliable::State(st) => RoomEvent::ObjectState(st),
            }));
    }

    /// The QUIC connection to the game server (its statistics, its round-trip time).
    pub fn quic(&self) -> quinn::Connection {
        self.session.conn.clone()
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<ClientError> {
        self.session.conn.close_reason().map(Into::into)
    }

    /// Leaves the room for good and closes the connection to the game server.
    pub async fn leave(self) -> Result<(), ClientError> {
        self.leave_with(false).await
    }

    /// Leaves the room meaning to come back: the actor stays inactive for the room's
    /// PlayerTtl and can be taken back with `JoinMode::RejoinOnly` or `RejoinOrJoin`.
    pub async fn leave_for_now(self) -> Result<(), ClientError> {
        self.leave_with(true).await
    }

    async fn leave_with(self, will_come_back: bool) -> Result<(), ClientError> {
        let result = self
            .session
            .request(GameOp::LeaveGame { will_come_back })
            .await;
        self.session.finish().await;
        close(&self.session.conn, CloseCode::Normal, "left the game");
        match result {
            Ok(GameReply::Left) => Ok(()),
            Ok(other) => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
            Err(e) => Err(e),
        }
    }

    /// Goes away without leaving, as [`Room::disconnect`] does (the actor becomes inactive
    /// if the room has a PlayerTtl), but first lets what was sent reliably reach the
    /// room: the channel streams are finished and acknowledged, then the control stream
    /// ends and the server, having handled everything before its end, closes the
    /// connection. At most `within`; then the connection is closed as it is.
    pub async fn close(self, within: std::time::Duration) {
        let graceful = async {
            let streams: Vec<SendStream> =
                self.channels.lock().await.drain().map(|(_, s)| s).collect();
            for mut s in streams {
                let _ = s.finish();
                let _ = s.stopped().await;
            }
            self.session.finish().await;
            self.session.conn.closed().await;
        };
        let _ = tokio::time::timeout(within, graceful).await;
        close(&self.session.conn, CloseCode::Normal, "disconnected");
    }

    /// Drops the connection without leaving, as a crash or network loss would (the actor
    /// becomes inactive if the room has a PlayerTtl).
    pub fn disconnect(self) {
        close(&self.session.conn, CloseCode::Normal, "disconnected");
    }
}

async fn accept_channels(conn: quinn::Connection, events: mpsc::Sender<RoomEvent>) {
    while let Ok(stream) = conn.accept_uni().await {
        tokio::spawn(read_channel(stream, events.clone()));
    }
}

/// A channel stream from the server: a header, then `Event` frames.
async fn read_channel(stream: RecvStream, events: mpsc::Sender<RoomEvent>) {
    let mut recv = FramedRecv::new(stream, DEFAULT_MAX_FRAME);
    if !matches!(recv.next::<ChannelHeader>().await, Ok(Some(_))) {
        return;
    }
    while let Ok(Some(GameToClient::Event(e))) = recv.next::<GameToClient>().await {
        if events.send(e).await.is_err() {
            return;
        }
    }
}
