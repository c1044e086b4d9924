//! How a room routes events and who holds its authority, chosen per room at creation:
//! one file per mode behind [`Mode`].
//!
//! - [`relay`]: every actor talks to every other (Photon's Hive rules);
//! - [`host`]: one actor hosts; the others send to it only; snapshots and migration;
//! - [`server`]: a dedicated server is the authority; the others send to it only;
//! - [`shared`]: players own network objects; the room manages their state authority.
//!
//! The room calls a mode at four points: before relaying an event (may the sender
//! address those actors?), after relaying it (what did the authority get?), when its
//! authority moved (who must be told what?), and for the operations only some modes
//! know (`UploadSnapshot`).

pub(crate) mod host;
mod relay;
mod server;
pub(crate) mod shared;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;

use std::time::Instant;

use switchboard_protocol::{
    EventData, GameOp, GameReply, HostChange, OpError, RaiseEvent, StateUpdate,
};

use crate::room::{Out, RoomLimits};

pub(crate) use host::Host;
pub(crate) use relay::Relay;
pub(crate) use server::Server;
pub(crate) use shared::Shared;

/// What a mode sees of the room when objects change hands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The master client (0: nobody is active).
    pub master_client: u32,
    /// The active actors, ascending.
    pub active: &'a [u32],
}

fn not_shared() -> OpError {
    OpError::new(
        switchboard_protocol::ResultCode::OperationInvalid,
        "network objects live in Shared rooms only",
    )
}

/// The rule of `Host` and `Server` rooms: the authority `host` sends to anyone, everyone
/// else to the authority only (`room`: what to call the room in the refusal).
pub(crate) fn authority_routing(
    host: u32,
    sender: u32,
    event: &RaiseEvent,
    room: &str,
) -> Result<(), OpError> {
    if sender == host || to_host_only(host, event) {
        return Ok(());
    }
    Err(OpError::new(
        switchboard_protocol::ResultCode::NotAllowed,
        format!(
            "in a {room} room, actors send to the authority only (receivers Host, or target {host})"
        ),
    ))
}

/// Whether `event` from someone other than the authority addresses the authority `host`
/// and nobody else (receivers `Host` or `MasterClient`, or the host as the only target).
fn to_host_only(host: u32, event: &RaiseEvent) -> bool {
    if !event.targets.is_empty() {
        return event.targets.iter().all(|t| *t == host);
    }
    event.group == 0
        && matches!(
            event.receivers,
            switchboard_protocol::ReceiverGroup::Host
                | switchboard_protocol::ReceiverGroup::MasterClient
        )
}

/// A room mode. `host` is always the room's authority at the time of the call (0:
/// nobody is active).
pub(crate) trait Mode {
    /// Whether active actor `sender` may send `event` (refused: the sender gets
    /// `ErrorInfo` with the error and nothing is relayed).
    fn check_event(&self, host: u32, sender: u32, event: &RaiseEvent) -> Result<(), OpError>;

    /// The room relayed `data` to `to`.
    fn relayed(&mut self, _host: u32, _to: &[u32], _data: &EventData, _reliable: bool) {}

    /// The authority moved from `previous` to `host` (not 0) for `reason`; `active` are
    /// the active actors. What to send, after the events that announced the change.
    fn authority_moved(
        &mut self,
        _host: u32,
        _active: &[u32],
        _previous: u32,
        _reason: HostChange,
        _now: Instant,
    ) -> Vec<Out> {
        Vec::new()
    }

    /// `UploadSnapshot` from `sender`.
    fn upload_snapshot(
        &mut self,
        _host: u32,
        _sender: u32,
        _data: bytes::Bytes,
        _now: Instant,
    ) -> Result<GameReply, OpError> {
        Err(OpError::new(
            switchboard_protocol::ResultCode::OperationInvalid,
            "snapshots are kept by Host rooms only",
        ))
    }

    /// An object operation (`Spawn`, `Despawn`, `RequestStateAuthority`,
    /// `ReleaseStateAuthority`, `AssignInputAuthority`) from `sender`.
    fn object_op(
        &mut self,
        _ctx: Ctx<'_>,
        _sender: u32,
        _op: GameOp,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        Err(not_shared())
    }

    /// A state update from `sender` (refused: the sender gets `ErrorInfo`).
    fn update_state(
        &mut self,
        _ctx: Ctx<'_>,
        _sender: u32,
        _update: StateUpdate,
        _reliable: bool,
    ) -> Result<Vec<Out>, OpError> {
        Err(not_shared())
    }

    /// What a joiner gets after its join (and the cache).
    fn joined(&mut self, _actor: u32) -> Vec<Out> {
        Vec::new()
    }

    /// `actor` is gone for good (left, or its PlayerTtl passed).
    fn gone(&mut self, _ctx: Ctx<'_>, _actor: u32) -> Vec<Out> {
        Vec::new()
    }
}

/// A room's mode and its state.
#[derive(Debug, Clone)]
pub(crate) enum Modes {
    Relay(Relay),
    Host(Host),
    Server(Server),
    Shared(Shared),
}

impl Modes {
    /// The mode state of a new room.
    pub(crate) fn new(mode: switchboard_protocol::RoomMode, limits: &RoomLimits) -> Modes {
        match mode {
            switchboard_protocol::RoomMode::Host => Modes::Host(Host::new(limits)),
            switchboard_protocol::RoomMode::Server => Modes::Server(Server),
            switchboard_protocol::RoomMode::Shared => Modes::Shared(Shared::new(limits)),
            switchboard_protocol::RoomMode::Relay => Modes::Relay(Relay),
        }
    }

    fn inner(&mut self) -> &mut dyn Mode {
        match self {
            Modes::Relay(m) => m,
            Modes::Host(m) => m,
            Modes::Server(m) => m,
            Modes::Shared(m) => m,
        }
    }

    fn inner_ref(&self) -> &dyn Mode {
        match self {
            Modes::Relay(m) => m,
            Modes::Host(m) => m,
            Modes::Server(m) => m,
            Modes::Shared(m) => m,
        }
    }
}

impl Mode for Modes {
    fn check_event(&self, host: u32, sender: u32, event: &RaiseEvent) -> Result<(), OpError> {
        self.inner_ref().check_event(host, sender, event)
    }

    fn relayed(&mut self, host: u32, to: &[u32], data: &EventData, reliable: bool) {
        self.inner().relayed(host, to, data, reliable)
    }

    fn authority_moved(
        &mut self,
        host: u32,
        active: &[u32],
        previous: u32,
        reason: HostChange,
        now: Instant,
    ) -> Vec<Out> {
        self.inner()
            .authority_moved(host, active, previous, reason, now)
    }

    fn upload_snapshot(
        &mut self,
        host: u32,
        sender: u32,
        data: bytes::Bytes,
        now: Instant,
    ) -> Result<GameReply, OpError> {
        self.inner().upload_snapshot(host, sender, data, now)
    }

    fn object_op(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        op: GameOp,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        self.inner().object_op(ctx, sender, op)
    }

    fn update_state(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        update: StateUpdate,
        reliable: bool,
    ) -> Result<Vec<Out>, OpError> {
        self.inner().update_state(ctx, sender, update, reliable)
    }

    fn joined(&mut self, actor: u32) -> Vec<Out> {
        self.inner().joined(actor)
    }

    fn gone(&mut self, ctx: Ctx<'_>, actor: u32) -> Vec<Out> {
        self.inner().gone(ctx, actor)
    }
}
