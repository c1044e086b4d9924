//! Persistent rooms (Photon's IsPersistent): a room's whole state as a value the shell
//! hands to the studio's backend when the room ends ([`Room::save`]), and a room made
//! from such a value again, on any game server ([`Room::restore`]). Everything a restore
//! takes is checked against the game server's limits, as if it had come in requests: a
//! backend's answer is input like any other.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_protocol::frame::encoded_len;
use switchboard_protocol::messages::common::{
    MAX_GAME_NAME, MAX_USER_ID, check_expected_users, check_game_name,
};
use switchboard_protocol::{EventData, ObjectInfo, Properties, RoomMode, RoomOptions};

use super::{Actor, Cached, Presence, Room, RoomLimits, actor_weight};
use crate::modes::Modes;
use crate::modes::host::Host;
use crate::modes::shared::Shared;

/// The version of [`SavedRoom`]'s layout.
pub const SAVED_ROOM_VERSION: u32 = 1;

/// The highest next actor or object number a restored room may have: far beyond what a
/// room's lifetime of joins and spawns reaches, far below where the counters overflow.
pub const MAX_SAVED_NUMBER: u32 = 1 << 30;

/// A room's whole state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRoom {
    /// [`SAVED_ROOM_VERSION`].
    pub version: u32,
    /// The room's options, its properties included.
    pub options: RoomOptions,
    /// The actors, active or not when saved (all come back inactive).
    pub actors: Vec<SavedActor>,
    /// The number the next new actor gets.
    pub next_actor: u32,
    /// Users with a reserved slot.
    pub expected_users: Vec<String>,
    /// The master client chosen with `SetMasterClient`, or 0.
    pub master_client: u32,
    /// The event cache, oldest first.
    pub cache: Vec<SavedEvent>,
    /// The room mode's own state.
    pub mode: SavedMode,
}

/// An actor of a saved room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedActor {
    /// Its actor number.
    pub number: u32,
    /// Its user.
    pub user_id: String,
    /// Its properties.
    pub properties: Properties,
    /// Whether it was connected when the room was saved.
    pub active: bool,
}

/// A cached event of a saved room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedEvent {
    /// Its sender.
    pub sender: u32,
    /// Its code.
    pub code: u8,
    /// Its payload.
    pub data: Bytes,
    /// Cached for the room (kept when its sender leaves) rather than for its sender.
    pub global: bool,
}

/// The room mode's part of a saved room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SavedMode {
    /// Nothing beyond the room.
    Relay,
    /// The host's latest snapshot and the reliable events sent to a host since.
    Host {
        /// The snapshot, if one was uploaded.
        snapshot: Option<Bytes>,
        /// Events a new host replays after the snapshot.
        replay: Vec<EventData>,
        /// Whether the replay lost its oldest events.
        truncated: bool,
    },
    /// The network objects.
    Shared {
        /// Every live object.
        objects: Vec<SavedObject>,
        /// The last object number given out.
        next_object: u32,
    },
}

/// A network object of a saved `Shared` room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedObject {
    /// The object as clients see it.
    pub info: ObjectInfo,
    /// Who spawned it.
    pub spawner: u32,
}

impl Room {
    /// The room's whole state, or `None` for a `Server` room (its state is its dedicated
    /// server's, and the room ends when that server leaves).
    pub fn save(&self) -> Option<SavedRoom> {
        let mode = match &self.mode {
            Modes::Relay(_) => SavedMode::Relay,
            Modes::Host(h) => h.save(),
            Modes::Shared(s) => s.save(),
            Modes::Server(_) => return None,
        };
        Some(SavedRoom {
            version: SAVED_ROOM_VERSION,
            options: self.options.clone(),
            actors: self
                .actors
                .iter()
                .map(|(n, a)| SavedActor {
                    number: *n,
                    user_id: a.user_id.clone(),
                    properties: a.properties.clone(),
                    active: a.active(),
                })
                .collect(),
            next_actor: self.next_actor,
            expected_users: self.expected_users.clone(),
            master_client: self.master_override.unwrap_or(0),
            cache: self
                .cache
                .iter()
                .map(|c| SavedEvent {
                    sender: c.sender,
                    code: c.code,
                    data: c.data.clone(),
                    global: c.global,
                })
                .collect(),
            mode,
        })
    }

