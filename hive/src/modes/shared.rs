//! The shared mode (Photon Fusion's shared mode): players own network objects, and the
//! room *manages* who holds each object's state authority without holding it itself.
//!
//! - An actor spawns an object (the room numbers it; numbers increase in spawn order);
//!   the spawner is its state and input authority. Despawning an object despawns its
//!   nested objects. Every actor sees spawns and despawns in one order.
//! - Only the state authority updates the state; the room keeps the latest (and its
//!   tick) and relays it, reliably or not, as the sender asks.
//! - `RequestStateAuthority` is granted when the object has no state authority or allows
//!   override, and answered with the current holder otherwise; `ReleaseStateAuthority`
//!   frees it; only the state authority assigns the input authority. Every change is
//!   announced to every actor.
//! - When an actor is gone for good (it left, or its PlayerTtl passed), its objects are
//!   despawned if they were spawned so, else they pass to the master client if they are
//!   master-client objects, else they keep no state authority (anyone may take them). An
//!   inactive actor keeps its objects.
//! - A joiner gets every live object, in spawn order, right after its join.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_protocol::{
    GameOp, GameReply, ObjectInfo, ObjectState, OpError, RaiseEvent, ResultCode, RoomEvent,
    SpawnObject, StateUpdate,
};

use super::{Ctx, Mode};
use crate::room::{Out, RoomLimits};

#[derive(Debug, Clone)]
struct Object {
    info: ObjectInfo,
    /// Who spawned it (counted against its per-actor limit while it lives).
    spawner: u32,
    /// Who gave it its state and tick last: an unreliable update from the same actor
    /// with an older tick was overtaken by a newer one, and is dropped.
    tick_from: u32,
}

/// The shared mode's state: the object table.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    objects: BTreeMap<u32, Object>,
    next_object: u32,
    state_bytes: usize,
    max_objects: usize,
    max_objects_per_actor: usize,
    max_object_state_bytes: usize,
    max_room_state_bytes: usize,
}

fn err(code: ResultCode, message: impl Into<String>) -> OpError {
    OpError::new(code, message)
}

fn no_object(object: u32) -> OpError {
    err(
        ResultCode::InvalidRequestParameters,
        format!("no object {object} in this room"),
    )
}

impl Shared {
    pub(crate) fn new(limits: &RoomLimits) -> Shared {
        Shared {
            objects: BTreeMap::new(),
            next_object: 0,
            state_bytes: 0,
            max_objects: limits.max_objects,
            max_objects_per_actor: limits.max_objects_per_actor,
            max_object_state_bytes: limits.max_object_state_bytes,
            max_room_state_bytes: limits.max_room_state_bytes,
        }
    }

    /// What a saved room keeps of the object table.
    pub(crate) fn save(&self) -> crate::SavedMode {
        crate::SavedMode::Shared {
            objects: self
                .objects
                .values()
                .map(|o| crate::SavedObject {
                    info: o.info.clone(),
                    spawner: o.spawner,
                })
                .collect(),
            next_object: self.next_object,
        }
    }

    /// The object table of a restored room, within `limits`; every actor named must be
    /// one of `actors` (or 0).
    pub(crate) fn restore(
        limits: &RoomLimits,
        objects: Vec<crate::SavedObject>,
        next_object: u32,
        actors: &BTreeSet<u32>,
    ) -> Result<Shared, String> {
        let mut shared = Shared::new(limits);
        if next_object > crate::room::persist::MAX_SAVED_NUMBER {
            return Err(format!("next object number {next_object} is out of range"));
        }
        if objects.len() > shared.max_objects {
            return Err(format!(
                "{} objects; the limit is {}",
                objects.len(),
                shared.max_objects
            ));
        }
        let known = |n: u32| n == 0 || actors.contains(&n);
        let mut per_actor: BTreeMap<u32, usize> = BTreeMap::new();
        for o in objects {
            let i = &o.info;
            if i.object == 0 || i.object > next_object || shared.objects.contains_key(&i.object) {
                return Err(format!("object number {} is out of place", i.object));
            }
            if !known(i.state_authority) || !known(i.input_authority) || !known(o.spawner) {
                return Err(format!(
                    "object {} names an actor the room has not",
                    i.object
                ));
            }
            if i.state.len() > shared.max_object_state_bytes {
                return Err(format!("object {}'s state is over the limit", i.object));
            }
            let count = per_actor.entry(o.spawner).or_default();
            *count += 1;
            if o.spawner != 0 && *count > shared.max_objects_per_actor {
                return Err(format!("actor {} spawned too many objects", o.spawner));
            }
            shared.state_bytes += i.state.len();
            shared.objects.insert(
                i.object,
                Object {
                    tick_from: o.info.state_authority,
                    info: o.info,
                    spawner: o.spawner,
                },
            );
        }
        if shared.state_bytes > shared.max_room_state_bytes {
            return Err(format!(
                "{} bytes of object state; the limit is {}",
                shared.state_bytes, shared.max_room_state_bytes
            ));
        }
        // As spawned: a parent exists before its children (no cycles).
        let parents_ok = shared.objects.values().all(|o| {
            o.info.parent == 0
                || (o.info.parent < o.info.object && shared.objects.contains_key(&o.info.parent))
        });
        if !parents_ok {
            return Err("an object's parent is not in the room, or not older than it".into());
        }
        shared.next_object = next_object;
        Ok(shared)
    }

