//! The room's one entry point, [`Room::handle`]: an input from someone, at a time, in;
//! everything to do about it out, the reply to a request included.

use std::time::Instant;

use switchboard_protocol::{
    GameOp, GameReply, HostChange, JoinMode, OpError, Properties, RaiseEvent, ResultCode,
    RoomEvent, StateUpdate,
};

use super::approval::Pending;
use super::{Out, Presence, Room, Via, err};
use crate::modes::{Ctx, Mode};

/// Who an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A connection that is not an actor of the room (yet): a creator or a joiner, named
    /// by a token the shell chooses (unique within the room) until it is an actor.
    Joiner(u64),
    /// An actor of the room.
    Actor(u32),
    /// The server itself (its timers, its state changes).
    Server,
}

/// What a room is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The first actor (a fresh room only). Answered with `Reply(Joined)` or a refusal.
    Create {
        /// The request to answer.
        id: u32,
        /// The authenticated user (from its ticket).
        user_id: String,
        /// Whether the user authenticated as a dedicated server (from its ticket).
        authority: bool,
        /// Users to reserve slots for.
        expected_users: Vec<String>,
        /// The creator's actor properties.
        properties: Properties,
    },
    /// A join or rejoin. Answered with `Reply(Joined)` or a refusal.
    Join {
        /// The request to answer.
        id: u32,
        /// The authenticated user (from its ticket).
        user_id: String,
        /// How to treat an existing actor of the user.
        mode: JoinMode,
        /// Users to reserve slots for.
        expected_users: Vec<String>,
        /// The joiner's actor properties.
        properties: Properties,
        /// What the master verified about the user (from its ticket).
        claims: Properties,
    },
    /// The actor leaves: for good, or (`will_come_back`, and for a dropped connection)
    /// for now if the room has a PlayerTtl. `id`: the `LeaveGame` request to answer.
    Leave {
        /// The request to answer, if the actor asked.
        id: Option<u32>,
        /// Whether the actor may come back.
        will_come_back: bool,
    },
    /// A room operation (`SetProperties`, `SetMasterClient`, `ChangeGroups`, ...).
    Request {
        /// The request to answer.
        id: u32,
        /// The operation.
        op: GameOp,
    },
    /// An event to relay, and where it arrived.
    Raise {
        /// The event as sent.
        event: RaiseEvent,
        /// The stream or datagram it came on.
        via: Via,
    },
    /// An event to relay and forward to the backend (control stream).
    Forward {
        /// The event as sent.
        event: RaiseEvent,
        /// How to forward it.
        forward: switchboard_protocol::Forward,
    },
    /// A state update of a network object (`Shared` rooms), and where it arrived.
    Update {
        /// The update as sent.
        update: StateUpdate,
        /// The stream or datagram it came on.
        via: Via,
    },
    /// A request of the actor that its connection refused itself (rate limited, not
    /// allowed in a room): the room answers it, so that the refusal comes after the
    /// answers to the actor's earlier requests and after what is on its way to it.
    Refused {
        /// The request to answer.
        id: u32,
        /// Why it was refused.
        error: OpError,
    },
    /// A joiner whose join is held (`Server` rooms with approval) is gone.
    Withdraw,
    /// An event from the server to every active actor.
    Notify(RoomEvent),
    /// Time passed: expire what is due, and close the room if it is done.
    Tick,
    /// The game server stops: every active actor is left inactive (its connection goes
    /// with the server), held joins are refused, and the room closes.
    Shutdown,
}

fn already_in_room() -> OpError {
    err(
        ResultCode::OperationNotAllowedInCurrentState,
        "already in a game; leave it first",
    )
}

impl Room {
    /// Handles one input from `from` at `now`. The outputs are in the order they must be
    /// carried out: an `Out::Joined` binds the sender's connection to its actor before
    /// anything is sent to that actor, and an `Out::Reply` (to the sender) comes before
    /// the events its request causes. When the input moved the room's authority, the
    /// room mode's outputs about it come last.
    pub fn handle(&mut self, from: Origin, input: Input, now: Instant) -> Vec<Out> {
        if matches!(
            input,
            Input::Raise { .. } | Input::Update { .. } | Input::Forward { .. }
        ) {
            // The hot path: an event or a state update never moves the authority, and
            // nobody leaves.
            return self.handle_input(from, input, now);
        }
        let creating = matches!(input, Input::Create { .. });
        let before = self.host();
        let mut out = self.handle_input(from, input, now);
        // Actors gone for good: their objects change hands (Shared rooms).
        let gone: Vec<u32> = out
            .iter()
            .filter_map(|o| match o {
                Out::Left {
                    actor,
                    inactive: false,
                } => Some(*actor),
                _ => None,
            })
            .collect();
        if !gone.is_empty() {
            let active = self.active_actors();
            let ctx = Ctx {
                master_client: self.master_client(),
                active: &active,
            };
            for actor in gone {
                out.extend(self.mode.gone(ctx, actor));
            }
        }
        let host = self.host();
        if host != before && host != 0 && !creating {
            let reason = match self.actor(before) {
                _ if before == 0 => HostChange::Returned,
                None => HostChange::Left,
                Some(a) if a.presence != Presence::Active => HostChange::Inactive,
                Some(_) => HostChange::HandedOver,
            };
            let active = self.active_actors();
            out.extend(
                self.mode
                    .authority_moved(host, &active, before, reason, now),
            );
        }
        out
    }

