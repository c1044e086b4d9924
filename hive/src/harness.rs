//! A test harness in the style of quinn-proto's `Pair`: a room, in-memory members that
//! collect what the room sends them, and a virtual clock the test advances. No sockets,
//! no tasks, no sleeps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_protocol::{
    EventCaching, EventData, GameOp, GameReply, JoinMode, OpError, Properties, RaiseEvent,
    ReceiverGroup, RoomEvent, RoomOptions,
};

use crate::{Input, Origin, Out, Room, RoomLimits, To, Via};

/// What a member received, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Got {
    /// A response to one of its requests.
    Reply(u32, Result<GameReply, OpError>),
    /// A room event on the control stream.
    Event(RoomEvent),
    /// A relayed object state.
    State {
        state: switchboard_protocol::ObjectState,
        reliable: bool,
    },
    /// A relayed application event.
    Relay {
        data: EventData,
        reliable: bool,
        channel: u8,
    },
}

/// A room and its members, on a virtual clock.
pub(crate) struct Harness {
    pub room: Room,
    pub now: Instant,
    /// What each actor received and has not been taken yet.
    inbox: BTreeMap<u32, Vec<Got>>,
    /// Lifecycle outputs, in order.
    pub lifecycle: Vec<Out>,
    /// Joiners that became actors.
    joiners: BTreeMap<u64, u32>,
    /// Replies to joiners that never became actors: (to, id, result).
    pub refused: Vec<(To, u32, Result<GameReply, OpError>)>,
    next_id: u32,
    next_joiner: u64,
}

impl Harness {
    pub(crate) fn new(options: RoomOptions) -> Harness {
        Harness::with_limits(options, RoomLimits::default())
    }

    pub(crate) fn with_limits(options: RoomOptions, limits: RoomLimits) -> Harness {
        Harness {
            room: Room::new("g".into(), options, limits),
            now: Instant::now(),
            inbox: BTreeMap::new(),
            lifecycle: Vec::new(),
            joiners: BTreeMap::new(),
            refused: Vec::new(),
            next_id: 1,
            next_joiner: 0,
        }
    }