    /// Whether the room has actors (active or inactive) whose state a save would keep.
    pub fn has_actors(&self) -> bool {
        !self.actors.is_empty()
    }

    /// A room made from `saved`, named `name`, at `now`: every actor inactive (back
    /// within the room's PlayerTtl from now; while the room lasts when it has none), the
    /// room empty since `now`. Refused, saying why, when `saved` is not a state this game
    /// server could have made within its `limits`.
    pub fn restore(
        name: String,
        saved: SavedRoom,
        limits: RoomLimits,
        now: Instant,
    ) -> Result<Room, String> {
        if saved.version != SAVED_ROOM_VERSION {
            return Err(format!(
                "state version {} (this server reads {SAVED_ROOM_VERSION})",
                saved.version
            ));
        }
        check_game_name(&name).map_err(|e| e.message)?;
        if saved.next_actor > MAX_SAVED_NUMBER {
            return Err(format!(
                "next actor number {} is out of range",
                saved.next_actor
            ));
        }
        let mut room = Room::new(name, saved.options, limits);
        let o = &room.options;
        if o.mode == RoomMode::Server || o.join_approval {
            return Err("a Server room is not restored: its dedicated server owns it".into());
        }
        let room_bytes = encoded_len(&o.properties);
        if room_bytes > room.limits.max_room_prop_bytes
            || o.properties.len() > room.limits.max_prop_keys
            || o.properties.keys().any(|k| k.starts_with('#'))
        {
            return Err("the room's properties are over the limits or use reserved keys".into());
        }
        room.check_lobby_properties(&o.properties.clone())
            .map_err(|e| e.message)?;
        if room.options.lobby.name.len() > MAX_GAME_NAME {
            return Err(format!("lobby names are at most {MAX_GAME_NAME} bytes"));
        }
        check_expected_users(&saved.expected_users).map_err(|e| e.message)?;
        // Every actor inactive: back within its PlayerTtl from now.
        let ttl = room.options.player_ttl_ms;
        let until = (ttl > 0).then(|| now + Duration::from_millis(ttl as u64));
        let mut users = BTreeSet::new();
        for a in saved.actors {
            if a.number == 0 || a.number >= saved.next_actor || room.actors.contains_key(&a.number)
            {
                return Err(format!("actor number {} is out of place", a.number));
            }
            if a.user_id.is_empty()
                || a.user_id.len() > MAX_USER_ID
                || !users.insert(a.user_id.clone())
            {
                return Err(format!(
                    "actor {} has an empty, repeated or over-long user id",
                    a.number
                ));
            }
            room.check_actor_properties(&a.properties)
                .map_err(|e| e.message)?;
            if a.properties.keys().any(|k| k.starts_with('#')) {
                return Err(format!("actor {}'s properties use reserved keys", a.number));
            }
            let weight = actor_weight(&a.user_id, &a.properties);
            room.actors_weight += weight;
            room.actors.insert(
                a.number,
                Actor {
                    user_id: a.user_id,
                    properties: a.properties,
                    presence: Presence::Inactive { until },
                    groups: BTreeSet::new(),
                    weight,
                },
            );
        }
        room.next_actor = saved.next_actor.max(1);
        room.check_joined_size(room_bytes, room.actors_weight)
            .map_err(|e| e.message)?;
        let max = room.options.max_players as usize;
        let expected: BTreeSet<String> = saved
            .expected_users
            .into_iter()
            .filter(|u| !users.contains(u))
            .collect();
        room.expected_users = expected.into_iter().collect();
        if max != 0 && room.taken() > max {
            return Err(format!(
                "{} actors and reserved slots for {max} players",
                room.taken()
            ));
        }
        let numbers: BTreeSet<u32> = room.actors.keys().copied().collect();
        room.master_override = Some(saved.master_client).filter(|m| numbers.contains(m));
        // The cache, within its limits.
        let bytes: usize = saved.cache.iter().map(|e| e.data.len()).sum();
        if saved.cache.len() > room.limits.max_cache_events || bytes > room.limits.max_cache_bytes {
            return Err(format!(
                "an event cache of {} events and {bytes} bytes",
                saved.cache.len()
            ));
        }
        room.cache = saved
            .cache
            .into_iter()
            .map(|e| Cached {
                sender: e.sender,
                code: e.code,
                data: e.data,
                global: e.global,
            })
            .collect();
        room.cache_bytes = bytes;
        room.mode = match (room.options.mode, saved.mode) {
            (RoomMode::Relay, SavedMode::Relay) => room.mode,
            (
                RoomMode::Host,
                SavedMode::Host {
                    snapshot,
                    replay,
                    truncated,
                },
            ) => Modes::Host(Host::restore(
                &room.limits,
                snapshot,
                replay,
                truncated,
                now,
            )?),
            (
                RoomMode::Shared,
                SavedMode::Shared {
                    objects,
                    next_object,
                },
            ) => Modes::Shared(Shared::restore(
                &room.limits,
                objects,
                next_object,
                &numbers,
            )?),
            (mode, _) => return Err(format!("the mode's state is not that of a {mode:?} room")),
        };
        room.empty_since = Some(now);
        Ok(room)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use switchboard_protocol::{
        EventCaching, GameOp, GameReply, JoinMode, Properties, RaiseEvent, ReceiverGroup,
        ResultCode, RoomMode, RoomOptions, SpawnObject, Value,
    };

    use super::*;
    use crate::{Input, Origin, Out, Via};

    fn create(options: RoomOptions, now: Instant) -> Room {
        let mut r = Room::new("saved".into(), options, RoomLimits::default());
        let props: Properties = [("level".to_string(), Value::Int(7))].into();
        let out = r.handle(
            Origin::Joiner(1),
            Input::Create {
                id: 1,
                user_id: "alice".into(),
                authority: false,
                expected_users: vec!["carol".into()],
                properties: props,
            },
            now,
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Joined { actor: 1, .. }))
        );
        let out = r.handle(Origin::Joiner(2), join(1, "bob", JoinMode::JoinOnly), now);
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Joined { actor: 2, .. }))
        );
        r
    }

    /// A join (or rejoin) request of `user` without properties or reserved slots.
    fn join(id: u32, user: &str, mode: JoinMode) -> Input {
        Input::Join {
            id,
            user_id: user.into(),
            mode,
            expected_users: vec![],
            properties: Properties::new(),
            claims: Properties::new(),
        }
    }

    fn cached(code: u8) -> Input {
        Input::Raise {
            event: RaiseEvent {
                code,
                receivers: ReceiverGroup::All,
                targets: vec![],
                group: 0,
                cache: EventCaching::AddToRoomCache,
                channel: 0,
                data: Bytes::from_static(b"progress"),
            },
            via: Via::Control,
        }
    }

    fn request(r: &mut Room, actor: u32, op: GameOp, now: Instant) -> Vec<Out> {
        r.handle(Origin::Actor(actor), Input::Request { id: 9, op }, now)
    }

    /// The restored room answers a rejoin of `user` with what it saved.
    fn rejoin(r: &mut Room, user: &str, now: Instant) -> (u32, Vec<Out>) {
        let out = r.handle(Origin::Joiner(7), join(3, user, JoinMode::RejoinOnly), now);
        let actor = out
            .iter()
            .find_map(|o| match o {
                Out::Joined { actor, .. } => Some(*actor),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{user} did not get back in: {out:?}"));
        (actor, out)
    }

    #[test]
    fn a_relay_room_comes_back_with_its_actors_properties_and_cache() {
        let t0 = Instant::now();
        let mut r = create(
            RoomOptions {
                player_ttl_ms: -1,
                max_players: 4,
                ..RoomOptions::default()
            },
            t0,
        );
        r.handle(Origin::Actor(1), cached(5), t0);
        r.handle(
            Origin::Actor(2),
            Input::Leave {
                id: None,
                will_come_back: true,
            },
            t0,
        );
        let saved = r.save().unwrap();
        assert_eq!(saved.actors.len(), 2);
        assert!(saved.actors[0].active && !saved.actors[1].active);
        assert_eq!(saved.cache.len(), 1);
        // On another server, a minute later.
        let t1 = t0 + Duration::from_secs(60);
        let mut back =
            Room::restore("saved".into(), saved.clone(), RoomLimits::default(), t1).unwrap();
        assert!(
            back.active_actors().is_empty(),
            "everyone comes back inactive"
        );
        assert_eq!(back.save().unwrap().actors.len(), 2);
        let (n, out) = rejoin(&mut back, "bob", t1);
        assert_eq!(n, 2, "bob gets his own actor number back");
        // The cache is replayed to him.
        assert!(out.iter().any(|o| matches!(o, Out::Relay { to, data, .. }
            if to == &vec![2] && data.code == 5 && data.sender == 1)));
        assert_eq!(
            back.actor(1).unwrap().properties.get("level"),
            Some(&Value::Int(7))
        );
        // A new user gets a fresh number, after the saved ones.
        let out = back.handle(Origin::Joiner(8), join(4, "dave", JoinMode::JoinOnly), t1);
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Joined { actor: 3, .. }))
        );
        // carol's slot is still reserved: the room (4 players) is full now.
        let out = back.handle(Origin::Joiner(9), join(5, "erin", JoinMode::JoinOnly), t1);
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Reply { result: Err(e), .. }
            if e.result_code() == Some(ResultCode::GameFull)))
        );
    }

    #[test]
    fn host_and_shared_rooms_keep_their_mode_state() {
        let t0 = Instant::now();
        let mut r = create(
            RoomOptions {
                player_ttl_ms: -1,
                mode: RoomMode::Host,
                ..RoomOptions::default()
            },
            t0,
        );
        let out = request(
            &mut r,
            1,
            GameOp::UploadSnapshot {
                data: Bytes::from_static(b"world"),
            },
            t0,
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Reply { result: Ok(_), .. }))
        );
        let saved = r.save().unwrap();
        assert!(
            matches!(&saved.mode, SavedMode::Host { snapshot: Some(s), .. } if &s[..] == b"world")
        );
        let back = Room::restore("saved".into(), saved, RoomLimits::default(), t0).unwrap();
        assert_eq!(back.save().unwrap().mode, r.save().unwrap().mode);

        let mut r = create(
            RoomOptions {
                player_ttl_ms: -1,
                mode: RoomMode::Shared,
                ..RoomOptions::default()
            },
            t0,
        );
        let spawn = SpawnObject {
            type_id: 3,
            parent: 0,
            state: Bytes::from_static(b"chest: 10 coins"),
            tick: 1,
            allow_override: false,
            despawn_on_leave: false,
            master_client_object: false,
        };
        let out = request(&mut r, 2, GameOp::Spawn(spawn), t0);
        assert!(
            out.iter().any(|o| matches!(
                o,
                Out::Reply {
                    result: Ok(GameReply::Spawned { .. }),
                    ..
                }
            )),
            "{out:?}"
        );
        let saved = r.save().unwrap();
        let back = Room::restore("saved".into(), saved.clone(), RoomLimits::default(), t0).unwrap();
        assert_eq!(back.save().unwrap().mode, saved.mode);
        assert!(
            matches!(&saved.mode, SavedMode::Shared { objects, .. } if objects.len() == 1 && objects[0].info.state_authority == 2)
        );
        // An object nested in itself (a cycle no spawn can make) is refused.
        let mut cyclic = saved.clone();
        if let SavedMode::Shared { objects, .. } = &mut cyclic.mode {
            objects[0].info.parent = objects[0].info.object;
        }
        let e = Room::restore("saved".into(), cyclic, RoomLimits::default(), t0).unwrap_err();
        assert!(e.contains("parent"), "{e}");
    }

    #[test]
    fn a_state_this_server_could_not_have_made_is_refused_with_the_reason() {
        let t0 = Instant::now();
        let r = create(
            RoomOptions {
                player_ttl_ms: -1,
                ..RoomOptions::default()
            },
            t0,
        );
        let good = r.save().unwrap();
        let refused = |f: &dyn Fn(&mut SavedRoom), needle: &str| {
            let mut s = good.clone();
            f(&mut s);
            let e = Room::restore("saved".into(), s, RoomLimits::default(), t0).unwrap_err();
            assert!(e.contains(needle), "{e}");
        };
        refused(&|s| s.version = 99, "version");
        refused(&|s| s.next_actor = u32::MAX, "out of range");
        refused(&|s| s.actors[1].number = 1, "out of place");
        refused(&|s| s.actors[1].number = 50, "out of place");
        refused(&|s| s.actors[1].user_id = "alice".into(), "repeated");
        refused(&|s| s.actors[1].user_id = "x".repeat(200), "over-long");
        refused(
            &|s| {
                s.actors[0]
                    .properties
                    .insert("#admin".into(), Value::Bool(true));
            },
            "reserved",
        );
        refused(&|s| s.options.lobby.name = "l".repeat(200), "lobby names");
        refused(
            &|s| {
                s.actors[0]
                    .properties
                    .insert("big".into(), Value::Bytes(Bytes::from(vec![0; 100_000])));
            },
            "actor's properties",
        );
        refused(
            &|s| {
                s.options
                    .properties
                    .insert("#x".into(), Value::Null)
                    .map(|_| ())
                    .unwrap_or(())
            },
            "reserved",
        );
        refused(&|s| s.options.max_players = 1, "players");
        refused(
            &|s| {
                s.mode = SavedMode::Shared {
                    objects: vec![],
                    next_object: 0,
                }
            },
            "not that of a Relay room",
        );
        refused(
            &|s| {
                s.options.mode = RoomMode::Server;
            },
            "dedicated server",
        );
        refused(
            &|s| {
                s.cache = vec![
                    SavedEvent {
                        sender: 1,
                        code: 1,
                        data: Bytes::new(),
                        global: false
                    };
                    5000
                ]
            },
            "event cache",
        );
        assert!(Room::restore("".into(), good.clone(), RoomLimits::default(), t0).is_err());
        Room::restore("saved".into(), good, RoomLimits::default(), t0).unwrap();
    }

    #[test]
    fn a_server_room_is_not_saved_and_a_stopping_server_leaves_actors_inactive() {
        let t0 = Instant::now();
        let mut r = Room::new(
            "s".into(),
            RoomOptions {
                mode: RoomMode::Server,
                ..RoomOptions::default()
            },
            RoomLimits::default(),
        );
        r.handle(
            Origin::Joiner(1),
            Input::Create {
                id: 1,
                user_id: "ds".into(),
                authority: true,
                expected_users: vec![],
                properties: Properties::new(),
            },
            t0,
        );
        assert!(r.save().is_none());
        // A stopping server: every active actor is left inactive, then the room closes.
        let mut r = create(RoomOptions::default(), t0);
        let out = r.handle(Origin::Server, Input::Shutdown, t0);
        let left: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Out::Left {
                    actor,
                    inactive: true,
                } => Some(*actor),
                _ => None,
            })
            .collect();
        assert_eq!(left, vec![1, 2]);
        assert_eq!(out.last(), Some(&Out::Closed));
        assert!(r.save().unwrap().actors.iter().all(|a| !a.active));
        // Nobody but the server stops a room.
        assert!(r.handle(Origin::Actor(1), Input::Shutdown, t0).is_empty());
    }
}
