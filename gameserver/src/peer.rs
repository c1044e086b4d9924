//! One client connection on a game server: handshake, operations, reliable events on the
//! control stream and on channel streams, datagrams; and a writer task that drains the
//! connection's bounded outgoing queue.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendDatagramError, SendStream};
use switchboard_protocol::messages::common::{check_expected_users, check_game_name};
use switchboard_protocol::messages::game::{MAX_CHANNEL, event_datagram_to_frame};
use switchboard_protocol::{
    ChannelHeader, ClientToGame, CloseCode, DatagramUp, GameOp, GameReply, GameToClient, JoinMode,
    OpError, Properties, RaiseEvent, ResultCode, RoomOptions, ServerState, TicketAction,
    TicketClaims, decode_body, frame::DEFAULT_MAX_FRAME,
};
use switchboard_transport::handshake::accept_control;
use switchboard_transport::{FramedRecv, close, send_frame, write_queued};
use tokio::sync::mpsc;
use tracing::debug;

use crate::Shared;
use crate::room_actor::{
    CreateRequest, JoinRequest, Member, Outbound, RoomHandle, RoomOp, response_frame,
};

/// Frames coalesced into one write.
const WRITE_BATCH: usize = 64;

/// The room a connection is in, shared with its channel-stream readers.
type CurrentRoom = Arc<Mutex<Option<(RoomHandle, u32)>>>;

struct Peer {
    shared: Arc<Shared>,
    conn: Connection,
    tx: mpsc::Sender<Outbound>,
    room: CurrentRoom,
}

fn current(room: &CurrentRoom) -> Option<(RoomHandle, u32)> {
    room.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set_current(room: &CurrentRoom, value: Option<(RoomHandle, u32)>) -> Option<(RoomHandle, u32)> {
    std::mem::replace(&mut *room.lock().unwrap_or_else(|p| p.into_inner()), value)
}

/// Serves one client until it disconnects.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection) {
    let handshake = accept_control(
        &conn,
        shared.config.handshake_timeout,
        "switchboard-gameserver",
        |m| match m {
            ClientToGame::Hello(h) => Some(h),
            _ => None,
        },
        GameToClient::Welcome,
    );
    let (send, mut recv) = match handshake.await {
        Ok(s) => s,
        Err((code, reason)) => {
            debug!(%reason, "client handshake failed");
            return close(&conn, code, &reason);
        }
    };
    let (tx, rx) = mpsc::channel(shared.config.peer_queue);
    let writer = tokio::spawn(write_loop(conn.clone(), send, rx, shared.clone()));
    shared.stats.peers.fetch_add(1, Ordering::Relaxed);
    let mut peer = Peer {
        shared: shared.clone(),
        conn: conn.clone(),
        tx,
        room: Arc::default(),
    };
    let channels = tokio::spawn(accept_channels(
        shared.clone(),
        conn.clone(),
        peer.room.clone(),
    ));
    if let Err((code, reason)) = peer.read_loop(&mut recv).await {
        close(&conn, code, &reason);
    }
    channels.abort();
    // A dropped connection becomes inactive if the room keeps actors for a while.
    if let Some((room, actor)) = set_current(&peer.room, None) {
        room.leave(actor, true).await;
    }
    drop(peer);
    // Let queued frames go out, but never wait on a client that does not read.
    let stop_writer = writer.abort_handle();
    if tokio::time::timeout(FLUSH_BOUND, writer).await.is_err() {
        stop_writer.abort();
    }
    close(&conn, CloseCode::Normal, "goodbye");
    shared.stats.peers.fetch_sub(1, Ordering::Relaxed);
}

/// How long a closing connection's queued frames may take to leave.
const FLUSH_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

type Closing = (CloseCode, String);

fn raise(shared: &Shared, room: &CurrentRoom, event: RaiseEvent, reliable: bool) {
    if let Some((handle, actor)) = current(room) {
        handle.raise(&shared.stats, actor, event, reliable);
    }
}

/// Reads the client's channel streams: a `ChannelHeader`, then reliable `RaiseEvent`s.
async fn accept_channels(shared: Arc<Shared>, conn: Connection, room: CurrentRoom) {
    while let Ok(stream) = conn.accept_uni().await {
        tokio::spawn(read_channel(
            shared.clone(),
            conn.clone(),
            room.clone(),
            stream,
        ));
    }
}

