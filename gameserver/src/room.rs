//! One room's state, sans-IO: actors, the master client, joining, leaving and who
//! receives an event. The room actor (`room_actor`) owns one and moves its outputs to the
//! connections.

use std::collections::BTreeMap;

use switchboard_protocol::{
    ActorInfo, GameState, Joined, OpError, Properties, RaiseEvent, ReceiverGroup, ResultCode,
    RoomEvent, RoomOptions,
};

/// An actor of the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The authenticated user behind the actor.
    pub user_id: String,
}

/// A room.
#[derive(Debug, Clone)]
pub struct Room {
    name: String,
    options: RoomOptions,
    actors: BTreeMap<u32, Actor>,
    next_actor: u32,
}

/// What a join produced: the reply for the joiner and the `Join` event for every actor
/// (the joiner included).
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOutcome {
    /// The joiner's view of the room.
    pub joined: Joined,
    /// The event announcing the joiner.
    pub event: RoomEvent,
    /// Who receives `event`.
    pub recipients: Vec<u32>,
}

impl Room {
    /// A new, empty room.
    pub fn new(name: String, options: RoomOptions) -> Self {
        Room {
            name,
            options,
            actors: BTreeMap::new(),
            next_actor: 1,
        }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether no actor is left.
    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }

    /// The master client: the lowest actor number, 0 when empty.
    pub fn master_client(&self) -> u32 {
        self.actors.keys().next().copied().unwrap_or(0)
    }

    /// Actor numbers, ascending.
    pub fn actor_numbers(&self) -> Vec<u32> {
        self.actors.keys().copied().collect()
    }

    fn info(&self, actor: u32, a: &Actor) -> ActorInfo {
        ActorInfo {
            actor,
            user_id: if self.options.publish_user_id {
                a.user_id.clone()
            } else {
                String::new()
            },
        }
    }

    /// Adds the creator of a new room; it may join even a room created closed or with
    /// `max_players` 1.
    pub fn create(&mut self, user_id: &str) -> JoinOutcome {
        debug_assert!(self.actors.is_empty(), "create is the first join");
        self.add(user_id)
    }

    /// Adds an actor for `user_id`.
    pub fn join(&mut self, user_id: &str) -> Result<JoinOutcome, OpError> {
        if self.actors.values().any(|a| a.user_id == user_id) {
            return Err(OpError::new(
                ResultCode::JoinFailedPeerAlreadyJoined,
                "this user is already in the room",
            ));
        }
        if !self.options.is_open {
            return Err(OpError::new(ResultCode::GameClosed, "the game is closed"));
        }
        let max = self.options.max_players as usize;
        if max != 0 && self.actors.len() >= max {
            return Err(OpError::new(ResultCode::GameFull, "the game is full"));
        }
        Ok(self.add(user_id))
    }

    fn add(&mut self, user_id: &str) -> JoinOutcome {
        let number = self.next_actor;
        self.next_actor += 1;
        let actor = Actor {
            user_id: user_id.to_string(),
        };
        let info = self.info(number, &actor);
        self.actors.insert(number, actor);
        let joined = Joined {
            game: self.name.clone(),
            actor: number,
            master_client: self.master_client(),
            actors: self.actors.iter().map(|(n, a)| self.info(*n, a)).collect(),
            properties: self.options.properties.clone(),
            max_players: self.options.max_players,
        };
        JoinOutcome {
            joined,
            event: RoomEvent::Join {
                actor: info,
                actors: self.actor_numbers(),
            },
            recipients: self.actor_numbers(),
        }
    }

    /// Removes an actor; returns the `Leave` event and its recipients (the remaining
    /// actors), or `None` if the actor was not in the room.
    pub fn leave(&mut self, actor: u32) -> Option<(RoomEvent, Vec<u32>)> {
        self.actors.remove(&actor)?;
        let event = RoomEvent::Leave {
            actor,
            master_client: self.master_client(),
        };
        Some((event, self.actor_numbers()))
    }

