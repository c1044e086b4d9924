//! One room's state, sans-IO, with Photon's Hive semantics: actors (active and inactive),
//! the master client, joins and rejoins, PlayerTtl and EmptyRoomTtl, relay recipients,
//! interest groups, the event cache, properties. Every method takes `now` where time
//! matters and returns its outputs as values; the room actor (`room_actor`) moves them.
//!
//! - this file: membership and lifecycle;
//! - [`events`]: `RaiseEvent` recipients and the event cache;
//! - [`properties`]: `SetProperties`, `SetMasterClient`, `ChangeGroups`.

mod approval;
mod events;
mod handle;
pub mod persist;
mod properties;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_protocol::frame::encoded_len;
use switchboard_protocol::{
    ActorInfo, EventData, GameReply, GameState, JoinMode, Joined, OpError, Properties, ResultCode,
    RoomEvent, RoomMode, RoomOptions,
};

use crate::modes::Modes;

pub use handle::{Input, Origin, To};

/// Limits of a room, from the game server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLimits {
    /// Most events in the event cache.
    pub max_cache_events: usize,
    /// Most payload bytes in the event cache.
    pub max_cache_bytes: usize,
    /// Most properties (set plus expected) in one request.
    pub max_props_per_request: usize,
    /// Most encoded bytes of properties in one request.
    pub max_prop_bytes_per_request: usize,
    /// Most encoded bytes of the room's own properties.
    pub max_room_prop_bytes: usize,
    /// Most encoded bytes of one actor's properties.
    pub max_actor_prop_bytes: usize,
    /// Most keys in the room's properties, and in one actor's.
    pub max_prop_keys: usize,
    /// Most lobby-listed properties, and their most encoded bytes.
    pub max_lobby_props: usize,
    /// Most encoded bytes of the lobby-listed properties' values.
    pub max_lobby_prop_bytes: usize,
    /// The largest `Joined` the room may ever have to send (a client refuses frames
    /// over the protocol's 512 KiB): a property change or a join that would make it
    /// larger is refused.
    pub max_joined_bytes: usize,
    /// The longest EmptyRoomTtl a room may ask for.
    pub empty_room_ttl_cap: Duration,
    /// (Host rooms) The largest snapshot a host may upload.
    pub max_snapshot_bytes: usize,
    /// (Host rooms) Most events kept for the next host since the last snapshot.
    pub max_replay_events: usize,
    /// (Host rooms) Most payload bytes kept for the next host since the last snapshot.
    pub max_replay_bytes: usize,
    /// (Server rooms) How long a join waits for the authority's answer.
    pub approval_timeout: Duration,
    /// (Server rooms) How long a room lasts after its authority left.
    pub authority_grace: Duration,
    /// The flush window of a room that does not choose one (`RoomOptions::
    /// flush_window_ms`): relayed events bound for one client within it leave together.
    pub flush_window: Duration,
    /// The longest flush window a room may choose.
    pub max_flush_window: Duration,
    /// (Shared rooms) Most live objects in a room.
    pub max_objects: usize,
    /// (Shared rooms) Most live objects one actor spawned.
    pub max_objects_per_actor: usize,
    /// (Shared rooms) Most bytes of one object's state.
    pub max_object_state_bytes: usize,
    /// (Shared rooms) Most bytes of all the room's object states.
    pub max_room_state_bytes: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_cache_events: 1000,
            max_cache_bytes: 1024 * 1024,
            max_props_per_request: 100,
            max_prop_bytes_per_request: 10_000,
            max_room_prop_bytes: 51_000,
            max_actor_prop_bytes: 16 * 1024,
            max_prop_keys: 100,
            max_lobby_props: 16,
            max_lobby_prop_bytes: 2048,
            max_joined_bytes: switchboard_protocol::frame::DEFAULT_MAX_FRAME - 16 * 1024,
            empty_room_ttl_cap: Duration::from_secs(60),
            max_snapshot_bytes: 256 * 1024,
            // A handover (the snapshot, then the replay) must fit a client's outgoing
            // queue (1024 messages, 1 MiB) with room to spare, or the new host would be
            // disconnected as a slow consumer the moment it is chosen.
            max_replay_events: 512,
            max_replay_bytes: 256 * 1024,
            approval_timeout: approval::APPROVAL_TIMEOUT,
            authority_grace: approval::AUTHORITY_GRACE,
            flush_window: Duration::from_millis(5),
            max_flush_window: Duration::from_millis(50),
            max_objects: 1024,
            max_objects_per_actor: 256,
            max_object_state_bytes: 16 * 1024,
            max_room_state_bytes: 1024 * 1024,
        }
    }
}