async fn read_channel(
    shared: Arc<Shared>,
    conn: Connection,
    room: CurrentRoom,
    stream: RecvStream,
) {
    let mut recv = FramedRecv::new(stream, DEFAULT_MAX_FRAME);
    let violation = |reason: String| close(&conn, CloseCode::ProtocolViolation, &reason);
    match recv.next::<ChannelHeader>().await {
        Ok(Some(h)) if (1..=MAX_CHANNEL).contains(&h.channel) => {}
        Ok(Some(h)) => return violation(format!("channel {} is not 1 to 15", h.channel)),
        Ok(None) | Err(switchboard_transport::RecvError::Read(_)) => return,
        Err(e) => return violation(e.to_string()),
    }
    loop {
        match recv.next::<ClientToGame>().await {
            Ok(Some(ClientToGame::RaiseEvent(ev))) => raise(&shared, &room, ev, true),
            Ok(Some(_)) => {
                return violation("only RaiseEvent may be sent on a channel stream".into());
            }
            Ok(None) | Err(switchboard_transport::RecvError::Read(_)) => return,
            Err(e) => return violation(e.to_string()),
        }
    }
}

impl Peer {
    async fn read_loop(&mut self, recv: &mut FramedRecv) -> Result<(), Closing> {
        loop {
            tokio::select! {
                body = recv.next_body() => match body {
                    Ok(Some(body)) => {
                        self.shared.stats.bytes_in.fetch_add(body.len() as u64 + 4, Ordering::Relaxed);
                        let msg = decode_body::<ClientToGame>(&body)
                            .map_err(|e| (CloseCode::ProtocolViolation, e.to_string()))?;
                        self.on_message(msg).await?;
                    }
                    Ok(None) => return Ok(()),
                    Err(switchboard_transport::RecvError::Read(_)) => return Ok(()),
                    Err(e) => return Err((CloseCode::ProtocolViolation, e.to_string())),
                },
                dg = self.conn.read_datagram() => match dg {
                    Ok(bytes) => {
                        self.shared.stats.bytes_in.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        self.on_datagram(&bytes)?;
                    }
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
                raise(&self.shared, &self.room, ev, true);
                Ok(())
            }
            ClientToGame::Request { id, op } => {
                if let Some(result) = self.on_request(id, op).await {
                    let _ = self
                        .tx
                        .send(Outbound::Frame(response_frame(id, result)))
                        .await;
                }
                Ok(())
            }
        }
    }

    fn on_datagram(&mut self, bytes: &[u8]) -> Result<(), Closing> {
        let DatagramUp::RaiseEvent(ev) = decode_body(bytes)
            .map_err(|e| (CloseCode::ProtocolViolation, format!("bad datagram: {e}")))?;
        raise(&self.shared, &self.room, ev, false);
        Ok(())
    }

    /// Handles an operation. `None` means the response is queued elsewhere (by the room,
    /// ahead of the events it causes).
    async fn on_request(&mut self, id: u32, op: GameOp) -> Option<Result<GameReply, OpError>> {
        let not_in_room = || {
            OpError::new(
                ResultCode::OperationNotAllowedInCurrentState,
                "not in a game",
            )
        };
        let started = std::time::Instant::now();
        let room_op = match op {
            GameOp::CreateGame {
                ticket,
                game,
                options,
                expected_users,
                actor_properties,
            } => {
                let r = match self.shared.server_state() {
                    ServerState::Normal => self.create(
                        id,
                        &ticket,
                        game,
                        options,
                        &expected_users,
                        actor_properties,
                    ),
                    state => Err(OpError::new(
                        ResultCode::GameServerUnavailable,
                        format!(
                            "this game server takes no new games (state {state:?}); ask the master again"
                        ),
                    )),
                };
                self.shared.stats.join_latency.observe(started.elapsed());
                return r.err().map(Err);
            }
            GameOp::JoinGame {
                ticket,
                game,
                mode,
                expected_users,
                actor_properties,
            } => {
                let r = if self.shared.server_state() == ServerState::Offline {
                    Err(OpError::new(
                        ResultCode::GameServerUnavailable,
                        "this game server is going offline; ask the master again",
                    ))
                } else {
                    self.join(id, &ticket, game, mode, expected_users, actor_properties)
                        .await
                };
                self.shared.stats.join_latency.observe(started.elapsed());
                return r.err().map(Err);
            }
            GameOp::LeaveGame { will_come_back } => {
                return Some(match set_current(&self.room, None) {
                    Some((room, actor)) => {
                        room.leave(actor, will_come_back).await;
                        Ok(GameReply::Left)
                    }
                    None => Err(not_in_room()),
                });
            }
            GameOp::SetProperties(sp) => RoomOp::SetProperties(sp),
            GameOp::SetMasterClient { actor, expected } => {
                RoomOp::SetMasterClient { actor, expected }
            }
            GameOp::ChangeGroups { remove, add } => RoomOp::ChangeGroups { remove, add },
        };
        let Some((room, actor)) = current(&self.room) else {
            return Some(Err(not_in_room()));
        };
        if room.request(actor, id, room_op).await {
            None
        } else {
            Some(Err(OpError::new(
                ResultCode::GameDoesNotExist,
                "the game has ended",
            )))
        }
    }

    fn check(
        &self,
        ticket: &Bytes,
        game: &str,
        action: TicketAction,
    ) -> Result<TicketClaims, OpError> {
        if current(&self.room).is_some() {
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
        properties: Properties,
    ) -> Result<(), OpError> {
        let claims = self.check(ticket, &game, TicketAction::Create)?;
        check_expected_users(expected_users)?;
        let created = self.shared.create_room(CreateRequest {
            request: id,
            game,
            options,
            user_id: claims.user_id,
            expected_users: expected_users.to_vec(),
            properties,
            member: self.member(),
        })?;
        set_current(&self.room, Some(created));
        Ok(())
    }

    async fn join(
        &mut self,
        id: u32,
        ticket: &Bytes,
        game: String,
        mode: JoinMode,
        expected_users: Vec<String>,
        properties: Properties,
    ) -> Result<(), OpError> {
        let claims = self.check(ticket, &game, TicketAction::Join)?;
        check_expected_users(&expected_users)?;
        let Some(handle) = self.shared.room(&game) else {
            // The master sent a client here with a genuine ticket: its entry is stale.
            self.shared.reports.unknown(&game);
            self.shared
                .stats
                .unknown_games
                .fetch_add(1, Ordering::Relaxed);
            return Err(OpError::new(
                ResultCode::GameDoesNotExist,
                format!("no game named {game:?} here"),
            ));
        };
        let actor = handle
            .join(JoinRequest {
                request: id,
                user_id: claims.user_id,
                mode,
                expected_users,
                properties,
                member: self.member(),
            })
            .await?;
        set_current(&self.room, Some((handle, actor)));
        Ok(())
    }
}

/// Drains the outgoing queue: control-stream frames are coalesced into one write,
/// datagrams go out as they come (one too large for the path is sent as the equivalent
/// reliable frame), and each reliable channel gets its own stream with its own writer so
/// that one channel never waits for another.
async fn write_loop(
    conn: Connection,
    mut send: SendStream,
    mut rx: mpsc::Receiver<Outbound>,
    shared: Arc<Shared>,
) {
    let queue = shared.config.peer_queue;
    let out_bytes = |n: usize| {
        shared
            .stats
            .bytes_out
            .fetch_add(n as u64, Ordering::Relaxed);
    };
    let mut frames: Vec<Bytes> = Vec::with_capacity(WRITE_BATCH);
    let mut channels: HashMap<u8, mpsc::Sender<Bytes>> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Outbound::Frame(f) => {
                    out_bytes(f.len());
                    frames.push(f);
                }
                Outbound::Datagram(d) => match conn.send_datagram(d.clone()) {
                    Ok(()) => out_bytes(d.len()),
                    Err(SendDatagramError::ConnectionLost(_)) => return,
                    Err(_) => frames.extend(event_datagram_to_frame(&d).into_iter().flatten()),
                },
                Outbound::Channel(ch, f) => {
                    let tx = match channels.entry(ch) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(v) => {
                            let Ok(mut stream) = conn.open_uni().await else {
                                return;
                            };
                            if send_frame(&mut stream, &ChannelHeader { channel: ch })
                                .await
                                .is_err()
                            {
                                return;
                            }
                            let (tx, rx) = mpsc::channel(queue);
                            tokio::spawn(write_queued(stream, rx));
                            v.insert(tx)
                        }
                    };
                    out_bytes(f.len());
                    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(f) {
                        close(
                            &conn,
                            CloseCode::SlowConsumer,
                            "disconnected: the client did not read its events fast enough",
                        );
                        return;
                    }
                }
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
