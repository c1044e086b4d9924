//! A joined room on a game server.

use bytes::Bytes;
use quinn::Endpoint;
use switchboard_protocol::{
    ALPN_GAME, ClientToGame, CloseCode, DatagramDown, DatagramUp, GameOp, GameReply, GameToClient,
    Hello, JoinMode, Joined, RaiseEvent, ReceiverGroup, Redirect, RoomEvent, RoomOptions,
    decode_body, encode_body,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{close, connect};
use tokio::sync::mpsc;

use crate::session::{Incoming, Link, Session};
use crate::{ClientConfig, ClientError};

/// How an event travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Ordered and retransmitted, on the control stream.
    Reliable,
    /// A QUIC datagram: may be lost, never retransmitted. An event too large for a
    /// datagram on this path is sent reliably instead.
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
    events: mpsc::Receiver<RoomEvent>,
    joined: Joined,
    address: String,
}

impl Room {
    async fn open(
        endpoint: &Endpoint,
        config: &ClientConfig,
        redirect: &Redirect,
        op: GameOp,
    ) -> Result<Room, ClientError> {
        let cfg = client_config(&config.trust, ALPN_GAME, &config.limits)?;
        let conn = connect(endpoint, cfg, &redirect.address).await?;
        let (tx, events) = mpsc::channel(config.event_buffer);
        tokio::spawn(read_datagrams(conn.clone(), tx.clone()));
        let session = Session::open(conn, &config.agent, config.request_timeout, tx).await?;
        let result = session.request(op).await;
        let joined = match result {
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
            joined,
            address: redirect.address.clone(),
        })
    }

    pub(crate) async fn create(
        endpoint: &Endpoint,
        config: &ClientConfig,
        redirect: Redirect,
        options: RoomOptions,
        expected_users: Vec<String>,
    ) -> Result<Room, ClientError> {
        let op = GameOp::CreateGame {
            ticket: redirect.ticket.clone(),
            game: redirect.game.clone(),
            options,
            expected_users,
        };
        Self::open(endpoint, config, &redirect, op).await
    }

    pub(crate) async fn join(
        endpoint: &Endpoint,
        config: &ClientConfig,
        redirect: Redirect,
        mode: JoinMode,
        expected_users: Vec<String>,
    ) -> Result<Room, ClientError> {
        let op = GameOp::JoinGame {
            ticket: redirect.ticket.clone(),
            game: redirect.game.clone(),
            mode,
            expected_users,
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

    /// Raises an event for the other actors (receiver group `Others`).
    pub async fn raise_event(
        &self,
        code: u8,
        data: impl Into<Bytes>,
        delivery: Delivery,
    ) -> Result<(), ClientError> {
        self.raise(
            RaiseEvent {
                code,
                receivers: ReceiverGroup::Others,
                targets: Vec::new(),
                data: data.into(),
            },
            delivery,
        )
        .await
    }

    /// Raises an event with explicit receivers or targets.
    pub async fn raise(&self, event: RaiseEvent, delivery: Delivery) -> Result<(), ClientError> {
        if delivery == Delivery::Unreliable {
            let datagram = encode_body(&DatagramUp::RaiseEvent(event.clone()));
            let fits = self
                .session
                .conn
                .max_datagram_size()
                .is_some_and(|max| datagram.len() <= max);
            if fits {
                return match self.session.conn.send_datagram(datagram) {
                    Ok(()) => Ok(()),
                    Err(quinn::SendDatagramError::ConnectionLost(e)) => Err(e.into()),
                    Err(e) => Err(ClientError::Protocol(e.to_string())),
                };
            }
        }
        self.session.send(&ClientToGame::RaiseEvent(event)).await
    }

    /// The next room event; `None` once the connection is closed (see
    /// [`Room::close_reason`]).
    pub async fn next_event(&mut self) -> Option<RoomEvent> {
        self.events.recv().await
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<ClientError> {
        self.session.conn.close_reason().map(Into::into)
    }

    /// Leaves the room and closes the connection to the game server.
    pub async fn leave(self) -> Result<(), ClientError> {
        let result = self.session.request(GameOp::LeaveGame).await;
        self.session.finish().await;
        close(&self.session.conn, CloseCode::Normal, "left the game");
        match result {
            Ok(GameReply::Left) => Ok(()),
            Ok(other) => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
            Err(e) => Err(e),
        }
    }
}

async fn read_datagrams(conn: quinn::Connection, events: mpsc::Sender<RoomEvent>) {
    while let Ok(bytes) = conn.read_datagram().await {
        // Unreliable events may be dropped when the application is behind.
        if let Ok(DatagramDown::Event(ev)) = decode_body(&bytes) {
            let _ = events.try_send(RoomEvent::Custom(ev));
        }
    }
}
