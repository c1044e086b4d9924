//! One client connection on a game server: handshake, operations, events and datagrams
//! in; a writer task that drains the connection's bounded outgoing queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use quinn::{Connection, SendDatagramError, SendStream};
use switchboard_protocol::messages::common::{check_expected_users, check_game_name};
use switchboard_protocol::messages::game::event_datagram_to_frame;
use switchboard_protocol::{
    ClientToGame, CloseCode, DatagramUp, GameOp, GameReply, GameToClient, JoinMode, OpError,
    Response, ResultCode, RoomOptions, TicketAction, TicketClaims, decode_body, encode_frame,
    frame::DEFAULT_MAX_FRAME, version,
};
use switchboard_transport::{FramedRecv, close, send_frame};
use tokio::sync::mpsc;
use tracing::debug;

use crate::Shared;
use crate::room_actor::{Member, Outbound, RoomHandle};

/// Frames coalesced into one write.
const WRITE_BATCH: usize = 64;

struct Peer {
    shared: Arc<Shared>,
    conn: Connection,
    tx: mpsc::Sender<Outbound>,
    room: Option<(RoomHandle, u32)>,
}

/// Serves one client until it disconnects.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection) {
    let (send, mut recv) = match handshake(&shared, &conn).await {
        Ok(s) => s,
        Err((code, reason)) => {
            debug!(%reason, "client handshake failed");
            return close(&conn, code, &reason);
        }
    };
    let (tx, rx) = mpsc::channel(shared.config.peer_queue);
    let writer = tokio::spawn(write_loop(conn.clone(), send, rx));
    shared.stats.peers.fetch_add(1, Ordering::Relaxed);
    let mut peer = Peer {
        shared: shared.clone(),
        conn: conn.clone(),
        tx,
        room: None,
    };
    let outcome = peer.read_loop(&mut recv).await;
    if let Err((code, reason)) = outcome {
        close(&conn, code, &reason);
    }
    if let Some((room, actor)) = peer.room.take() {
        room.leave(actor).await;
    }
    drop(peer);
    let _ = writer.await;
    shared.stats.peers.fetch_sub(1, Ordering::Relaxed);
}

async fn handshake(
    shared: &Shared,
    conn: &Connection,
) -> Result<(SendStream, FramedRecv), (CloseCode, String)> {
    let accept = async {
        let (mut send, recv) = conn
            .accept_bi()
            .await
            .map_err(|e| (CloseCode::Normal, e.to_string()))?;
        let mut recv = FramedRecv::new(recv, DEFAULT_MAX_FRAME);
        let hello = match recv.next::<ClientToGame>().await {
            Ok(Some(ClientToGame::Hello(h))) => h,
            Ok(_) => return Err((CloseCode::ProtocolViolation, "expected Hello".into())),
            Err(e) => return Err((CloseCode::ProtocolViolation, e.to_string())),
        };
        let welcome = version::accept_hello(&hello, "switchboard-gameserver")
            .map_err(|e| (e.close_code(), e.to_string()))?;
        send_frame(&mut send, &GameToClient::Welcome(welcome))
            .await
            .map_err(|e| (CloseCode::Normal, e.to_string()))?;
        Ok((send, recv))
    };
    tokio::time::timeout(shared.config.handshake_timeout, accept)
        .await
        .map_err(|_| (CloseCode::ProtocolViolation, "no Hello in time".to_string()))?
}

type Closing = (CloseCode, String);

impl Peer {
    async fn read_loop(&mut self, recv: &mut FramedRecv) -> Result<(), Closing> {
        loop {
            tokio::select! {
                msg = recv.next::<ClientToGame>() => match msg {
                    Ok(Some(msg)) => self.on_message(msg).await?,
                    Ok(None) => return Ok(()),
                    Err(switchboard_transport::RecvError::Read(_)) => return Ok(()),
                    Err(e) => return Err((CloseCode::ProtocolViolation, e.to_string())),
                },
                dg = self.conn.read_datagram() => match dg {
                    Ok(bytes) => self.on_datagram(&bytes)?,
                    Err(_) => return Ok(()),
                },
            }
        }
    }

    async fn on_message(&mut self, msg: ClientToGame) -> Result<(), Closing> {
        match msg {
            ClientToGame::Hello(_) => {
                Err((CloseCode::ProtocolViolation, "Hello sent twice".into()))
            }
            ClientToGame::RaiseEvent(ev) => {
                if let Some((room, actor)) = &self.room {
                    room.raise(&self.shared, *actor, ev, true);
                }
                Ok(())
            }
            ClientToGame::Request { id, op } => {
                if let Some(result) = self.on_request(id, op).await {
                    let frame = encode_frame(&GameToClient::Response(Response { id, result }));
                    self.queue(Outbound::Frame(frame)).await;
                }
                Ok(())
            }
        }
    }