    fn handle_input(&mut self, from: Origin, input: Input, now: Instant) -> Vec<Out> {
        match (from, input) {
            (
                Origin::Joiner(joiner),
                Input::Create {
                    id,
                    user_id,
                    authority,
                    expected_users,
                    properties,
                },
            ) => {
                let r = self.create(&user_id, authority, &expected_users, properties, now);
                self.admission(joiner, id, user_id, r)
            }
            (Origin::Joiner(joiner), Input::Join { id, .. }) if self.closing() => {
                vec![Out::Reply {
                    to: To::Joiner(joiner),
                    id,
                    result: Err(err(ResultCode::GameClosed, "the game is closing")),
                }]
            }
            (
                Origin::Joiner(joiner),
                Input::Join {
                    id,
                    user_id,
                    mode,
                    expected_users,
                    properties,
                    claims,
                },
            ) if self.approval_needed() => {
                let join = Pending {
                    joiner,
                    id,
                    user_id,
                    mode,
                    expected_users,
                    properties,
                    claims,
                    deadline: now + self.limits.approval_timeout,
                };
                self.hold(join)
            }
            (
                Origin::Joiner(joiner),
                Input::Join {
                    id,
                    user_id,
                    mode,
                    expected_users,
                    properties,
                    ..
                },
            ) => {
                let r = self.join(&user_id, mode, &expected_users, properties, now);
                self.admission(joiner, id, user_id, r)
            }
            (Origin::Actor(n), Input::Leave { id, will_come_back }) => {
                let mut out: Vec<Out> = id
                    .map(|id| Out::Reply {
                        to: To::Actor(n),
                        id,
                        result: Ok(GameReply::Left),
                    })
                    .into_iter()
                    .collect();
                let authority_left = self.is_authority(n);
                let outs = self.leave(n, will_come_back, now);
                if !outs.is_empty() {
                    let inactive = self.actor(n).is_some();
                    out.push(Out::Left { actor: n, inactive });
                }
                out.extend(outs);
                if authority_left {
                    out.extend(self.start_closing(now));
                }
                out
            }
            (Origin::Actor(n), Input::Request { id, op }) => {
                let result = match op {
                    GameOp::SetProperties(sp) => self
                        .set_properties(n, sp)
                        .map(|o| (GameReply::PropertiesSet, o)),
                    GameOp::SetPropertiesForwarded(sp) => {
                        let (target, properties) = (sp.target, sp.properties.clone());
                        self.set_properties(n, sp).map(|mut o| {
                            o.push(Out::ForwardProperties {
                                sender: n,
                                target,
                                properties,
                            });
                            (GameReply::PropertiesSet, o)
                        })
                    }
                    GameOp::SetMasterClient { actor, expected } => self
                        .set_master_client(n, actor, expected)
                        .map(|o| (GameReply::MasterClientSet, o)),
                    GameOp::ChangeGroups { remove, add } => self
                        .change_groups(n, remove, add)
                        .map(|()| (GameReply::GroupsChanged, Vec::new())),
                    GameOp::UploadSnapshot { data } => {
                        let host = self.host();
                        self.mode
                            .upload_snapshot(host, n, data, now)
                            .map(|r| (r, Vec::new()))
                    }
                    GameOp::ApproveJoin {
                        request,
                        approve,
                        reason,
                    } => self
                        .answer(n, request, approve, reason, now)
                        .map(|o| (GameReply::JoinAnswered, o)),
                    op @ (GameOp::Spawn(_)
                    | GameOp::Despawn { .. }
                    | GameOp::RequestStateAuthority { .. }
                    | GameOp::ReleaseStateAuthority { .. }
                    | GameOp::AssignInputAuthority { .. }) => {
                        if self.actor(n).is_none_or(|a| a.presence != Presence::Active) {
                            Err(err(
                                ResultCode::OperationNotAllowedInCurrentState,
                                "not an active actor",
                            ))
                        } else {
                            let active = self.active_actors();
                            let ctx = Ctx {
                                master_client: self.master_client(),
                                active: &active,
                            };
                            self.mode.object_op(ctx, n, op)
                        }
                    }
                    GameOp::CreateGame { .. } | GameOp::JoinGame { .. } => Err(already_in_room()),
                    GameOp::LeaveGame { will_come_back } => {
                        return self.handle_input(
                            from,
                            Input::Leave {
                                id: Some(id),
                                will_come_back,
                            },
                            now,
                        );
                    }
                };
                let to = To::Actor(n);
                match result {
                    Ok((reply, outs)) => {
                        let mut out = vec![Out::Reply {
                            to,
                            id,
                            result: Ok(reply),
                        }];
                        out.extend(outs);
                        out
                    }
                    Err(e) => vec![Out::Reply {
                        to,
                        id,
                        result: Err(e),
                    }],
                }
            }
            (Origin::Actor(n), Input::Raise { event, via }) => self.raise_via(n, event, via),
            (Origin::Actor(n), Input::Forward { event, forward }) => {
                let (code, data) = (event.code, event.data.clone());
                let mut out = self.raise_via(n, event, Via::Control);
                let refused = out.iter().any(|o| {
                    matches!(o, Out::Event { to, event: RoomEvent::ErrorInfo { .. } } if to == &[n])
                });
                let active = self
                    .actor(n)
                    .is_some_and(|a| a.presence == Presence::Active);
                if !refused && active {
                    out.push(Out::Forward {
                        sender: n,
                        code,
                        data,
                        batched: forward == switchboard_protocol::Forward::Batched,
                    });
                }
                out
            }
            (Origin::Actor(n), Input::Update { update, via }) => {
                if self.actor(n).is_none_or(|a| a.presence != Presence::Active) {
                    return Vec::new();
                }
                let active = self.active_actors();
                let ctx = Ctx {
                    master_client: self.master_client(),
                    active: &active,
                };
                let reliable = via != Via::Datagram;
                match self.mode.update_state(ctx, n, update, reliable) {
                    Ok(out) => out,
                    Err(e) => vec![
                        self.error_to(
                            vec![n],
                            e.result_code()
                                .unwrap_or(ResultCode::InvalidRequestParameters),
                            &e.message,
                        ),
                    ],
                }
            }
            (Origin::Actor(n), Input::Refused { id, error }) => vec![Out::Reply {
                to: To::Actor(n),
                id,
                result: Err(error),
            }],
            (_, Input::Refused { .. }) => Vec::new(),
            (Origin::Joiner(joiner), Input::Withdraw) => self.withdraw(joiner),
            (_, Input::Withdraw) => Vec::new(),
            (_, Input::Notify(event)) => vec![Out::Event {
                to: self.active_actors(),
                event,
            }],
            (Origin::Server, Input::Shutdown) => {
                let mut out = self.refuse_all_pending("the game server is stopping");
                for n in self.active_actors() {
                    if let Some(a) = self.actors.get_mut(&n) {
                        a.presence = Presence::Inactive { until: None };
                        a.groups.clear();
                    }
                    out.push(Out::Left {
                        actor: n,
                        inactive: true,
                    });
                }
                self.empty_since.get_or_insert(now);
                out.push(Out::Closed);
                out
            }
            (_, Input::Shutdown) => Vec::new(),
            (_, Input::Tick) => {
                let mut out = self.tick(now);
                out.extend(self.expire_pending(now));
                if self.is_done(now) {
                    out.extend(self.refuse_all_pending("the game has ended"));
                    out.push(Out::Closed);
                }
                out
            }
            // A create or join from an actor, or an actor's input from a stranger.
            (
                from,
                Input::Create { id, .. } | Input::Join { id, .. } | Input::Request { id, .. },
            ) => match To::of(from) {
                Some(to) => vec![Out::Reply {
                    to,
                    id,
                    result: Err(already_in_room()),
                }],
                None => Vec::new(),
            },
            (from, Input::Leave { id, .. }) => match (To::of(from), id) {
                (Some(to), Some(id)) => vec![Out::Reply {
                    to,
                    id,
                    result: Err(err(
                        ResultCode::OperationNotAllowedInCurrentState,
                        "not in a game",
                    )),
                }],
                _ => Vec::new(),
            },
            (_, Input::Raise { .. } | Input::Update { .. } | Input::Forward { .. }) => Vec::new(),
        }
    }

