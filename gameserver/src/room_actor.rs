//! The room actor: a task that owns one [`Room`] and a bounded command channel. A
//! [`RoomHandle`] (cheap to clone) is the only way in. The actor turns the room's outputs
//! into frames and datagrams, each encoded once and shared by every recipient, wakes at
//! the room's deadlines (PlayerTtl, EmptyRoomTtl), and ends the room when it is done.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use switchboard_protocol::{
    CloseCode, DatagramDown, GameOp, GameReply, GameToClient, OpError, RaiseEvent, Response,
    RoomEvent, StateUpdate, encode_body, encode_frame,
};
use switchboard_transport::Overflow;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::coalesce::{Coalescer, Held, Offer, pack};
use crate::member::{Datagram, MemberRef, Outbound};
use crate::room::{Input, Origin, Out, Room, To, Via};
use crate::webhooks::HookRoom;
use crate::{Shared, Stats};

/// The close reason of the members of a room that ended under them.
const ROOM_CLOSED: &str = "the room ended: its dedicated server left";

/// The close reason of a slow consumer.
pub(crate) const SLOW_CONSUMER: &str =
    "disconnected: the client did not read its events fast enough";

/// An input for the room, from `from`; a joiner brings its connection (the actor gives
/// it a token), and `done` hears the actor the sender is once the room has decided
/// (`None`: refused). A join held for a `Server` room's approval is decided later.
#[derive(Debug)]
pub(crate) struct RoomCmd {
    from: Origin,
    input: Input,
    joiner: Option<(u64, MemberRef)>,
    done: Option<oneshot::Sender<Option<u32>>>,
}

/// The way into a room actor.
#[derive(Debug, Clone)]
pub(crate) struct RoomHandle {
    tx: mpsc::Sender<RoomCmd>,
}

impl RoomHandle {
    /// Whether the room has ended (it takes no more input; it may still be saving).
    pub fn has_ended(&self) -> bool {
        self.tx.is_closed()
    }

    async fn call(
        &self,
        from: Origin,
        input: Input,
        joiner: Option<(u64, MemberRef)>,
    ) -> Option<Option<u32>> {
        let (done, rx) = oneshot::channel();
        let cmd = RoomCmd {
            from,
            input,
            joiner,
            done: Some(done),
        };
        if !self.send(cmd).await {
            return None;
        }
        rx.await.ok()
    }

    /// Queues `cmd`, waiting for room in the queue if it is full; the future says false
    /// if the room has ended. Only the wait is a future of its own (boxed): the usual
    /// case is done at once, and an inlined wait would size every connection's task,
    /// for its whole life, by its largest request.
    fn send(&self, cmd: RoomCmd) -> Queued {
        match self.tx.try_send(cmd) {
            Ok(()) => Queued::Done(true),
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                Queued::Wait(Box::pin(async move { tx.send(cmd).await.is_ok() }))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Queued::Done(false),
        }
    }

    /// Joins (an `Input::Join`); the room answers the request on the member's queue.
    /// `Some(actor)` if it got in, `Some(None)` if the room refused it, `None` if the room
    /// has ended (nobody answered).
    /// `joiner` is a token unique on this server (see `Shared::joiner_token`).
    pub async fn join(&self, joiner: u64, member: MemberRef, join: Input) -> Option<Option<u32>> {
        self.call(Origin::Joiner(joiner), join, Some((joiner, member)))
            .await
    }

    /// The connection of joiner `joiner` closed while its join was held.
    pub fn withdraw(&self, joiner: u64) {
        let _ = self.tx.try_send(RoomCmd {
            from: Origin::Joiner(joiner),
            input: Input::Withdraw,
            joiner: None,
            done: None,
        });
    }

    /// Leaves (or becomes inactive) and waits until the room has handled it; the room
    /// answers `id`. False if the room has ended.
    pub async fn leave(&self, actor: u32, id: Option<u32>, will_come_back: bool) -> bool {
        let input = Input::Leave { id, will_come_back };
        self.call(Origin::Actor(actor), input, None).await.is_some()
    }

    /// Hands an operation to the room, which answers it. False if the room has ended.
    pub fn request(&self, actor: u32, id: u32, op: GameOp) -> Queued {
        self.enqueue(actor, Input::Request { id, op })
    }

    /// Queues an input of `actor` behind its earlier ones (waiting for room in the
    /// queue; never dropped). False if the room has ended.
    fn enqueue(&self, actor: u32, input: Input) -> Queued {
        self.send(RoomCmd {
            from: Origin::Actor(actor),
            input,
            joiner: None,
            done: None,
        })
    }

