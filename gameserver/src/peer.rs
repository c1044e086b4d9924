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
use switchboard_protocol::frame::{DEFAULT_MAX_FRAME, PRE_AUTH_MAX_FRAME};
use switchboard_protocol::messages::game::{MAX_CHANNEL, event_datagram_to_frame, peek_ticket};
use switchboard_protocol::ticket::MAX_TICKET_LEN;
use switchboard_protocol::{
    ChannelHeader, ClientToGame, CloseCode, DatagramUp, GameOp, GameReply, GameToClient, JoinMode,
    OpError, Properties, RaiseEvent, ResultCode, RoomOptions, StateUpdate, TicketAction,
    TicketClaims, decode_body,
};
use switchboard_transport::LogLimit;
use switchboard_transport::framed::Gated;
use switchboard_transport::handshake::accept_control;
use switchboard_transport::{
    FramedRecv, OutRx, OutTx, Overflow, Pass, WriterEnd, close, out_queue, out_queue_sharing,
    send_frame, write_queued,
};
use switchboard_workload::TokenBucket;
use tracing::debug;

use crate::Shared;
use crate::member::{MemberRef, Outbound};
use crate::quic_member::QuicMember;
use crate::room::Via;
use crate::room::admission;
use crate::room::{Input, Room, SavedRoom};
use crate::room_actor::{RoomHandle, SLOW_CONSUMER, response_frame};
use crate::webhooks::{AskError, HookRoom};

/// Frames coalesced into one write.
const WRITE_BATCH: usize = 64;

/// The room a connection is in, shared with its channel-stream readers.
type CurrentRoom = Arc<Mutex<Option<(RoomHandle, u32)>>>;

struct Peer {
    shared: Arc<Shared>,
    conn: Connection,
    tx: OutTx<Outbound>,
    room: CurrentRoom,
    /// Counts the connection in the listener's admission; pending until the first join.
    pass: Pass,
    /// Whether it has joined a room once (with a genuine ticket): from then on it is
    /// trusted with large frames, more streams and the full receive window.
    joined: bool,
    /// Rate limits of its joins and other operations.
    joins: TokenBucket,
    ops: TokenBucket,
    /// Rate limit of its events.
    events: EventLimit,
    /// A join with a genuine ticket was refused: the connection gets a fresh join
    /// deadline (a join held for approval may have used up the first).
    rearm_join_deadline: bool,
}

/// Bytes of a large join frame read before its ticket is checked: the frame's header
/// fields and a ticket of the largest size.
const TICKET_HEAD: usize = MAX_TICKET_LEN + 16;

/// The gate of a large frame from a client that has not joined yet: it must be a join
/// whose ticket (in its first bytes) is genuine, unexpired and for this server.
fn ticket_gate(shared: &Shared, head: &[u8]) -> Result<(), String> {
    let ticket = peek_ticket(head).ok_or_else(|| {
        format!(
            "a frame over {PRE_AUTH_MAX_FRAME} bytes before joining must be a join with a ticket"
        )
    })?;
    shared
        .verify_ticket(ticket, crate::unix_ms(SystemTime::now()))
        .map(|_| ())
        .map_err(|e| format!("large join with a bad ticket: {e}"))
}

