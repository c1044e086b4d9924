//! The room actor: a task that owns one [`Room`] and a bounded command channel. A
//! [`RoomHandle`] (cheap to clone) is the only way in. Outputs of the room go to the
//! members' outgoing queues; an event is encoded once and its bytes shared by every
//! recipient.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use quinn::Connection;
use switchboard_protocol::{
    CloseCode, DatagramDown, EventData, GameReply, GameToClient, JoinMode, Joined, OpError,
    RaiseEvent, Response, ResultCode, RoomEvent, encode_body, encode_frame,
};
use switchboard_transport::close;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use crate::Shared;
use crate::room::Room;

/// Something to send to one client connection.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A complete frame for the control stream.
    Frame(Bytes),
    /// An encoded `DatagramDown`.
    Datagram(Bytes),
}

/// A connection's way in: its outgoing queue and the connection (to close it when the
/// queue overflows).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub tx: mpsc::Sender<Outbound>,
    pub conn: Connection,
}

#[derive(Debug)]
pub(crate) enum RoomCmd {
    Join {
        request: u32,
        user_id: String,
        mode: JoinMode,
        expected_users: Vec<String>,
        member: Member,
        reply: oneshot::Sender<Result<u32, OpError>>,
    },
    Leave {
        actor: u32,
        done: Option<oneshot::Sender<()>>,
    },
    Raise {
        sender: u32,
        event: RaiseEvent,
        reliable: bool,
    },
}

/// The way into a room actor.
#[derive(Debug, Clone)]
pub(crate) struct RoomHandle {
    tx: mpsc::Sender<RoomCmd>,
    /// Tells this room apart from a later room of the same name.
    pub id: u64,
}

impl RoomHandle {
    /// Joins `user_id`; on success the `Joined` response (for `request`) is already queued
    /// to the member, ahead of every room event.
    pub async fn join(
        &self,
        request: u32,
        user_id: String,
        mode: JoinMode,
        expected_users: Vec<String>,
        member: Member,
    ) -> Result<u32, OpError> {
        let (reply, rx) = oneshot::channel();
        let gone = || OpError::new(ResultCode::GameDoesNotExist, "the game has ended");
        self.tx
            .send(RoomCmd::Join {
                request,
                user_id,
                mode,
                expected_users,
                member,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Removes an actor and waits until the room has processed it.
    pub async fn leave(&self, actor: u32) {
        let (done, rx) = oneshot::channel();
        if self
            .tx
            .send(RoomCmd::Leave {
                actor,
                done: Some(done),
            })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Relays an event; dropped (and counted) if the room's queue is full.
    pub fn raise(&self, shared: &Shared, sender: u32, event: RaiseEvent, reliable: bool) {
        if self
            .tx
            .try_send(RoomCmd::Raise {
                sender,
                event,
                reliable,
            })
            .is_err()
        {
            shared
                .stats
                .room_queue_drops
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Queues the `Joined` response of a successful join.
pub(crate) fn joined_frame(request: u32, joined: Joined) -> Bytes {
    encode_frame(&GameToClient::Response(Response {
        id: request,
        result: Ok(GameReply::Joined(joined)),
    }))
}

/// Starts the actor of a room that already holds its creator (actor `creator`, whose
/// `Joined` response the caller queues).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    room: Room,
    creator: (u32, Member),
    id: u64,
) -> RoomHandle {
    let (tx, rx) = mpsc::channel(shared.config.room_queue);
    let mut members = HashMap::new();
    members.insert(creator.0, creator.1);
    let actor = RoomActor {
        shared,
        room,
        members,
        id,
    };
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
        while let Some(cmd) = rx.recv().await {
            match cmd {
                RoomCmd::Join {
                    request,
                    user_id,
                    mode,
                    expected_users,
                    member,
                    reply,
                } => self.join(request, &user_id, mode, &expected_users, member, reply),
                RoomCmd::Leave { actor, done } => {
                    self.leave(actor);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                RoomCmd::Raise {
                    sender,
                    event,
                    reliable,
                } => self.raise(sender, event, reliable),
            }
            if self.room.is_empty() {
                break;
            }
        }
        // Refuse whatever is still queued: the room is gone.
        rx.close();
        self.shared.remove_room(self.room.name(), self.id);
        info!(game = self.room.name(), "room closed");
    }

    fn join(
        &mut self,
        request: u32,
        user_id: &str,
        mode: JoinMode,
        expected_users: &[String],
        member: Member,
        reply: oneshot::Sender<Result<u32, OpError>>,
    ) {
        match self.room.join(user_id, mode, expected_users) {
            Ok(outcome) => {
                let actor = outcome.joined.actor;
                // The response goes first, so the joiner sees its Joined before any event.
                let _ = member
                    .tx
                    .try_send(Outbound::Frame(joined_frame(request, outcome.joined)));
                self.members.insert(actor, member);
                let _ = reply.send(Ok(actor));
                let frame = encode_frame(&GameToClient::Event(outcome.event));
                self.deliver(&outcome.recipients, &Outbound::Frame(frame));
                self.shared.publish(self.room.game_state());
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn leave(&mut self, actor: u32) {
        self.members.remove(&actor);
        if let Some((event, recipients)) = self.room.leave(actor) {
            debug!(game = self.room.name(), actor, "actor left");
            let frame = encode_frame(&GameToClient::Event(event));
            self.deliver(&recipients, &Outbound::Frame(frame));
            if !self.room.is_empty() {
                self.shared.publish(self.room.game_state());
            }
        }
    }

    fn raise(&mut self, sender: u32, event: RaiseEvent, reliable: bool) {
        let recipients = self.room.recipients(sender, &event);
        if recipients.is_empty() {
            return;
        }
        let data = EventData {
            sender,
            code: event.code,
            data: event.data,
        };
        let out = if reliable {
            Outbound::Frame(encode_frame(&GameToClient::Event(RoomEvent::Custom(data))))
        } else {
            Outbound::Datagram(encode_body(&DatagramDown::Event(data)))
        };
        self.shared
            .stats
            .events_relayed
            .fetch_add(recipients.len() as u64, Ordering::Relaxed);
        self.deliver(&recipients, &out);
    }

    /// Queues `out` to each recipient. A recipient whose queue is full is disconnected as a
    /// slow consumer and leaves the room; the others carry on.
    fn deliver(&mut self, recipients: &[u32], out: &Outbound) {
        let mut slow = Vec::new();
        for actor in recipients {
            let Some(m) = self.members.get(actor) else {
                continue;
            };
            match m.tx.try_send(out.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    close(
                        &m.conn,
                        CloseCode::SlowConsumer,
                        "disconnected: the client did not read its events fast enough",
                    );
                    slow.push(*actor);
                }
                // The connection is going away; its own Leave follows.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for actor in slow {
            self.shared
                .stats
                .slow_consumers
                .fetch_add(1, Ordering::Relaxed);
            self.leave(actor);
        }
    }
}