/// Where a client's event arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The control stream (channel 0).
    Control,
    /// A channel stream (its channel, 1 to 15).
    Channel(u8),
    /// A datagram (unreliable).
    Datagram,
}

/// Whether an actor is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// In the room with a connection.
    Active,
    /// Dropped or left to come back; may rejoin until `until` (`None` = while the room
    /// exists).
    Inactive {
        /// When the actor is removed.
        until: Option<Instant>,
    },
}

/// An actor of the room.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The authenticated user behind the actor.
    pub user_id: String,
    /// The actor's properties.
    pub properties: Properties,
    /// Active or inactive.
    pub presence: Presence,
    /// Interest groups joined.
    pub groups: BTreeSet<u8>,
    /// What this actor adds to a `Joined`: its encoded properties and user id, plus the
    /// rest of its entry.
    weight: usize,
}

/// Bytes of an actor's entry in a `Joined` besides its properties and user id (actor
/// number, the inactive flag, length prefixes), rounded up.
const ACTOR_ENTRY: usize = 16;

fn actor_weight(user_id: &str, properties: &Properties) -> usize {
    encoded_len(properties) + user_id.len() + ACTOR_ENTRY
}

impl Actor {
    fn active(&self) -> bool {
        self.presence == Presence::Active
    }
}

/// Something the room wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// Send a room event to these actors (on the control stream).
    Event {
        /// Recipients.
        to: Vec<u32>,
        /// The event.
        event: RoomEvent,
    },
    /// Relay an application event to these actors.
    Relay {
        /// Recipients.
        to: Vec<u32>,
        /// The event with its stamped sender.
        data: EventData,
        /// Reliable (stream) or not (datagram).
        reliable: bool,
        /// Reliable channel.
        channel: u8,
    },
    /// Relay an object's new state to these actors (`Shared` rooms).
    State {
        /// Recipients.
        to: Vec<u32>,
        /// The state with its stamped sender.
        state: switchboard_protocol::ObjectState,
        /// Reliable (control stream) or not (datagram).
        reliable: bool,
    },
    /// Forward an event to the studio's backend (a webhook).
    Forward {
        /// Its sender.
        sender: u32,
        /// Its code.
        code: u8,
        /// Its payload.
        data: Bytes,
        /// Batched, or at once.
        batched: bool,
    },
    /// Forward a property change to the studio's backend (a webhook).
    ForwardProperties {
        /// Who changed them.
        sender: u32,
        /// 0 for the room, else the actor.
        target: u32,
        /// What was set.
        properties: Properties,
    },
    /// The lobby-relevant state changed: report it to the master.
    Publish,
    /// The answer to a request.
    Reply {
        /// Who asked.
        to: To,
        /// The request's id.
        id: u32,
        /// The answer.
        result: Result<GameReply, OpError>,
    },
    /// Lifecycle: the joiner is now this actor (created, joined or rejoined); outputs
    /// that follow may address it.
    Joined {
        /// The joiner's token (`Origin::Joiner`).
        joiner: u64,
        /// Its actor number.
        actor: u32,
        /// Its user.
        user_id: String,
    },
    /// Lifecycle: the actor left its connection behind: it became inactive, or it is gone
    /// for good (left, dropped without a PlayerTtl, or its PlayerTtl passed).
    Left {
        /// The actor.
        actor: u32,
        /// Whether it may still come back.
        inactive: bool,
    },
    /// Lifecycle: the room is done; nothing else will come out of it.
    Closed,
}

/// An event kept in the room's cache.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cached {
    sender: u32,
    code: u8,
    data: Bytes,
    global: bool,
}

/// A room.
#[derive(Debug, Clone)]
pub struct Room {
    name: String,
    options: RoomOptions,
    limits: RoomLimits,
    actors: BTreeMap<u32, Actor>,
    next_actor: u32,
    expected_users: Vec<String>,
    master_override: Option<u32>,
    cache: Vec<Cached>,
    cache_bytes: usize,
    /// When the last active actor went (None while someone is active).
    empty_since: Option<Instant>,
    /// The sum of the actors' weights (what they add to a `Joined`).
    actors_weight: usize,
    /// How events are routed and who holds authority.
    mode: Modes,
    /// The authority of a `Server` room: its creator.
    authority: Option<u32>,
    /// Joins held for the authority's answer, by request number.
    pending: BTreeMap<u32, approval::Pending>,
    next_request: u32,
    /// When a `Server` room whose authority left ends.
    closing_at: Option<Instant>,
}

