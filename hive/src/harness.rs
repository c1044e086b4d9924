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

use crate::{Input, Origin, Out, Room, RoomLimits, Via};

/// What a member received, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Got {
    /// A response to one of its requests.
    Reply(u32, Result<GameReply, OpError>),
    /// A room event on the control stream.
    Event(RoomEvent),
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
    next_id: u32,
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
            next_id: 1,
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
                Out::Joined { actor, .. } => {
                    sender = Some(actor);
                    self.lifecycle.push(out);
                }
                Out::Left { .. } | Out::Closed => self.lifecycle.push(out),
                Out::Reply { id, result } => {
                    reply = Some(result.clone());
                    if let Some(n) = sender {
                        self.inbox
                            .entry(n)
                            .or_default()
                            .push(Got::Reply(id, result));
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
                Out::Publish => {}
            }
        }
        reply
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Creates the room for `user`; its actor number.
    pub(crate) fn create(&mut self, user: &str) -> u32 {
        let input = Input::Create {
            id: self.id(),
            user_id: user.into(),
            expected_users: vec![],
            properties: Properties::new(),
        };
        match self.input(Origin::Joiner, input) {
            Some(Ok(GameReply::Joined(j))) => j.actor,
            other => panic!("create refused: {other:?}"),
        }
    }

    /// Joins (or rejoins) `user`; its actor number.
    pub(crate) fn join(&mut self, user: &str, mode: JoinMode) -> Result<u32, OpError> {
        let input = Input::Join {
            id: self.id(),
            user_id: user.into(),
            mode,
            expected_users: vec![],
            properties: Properties::new(),
        };
        match self.input(Origin::Joiner, input) {
            Some(Ok(GameReply::Joined(j))) => Ok(j.actor),
            Some(Err(e)) => Err(e),
            other => panic!("no join reply: {other:?}"),
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