    /// Feeds an input and delivers its outputs; returns the reply to the sender, if any.
    pub(crate) fn input(
        &mut self,
        from: Origin,
        input: Input,
    ) -> Option<Result<GameReply, OpError>> {
        let outs = self.room.handle(from, input, self.now);
        let mut sender = match from {
            Origin::Actor(n) => Some(n),
            _ => None,
        };
        let mut reply = None;
        for out in outs {
            match out {
                Out::Joined { joiner, actor, .. } => {
                    if from == Origin::Joiner(joiner) {
                        sender = Some(actor);
                    }
                    self.joiners.insert(joiner, actor);
                    self.lifecycle.push(out);
                }
                Out::Left { .. } | Out::Closed => self.lifecycle.push(out),
                Out::Reply { to, id, result } => {
                    if To::of_origin(from) == Some(to) || sender.map(To::Actor) == Some(to) {
                        reply = Some(result.clone());
                    }
                    let n = match to {
                        To::Actor(n) => Some(n),
                        To::Joiner(j) => self.joiners.get(&j).copied(),
                    };
                    match n {
                        Some(n) => self
                            .inbox
                            .entry(n)
                            .or_default()
                            .push(Got::Reply(id, result)),
                        None => self.refused.push((to, id, result)),
                    }
                }
                Out::Event { to, event } => {
                    for n in to {
                        self.inbox
                            .entry(n)
                            .or_default()
                            .push(Got::Event(event.clone()));
                    }
                }
                Out::Relay {
                    to,
                    data,
                    reliable,
                    channel,
                } => {
                    for n in to {
                        self.inbox.entry(n).or_default().push(Got::Relay {
                            data: data.clone(),
                            reliable,
                            channel,
                        });
                    }
                }
                Out::State {
                    to,
                    state,
                    reliable,
                } => {
                    for n in to {
                        self.inbox.entry(n).or_default().push(Got::State {
                            state: state.clone(),
                            reliable,
                        });
                    }
                }
                Out::Publish | Out::Forward { .. } | Out::ForwardProperties { .. } => {}
            }
        }
        reply
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// A fresh joiner token.
    pub(crate) fn joiner(&mut self) -> Origin {
        self.next_joiner += 1;
        Origin::Joiner(self.next_joiner)
    }

    /// Creates the room for `user`; its actor number.
    pub(crate) fn create(&mut self, user: &str) -> u32 {
        self.create_as(user, false)
    }

    /// Creates the room for `user`, a dedicated server if `authority`; its actor number.
    pub(crate) fn create_as(&mut self, user: &str, authority: bool) -> u32 {
        let input = Input::Create {
            id: self.id(),
            user_id: user.into(),
            authority,
            expected_users: vec![],
            properties: Properties::new(),
        };
        let joiner = self.joiner();
        match self.input(joiner, input) {
            Some(Ok(GameReply::Joined(j))) => j.actor,
            other => panic!("create refused: {other:?}"),
        }
    }

    /// Joins (or rejoins) `user`; its actor number.
    pub(crate) fn join(&mut self, user: &str, mode: JoinMode) -> Result<u32, OpError> {
        let joiner = self.joiner();
        let input = self.join_input(user, mode, Properties::new());
        match self.input(joiner, input) {
            Some(Ok(GameReply::Joined(j))) => Ok(j.actor),
            Some(Err(e)) => Err(e),
            other => panic!("no join reply: {other:?}"),
        }
    }

    /// A join of `user` with `claims`.
    pub(crate) fn join_input(&mut self, user: &str, mode: JoinMode, claims: Properties) -> Input {
        Input::Join {
            id: self.id(),
            user_id: user.into(),
            mode,
            expected_users: vec![],
            properties: Properties::new(),
            claims,
        }
    }

    /// A request of `actor`; its reply.
    pub(crate) fn request(&mut self, actor: u32, op: GameOp) -> Result<GameReply, OpError> {
        let id = self.id();
        self.input(Origin::Actor(actor), Input::Request { id, op })
            .expect("a request is answered")
    }

    /// `actor` leaves (`will_come_back`: for now; also what a dropped connection does).
    pub(crate) fn leave(&mut self, actor: u32, will_come_back: bool) {
        let input = Input::Leave {
            id: None,
            will_come_back,
        };
        self.input(Origin::Actor(actor), input);
    }

    /// `actor` raises a reliable event on the control stream.
    pub(crate) fn raise(&mut self, actor: u32, event: RaiseEvent) {
        self.raise_via(actor, event, Via::Control);
    }

    pub(crate) fn raise_via(&mut self, actor: u32, event: RaiseEvent, via: Via) {
        self.input(Origin::Actor(actor), Input::Raise { event, via });
    }

    /// Moves the clock and lets the room's timers run.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.input(Origin::Server, Input::Tick);
    }

    /// Everything `actor` received since the last call.
    pub(crate) fn take(&mut self, actor: u32) -> Vec<Got> {
        self.inbox.remove(&actor).unwrap_or_default()
    }
}

impl To {
    fn of_origin(from: Origin) -> Option<To> {
        match from {
            Origin::Actor(n) => Some(To::Actor(n)),
            Origin::Joiner(j) => Some(To::Joiner(j)),
            Origin::Server => None,
        }
    }
}

/// An event with `code` and `data` for `receivers`, not cached, on channel 0.
pub(crate) fn event(code: u8, receivers: ReceiverGroup, data: &'static [u8]) -> RaiseEvent {
    RaiseEvent {
        code,
        receivers,
        targets: vec![],
        group: 0,
        cache: EventCaching::DoNotCache,
        channel: 0,
        data: Bytes::from_static(data),
    }
}