    /// Has the room answer a request its actor's connection refused itself, in order
    /// with the room's own answers and what is on its way to the actor. False if the
    /// room has ended.
    pub fn refused(&self, actor: u32, id: u32, error: OpError) -> Queued {
        self.enqueue(actor, Input::Refused { id, error })
    }

    /// The game server stops: the room leaves its actors inactive and ends (saving its
    /// state when rooms are persistent).
    pub async fn shutdown(&self) {
        self.send(RoomCmd {
            from: Origin::Server,
            input: Input::Shutdown,
            joiner: None,
            done: None,
        })
        .await;
    }

    /// Sends an event from the server to every active actor (e.g. GameServerOffline).
    pub fn notify(&self, event: RoomEvent) {
        let _ = self.tx.try_send(RoomCmd {
            from: Origin::Server,
            input: Input::Notify(event),
            joiner: None,
            done: None,
        });
    }

    /// Relays an event; dropped (and counted in `stats`) if the room's queue is full, so
    /// a flood never grows the queue.
    pub fn raise(&self, stats: &Stats, sender: u32, event: RaiseEvent, via: Via) {
        self.relay(stats, sender, Input::Raise { event, via });
    }

    /// Relays an event and forwards it to the backend.
    pub fn forward(
        &self,
        stats: &Stats,
        sender: u32,
        event: RaiseEvent,
        forward: switchboard_protocol::Forward,
    ) {
        self.relay(stats, sender, Input::Forward { event, forward });
    }

    /// Relays an object's state update, as [`RoomHandle::raise`] does an event.
    pub fn update(&self, stats: &Stats, sender: u32, update: StateUpdate, via: Via) {
        self.relay(stats, sender, Input::Update { update, via });
    }

