//! The room actor: a task that owns one [`Room`] and a bounded command channel. A
//! [`RoomHandle`] (cheap to clone) is the only way in. The actor turns the room's outputs
//! into frames and datagrams, each encoded once and shared by every recipient, wakes at
//! the room's deadlines (PlayerTtl, EmptyRoomTtl), and ends the room when it is done.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use quinn::{Connection, SendDatagramError};
use switchboard_protocol::{
    CloseCode, DatagramDown, GameReply, GameToClient, JoinMode, Joined, OpError, Properties,
    RaiseEvent, Response, ResultCode, RoomEvent, SetProperties, encode_body, encode_frame,
};
use switchboard_transport::{OutTx, Overflow, Weighed, close};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use crate::room::{Out, Room, Via};
use crate::{Shared, Stats};

/// The close reason of a slow consumer.
pub(crate) const SLOW_CONSUMER: &str =
    "disconnected: the client did not read its events fast enough";

/// Something to send to one client connection.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A complete frame for the control stream (channel 0).
    Frame(Bytes),
    /// A complete frame for reliable channel 1 to 15.
    Channel(u8, Bytes),
    /// An encoded `DatagramDown`.
    Datagram(Bytes),
}

impl Weighed for Outbound {
    fn weight(&self) -> usize {
        match self {
            Outbound::Frame(b) | Outbound::Channel(_, b) | Outbound::Datagram(b) => b.len(),
        }
    }
}

/// A connection's way in: its outgoing queue and the connection (to close it when the
/// queue overflows).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub tx: OutTx<Outbound>,
    pub conn: Connection,
}

/// Operations answered by the room itself (the response is queued by the room, ahead of
/// the events the operation causes).
#[derive(Debug)]
pub(crate) enum RoomOp {
    SetProperties(SetProperties),
    SetMasterClient {
        actor: u32,
        expected: u32,
    },
    ChangeGroups {
        remove: Option<Vec<u8>>,
        add: Vec<u8>,
    },
}

/// A request to create a room.
#[derive(Debug)]
pub(crate) struct CreateRequest {
    pub request: u32,
    pub game: String,
    pub options: switchboard_protocol::RoomOptions,
    pub user_id: String,
    pub expected_users: Vec<String>,
    pub properties: Properties,
    pub member: Member,
}

/// A join request for the room.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    pub request: u32,
    pub user_id: String,
    pub mode: JoinMode,
    pub expected_users: Vec<String>,
    pub properties: Properties,
    pub member: Member,
}

#[derive(Debug)]
pub(crate) enum RoomCmd {
    Join {
        join: JoinRequest,
        reply: oneshot::Sender<Result<u32, OpError>>,
    },
    Leave {
        actor: u32,
        will_come_back: bool,
        done: oneshot::Sender<()>,
    },
    Raise {
        sender: u32,
        event: RaiseEvent,
        via: Via,
    },
    Request {
        actor: u32,
        request: u32,
        op: RoomOp,
    },
    /// An event from the server itself to every active actor.
    Notify(RoomEvent),
}

/// The way into a room actor.
#[derive(Debug, Clone)]
pub(crate) struct RoomHandle {
    tx: mpsc::Sender<RoomCmd>,
    /// Tells this room apart from a later room of the same name.
    pub id: u64,
}

fn gone() -> OpError {
    OpError::new(ResultCode::GameDoesNotExist, "the game has ended")
}