    fn on_datagram(&mut self, bytes: &[u8]) -> Result<(), Closing> {
        let DatagramUp::RaiseEvent(ev) = decode_body(bytes)
            .map_err(|e| (CloseCode::ProtocolViolation, format!("bad datagram: {e}")))?;
        if let Some((room, actor)) = &self.room {
            room.raise(&self.shared, *actor, ev, false);
        }
        Ok(())
    }

    async fn queue(&self, out: Outbound) {
        let _ = self.tx.send(out).await;
    }

    /// Handles an operation. `None` means the response was already queued (a successful
    /// join, whose response the room queues ahead of its events).
    async fn on_request(&mut self, id: u32, op: GameOp) -> Option<Result<GameReply, OpError>> {
        let result = match op {
            GameOp::CreateGame {
                ticket,
                game,
                options,
                expected_users,
            } => self.create(id, &ticket, game, options, &expected_users),
            GameOp::JoinGame {
                ticket,
                game,
                mode,
                expected_users,
            } => self.join(id, &ticket, game, mode, expected_users).await,
            GameOp::LeaveGame => {
                return Some(match self.room.take() {
                    Some((room, actor)) => {
                        room.leave(actor).await;
                        Ok(GameReply::Left)
                    }
                    None => Err(OpError::new(
                        ResultCode::OperationNotAllowedInCurrentState,
                        "not in a game",
                    )),
                });
            }
        };
        match result {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn check(
        &self,
        ticket: &Bytes,
        game: &str,
        action: TicketAction,
    ) -> Result<TicketClaims, OpError> {
        if self.room.is_some() {
            return Err(OpError::new(
                ResultCode::OperationNotAllowedInCurrentState,
                "already in a game; leave it first",
            ));
        }
        check_game_name(game)?;
        let now_ms = crate::unix_ms(SystemTime::now());
        let claims = self
            .shared
            .verify_ticket(ticket, now_ms)
            .map_err(|e| OpError::new(e.code(), e.to_string()))?;
        claims
            .check_game(game, action)
            .map_err(|e| OpError::new(e.code(), e.to_string()))?;
        Ok(claims)
    }

    fn member(&self) -> Member {
        Member {
            tx: self.tx.clone(),
            conn: self.conn.clone(),
        }
    }

    fn create(
        &mut self,
        id: u32,
        ticket: &Bytes,
        game: String,
        options: RoomOptions,
        expected_users: &[String],
    ) -> Result<(), OpError> {
        let claims = self.check(ticket, &game, TicketAction::Create)?;
        check_expected_users(expected_users)?;
        let member = self.member();
        let (handle, actor) =
            self.shared
                .create_room(id, game, options, &claims.user_id, expected_users, member)?;
        self.room = Some((handle, actor));
        Ok(())
    }

    async fn join(
        &mut self,
        id: u32,
        ticket: &Bytes,
        game: String,
        mode: JoinMode,
        expected_users: Vec<String>,
    ) -> Result<(), OpError> {
        let claims = self.check(ticket, &game, TicketAction::Join)?;
        check_expected_users(&expected_users)?;
        let handle = self.shared.room(&game).ok_or_else(|| {
            OpError::new(
                ResultCode::GameDoesNotExist,
                format!("no game named {game:?} here"),
            )
        })?;
        let actor = handle
            .join(id, claims.user_id, mode, expected_users, self.member())
            .await?;
        self.room = Some((handle, actor));
        Ok(())
    }
}

/// Drains the outgoing queue: frames are coalesced into one write, datagrams go out as
/// they come; a datagram too large for the path is sent as the equivalent reliable frame.
async fn write_loop(conn: Connection, mut send: SendStream, mut rx: mpsc::Receiver<Outbound>) {
    let mut frames: Vec<Bytes> = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Outbound::Frame(f) => frames.push(f),
                Outbound::Datagram(d) => match conn.send_datagram(d.clone()) {
                    Ok(()) => {}
                    Err(SendDatagramError::ConnectionLost(_)) => return,
                    Err(_) => frames.extend(event_datagram_to_frame(&d).into_iter().flatten()),
                },
            }
            if frames.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !frames.is_empty() {
            if send.write_all_chunks(&mut frames).await.is_err() {
                return;
            }
            frames.clear();
        }
    }
    let _ = send.finish();
}