fn err(code: ResultCode, message: impl Into<String>) -> OpError {
    OpError::new(code, message)
}

/// Refuses properties with reserved keys or over the per-request limits.
pub(crate) fn check_request_properties(
    limits: &RoomLimits,
    sets: &[&Properties],
) -> Result<(), OpError> {
    let count: usize = sets.iter().map(|p| p.len()).sum();
    if count > limits.max_props_per_request {
        return Err(err(
            ResultCode::OperationLimitReached,
            format!(
                "{count} properties in one request; the limit is {}",
                limits.max_props_per_request
            ),
        ));
    }
    let bytes: usize = sets.iter().map(|p| encoded_len(*p)).sum();
    if bytes > limits.max_prop_bytes_per_request {
        return Err(err(
            ResultCode::OperationLimitReached,
            format!(
                "{bytes} bytes of properties in one request; the limit is {}",
                limits.max_prop_bytes_per_request
            ),
        ));
    }
    if sets.iter().any(|p| p.keys().any(|k| k.starts_with('#'))) {
        return Err(err(
            ResultCode::InvalidRequestParameters,
            "property keys starting with # are reserved for the server",
        ));
    }
    Ok(())
}

impl Room {
    /// A new, empty room. EmptyRoomTtl is capped by `limits`.
    pub fn new(name: String, mut options: RoomOptions, limits: RoomLimits) -> Self {
        let cap = limits
            .empty_room_ttl_cap
            .as_millis()
            .min(u128::from(u32::MAX)) as u32;
        options.empty_room_ttl_ms = options.empty_room_ttl_ms.min(cap);
        let mode = Modes::new(options.mode, &limits);
        Room {
            name,
            options,
            limits,
            actors: BTreeMap::new(),
            next_actor: 1,
            expected_users: Vec::new(),
            master_override: None,
            cache: Vec::new(),
            cache_bytes: 0,
            empty_since: None,
            actors_weight: 0,
            mode,
            authority: None,
            pending: BTreeMap::new(),
            next_request: 0,
            closing_at: None,
        }
    }

    /// The size a `Joined` would have with the room properties `room_props_bytes` big and
    /// the actors weighing `actors_weight` (room name and fixed fields included).
    fn joined_size(&self, room_props_bytes: usize, actors_weight: usize) -> usize {
        self.name.len() + 32 + room_props_bytes + actors_weight
    }