impl RoomHandle {
    /// Joins; on success the `Joined` response is already queued to the member, ahead of
    /// every room event.
    pub async fn join(&self, join: JoinRequest) -> Result<u32, OpError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(RoomCmd::Join { join, reply })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Leaves (or becomes inactive) and waits until the room has processed it.
    pub async fn leave(&self, actor: u32, will_come_back: bool) {
        let (done, rx) = oneshot::channel();
        let cmd = RoomCmd::Leave {
            actor,
            will_come_back,
            done,
        };
        if self.tx.send(cmd).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Hands an operation to the room; the room queues the response. False if the room
    /// has ended.
    pub async fn request(&self, actor: u32, request: u32, op: RoomOp) -> bool {
        self.tx
            .send(RoomCmd::Request { actor, request, op })
            .await
            .is_ok()
    }

    /// Sends an event from the server to every active actor (e.g. GameServerOffline).
    pub fn notify(&self, event: RoomEvent) {
        let _ = self.tx.try_send(RoomCmd::Notify(event));
    }

    /// Relays an event; dropped (and counted in `stats`) if the room's queue is full, so
    /// a flood never grows the queue.
    pub fn raise(&self, stats: &Stats, sender: u32, event: RaiseEvent, via: Via) {
        let cmd = RoomCmd::Raise { sender, event, via };
        if self.tx.try_send(cmd).is_err() {
            stats.room_queue_drops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The encoded response to a request.
pub(crate) fn response_frame(request: u32, result: Result<GameReply, OpError>) -> Bytes {
    encode_frame(&GameToClient::Response(Response {
        id: request,
        result,
    }))
}

/// The `Joined` response of a successful join.
pub(crate) fn joined_frame(request: u32, joined: Joined) -> Bytes {
    response_frame(request, Ok(GameReply::Joined(joined)))
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Starts the actor of a room that already holds its creator (actor `creator`, whose
/// `Joined` response the caller queued), and applies the creation's outputs.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    room: Room,
    creator: (u32, Member),
    outs: Vec<Out>,
    id: u64,
) -> RoomHandle {
    let (tx, rx) = mpsc::channel(shared.config.room_queue);
    let mut actor = RoomActor {
        shared,
        room,
        members: HashMap::from([creator]),
        id,
    };
    actor.apply(outs);
    tokio::spawn(actor.run(rx));
    RoomHandle { tx, id }
}

struct RoomActor {
    shared: Arc<Shared>,
    room: Room,
    members: HashMap<u32, Member>,
    id: u64,
}

impl RoomActor {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomCmd>) {
        info!(game = self.room.name(), "room created");
        loop {
            let deadline = self
                .room
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let cmd = tokio::select! {
                cmd = rx.recv() => cmd,
                _ = sleep_until(deadline) => {
                    let outs = self.room.tick(now());
                    self.apply(outs);
                    if self.room.is_done(now()) {
                        break;
                    }
                    continue;
                }
            };
            let Some(cmd) = cmd else { break };
            self.handle(cmd);
            if self.room.is_done(now()) {
                break;
            }
        }
        // Refuse whatever is still queued: the room is gone.
        rx.close();
        self.shared.remove_room(self.room.name(), self.id);
        info!(game = self.room.name(), "room closed");
    }

    fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join { join, reply } => {
                let JoinRequest {
                    request,
                    user_id,
                    mode,
                    expected_users,
                    properties,
                    member,
                } = join;
                match self
                    .room
                    .join(&user_id, mode, &expected_users, properties, now())
                {
                    Ok((joined, outs)) => {
                        let actor = joined.actor;
                        // The response goes first, so the joiner sees Joined before any event.
                        let _ = member
                            .tx
                            .try_send(Outbound::Frame(joined_frame(request, joined)));
                        self.members.insert(actor, member);
                        let _ = reply.send(Ok(actor));
                        self.apply(outs);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            RoomCmd::Leave {
                actor,
                will_come_back,
                done,
            } => {
                self.members.remove(&actor);
                let outs = self.room.leave(actor, will_come_back, now());
                debug!(game = self.room.name(), actor, will_come_back, "actor left");
                self.apply(outs);
                let _ = done.send(());
            }
            RoomCmd::Raise { sender, event, via } => {
                let outs = self.room.raise_via(sender, event, via);
                self.apply(outs);
            }
            RoomCmd::Notify(event) => {
                let to = self.room.active_actors();
                self.apply(vec![Out::Event { to, event }]);
            }
            RoomCmd::Request { actor, request, op } => {
                let result = match op {
                    RoomOp::SetProperties(sp) => self
                        .room
                        .set_properties(actor, sp)
                        .map(|o| (GameReply::PropertiesSet, o)),
                    RoomOp::SetMasterClient {
                        actor: new,
                        expected,
                    } => self
                        .room
                        .set_master_client(actor, new, expected)
                        .map(|o| (GameReply::MasterClientSet, o)),
                    RoomOp::ChangeGroups { remove, add } => self
                        .room
                        .change_groups(actor, remove, add)
                        .map(|()| (GameReply::GroupsChanged, Vec::new())),
                };
                let (reply, outs) = match result {
                    Ok((reply, outs)) => (Ok(reply), outs),
                    Err(e) => {
                        self.shared.stats.op_refused(e.result_code());
                        (Err(e), Vec::new())
                    }
                };
                if let Some(m) = self.members.get(&actor) {
                    let _ =
                        m.tx.try_send(Outbound::Frame(response_frame(request, reply)));
                }
                self.apply(outs);
            }
        }
    }

    /// Carries out the room's outputs.
    fn apply(&mut self, outs: Vec<Out>) {
        let mut slow = Vec::new();
        for out in outs {
            match out {
                Out::Event { to, event } => {
                    let frame = encode_frame(&GameToClient::Event(event));
                    self.deliver(&to, &Outbound::Frame(frame), &mut slow);
                }
                Out::Relay {
                    to,
                    data,
                    reliable,
                    channel,
                } => {
                    let out = if reliable {
                        let frame = encode_frame(&GameToClient::Event(RoomEvent::Custom(data)));
                        if channel == 0 {
                            Outbound::Frame(frame)
                        } else {
                            Outbound::Channel(channel, frame)
                        }
                    } else {
                        Outbound::Datagram(encode_body(&DatagramDown::Event(data)))
                    };
                    self.shared
                        .stats
                        .events_relayed
                        .fetch_add(to.len() as u64, Ordering::Relaxed);
                    self.deliver(&to, &out, &mut slow);
                }
                Out::Publish => self.shared.reports.publish(self.room.game_state()),
            }
        }
        // A recipient whose queue was full was disconnected; it drops out like any
        // dropped connection (inactive if the room has a PlayerTtl).
        for actor in slow {
            self.shared.stats.slow_consumer();
            self.members.remove(&actor);
            let outs = self.room.leave(actor, true, now());
            self.apply(outs);
        }
    }

    fn deliver(&self, recipients: &[u32], out: &Outbound, slow: &mut Vec<u32>) {
        for actor in recipients {
            let Some(m) = self.members.get(actor) else {
                continue;
            };
            if let Outbound::Datagram(d) = out
                && self.send_datagram_now(m, d)
            {
                continue;
            }
            match m.tx.try_send(out.clone()) {
                Ok(()) => {}
                Err(Overflow::Full) => {
                    close(&m.conn, CloseCode::SlowConsumer, SLOW_CONSUMER);
                    if !slow.contains(actor) {
                        slow.push(*actor);
                    }
                }
                // The connection is going away; its own Leave follows.
                Err(Overflow::Closed) => {}
            }
        }
    }

    /// Sends a datagram straight on the recipient's connection, without the hop through
    /// its queue and the wake-up of its writer (the relay's hot path: profiling showed
    /// those two as most of what Switchboard spends per delivery beyond a bare relay).
    /// Only when nothing is queued ahead of it, so that a datagram does not overtake
    /// frames still waiting in the queue (a Join response, say; datagrams and streams
    /// were never ordered with each other on the wire), and when it fits the path;
    /// otherwise returns false and the writer sends it (or its reliable equivalent).
    fn send_datagram_now(&self, m: &Member, d: &Bytes) -> bool {
        if !m.tx.is_empty() || m.conn.max_datagram_size().is_none_or(|max| d.len() > max) {
            return false;
        }
        match m.conn.send_datagram(d.clone()) {
            Ok(()) => {
                self.shared
                    .stats
                    .bytes_out
                    .fetch_add(d.len() as u64, Ordering::Relaxed);
                true
            }
            // The connection is going away; its own Leave follows.
            Err(SendDatagramError::ConnectionLost(_)) => true,
            Err(_) => false,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{EventCaching, ReceiverGroup};

    #[test]
    fn a_full_room_queue_drops_and_counts_instead_of_growing() {
        let (tx, mut rx) = mpsc::channel(2);
        let handle = RoomHandle { tx, id: 1 };
        let stats = Stats::default();
        let event = RaiseEvent {
            code: 1,
            receivers: ReceiverGroup::Others,
            targets: vec![],
            group: 0,
            cache: EventCaching::DoNotCache,
            channel: 0,
            data: Bytes::new(),
        };
        for _ in 0..5 {
            handle.raise(&stats, 1, event.clone(), Via::Control);
        }
        assert_eq!(stats.room_queue_drops.load(Ordering::Relaxed), 3);
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err(), "the queue held only its capacity");
    }
}