    /// The outputs of a create or join: bind, answer, then announce.
    pub(crate) fn admission(
        &mut self,
        joiner: u64,
        id: u32,
        user_id: String,
        r: Result<(switchboard_protocol::Joined, Vec<Out>), OpError>,
    ) -> Vec<Out> {
        match r {
            Ok((joined, outs)) => {
                let actor = joined.actor;
                let mut out = vec![
                    Out::Joined {
                        joiner,
                        actor: joined.actor,
                        user_id,
                    },
                    Out::Reply {
                        to: To::Joiner(joiner),
                        id,
                        result: Ok(GameReply::Joined(joined)),
                    },
                ];
                out.extend(outs);
                // Every live object, in spawn order, after the join and the cache.
                out.extend(self.mode.joined(actor));
                out
            }
            Err(e) => vec![Out::Reply {
                to: To::Joiner(joiner),
                id,
                result: Err(e),
            }],
        }
    }
}

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// An actor of the room.
    Actor(u32),
    /// A connection that is not an actor (a joiner, by its token).
    Joiner(u64),
}

impl To {
    fn of(from: Origin) -> Option<To> {
        match from {
            Origin::Actor(n) => Some(To::Actor(n)),
            Origin::Joiner(j) => Some(To::Joiner(j)),
            Origin::Server => None,
        }
    }
}