fn current(room: &CurrentRoom) -> Option<(RoomHandle, u32)> {
    room.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set_current(room: &CurrentRoom, value: Option<(RoomHandle, u32)>) -> Option<(RoomHandle, u32)> {
    std::mem::replace(&mut *room.lock().unwrap_or_else(|p| p.into_inner()), value)
}

/// Serves one client until it disconnects.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection, pass: Pass) {
    let handshake = accept_control(
        &conn,
        shared.config.handshake_timeout,
        PRE_AUTH_MAX_FRAME,
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
            shared.stats.refused("handshake");
            return close(&conn, code, &reason);
        }
    };
    // Larger frames pass the ticket gate until the client has joined (read_loop).
    recv.set_max_frame(DEFAULT_MAX_FRAME);
    let (tx, rx) = out_queue(shared.config.peer_queue, shared.config.peer_queue_bytes);
    let writer = tokio::spawn(write_loop(conn.clone(), send, rx, shared.clone()));
    shared.stats.peers.fetch_add(1, Ordering::Relaxed);
    let mut peer = Peer {
        shared: shared.clone(),
        conn: conn.clone(),
        tx,
        room: Arc::default(),
        pass,
        joined: false,
        joins: TokenBucket::new(shared.config.rate_limits.joins),
        ops: TokenBucket::new(shared.config.rate_limits.ops),
        events: Arc::new(Mutex::new(EventBuckets {
            count: TokenBucket::new(shared.config.rate_limits.events),
            bytes: TokenBucket::new(shared.config.rate_limits.event_bytes),
        })),
        rearm_join_deadline: false,
    };
    let channels = tokio::spawn(accept_channels(
        shared.clone(),
        conn.clone(),
        peer.room.clone(),
        peer.events.clone(),
    ));
    if let Err((code, reason)) = peer.read_loop(&mut recv).await {
        close(&conn, code, &reason);
    }
    channels.abort();
    // A dropped connection becomes inactive if the room keeps actors for a while.
    if let Some((room, actor)) = set_current(&peer.room, None) {
        room.leave(actor, None, true).await;
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

/// The connection's event rate limit, shared by its control stream, channel streams and
/// datagrams.
type EventLimit = Arc<Mutex<EventBuckets>>;

/// The connection's event rate limits: events, and the bytes of their payloads.
#[derive(Debug)]
struct EventBuckets {
    count: TokenBucket,
    bytes: TokenBucket,
}

/// Events over the rate limit are logged at most once a second.
static EVENT_LIMIT_LOG: LogLimit = LogLimit::new(std::time::Duration::from_secs(1));

fn raise(shared: &Shared, room: &CurrentRoom, limit: &EventLimit, event: RaiseEvent, via: Via) {
    if let Some((handle, actor)) = within_limit(shared, room, limit, event.data.len()) {
        handle.raise(&shared.stats, actor, event, via);
    }
}

/// A state update of a network object, under the same rate limit as events.
fn update(shared: &Shared, room: &CurrentRoom, limit: &EventLimit, u: StateUpdate, via: Via) {
    if let Some((handle, actor)) = within_limit(shared, room, limit, u.state.len()) {
        handle.update(&shared.stats, actor, u, via);
    }
}

/// The connection's room and actor, if it is in one and an event of `bytes` payload
/// bytes is within its rate limits (events, then bytes; an event refused for its bytes
/// still counts as an event).
fn within_limit(
    shared: &Shared,
    room: &CurrentRoom,
    limit: &EventLimit,
    bytes: usize,
) -> Option<(RoomHandle, u32)> {
    let now = std::time::Instant::now();
    let refused = {
        let mut l = limit.lock().unwrap_or_else(|p| p.into_inner());
        if !l.count.try_take(now) {
            Some(2)
        } else if !l.bytes.try_take_n(now, bytes as f64) {
            Some(3)
        } else {
            None
        }
    };
    if let Some(kind) = refused {
        shared.stats.rate_limited[kind].fetch_add(1, Ordering::Relaxed);
        if let Some(left_out) = EVENT_LIMIT_LOG.check(now) {
            tracing::warn!(left_out, "events over a client's rate limit dropped");
        }
        return None;
    }
    current(room)
}

/// Reads the client's channel streams: a `ChannelHeader`, then reliable `RaiseEvent`s.
async fn accept_channels(
    shared: Arc<Shared>,
    conn: Connection,
    room: CurrentRoom,
    limit: EventLimit,
) {
    while let Ok(stream) = conn.accept_uni().await {
        tokio::spawn(read_channel(
            shared.clone(),
            conn.clone(),
            room.clone(),
            limit.clone(),
            stream,
        ));
    }
}

async fn read_channel(
    shared: Arc<Shared>,
    conn: Connection,
    room: CurrentRoom,
    limit: EventLimit,
    stream: RecvStream,
) {
    let mut recv = FramedRecv::new(stream, DEFAULT_MAX_FRAME);
    let violation = |reason: String| close(&conn, CloseCode::ProtocolViolation, &reason);
    let channel = match recv.next::<ChannelHeader>().await {
        Ok(Some(h)) if (1..=MAX_CHANNEL).contains(&h.channel) => h.channel,
        Ok(Some(h)) => return violation(format!("channel {} is not 1 to 15", h.channel)),
        Ok(None) | Err(switchboard_transport::RecvError::Read(_)) => return,
        Err(e) => return violation(e.to_string()),
    };
    loop {
        match recv.next::<ClientToGame>().await {
            Ok(Some(ClientToGame::RaiseEvent(ev))) => {
                raise(&shared, &room, &limit, ev, Via::Channel(channel))
            }
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
        let join_timeout = self.shared.config.join_timeout;
        let deadline = tokio::time::sleep(join_timeout);
        tokio::pin!(deadline);
        loop {
            let joined = self.joined;
            let shared = &self.shared;
            let next = async {
                if joined {
                    recv.next_body().await.map_err(Gated::Recv)
                } else {
                    recv.next_body_gated(PRE_AUTH_MAX_FRAME, TICKET_HEAD, |head| {
                        ticket_gate(shared, head)
                    })
                    .await
                }
            };
            tokio::select! {
                body = next => match body {
                    Ok(Some(body)) => {
                        self.shared.stats.bytes_in.fetch_add(body.len() as u64 + 4, Ordering::Relaxed);
                        let msg = decode_body::<ClientToGame>(&body)
                            .map_err(|e| (CloseCode::ProtocolViolation, e.to_string()))?;
                        self.on_message(msg).await?;
                        if std::mem::take(&mut self.rearm_join_deadline) && !self.joined {
                            deadline.as_mut().reset(tokio::time::Instant::now() + join_timeout);
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(Gated::Recv(switchboard_transport::RecvError::Read(_))) => return Ok(()),
                    Err(Gated::Recv(e)) => return Err((CloseCode::ProtocolViolation, e.to_string())),
                    Err(Gated::Refused(reason)) => {
                        self.shared.stats.refused("ticket_gate");
                        return Err((CloseCode::AuthenticationFailed, reason));
                    }
                },
                _ = &mut deadline, if !self.joined => {
                    self.shared.stats.refused("join_deadline");
                    return Err((
                        CloseCode::AuthenticationFailed,
                        format!("no successful join within {join_timeout:?} of connecting"),
                    ));
                }
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
                raise(&self.shared, &self.room, &self.events, ev, Via::Control);
                Ok(())
            }
            ClientToGame::ForwardEvent { event, forward } => {
                let bytes = event.data.len();
                if let Some((handle, actor)) =
                    within_limit(&self.shared, &self.room, &self.events, bytes)
                {
                    handle.forward(&self.shared.stats, actor, event, forward);
                }
                Ok(())
            }
            ClientToGame::UpdateState(u) => {
                update(&self.shared, &self.room, &self.events, u, Via::Control);
                Ok(())
            }
            ClientToGame::Request { id, op } => {
                let Some(result) = self.on_request(id, op).await else {
                    return Ok(());
                };
                // A refusal of the connection's own (rate limited, already in a room)
                // goes through the room when there is one: after the answers to earlier
                // requests, which the room gives, and after what the room holds for it.
                if let (Err(e), Some((room, actor))) = (&result, current(&self.room))
                    && room.refused(actor, id, e.clone()).await
                {
                    return Ok(());
                }
                if self
                    .tx
                    .try_send(Outbound::Frame(response_frame(id, result)))
                    == Err(Overflow::Full)
                {
                    return Err((CloseCode::SlowConsumer, SLOW_CONSUMER.into()));
                }
                Ok(())
            }
        }
    }

    fn on_datagram(&mut self, bytes: &[u8]) -> Result<(), Closing> {
        match decode_body(bytes)
            .map_err(|e| (CloseCode::ProtocolViolation, format!("bad datagram: {e}")))?
        {
            DatagramUp::RaiseEvent(ev) => {
                raise(&self.shared, &self.room, &self.events, ev, Via::Datagram)
            }
            DatagramUp::UpdateState(u) => {
                update(&self.shared, &self.room, &self.events, u, Via::Datagram)
            }
        }
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
        let is_join = matches!(op, GameOp::CreateGame { .. } | GameOp::JoinGame { .. });
        let (bucket, kind) = if is_join {
            (&mut self.joins, 0)
        } else {
            (&mut self.ops, 1)
        };
        if !bucket.try_take(started) {
            self.shared.stats.rate_limited[kind].fetch_add(1, Ordering::Relaxed);
            return Some(Err(OpError::new(
                ResultCode::RateLimited,
                "too many operations; slow down",
            )));
        }
        let room_op = match op {
            GameOp::CreateGame {
                ticket,
                game,
                options,
                expected_users,
                actor_properties,
            } => {
                // Boxed, as the join below: the largest futures of the connection's
                // task run once, and would otherwise size it for its whole life.
                let r = Box::pin(self.create(
                    id,
                    &ticket,
                    game,
                    options,
                    &expected_users,
                    actor_properties,
                ))
                .await;
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
                let r =
                    Box::pin(self.join(id, &ticket, game, mode, expected_users, actor_properties))
                        .await;
                self.shared.stats.join_latency.observe(started.elapsed());
                return r.err().map(Err);
            }
            GameOp::LeaveGame { will_come_back } => {
                let Some((room, actor)) = set_current(&self.room, None) else {
                    return Some(Err(not_in_room()));
                };
                // The room answers; if it has just ended, the actor is gone anyway.
                if room.leave(actor, Some(id), will_come_back).await {
                    return None;
                }
                return Some(Ok(GameReply::Left));
            }
            op => op,
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

    fn member(&self) -> MemberRef {
        Arc::new(QuicMember {
            tx: self.tx.clone(),
            conn: self.conn.clone(),
        })
    }

    async fn create(
        &mut self,
        id: u32,
        ticket: &Bytes,
        game: String,
        options: RoomOptions,
        expected_users: &[String],
        properties: Properties,
    ) -> Result<(), OpError> {
        let req = admission::Request {
            action: TicketAction::Create,
            ticket,
            game: &game,
            options: Some(&options),
            expected_users,
        };
        let claims = self.admit_ticket(req)?;
        let user = claims.user_id.clone();
        let r = match admission::terms(&claims, req) {
            Ok(()) => {
                self.create_claimed(
                    id,
                    claims,
                    game.clone(),
                    options,
                    expected_users,
                    properties,
                )
                .await
            }
            Err(e) => Err(e),
        };
        self.refused_unless_joined(&game, &user, &r);
        r.map(|_| ())
    }

    /// Asks the backend about a persistent room before it exists (`kind`: `Create` or
    /// `Load`): the room made from its saved state, if it answered one.
    async fn load(
        &self,
        kind: &'static str,
        room: &HookRoom,
        user: &str,
    ) -> Result<Option<Room>, OpError> {
        let game = room.game.as_str();
        let Some(w) = self.shared.webhooks.as_ref().filter(|w| w.persistent()) else {
            return Ok(None);
        };
        let failed = |why: String| {
            OpError::new(
                ResultCode::ExternalHttpCallFailed,
                format!("the backend's answer to GameCreate ({kind}): {why}"),
            )
        };
        let state = match w.ask(kind, room, user).await {
            Ok(Some(state)) => state,
            Ok(None) => return Ok(None),
            Err(AskError::Failed(why)) | Err(AskError::Refused(why)) => return Err(failed(why)),
        };
        let invalid = |why: String| {
            OpError::new(
                ResultCode::InvalidSavedState,
                format!("the backend's saved state of {game:?} cannot be resumed: {why}"),
            )
        };
        let saved: SavedRoom = serde_json::from_value(state).map_err(|e| invalid(e.to_string()))?;
        Room::restore(
            game.to_string(),
            saved,
            self.shared.config.room_limits.clone(),
            tokio::time::Instant::now().into_std(),
        )
        .map(Some)
        .map_err(invalid)
    }

    /// The ticket of a create or join, checked with the server's and the connection's
    /// state (`hive::admission`).
    fn admit_ticket(&self, req: admission::Request<'_>) -> Result<TicketClaims, OpError> {
        let keys = self.shared.keys.read().unwrap_or_else(|p| p.into_inner());
        let gate = admission::Gate {
            keys: keys.as_ref(),
            server_id: &self.shared.config.server_id,
            state: self.shared.server_state(),
            now_ms: crate::unix_ms(SystemTime::now()),
            in_room: current(&self.room).is_some(),
        };
        admission::ticket(gate, req)
    }

    /// Tells the master that a client with a genuine ticket did not get in, so that it
    /// is no longer counted as on its way (and a reserved name is free again).
    fn refused_unless_joined(&mut self, game: &str, user: &str, r: &Result<bool, OpError>) {
        if !matches!(r, Ok(true)) {
            self.shared.reports.join_refused(game, user);
            self.rearm_join_deadline = true;
        }
    }

    /// Creates the room for a genuine ticket; whether the client got in (`Ok(false)`:
    /// the room refused it and has answered). With persistent rooms the backend is asked
    /// first, and a saved state it answers is resumed, the creator joining it.
    async fn create_claimed(
        &mut self,
        id: u32,
        claims: TicketClaims,
        game: String,
        options: RoomOptions,
        expected_users: &[String],
        properties: Properties,
    ) -> Result<bool, OpError> {
        // With persistent rooms the backend is asked first, under this room's id.
        let asked = self
            .shared
            .webhooks
            .as_ref()
            .filter(|w| w.persistent())
            .map(|_| HookRoom::new(&game));
        let loaded = match &asked {
            Some(hook_room) => self.load("Create", hook_room, &claims.user_id).await?,
            None => None,
        };
        let (room, first) = match loaded {
            Some(room) => (
                room,
                Input::Join {
                    id,
                    user_id: claims.user_id,
                    mode: JoinMode::RejoinOrJoin,
                    expected_users: expected_users.to_vec(),
                    properties,
                    claims: claims.claims,
                },
            ),
            None => (
                Room::new(game, options, self.shared.config.room_limits.clone()),
                Input::Create {
                    id,
                    authority: claims.authority,
                    user_id: claims.user_id,
                    expected_users: expected_users.to_vec(),
                    properties,
                },
            ),
        };
        // Refused by the room: it has answered.
        if let Some(created) = self.shared.start_room(room, self.member(), first, asked)? {
            set_current(&self.room, Some(created));
            self.admitted();
            return Ok(true);
        }
        Ok(false)
    }

    /// The client joined a room with a genuine ticket: it is trusted from now on.
    fn admitted(&mut self) {
        if !std::mem::replace(&mut self.joined, true) {
            self.pass.established();
            self.shared.config.limits.authenticated(&self.conn);
        }
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
        let req = admission::Request {
            action: TicketAction::Join,
            ticket,
            game: &game,
            options: None,
            expected_users: &expected_users,
        };
        let claims = self.admit_ticket(req)?;
        let user = claims.user_id.clone();
        let r = match admission::terms(&claims, req) {
            Ok(()) => {
                self.join_claimed(id, claims, &game, mode, expected_users, properties)
                    .await
            }
            Err(e) => Err(e),
        };
        self.refused_unless_joined(&game, &user, &r);
        r.map(|_| ())
    }

    /// A join for a game that is not here (and not in the backend): the master's entry
    /// is stale.
    fn unknown_game(&self, game: &str) -> OpError {
        self.shared.reports.unknown(game);
        self.shared
            .stats
            .unknown_games
            .fetch_add(1, Ordering::Relaxed);
        OpError::new(
            ResultCode::GameDoesNotExist,
            format!("no game named {game:?} here"),
        )
    }

    /// Joins the room for a genuine ticket; whether the client got in (`Ok(false)`: the
    /// room refused it and has answered). A room that ended as the join arrived is
    /// waited out once: a persistent room stays here until its saved state reached the
    /// backend, and can then be loaded again from it.
    async fn join_claimed(
        &mut self,
        id: u32,
        claims: TicketClaims,
        game: &str,
        mode: JoinMode,
        expected_users: Vec<String>,
        properties: Properties,
    ) -> Result<bool, OpError> {
        let join = Input::Join {
            id,
            user_id: claims.user_id.clone(),
            mode,
            expected_users,
            properties,
            claims: claims.claims.clone(),
        };
        match self.join_once(game, &claims.user_id, join.clone()).await? {
            Some(joined) => Ok(joined),
            None => {
                self.ended_room_gone(game).await;
                self.join_once(game, &claims.user_id, join)
                    .await?
                    .ok_or_else(|| OpError::new(ResultCode::GameDoesNotExist, "the game has ended"))
            }
        }
    }

    /// One attempt of [`Peer::join_claimed`]: `None` if the room here had ended.
    async fn join_once(
        &mut self,
        game: &str,
        user: &str,
        join: Input,
    ) -> Result<Option<bool>, OpError> {
        let hook_room = HookRoom::new(game);
        let handle = match self.shared.room(game) {
            Some(h) => h,
            // A persistent room not here: the backend may hold its state.
            None => match self.load("Load", &hook_room, user).await? {
                None => return Err(self.unknown_game(game)),
                Some(room) => {
                    match self.shared.start_room(
                        room,
                        self.member(),
                        join.clone(),
                        Some(hook_room.clone()),
                    ) {
                        Ok(Some(joined)) => {
                            set_current(&self.room, Some(joined));
                            self.admitted();
                            return Ok(Some(true));
                        }
                        // Refused by the room: it has answered.
                        Ok(None) => return Ok(Some(false)),
                        // Another joiner loaded it meanwhile: join that one.
                        Err(_) => self
                            .shared
                            .room(game)
                            .ok_or_else(|| self.unknown_game(game))?,
                    }
                }
            },
        };
        // A join held for a Server room's approval may take a while: if the connection
        // closes meanwhile, the join is withdrawn (no actor is made for nobody).
        let token = self.shared.joiner_token();
        let answer = tokio::select! {
            answer = handle.join(token, self.member(), join) => answer,
            _ = self.conn.closed() => {
                handle.withdraw(token);
                return Ok(Some(false));
            }
        };
        Ok(match answer {
            Some(Some(actor)) => {
                set_current(&self.room, Some((handle, actor)));
                self.admitted();
                Some(true)
            }
            // Refused by the room: it has answered.
            Some(None) => Some(false),
            None => None,
        })
    }

    /// Waits until the ended room `game` has left this server (a persistent one once its
    /// saved state reached the backend or was given up), or a new one took its place;
    /// at most as long as a webhook may take.
    async fn ended_room_gone(&self, game: &str) {
        let bound = self
            .shared
            .webhooks
            .as_ref()
            .map_or(std::time::Duration::from_secs(1), |w| w.delivery_bound())
            + std::time::Duration::from_secs(1);
        let gone = async {
            loop {
                let changed = self.shared.rooms_changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.shared.room(game).is_none_or(|h| !h.has_ended()) {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(bound, gone).await;
    }
}

/// Drains the outgoing queue: control-stream frames are coalesced into one write,
/// datagrams go out as they come (one too large for the path is sent as the equivalent
/// reliable frame), and each reliable channel gets its own stream with its own writer so
/// that one channel never waits for another. Every byte stays counted in the connection's
/// budget until it is written; a write that makes no progress for the drain timeout
/// disconnects the client as a slow consumer.
async fn write_loop(
    conn: Connection,
    mut send: SendStream,
    mut rx: OutRx<Outbound>,
    shared: Arc<Shared>,
) {
    let queue = shared.config.peer_queue;
    let drain = shared.config.drain_timeout;
    let budget = rx.budget().clone();
    let out_bytes = |n: usize| {
        shared
            .stats
            .bytes_out
            .fetch_add(n as u64, Ordering::Relaxed);
    };
    let slow = |conn: &Connection| {
        shared.stats.slow_consumer();
        close(conn, CloseCode::SlowConsumer, SLOW_CONSUMER);
    };
    let mut frames: Vec<Bytes> = Vec::with_capacity(WRITE_BATCH);
    let mut channels: HashMap<u8, OutTx<Bytes>> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut batch_bytes = 0;
        while let Some(out) = next.take() {
            match out {
                Outbound::Frame(f) => {
                    out_bytes(f.len());
                    batch_bytes += f.len();
                    frames.push(f);
                }
                Outbound::Datagram(d) => {
                    budget.release(d.len());
                    match conn.send_datagram(d.clone()) {
                        Ok(()) => out_bytes(d.len()),
                        Err(SendDatagramError::ConnectionLost(_)) => return,
                        Err(_) => frames.extend(event_datagram_to_frame(&d).into_iter().flatten()),
                    }
                }
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
                            let (tx, rx) = out_queue_sharing(queue, budget.clone());
                            let conn = conn.clone();
                            let stats = shared.stats.clone();
                            tokio::spawn(async move {
                                if write_queued(stream, rx, drain).await == WriterEnd::Stalled {
                                    stats.slow_consumer();
                                    close(&conn, CloseCode::SlowConsumer, SLOW_CONSUMER);
                                }
                            });
                            v.insert(tx)
                        }
                    };
                    out_bytes(f.len());
                    let n = f.len();
                    if let Err(e) = tx.try_forward(f) {
                        budget.release(n);
                        if e == Overflow::Full {
                            slow(&conn);
                        }
                        return;
                    }
                }
            }
            if frames.len() < WRITE_BATCH {
                next = rx.try_recv();
            }
        }
        if !frames.is_empty() {
            let write = tokio::time::timeout(drain, send.write_all_chunks(&mut frames)).await;
            budget.release(batch_bytes);
            match write {
                Ok(Ok(())) => frames.clear(),
                Ok(Err(_)) => return,
                Err(_) => return slow(&conn),
            }
        } else {
            budget.release(batch_bytes);
        }
    }
    let _ = send.finish();
}