    /// Who receives `event` from `sender`: explicit targets (those present) if any, else
    /// the receiver group. A sender that is not in the room reaches nobody.
    pub fn recipients(&self, sender: u32, event: &RaiseEvent) -> Vec<u32> {
        if !self.actors.contains_key(&sender) {
            return Vec::new();
        }
        if !event.targets.is_empty() {
            let mut targets: Vec<u32> = event
                .targets
                .iter()
                .copied()
                .filter(|t| self.actors.contains_key(t))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            return targets;
        }
        match event.receivers {
            ReceiverGroup::Others => self
                .actors
                .keys()
                .copied()
                .filter(|a| *a != sender)
                .collect(),
            ReceiverGroup::All => self.actor_numbers(),
            ReceiverGroup::MasterClient => vec![self.master_client()],
        }
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
            player_count: self.actors.len() as u32,
            max_players: self.options.max_players,
            is_open: self.options.is_open,
            is_visible: self.options.is_visible,
            lobby_properties,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use switchboard_protocol::Value;

    fn event(receivers: ReceiverGroup, targets: Vec<u32>) -> RaiseEvent {
        RaiseEvent {
            code: 1,
            receivers,
            targets,
            data: Bytes::new(),
        }
    }

    #[test]
    fn actors_are_numbered_and_announced() {
        let mut r = Room::new("g".into(), RoomOptions::default());
        let a = r.join("alice").unwrap();
        assert_eq!(a.joined.actor, 1);
        assert_eq!(a.joined.master_client, 1);
        assert_eq!(a.recipients, vec![1]);
        let b = r.join("bob").unwrap();
        assert_eq!(b.joined.actor, 2);
        assert_eq!(b.recipients, vec![1, 2]);
        assert_eq!(b.joined.actors.len(), 2);
        assert_eq!(
            b.event,
            RoomEvent::Join {
                actor: ActorInfo {
                    actor: 2,
                    user_id: String::new()
                },
                actors: vec![1, 2]
            }
        );
    }

    #[test]
    fn user_ids_are_published_only_when_asked() {
        let mut r = Room::new(
            "g".into(),
            RoomOptions {
                publish_user_id: true,
                ..RoomOptions::default()
            },
        );
        let a = r.join("alice").unwrap();
        assert_eq!(a.joined.actors[0].user_id, "alice");
    }

    #[test]
    fn full_closed_and_duplicate_joins_are_refused() {
        let mut r = Room::new(
            "g".into(),
            RoomOptions {
                max_players: 1,
                ..RoomOptions::default()
            },
        );
        r.join("alice").unwrap();
        let code = |e: OpError| e.result_code().unwrap();
        assert_eq!(
            code(r.join("alice").unwrap_err()),
            ResultCode::JoinFailedPeerAlreadyJoined
        );
        assert_eq!(code(r.join("bob").unwrap_err()), ResultCode::GameFull);
        let mut closed = Room::new(
            "c".into(),
            RoomOptions {
                is_open: false,
                ..RoomOptions::default()
            },
        );
        assert_eq!(
            code(closed.join("bob").unwrap_err()),
            ResultCode::GameClosed
        );
    }

    #[test]
    fn leaving_moves_the_master_client_and_numbers_are_not_reused() {
        let mut r = Room::new("g".into(), RoomOptions::default());
        r.join("a").unwrap();
        r.join("b").unwrap();
        let (ev, to) = r.leave(1).unwrap();
        assert_eq!(
            ev,
            RoomEvent::Leave {
                actor: 1,
                master_client: 2
            }
        );
        assert_eq!(to, vec![2]);
        assert!(r.leave(1).is_none(), "leaving twice is a no-op");
        assert_eq!(r.join("a").unwrap().joined.actor, 3);
        r.leave(2).unwrap();
        r.leave(3).unwrap();
        assert!(r.is_empty());
        assert_eq!(r.master_client(), 0);
    }

    #[test]
    fn recipients_follow_targets_then_groups() {
        let mut r = Room::new("g".into(), RoomOptions::default());
        for u in ["a", "b", "c"] {
            r.join(u).unwrap();
        }
        assert_eq!(
            r.recipients(2, &event(ReceiverGroup::Others, vec![])),
            vec![1, 3]
        );
        assert_eq!(
            r.recipients(2, &event(ReceiverGroup::All, vec![])),
            vec![1, 2, 3]
        );
        assert_eq!(
            r.recipients(2, &event(ReceiverGroup::MasterClient, vec![])),
            vec![1]
        );
        assert_eq!(
            r.recipients(2, &event(ReceiverGroup::All, vec![3, 9, 3, 1])),
            vec![1, 3],
            "targets win, absent ones are skipped, duplicates collapse"
        );
        assert!(
            r.recipients(9, &event(ReceiverGroup::All, vec![]))
                .is_empty()
        );
    }

    #[test]
    fn game_state_lists_only_lobby_properties() {
        let mut opts = RoomOptions {
            max_players: 4,
            lobby_properties: vec!["map".into(), "missing".into()],
            ..RoomOptions::default()
        };
        opts.properties
            .insert("map".into(), Value::Str("dust".into()));
        opts.properties.insert("secret".into(), Value::Int(1));
        let mut r = Room::new("g".into(), opts);
        r.join("a").unwrap();
        let s = r.game_state();
        assert_eq!(s.player_count, 1);
        assert_eq!(s.max_players, 4);
        assert_eq!(s.lobby_properties.len(), 1);
        assert!(s.lobby_properties.contains_key("map"));
    }
}