    /// Refuses a change after which a `Joined` would be larger than clients accept.
    fn check_joined_size(
        &self,
        room_props_bytes: usize,
        actors_weight: usize,
    ) -> Result<(), OpError> {
        let size = self.joined_size(room_props_bytes, actors_weight);
        if size > self.limits.max_joined_bytes {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "the room's state would take {size} bytes to send to a joiner; the limit is {}",
                    self.limits.max_joined_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Refuses actor properties over the per-actor limits.
    fn check_actor_properties(&self, p: &Properties) -> Result<(), OpError> {
        let bytes = encoded_len(p);
        if bytes > self.limits.max_actor_prop_bytes || p.len() > self.limits.max_prop_keys {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "an actor's properties may have {} keys and {} bytes; these have {} and {bytes}",
                    self.limits.max_prop_keys,
                    self.limits.max_actor_prop_bytes,
                    p.len()
                ),
            ));
        }
        Ok(())
    }

    /// Refuses lobby-listed properties over their limits.
    fn check_lobby_properties(&self, props: &Properties) -> Result<(), OpError> {
        let keys = &self.options.lobby_properties;
        let listed: Properties = keys
            .iter()
            .filter_map(|k| Some((k.clone(), props.get(k)?.clone())))
            .collect();
        let bytes = encoded_len(&listed);
        if keys.len() > self.limits.max_lobby_props || bytes > self.limits.max_lobby_prop_bytes {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "at most {} lobby-listed properties of {} bytes in all; these are {} of {bytes}",
                    self.limits.max_lobby_props,
                    self.limits.max_lobby_prop_bytes,
                    keys.len()
                ),
            ));
        }
        Ok(())
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room's flush window: what it asked for (the server's default if nothing),
    /// capped by the server.
    pub fn flush_window(&self) -> Duration {
        self.options
            .flush_window_ms
            .map_or(self.limits.flush_window, |ms| {
                Duration::from_millis(ms.into())
            })
            .min(self.limits.max_flush_window)
    }

    /// The room's options (its properties included).
    pub fn options(&self) -> &RoomOptions {
        &self.options
    }

    /// An actor.
    pub fn actor(&self, n: u32) -> Option<&Actor> {
        self.actors.get(&n)
    }

    /// Active actor numbers, ascending.
    pub fn active_actors(&self) -> Vec<u32> {
        self.actors
            .iter()
            .filter(|(_, a)| a.active())
            .map(|(n, _)| *n)
            .collect()
    }

    fn active_except(&self, except: u32) -> Vec<u32> {
        self.actors
            .iter()
            .filter(|(n, a)| a.active() && **n != except)
            .map(|(n, _)| *n)
            .collect()
    }

    /// The master client: the actor `SetMasterClient` chose while it is active, else the
    /// active actor with the lowest number; 0 when nobody is active.
    pub fn master_client(&self) -> u32 {
        if let Some(m) = self.master_override
            && self.actors.get(&m).is_some_and(Actor::active)
        {
            return m;
        }
        self.actors
            .iter()
            .find(|(_, a)| a.active())
            .map(|(n, _)| *n)
            .unwrap_or(0)
    }

    /// The room's authority: the master client (in `Relay` and `Host` rooms); 0 when
    /// nobody is active.
    pub fn host(&self) -> u32 {
        match self.authority {
            Some(a) if self.actors.get(&a).is_some_and(Actor::active) => a,
            Some(_) => 0,
            None => self.master_client(),
        }
    }

    fn info(&self, n: u32, a: &Actor) -> ActorInfo {
        ActorInfo {
            actor: n,
            user_id: if self.options.publish_user_id {
                a.user_id.clone()
            } else {
                String::new()
            },
            inactive: !a.active(),
            properties: a.properties.clone(),
        }
    }

    /// Slots taken: actors (active or not) plus reserved slots.
    fn taken(&self) -> usize {
        self.actors.len() + self.expected_users.len()
    }

    /// Reserves slots for the expected users not yet in the room (`SlotError` if they do
    /// not fit next to `joiner`).
    fn reserve(&mut self, joiner: &str, expected: &[String]) -> Result<(), OpError> {
        let mut new: Vec<String> = expected
            .iter()
            .filter(|u| {
                *u != joiner
                    && !self.expected_users.contains(u)
                    && !self.actors.values().any(|a| &a.user_id == *u)
            })
            .cloned()
            .collect();
        new.sort();
        new.dedup();
        let max = self.options.max_players as usize;
        // A joiner holds a slot already when it is expected, or when it comes back to
        // its own (inactive) actor.
        let holds_slot = self.expected_users.iter().any(|u| u == joiner)
            || self.actors.values().any(|a| a.user_id == joiner);
        let joiner_slot = usize::from(!holds_slot);
        if max != 0 && self.taken() + joiner_slot + new.len() > max {
            return Err(err(
                ResultCode::SlotError,
                format!("{} expected users do not fit {max} players", new.len()),
            ));
        }
        self.expected_users.extend(new);
        Ok(())
    }

    /// Adds the creator of a new room, reserving slots for `expected_users`; the creator
    /// gets in even if the room is created closed.
    pub(crate) fn create(
        &mut self,
        user_id: &str,
        authority: bool,
        expected_users: &[String],
        properties: Properties,
        now: Instant,
    ) -> Result<(Joined, Vec<Out>), OpError> {
        debug_assert!(self.actors.is_empty(), "create is the first join");
        match self.options.mode {
            RoomMode::Server if !authority => {
                return Err(err(
                    ResultCode::NotAllowed,
                    "only a dedicated server (AuthenticateServer) creates Server rooms",
                ));
            }
            RoomMode::Relay | RoomMode::Host | RoomMode::Shared if self.options.join_approval => {
                return Err(err(
                    ResultCode::InvalidRequestParameters,
                    "join approval needs a Server room",
                ));
            }
            _ => {}
        }
        check_request_properties(&self.limits, &[&properties])?;
        self.check_actor_properties(&properties)?;
        let room_bytes = encoded_len(&self.options.properties);
        if room_bytes > self.limits.max_room_prop_bytes
            || self.options.properties.len() > self.limits.max_prop_keys
        {
            return Err(err(
                ResultCode::OperationLimitReached,
                format!(
                    "room properties may have {} keys and {} bytes",
                    self.limits.max_prop_keys, self.limits.max_room_prop_bytes
                ),
            ));
        }
        self.check_lobby_properties(&self.options.properties)?;
        self.check_joined_size(room_bytes, actor_weight(user_id, &properties))?;
        if self.options.properties.keys().any(|k| k.starts_with('#')) {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                "property keys starting with # are reserved for the server",
            ));
        }
        self.reserve(user_id, expected_users)?;
        let n = self.add(user_id, properties);
        if self.options.mode == RoomMode::Server {
            self.authority = Some(n);
            self.master_override = Some(n);
        }
        Ok(self.admitted(n, now))
    }

    /// Adds (or takes back) an actor for `user_id` according to the join mode.
    pub(crate) fn join(
        &mut self,
        user_id: &str,
        mode: JoinMode,
        expected_users: &[String],
        properties: Properties,
        now: Instant,
    ) -> Result<(Joined, Vec<Out>), OpError> {
        check_request_properties(&self.limits, &[&properties])?;
        let existing = self
            .actors
            .iter()
            .find(|(_, a)| a.user_id == user_id)
            .map(|(n, a)| (*n, a.active()));
        match (existing, mode) {
            (Some((_, true)), _) => Err(err(
                ResultCode::JoinFailedPeerAlreadyJoined,
                "this user is already an active actor of the room",
            )),
            (Some((n, false)), JoinMode::RejoinOnly | JoinMode::RejoinOrJoin) => {
                self.reserve(user_id, expected_users)?;
                self.actors.get_mut(&n).expect("found").presence = Presence::Active;
                self.empty_since = None;
                Ok(self.admitted(n, now))
            }
            (Some(_), _) => Err(err(
                ResultCode::JoinFailedFoundInactiveJoiner,
                "this user has an inactive actor in the room: rejoin instead",
            )),
            (None, JoinMode::RejoinOnly) => Err(err(
                ResultCode::JoinFailedWithRejoinerNotFound,
                "this user has no inactive actor in the room",
            )),
            (None, _) => {
                if !self.options.is_open {
                    return Err(err(ResultCode::GameClosed, "the game is closed"));
                }
                let max = self.options.max_players as usize;
                let expected = self.expected_users.iter().any(|u| u == user_id);
                if max != 0 && !expected && self.taken() >= max {
                    return Err(err(ResultCode::GameFull, "the game is full"));
                }
                self.check_actor_properties(&properties)?;
                self.check_joined_size(
                    encoded_len(&self.options.properties),
                    self.actors_weight + actor_weight(user_id, &properties),
                )?;
                self.reserve(user_id, expected_users)?;
                let n = self.add(user_id, properties);
                Ok(self.admitted(n, now))
            }
        }
    }

    fn add(&mut self, user_id: &str, properties: Properties) -> u32 {
        let n = self.next_actor;
        self.next_actor += 1;
        self.expected_users.retain(|u| u != user_id);
        self.empty_since = None;
        let weight = actor_weight(user_id, &properties);
        self.actors_weight += weight;
        self.actors.insert(
            n,
            Actor {
                user_id: user_id.to_string(),
                properties,
                presence: Presence::Active,
                groups: BTreeSet::new(),
                weight,
            },
        );
        n
    }

    /// The joiner's view, the `Join` event, and the cache replayed to the joiner.
    fn admitted(&self, n: u32, _now: Instant) -> (Joined, Vec<Out>) {
        let joined = Joined {
            game: self.name.clone(),
            actor: n,
            master_client: self.master_client(),
            actors: self.actors.iter().map(|(k, a)| self.info(*k, a)).collect(),
            properties: self.options.properties.clone(),
            max_players: self.options.max_players,
            mode: self.options.mode,
            host: self.host(),
            flush_window_ms: u32::try_from(self.flush_window().as_millis()).unwrap_or(u32::MAX),
        };
        let mut out = Vec::new();
        if !self.options.suppress_room_events {
            out.push(Out::Event {
                to: self.active_actors(),
                event: RoomEvent::Join {
                    actor: self.info(n, &self.actors[&n]),
                    actors: self.actors.keys().copied().collect(),
                },
            });
        }
        out.extend(self.cache.iter().map(|c| Out::Relay {
            to: vec![n],
            data: EventData {
                sender: c.sender,
                code: c.code,
                data: c.data.clone(),
            },
            reliable: true,
            channel: 0,
        }));
        out.push(Out::Publish);
        (joined, out)
    }

    /// An active actor leaves: for good, or (if `will_come_back` or it dropped, and the
    /// room has a PlayerTtl) it becomes inactive.
    pub(crate) fn leave(&mut self, n: u32, will_come_back: bool, now: Instant) -> Vec<Out> {
        let ttl = self.options.player_ttl_ms;
        let was_master = self.master_client() == n;
        let Some(actor) = self.actors.get_mut(&n).filter(|a| a.active()) else {
            return Vec::new();
        };
        let inactive = will_come_back && ttl != 0;
        if inactive {
            actor.presence = Presence::Inactive {
                until: (ttl > 0).then(|| now + Duration::from_millis(ttl as u64)),
            };
            actor.groups.clear();
        } else {
            self.remove(n);
        }
        if was_master {
            // The role moves to the lowest active actor and stays there: an actor that
            // comes back does not take it back unannounced (everyone is told the new
            // master client in this Leave, and nothing else changes it but another
            // leave or SetMasterClient).
            self.master_override = self.active_actors().first().copied();
        }
        if self.active_actors().is_empty() && self.empty_since.is_none() {
            self.empty_since = Some(now);
        }
        let mut out = Vec::new();
        if !self.options.suppress_room_events {
            out.push(Out::Event {
                to: self.active_actors(),
                event: RoomEvent::Leave {
                    actor: n,
                    inactive,
                    master_client: self.master_client(),
                },
            });
        } else if was_master && self.master_client() != 0 {
            // Without room events nobody would learn of the new master client.
            out.push(Out::Event {
                to: self.active_actors(),
                event: RoomEvent::MasterClientChanged {
                    master_client: self.master_client(),
                    sender: 0,
                },
            });
        }
        out.push(Out::Publish);
        out
    }

    fn remove(&mut self, n: u32) {
        if let Some(a) = self.actors.remove(&n) {
            self.actors_weight -= a.weight;
        }
        if self.options.cleanup_cache_on_leave {
            self.drop_cached_of(|sender| sender == n);
        }
    }

    /// Removes inactive actors whose PlayerTtl has passed.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Out> {
        let expired: Vec<u32> = self
            .actors
            .iter()
            .filter(
                |(_, a)| matches!(a.presence, Presence::Inactive { until: Some(t) } if t <= now),
            )
            .map(|(n, _)| *n)
            .collect();
        let mut out = Vec::new();
        for n in expired {
            self.remove(n);
            out.push(Out::Left {
                actor: n,
                inactive: false,
            });
            if !self.options.suppress_room_events {
                out.push(Out::Event {
                    to: self.active_actors(),
                    event: RoomEvent::Leave {
                        actor: n,
                        inactive: false,
                        master_client: self.master_client(),
                    },
                });
            }
            out.push(Out::Publish);
        }
        out
    }

    /// When the room ends: EmptyRoomTtl after its last active actor went, and not before
    /// every inactive actor with a finite PlayerTtl has expired. `None` while an actor is
    /// active.
    pub fn close_at(&self) -> Option<Instant> {
        let empty = self.empty_since?;
        let base = empty + Duration::from_millis(u64::from(self.options.empty_room_ttl_ms));
        let last_inactive = self
            .actors
            .values()
            .filter_map(|a| match a.presence {
                Presence::Inactive { until } => until,
                Presence::Active => None,
            })
            .max();
        Some(last_inactive.map_or(base, |t| t.max(base)))
    }

    /// The next moment `tick` or closing has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let expiry = self
            .actors
            .values()
            .filter_map(|a| match a.presence {
                Presence::Inactive { until } => until,
                Presence::Active => None,
            })
            .min();
        [
            expiry,
            self.close_at(),
            self.closing_at,
            self.next_approval_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the room should end now.
    pub fn is_done(&self, now: Instant) -> bool {
        self.close_at().is_some_and(|t| t <= now) || self.closing_at.is_some_and(|t| t <= now)
    }

    /// The lobby-relevant state reported to the master.
    pub fn game_state(&self) -> GameState {
        let lobby_properties: Properties = self
            .options
            .lobby_properties
            .iter()
            .filter_map(|k| Some((k.clone(), self.options.properties.get(k)?.clone())))
            .collect();
        GameState {
            game: self.name.clone(),
            lobby: self.options.lobby.clone(),
            max_players: self.options.max_players,
            is_open: self.options.is_open,
            is_visible: self.options.is_visible,
            lobby_properties,
            users: self.actors.values().map(|a| a.user_id.clone()).collect(),
            expected_users: self.expected_users.clone(),
        }
    }
}