    fn relay(&self, stats: &Stats, sender: u32, input: Input) {
        let cmd = RoomCmd {
            from: Origin::Actor(sender),
            input,
            joiner: None,
            done: None,
        };
        if self.tx.try_send(cmd).is_err() {
            stats.room_queue_drops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A command on its way into a room's queue: queued already, or waiting for room.
pub(crate) enum Queued {
    /// Queued (true) or refused: the room has ended (false).
    Done(bool),
    /// Waiting for room in the queue.
    Wait(std::pin::Pin<Box<dyn Future<Output = bool> + Send>>),
}

impl Future for Queued {
    type Output = bool;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<bool> {
        match &mut *self {
            Queued::Done(queued) => std::task::Poll::Ready(*queued),
            Queued::Wait(wait) => wait.as_mut().poll(cx),
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

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Starts `room` with its first member: the creator of `create` (an `Input::Create`),
/// or the first joiner of a restored room (an `Input::Join`). The room answers it, and
/// its `Joined` is queued before any room event. The room and the member's actor, or
/// `None` if the room refused it (and said so). `asked`: the backend was asked about the
/// room before it existed, with this `RoomId` (that `GameCreate` was the room's first
/// hook).
pub(crate) fn create(
    shared: Arc<Shared>,
    room: Room,
    creator: MemberRef,
    create: Input,
    asked: Option<HookRoom>,
) -> Option<(RoomActor, u32)> {
    let token = shared.joiner_token();
    let window = room.flush_window();
    let mut actor = RoomActor {
        coalescer: (!window.is_zero()).then(|| Coalescer::new(window)),
        shared,
        hook_seq: u64::from(asked.is_some()),
        hook_room: asked.unwrap_or_else(|| HookRoom::new(room.name())),
        room,
        members: HashMap::new(),
        users: HashMap::new(),
        save_ack: None,
        batch: Vec::new(),
        batch_due: None,
        joiners: HashMap::new(),
        id: 0,
        closed: false,
    };
    let (done, mut rx) = oneshot::channel();
    actor.input(
        Origin::Joiner(token),
        create,
        Some((token, creator)),
        Some(done),
    );
    let n = rx.try_recv().ok().flatten()?;
    Some((actor, n))
}

/// Starts the actor of a created room.
pub(crate) fn spawn(mut actor: RoomActor, id: u64) -> RoomHandle {
    let (tx, rx) = mpsc::channel(actor.shared.config.room_queue);
    actor.id = id;
    tokio::spawn(actor.run(rx));
    RoomHandle { tx }
}

/// A connection that is not an actor yet, and who waits to hear what it became.
type Joiner = (MemberRef, Option<oneshot::Sender<Option<u32>>>);

pub(crate) struct RoomActor {
    shared: Arc<Shared>,
    room: Room,
    members: HashMap<u32, MemberRef>,
    /// Users by actor, for the webhooks' Leave (an actor removed from the room is gone
    /// from it by then).
    users: HashMap<u32, String>,
    /// The room's webhook sequence number (the last one sent).
    hook_seq: u64,
    /// The room as its webhooks name it.
    hook_room: HookRoom,
    /// Hears when the room's saved state reached the backend (or was given up): the
    /// room stays listed until then, so nobody loads an older state elsewhere.
    save_ack: Option<oneshot::Receiver<()>>,
    /// Forwarded events waiting for the next batch, and when it is due.
    batch: Vec<crate::webhooks::Forwarded>,
    batch_due: Option<tokio::time::Instant>,
    /// Joiners the room has not decided on yet (held for approval), by token.
    joiners: HashMap<u64, Joiner>,
    /// Relayed events held per member for the room's flush window (none: no window).
    coalescer: Option<Coalescer>,
    id: u64,
    closed: bool,
}

impl RoomActor {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomCmd>) {
        info!(game = self.room.name(), "room created");
        // One timer for the actor's life, moved only when the next deadline changes (a
        // new timer per input was a timer-wheel insert and removal per relayed event).
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let mut armed = None;
        while !self.closed {
            let deadline = self
                .room
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let flush_due = self
                .coalescer
                .as_ref()
                .and_then(Coalescer::due)
                .map(tokio::time::Instant::from_std);
            let deadline = [deadline, self.batch_due, flush_due]
                .into_iter()
                .flatten()
                .min();
            if deadline != armed {
                if let Some(d) = deadline {
                    timer.as_mut().reset(d);
                }
                armed = deadline;
            }
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(RoomCmd { from, input, joiner, done }) = cmd else { break };
                    // Windows that closed go first, so nothing overtakes what they held.
                    self.flush_due();
                    let relay = matches!(
                        input,
                        Input::Raise { .. } | Input::Update { .. } | Input::Forward { .. }
                    );
                    self.input(from, input, joiner, done);
                    // A room emptied by that input may be done at once (EmptyRoomTtl 0);
                    // one that input ended is not ticked again.
                    if !relay && !self.closed {
                        self.tick();
                    }
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.flush_due();
                    if self.batch_due.is_some_and(|t| t <= tokio::time::Instant::now()) {
                        self.flush_batch();
                    }
                    self.tick();
                }
            }
        }
        // Refuse whatever is still queued: the room is gone.
        rx.close();
        if let (Some(ack), Some(w)) = (self.save_ack.take(), &self.shared.webhooks) {
            let _ = tokio::time::timeout(w.delivery_bound(), ack).await;
        }
        self.shared.remove_room(self.room.name(), self.id);
        info!(game = self.room.name(), "room closed");
    }

    fn tick(&mut self) {
        self.input(Origin::Server, Input::Tick, None, None);
    }

    /// Hands one input to the room and carries out its outputs. A joiner's input is
    /// from the joiner's new token; `done` hears the actor the sender is once the room
    /// has decided (for a held join, later).
    fn input(
        &mut self,
        from: Origin,
        input: Input,
        joiner: Option<(u64, MemberRef)>,
        done: Option<oneshot::Sender<Option<u32>>>,
    ) {
        let withdrawn = matches!(input, Input::Withdraw);
        let done = match joiner {
            Some((token, member)) => {
                self.joiners.insert(token, (member, done));
                None
            }
            None => done,
        };
        let outs = self.room.handle(from, input, now());
        self.apply(outs);
        if let (true, Origin::Joiner(token)) = (withdrawn, from)
            && let Some((_, Some(done))) = self.joiners.remove(&token)
        {
            let _ = done.send(None);
        }
        // After the outputs: what the room sent about this input is queued first.
        if let Some(done) = done {
            let _ = done.send(match from {
                Origin::Actor(n) => Some(n),
                _ => None,
            });
        }
    }

    /// Carries out the room's outputs.
    fn apply(&mut self, outs: Vec<Out>) {
        let mut slow = Vec::new();
        // Joiners that became actors in these outputs (their answer follows), and who
        // waits to hear it (told once the answer is queued).
        let mut bound: Vec<(u64, u32)> = Vec::new();
        let mut told = Vec::new();
        for out in outs {
            match out {
                Out::Joined {
                    joiner,
                    actor,
                    user_id,
                } => {
                    let kind = if self.hook_seq == 0 { "Create" } else { "Join" };
                    self.hook(kind, actor, &user_id, None);
                    self.users.insert(actor, user_id);
                    bound.push((joiner, actor));
                    if let Some((m, done)) = self.joiners.remove(&joiner) {
                        self.members.insert(actor, m);
                        told.extend(done.map(|d| (d, actor)));
                    }
                }
                Out::Reply { to, id, result } => {
                    if let Err(e) = &result {
                        self.shared.stats.op_refused(e.result_code());
                    }
                    let frame = Outbound::Frame(response_frame(id, result));
                    match to {
                        To::Actor(n) => {
                            self.flush_member(n, &mut slow);
                            if let Some(m) = self.members.get(&n) {
                                let _ = m.queue(frame);
                            }
                        }
                        To::Joiner(j) => {
                            if let Some((_, n)) = bound.iter().find(|(b, _)| *b == j) {
                                if let Some(m) = self.members.get(n) {
                                    let _ = m.queue(frame);
                                }
                            // A joiner that is not an actor by now was refused.
                            } else if let Some((m, done)) = self.joiners.remove(&j) {
                                let _ = m.queue(frame);
                                if let Some(done) = done {
                                    let _ = done.send(None);
                                }
                            }
                        }
                    }
                }
                Out::Left { actor, inactive } => {
                    if let Some(c) = &mut self.coalescer {
                        c.forget(actor);
                    }
                    let reason = match (inactive, self.members.remove(&actor)) {
                        (true, _) => "inactive",
                        (false, Some(_)) => "left",
                        // Removed while it was inactive: its PlayerTtl ran out.
                        (false, None) => "expired",
                    };
                    let user = if inactive {
                        self.users.get(&actor).cloned()
                    } else {
                        self.users.remove(&actor)
                    };
                    self.hook("Leave", actor, &user.unwrap_or_default(), Some(reason));
                }
                Out::Closed => {
                    self.closed = true;
                    let held = self.coalescer.as_mut().map(Coalescer::take_all);
                    for (actor, held) in held.into_iter().flatten() {
                        self.send_held(actor, held, &mut slow);
                    }
                    self.flush_batch();
                    self.close_hook();
                    // Only a Server room whose authority left ends with members in it.
                    for m in self.members.values() {
                        m.close(CloseCode::RoomClosed, ROOM_CLOSED);
                    }
                }
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
                    self.relay(&to, &out, &mut slow);
                }
                Out::State {
                    to,
                    state,
                    reliable,
                } => {
                    let out = if reliable {
                        Outbound::Frame(encode_frame(&GameToClient::Event(RoomEvent::ObjectState(
                            state,
                        ))))
                    } else {
                        Outbound::Datagram(encode_body(&DatagramDown::State(state)))
                    };
                    self.relay(&to, &out, &mut slow);
                }
                Out::Forward {
                    sender,
                    code,
                    data,
                    batched,
                } => self.forward(sender, code, data, batched),
                Out::ForwardProperties {
                    sender,
                    target,
                    properties,
                } => {
                    if let Some(w) = self.shared.webhooks.clone() {
                        let user = self.users.get(&sender).cloned().unwrap_or_default();
                        self.hook_seq += 1;
                        w.properties(
                            &self.hook_room,
                            self.hook_seq,
                            sender,
                            &user,
                            target,
                            &properties,
                        );
                    }
                }
                Out::Publish => self.shared.reports.publish(self.room.game_state()),
            }
        }
        for (done, actor) in told {
            let _ = done.send(Some(actor));
        }
        self.drop_slow(slow);
    }

    /// Recipients whose queue was full were disconnected; each drops out like any
    /// dropped connection (inactive if the room has a PlayerTtl).
    fn drop_slow(&mut self, slow: Vec<u32>) {
        for actor in slow {
            self.shared.stats.slow_consumer();
            let dropped = Input::Leave {
                id: None,
                will_come_back: true,
            };
            self.input(Origin::Actor(actor), dropped, None, None);
        }
    }

    /// A forwarded event: its own webhook now, or into the room's next batch.
    fn forward(&mut self, sender: u32, code: u8, data: Bytes, batched: bool) {
        let Some(w) = self.shared.webhooks.clone() else {
            return;
        };
        let user = self.users.get(&sender).cloned().unwrap_or_default();
        let e = crate::webhooks::Forwarded::new(sender, user, code, data);
        if batched {
            if self.batch.is_empty() {
                self.batch_due = Some(tokio::time::Instant::now() + w.batch_interval());
            }
            self.batch.push(e);
            return;
        }
        let notify = if w.error_info() {
            self.members.get(&sender).cloned()
        } else {
            None
        };
        self.hook_seq += 1;
        w.event(&self.hook_room, self.hook_seq, &e, notify);
    }

    /// Sends the batched forwarded events, in order, as one webhook.
    fn flush_batch(&mut self) {
        self.batch_due = None;
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if let Some(w) = &self.shared.webhooks {
            self.hook_seq += 1;
            w.events(&self.hook_room, self.hook_seq, &batch);
        }
    }

    /// The room's last hook: its whole state (`Save`) when rooms are persistent and it
    /// has actors to come back, else `Close`.
    fn close_hook(&mut self) {
        let Some(w) = self.shared.webhooks.clone() else {
            return;
        };
        let saved = (w.persistent() && self.room.has_actors())
            .then(|| self.room.save())
            .flatten();
        match saved.map(|s| serde_json::to_value(s).expect("a saved room serializes")) {
            Some(state) => {
                self.hook_seq += 1;
                self.save_ack = Some(w.save(&self.hook_room, self.hook_seq, state));
            }
            None => self.hook("Close", 0, "", None),
        }
    }

    /// Queues a webhook about this room (never waits).
    fn hook(&mut self, kind: &'static str, actor: u32, user: &str, reason: Option<&str>) {
        if let Some(w) = &self.shared.webhooks {
            self.hook_seq += 1;
            w.room(kind, &self.hook_room, self.hook_seq, actor, user, reason);
        }
    }

    /// Delivers a relayed event or object state, counted as relayed deliveries; with a
    /// flush window, held for the members whose window is open.
    fn relay(&mut self, to: &[u32], out: &Outbound, slow: &mut Vec<u32>) {
        self.shared
            .stats
            .events_relayed
            .fetch_add(to.len() as u64, Ordering::Relaxed);
        // The clock only matters to a window.
        let now = self.coalescer.is_some().then(now);
        for actor in to {
            let Some(m) = self.members.get(actor) else {
                continue;
            };
            let offer = self
                .coalescer
                .as_mut()
                .zip(now)
                .map(|(c, now)| c.offer(*actor, out, now));
            match offer {
                None | Some(Offer::Now) => send(&self.shared, *actor, m, out, slow),
                Some(Offer::Held) => {}
                Some(Offer::Full) => {
                    let held = self.coalescer.as_mut().and_then(|c| c.take(*actor));
                    if let Some(held) = held {
                        self.send_held(*actor, held, slow);
                    }
                }
            }
        }
    }

    /// Delivers a room event or response: after what is held for each recipient, which
    /// it must not overtake.
    fn deliver(&mut self, recipients: &[u32], out: &Outbound, slow: &mut Vec<u32>) {
        for actor in recipients {
            self.flush_member(*actor, slow);
            if let Some(m) = self.members.get(actor) {
                send(&self.shared, *actor, m, out, slow);
            }
        }
    }

    /// Sends what is held for `actor` now.
    fn flush_member(&mut self, actor: u32, slow: &mut Vec<u32>) {
        if let Some(held) = self.coalescer.as_mut().and_then(|c| c.take(actor)) {
            self.send_held(actor, held, slow);
        }
    }

    /// Sends what is held for members whose window has closed.
    fn flush_due(&mut self) {
        let Some(c) = &mut self.coalescer else {
            return;
        };
        let due = c.take_due(now());
        if due.is_empty() {
            return;
        }
        let mut slow = Vec::new();
        for (actor, held) in due {
            self.send_held(actor, held, &mut slow);
        }
        self.drop_slow(slow);
    }

    /// Sends what was held for a member: its unreliable events packed into as few
    /// datagrams as its path takes, in relay order (an event too large for any datagram
    /// takes the reliable fallback in its place), its reliable ones as one write per
    /// channel.
    fn send_held(&self, actor: u32, mut held: Held, slow: &mut Vec<u32>) {
        let Some(m) = self.members.get(&actor) else {
            return;
        };
        for d in pack(std::mem::take(&mut held.datagrams), m.max_datagram()) {
            send(&self.shared, actor, m, &Outbound::Datagram(d), slow);
        }
        for write in held.writes() {
            send(&self.shared, actor, m, &write, slow);
        }
    }
}

/// Sends `out` to one member: a datagram straight on the connection when it can go now,
/// anything else behind what is queued. A member whose queue is full is closed as a slow
/// consumer and added to `slow`.
fn send(shared: &Shared, actor: u32, m: &MemberRef, out: &Outbound, slow: &mut Vec<u32>) {
    if let Outbound::Datagram(d) = out {
        match m.datagram_now(d) {
            Datagram::Sent(n) => {
                shared
                    .stats
                    .bytes_out
                    .fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            Datagram::Gone => return,
            Datagram::Queue => {}
        }
    }
    match m.queue(out.clone()) {
        Ok(()) => {}
        Err(Overflow::Full) => {
            m.close(CloseCode::SlowConsumer, SLOW_CONSUMER);
            if !slow.contains(&actor) {
                slow.push(actor);
            }
        }
        // The connection is going away; its own Leave follows.
        Err(Overflow::Closed) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{EventCaching, ReceiverGroup};

    #[test]
    fn a_full_room_queue_drops_and_counts_instead_of_growing() {
        let (tx, mut rx) = mpsc::channel(2);
        let handle = RoomHandle { tx };
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

/// The room actor's timers on tokio's paused clock, with in-process members.
#[cfg(test)]
mod timers {
    use std::sync::Mutex;
    use std::time::Duration;

    use switchboard_protocol::{
        GameToClient, JoinMode, Properties, ResultCode, RoomOptions, decode_body,
    };
    use switchboard_transport::{ServerIdentity, Trust};

    use super::*;
    use crate::member::Member;
    use crate::room::RoomLimits;
    use crate::{GameServer, GameServerConfig};

    /// A member that keeps what it is sent.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<Outbound>>);

    impl Member for Recorder {
        fn queue(&self, out: Outbound) -> Result<(), Overflow> {
            self.0.lock().unwrap().push(out);
            Ok(())
        }
        fn datagram_now(&self, _: &Bytes) -> Datagram {
            Datagram::Queue
        }
        fn max_datagram(&self) -> Option<usize> {
            Some(1200)
        }
        fn close(&self, _: CloseCode, _: &str) {}
    }

    impl Recorder {
        /// The room events received so far (and forgets them).
        fn events(&self) -> Vec<RoomEvent> {
            std::mem::take(&mut *self.0.lock().unwrap())
                .into_iter()
                .filter_map(|o| match o {
                    Outbound::Frame(f) => match decode_body::<GameToClient>(&f[4..]) {
                        Ok(GameToClient::Event(e)) => Some(e),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        }
    }

    async fn shared(dir: &std::path::Path) -> Arc<Shared> {
        let (identity, ca) = ServerIdentity::dev(dir).unwrap();
        let trust = Trust::from_ca_file(&ca).unwrap();
        let mut config =
            GameServerConfig::new("gs", "127.0.0.1:1", trust, identity, "s".repeat(16));
        config.listen = ([127, 0, 0, 1], 0).into();
        GameServer::bind(config).unwrap().shared.clone()
    }

    /// A room of `options` created by `creator` (the authority if `authority`), its
    /// actor running: its handle and what the creator is sent.
    fn started(
        shared: &Arc<Shared>,
        name: &str,
        options: RoomOptions,
        creator: &str,
        authority: bool,
        id: u64,
    ) -> (RoomHandle, Arc<Recorder>) {
        let room = Room::new(name.into(), options, RoomLimits::default());
        let member = Arc::new(Recorder::default());
        let first = Input::Create {
            id: 1,
            user_id: creator.into(),
            authority,
            expected_users: vec![],
            properties: Properties::new(),
        };
        let (actor, _) = create(shared.clone(), room, member.clone(), first, None).unwrap();
        (spawn(actor, id), member)
    }

    fn join(user: &str) -> Input {
        Input::Join {
            id: 1,
            user_id: user.into(),
            mode: JoinMode::JoinOnly,
            expected_users: vec![],
            properties: Properties::new(),
            claims: Properties::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn player_ttl_and_empty_room_ttl_run_on_the_actors_clock() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path()).await;
        let options = RoomOptions {
            player_ttl_ms: 1000,
            empty_room_ttl_ms: 2000,
            ..RoomOptions::default()
        };
        let room = Room::new("g".into(), options.clone(), RoomLimits::default());
        let alice = Arc::new(Recorder::default());
        let first = Input::Create {
            id: 1,
            user_id: "alice".into(),
            authority: false,
            expected_users: vec![],
            properties: Properties::new(),
        };
        let (actor, n) = create(shared.clone(), room, alice.clone(), first, None).unwrap();
        assert_eq!(n, 1);
        let handle = shared
            .rooms()
            .insert_with("g".into(), |id| spawn(actor, id));
        let bob = Arc::new(Recorder::default());
        assert_eq!(
            handle.join(100, bob.clone(), join("bob")).await,
            Some(Some(2))
        );
        // Bob drops: inactive for his PlayerTtl, then gone.
        assert!(handle.leave(2, None, true).await);
        alice.events();
        tokio::time::sleep(Duration::from_millis(999)).await;
        assert!(alice.events().is_empty(), "still inactive");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            alice.events(),
            vec![RoomEvent::Leave {
                actor: 2,
                inactive: false,
                master_client: 1
            }]
        );
        // Alice leaves for good: the room stays for its EmptyRoomTtl, then ends.
        assert!(handle.leave(1, None, false).await);
        tokio::time::sleep(Duration::from_millis(1999)).await;
        assert!(shared.room("g").is_some(), "kept for its EmptyRoomTtl");
        tokio::time::sleep(Duration::from_millis(2)).await;
        tokio::task::yield_now().await;
        assert!(shared.room("g").is_none(), "ended");
        assert_eq!(
            handle.join(101, bob, join("bob")).await,
            None,
            "nobody answers for an ended room"
        );
    }

    /// What a member was sent, in order, readably: `d[codes]` for a datagram (a batch
    /// lists its events), `r[code]` for a relayed reliable event, the event's name for
    /// another room event (and forgets them).
    fn sent(m: &Recorder) -> Vec<String> {
        use switchboard_protocol::Unreliable;
        let mut out = Vec::new();
        for o in std::mem::take(&mut *m.0.lock().unwrap()) {
            match o {
                Outbound::Datagram(d) => {
                    let codes: Vec<String> = decode_body::<DatagramDown>(&d)
                        .unwrap()
                        .into_items()
                        .into_iter()
                        .map(|i| match i {
                            Unreliable::Event(e) => e.code.to_string(),
                            Unreliable::State(s) => format!("s{}", s.object),
                        })
                        .collect();
                    out.push(format!("d{codes:?}"));
                }
                Outbound::Frame(mut f) | Outbound::Channel(_, mut f) => {
                    // A write may hold several frames.
                    while !f.is_empty() {
                        let len = u32::from_le_bytes(f[..4].try_into().unwrap()) as usize;
                        let body = f.split_to(4 + len).split_off(4);
                        out.push(match decode_body::<GameToClient>(&body).unwrap() {
                            GameToClient::Event(RoomEvent::Custom(e)) => format!("r{}", e.code),
                            GameToClient::Event(e) => format!("{e:?}")
                                .split([' ', '(', '{'])
                                .next()
                                .unwrap()
                                .into(),
                            other => format!("{other:?}").chars().take(8).collect(),
                        });
                    }
                }
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_window_holds_a_busy_members_events_and_never_a_quiet_ones() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path()).await;
        let options = RoomOptions {
            flush_window_ms: Some(10),
            property_policy: switchboard_protocol::PropertyPolicy::Open,
            ..RoomOptions::default()
        };
        let (handle, alice) = started(&shared, "w", options, "alice", false, 9);
        let bob = Arc::new(Recorder::default());
        assert_eq!(handle.join(103, bob, join("bob")).await, Some(Some(2)));
        sent(&alice);
        let event = |code: u8| RaiseEvent {
            code,
            receivers: switchboard_protocol::ReceiverGroup::Others,
            targets: vec![],
            group: 0,
            cache: switchboard_protocol::EventCaching::DoNotCache,
            channel: 0,
            data: Bytes::from_static(b"x"),
        };
        let ms = |n| tokio::time::sleep(Duration::from_millis(n));
        let stats = &shared.stats;
        // Quiet: the first event leaves at once and opens Alice's window.
        handle.raise(stats, 2, event(1), Via::Datagram);
        ms(1).await;
        assert_eq!(sent(&alice), ["d[\"1\"]"]);
        // Within the window: held until it closes (at 10 ms), then one datagram.
        handle.raise(stats, 2, event(2), Via::Datagram);
        handle.raise(stats, 2, event(3), Via::Datagram);
        ms(8).await;
        assert!(sent(&alice).is_empty(), "held");
        ms(2).await;
        assert_eq!(sent(&alice), ["d[\"2\", \"3\"]"]);
        // Quiet for longer than a window: the next one is not held, not even a moment.
        ms(25).await;
        handle.raise(stats, 2, event(4), Via::Datagram);
        let t = tokio::time::Instant::now();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(t, tokio::time::Instant::now());
        assert_eq!(sent(&alice), ["d[\"4\"]"]);
        // A reliable event is held too, and a room event about the same time does not
        // overtake it: Bob's property change goes after it, without waiting for the window.
        handle.raise(stats, 2, event(5), Via::Control);
        handle.raise(stats, 2, event(6), Via::Datagram);
        let mut props = Properties::new();
        props.insert("k".into(), switchboard_protocol::Value::Int(1));
        let set = GameOp::SetProperties(switchboard_protocol::SetProperties {
            target: 2,
            properties: props,
            broadcast: true,
            ..Default::default()
        });
        assert!(handle.request(2, 7, set).await);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(t, tokio::time::Instant::now());
        assert_eq!(sent(&alice), ["d[\"6\"]", "r5", "PropertiesChanged"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_with_16_kib_held_is_sent_what_is_held_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path()).await;
        let options = RoomOptions {
            flush_window_ms: Some(50),
            ..RoomOptions::default()
        };
        let (handle, alice) = started(&shared, "full", options, "alice", false, 10);
        let bob = Arc::new(Recorder::default());
        assert_eq!(handle.join(104, bob, join("bob")).await, Some(Some(2)));
        sent(&alice);
        let event = |code: u8| RaiseEvent {
            code,
            receivers: switchboard_protocol::ReceiverGroup::Others,
            targets: vec![],
            group: 0,
            cache: switchboard_protocol::EventCaching::DoNotCache,
            channel: 0,
            data: Bytes::from(vec![code; 500]),
        };
        // 504-byte datagrams, two to a 1,200-byte datagram. The first leaves at once;
        // the next ones are held until the 33rd held reaches 16 KiB, when all that is
        // held leaves, with no time passing; what follows is held again.
        let t = tokio::time::Instant::now();
        for code in 0..40 {
            handle.raise(&shared.stats, 2, event(code), Via::Datagram);
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(t, tokio::time::Instant::now());
        let got = sent(&alice);
        assert_eq!(got[0], "d[\"0\"]");
        assert_eq!(got[1], "d[\"1\", \"2\"]", "held ones leave batched");
        assert_eq!(got.last().unwrap(), "d[\"33\"]", "{got:?}");
        assert_eq!(got.len(), 18);
        // The rest leaves when the window closes.
        tokio::time::sleep(Duration::from_millis(51)).await;
        let rest = sent(&alice);
        assert_eq!(rest.first().unwrap(), "d[\"34\", \"35\"]", "{rest:?}");
    }

    /// The refusals a member was sent: (code, message).
    fn refusals(m: &Recorder) -> Vec<(i16, String)> {
        std::mem::take(&mut *m.0.lock().unwrap())
            .into_iter()
            .filter_map(|o| match o {
                Outbound::Frame(f) => match decode_body::<GameToClient>(&f[4..]) {
                    Ok(GameToClient::Response(Response { result: Err(e), .. })) => {
                        Some((e.code, e.message))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_join_its_authority_never_answers_is_refused_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path()).await;
        let options = RoomOptions {
            mode: switchboard_protocol::RoomMode::Server,
            join_approval: true,
            ..RoomOptions::default()
        };
        let (handle, server) = started(&shared, "s", options, "ds", true, 8);
        let bob = Arc::new(Recorder::default());
        let started = tokio::time::Instant::now();
        // The join waits, held by the room, until the approval timeout (10 s) passes.
        let answer = handle.join(102, bob.clone(), join("bob")).await;
        assert_eq!(answer, Some(None), "refused");
        assert_eq!(started.elapsed(), RoomLimits::default().approval_timeout);
        let refusals = refusals(&bob);
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].0, ResultCode::JoinNotApproved.to_wire());
        // The authority was asked.
        assert!(
            server
                .events()
                .iter()
                .any(|e| matches!(e, RoomEvent::JoinRequest { user_id, .. } if user_id == "bob"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_waits_for_the_rooms_until_its_grace_then_goes_offline() {
        use switchboard_protocol::ServerState;
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path()).await;
        let grace = shared.config.drain_grace;
        let room = Room::new("g".into(), RoomOptions::default(), RoomLimits::default());
        let alice = Arc::new(Recorder::default());
        let first = Input::Create {
            id: 1,
            user_id: "alice".into(),
            authority: false,
            expected_users: vec![],
            properties: Properties::new(),
        };
        let (actor, _) = create(shared.clone(), room, alice.clone(), first, None).unwrap();
        let handle = shared
            .rooms()
            .insert_with("g".into(), |id| spawn(actor, id));
        alice.events();
        let drain = tokio::spawn(crate::drain_rooms(shared.clone()));
        tokio::time::sleep(grace - Duration::from_millis(1)).await;
        assert_eq!(shared.server_state(), ServerState::OutOfRotation);
        assert!(!drain.is_finished(), "the room is still played");
        assert!(alice.events().is_empty());
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert_eq!(shared.server_state(), ServerState::Offline);
        assert_eq!(
            alice.events(),
            vec![RoomEvent::GameServerOffline { seconds_left: 0 }]
        );
        drain.await.unwrap();
        assert!(handle.leave(1, None, false).await);
        tokio::task::yield_now().await;
        assert!(shared.rooms().is_empty());

        // A second drain whose last room empties early ends at once.
        shared.set_state(ServerState::Normal, Duration::ZERO);
        let room = Room::new("h".into(), RoomOptions::default(), RoomLimits::default());
        let bob = Arc::new(Recorder::default());
        let first = Input::Create {
            id: 1,
            user_id: "bob".into(),
            authority: false,
            expected_users: vec![],
            properties: Properties::new(),
        };
        let (actor, n) = create(shared.clone(), room, bob, first, None).unwrap();
        let handle = shared
            .rooms()
            .insert_with("h".into(), |id| spawn(actor, id));
        let started = tokio::time::Instant::now();
        let drain = tokio::spawn(crate::drain_rooms(shared.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(handle.leave(n, None, false).await);
        drain.await.unwrap();
        assert!(started.elapsed() < grace / 2, "done when the room ended");
        assert_eq!(shared.server_state(), ServerState::Offline);
    }
}