    /// A live object, or `InvalidRequestParameters`.
    fn object_mut(&mut self, object: u32) -> Result<&mut Object, OpError> {
        self.objects
            .get_mut(&object)
            .ok_or_else(|| no_object(object))
    }

    /// Refuses a state of `new` bytes replacing one of `old` bytes.
    fn check_state(&self, old: usize, new: usize) -> Result<(), OpError> {
        if new > self.max_object_state_bytes {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "an object's state may have {} bytes; this one has {new}",
                    self.max_object_state_bytes
                ),
            ));
        }
        if self.state_bytes - old + new > self.max_room_state_bytes {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "the room's objects may hold {} bytes of state in all",
                    self.max_room_state_bytes
                ),
            ));
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        s: SpawnObject,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        if s.parent != 0 && !self.objects.contains_key(&s.parent) {
            return Err(no_object(s.parent));
        }
        if self.objects.len() >= self.max_objects {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!("a room holds at most {} objects", self.max_objects),
            ));
        }
        let mine = self
            .objects
            .values()
            .filter(|o| o.spawner == sender)
            .count();
        if mine >= self.max_objects_per_actor {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "an actor spawns at most {} live objects",
                    self.max_objects_per_actor
                ),
            ));
        }
        self.check_state(0, s.state.len())?;
        self.next_object += 1;
        let info = ObjectInfo {
            object: self.next_object,
            type_id: s.type_id,
            parent: s.parent,
            state_authority: sender,
            input_authority: sender,
            allow_override: s.allow_override,
            despawn_on_leave: s.despawn_on_leave,
            master_client_object: s.master_client_object,
            tick: s.tick,
            state: s.state,
        };
        self.state_bytes += info.state.len();
        self.objects.insert(
            info.object,
            Object {
                info: info.clone(),
                spawner: sender,
                tick_from: sender,
            },
        );
        let reply = GameReply::Spawned {
            object: info.object,
        };
        Ok((
            reply,
            vec![Out::Event {
                to: ctx.active.to_vec(),
                event: RoomEvent::ObjectSpawned(info),
            }],
        ))
    }

    /// `object` and every object nested in it, parents first.
    fn with_nested(&self, object: u32) -> Vec<u32> {
        let mut out = vec![object];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(
                self.objects
                    .values()
                    .filter(|o| o.info.parent == parent)
                    .map(|o| o.info.object),
            );
            i += 1;
        }
        out
    }

    fn remove(&mut self, objects: &[u32]) {
        for o in objects {
            if let Some(gone) = self.objects.remove(o) {
                self.state_bytes -= gone.info.state.len();
            }
        }
    }

    fn despawn(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        object: u32,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        let o = self.objects.get(&object).ok_or_else(|| no_object(object))?;
        let holder = o.info.state_authority;
        if holder != 0 && holder != sender {
            return Err(err(
                ResultCode::NotAllowed,
                format!("object {object}'s state authority is actor {holder}"),
            ));
        }
        let objects = self.with_nested(object);
        self.remove(&objects);
        Ok((
            GameReply::Despawned,
            vec![Out::Event {
                to: ctx.active.to_vec(),
                event: RoomEvent::ObjectsDespawned { objects, sender },
            }],
        ))
    }

    fn changed(ctx: Ctx<'_>, info: &ObjectInfo) -> Out {
        Out::Event {
            to: ctx.active.to_vec(),
            event: RoomEvent::AuthorityChanged {
                object: info.object,
                state_authority: info.state_authority,
                input_authority: info.input_authority,
            },
        }
    }

    fn request(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        object: u32,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        let o = self.object_mut(object)?;
        let holder = o.info.state_authority;
        let mut out = Vec::new();
        if holder != sender && (holder == 0 || o.info.allow_override) {
            o.info.state_authority = sender;
            out.push(Self::changed(ctx, &o.info));
        }
        let holder = o.info.state_authority;
        Ok((GameReply::StateAuthority { object, holder }, out))
    }

    fn release(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        object: u32,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        let o = self.object_mut(object)?;
        if o.info.state_authority != sender {
            return Err(err(
                ResultCode::NotAllowed,
                format!("actor {sender} is not object {object}'s state authority"),
            ));
        }
        o.info.state_authority = 0;
        let out = vec![Self::changed(ctx, &o.info)];
        Ok((GameReply::StateAuthority { object, holder: 0 }, out))
    }

    fn assign_input(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        object: u32,
        actor: u32,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        let o = self.object_mut(object)?;
        if o.info.state_authority != sender {
            return Err(err(
                ResultCode::NotAllowed,
                "only the object's state authority assigns its input authority",
            ));
        }
        if actor != 0 && !ctx.active.contains(&actor) {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                format!("actor {actor} is not an active actor"),
            ));
        }
        o.info.input_authority = actor;
        let out = vec![Self::changed(ctx, &o.info)];
        Ok((GameReply::InputAuthoritySet, out))
    }
}

impl Mode for Shared {
    /// Events are routed as in a relay room.
    fn check_event(&self, _: u32, _: u32, _: &RaiseEvent) -> Result<(), OpError> {
        Ok(())
    }

    fn object_op(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        op: GameOp,
    ) -> Result<(GameReply, Vec<Out>), OpError> {
        match op {
            GameOp::Spawn(s) => self.spawn(ctx, sender, s),
            GameOp::Despawn { object } => self.despawn(ctx, sender, object),
            GameOp::RequestStateAuthority { object } => self.request(ctx, sender, object),
            GameOp::ReleaseStateAuthority { object } => self.release(ctx, sender, object),
            GameOp::AssignInputAuthority { object, actor } => {
                self.assign_input(ctx, sender, object, actor)
            }
            _ => Err(err(ResultCode::OperationInvalid, "not an object operation")),
        }
    }

    fn update_state(
        &mut self,
        ctx: Ctx<'_>,
        sender: u32,
        u: StateUpdate,
        reliable: bool,
    ) -> Result<Vec<Out>, OpError> {
        let o = self
            .objects
            .get(&u.object)
            .ok_or_else(|| no_object(u.object))?;
        if o.info.state_authority != sender {
            return Err(err(
                ResultCode::NotAllowed,
                format!(
                    "only object {}'s state authority (actor {}) updates its state",
                    u.object, o.info.state_authority
                ),
            ));
        }
        if !reliable && o.tick_from == sender && u.tick < o.info.tick {
            // A datagram overtaken by a newer update of the same sender: its state is
            // older than what the others have (or will get) already.
            return Ok(Vec::new());
        }
        self.check_state(o.info.state.len(), u.state.len())?;
        let o = self.objects.get_mut(&u.object).expect("found above");
        o.tick_from = sender;
        self.state_bytes = self.state_bytes - o.info.state.len() + u.state.len();
        o.info.state = u.state.clone();
        o.info.tick = u.tick;
        let to: Vec<u32> = ctx
            .active
            .iter()
            .copied()
            .filter(|a| *a != sender)
            .collect();
        if to.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Out::State {
            to,
            state: ObjectState {
                object: u.object,
                sender,
                tick: u.tick,
                state: u.state,
            },
            reliable,
        }])
    }

    fn joined(&mut self, actor: u32) -> Vec<Out> {
        self.objects
            .values()
            .map(|o| Out::Event {
                to: vec![actor],
                event: RoomEvent::ObjectSpawned(o.info.clone()),
            })
            .collect()
    }

    fn gone(&mut self, ctx: Ctx<'_>, actor: u32) -> Vec<Out> {
        let mut despawn: BTreeSet<u32> = BTreeSet::new();
        let mut out = Vec::new();
        let held: Vec<u32> = self
            .objects
            .values()
            .filter(|o| o.info.state_authority == actor || o.info.input_authority == actor)
            .map(|o| o.info.object)
            .collect();
        for object in held {
            if despawn.contains(&object) {
                continue;
            }
            let info = &self.objects[&object].info;
            if info.state_authority == actor && info.despawn_on_leave {
                despawn.extend(self.with_nested(object));
                continue;
            }
            let o = self.objects.get_mut(&object).expect("listed above");
            if o.info.state_authority == actor {
                o.info.state_authority = if o.info.master_client_object {
                    ctx.master_client
                } else {
                    0
                };
            }
            if o.info.input_authority == actor {
                o.info.input_authority = 0;
            }
            out.push(Self::changed(ctx, &o.info));
        }
        // Nested objects despawned with their parent are not announced as changed.
        out.retain(|e| match e {
            Out::Event {
                event: RoomEvent::AuthorityChanged { object, .. },
                ..
            } => !despawn.contains(object),
            _ => true,
        });
        if !despawn.is_empty() {
            let objects: Vec<u32> = despawn.into_iter().collect();
            self.remove(&objects);
            out.insert(
                0,
                Out::Event {
                    to: ctx.active.to_vec(),
                    event: RoomEvent::ObjectsDespawned { objects, sender: 0 },
                },
            );
        }
        out
    }
}
