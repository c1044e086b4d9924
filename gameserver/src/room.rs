//! One room's state, sans-IO: actors, the master client, joining, leaving and who
//! receives an event. The room actor (`room_actor`) owns one and moves its outputs to the
//! connections.

use std::collections::BTreeMap;

use switchboard_protocol::{
    ActorInfo, GameState, JoinMode, Joined, OpError, Properties, RaiseEvent, ReceiverGroup,
    ResultCode, RoomEvent, RoomOptions,
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
    /// Users with a reserved slot who have not joined yet.
    expected_users: Vec<String>,
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
            expected_users: Vec::new(),
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

    /// Adds the creator of a new room, reserving slots for `expected_users`; the creator
    /// gets in even if the room is created closed.
    pub fn create(
        &mut self,
        user_id: &str,
        expected_users: &[String],
    ) -> Result<JoinOutcome, OpError> {
        debug_assert!(self.actors.is_empty(), "create is the first join");
        self.reserve(user_id, expected_users)?;
        Ok(self.add(user_id))
    }

    /// Slots taken: actors plus expected users who have not joined.
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
        let joiner_slot = usize::from(!self.expected_users.iter().any(|u| u == joiner));
        if max != 0 && self.taken() + joiner_slot + new.len() > max {
            return Err(OpError::new(
                ResultCode::SlotError,
                format!("{} expected users do not fit {max} players", new.len()),
            ));
        }
        self.expected_users.extend(new);
        Ok(())
    }

    /// Adds an actor for `user_id` according to the join mode, reserving slots for
    /// `expected_users`.
    pub fn join(
        &mut self,
        user_id: &str,
        mode: JoinMode,
        expected_users: &[String],
    ) -> Result<JoinOutcome, OpError> {
        if self.actors.values().any(|a| a.user_id == user_id) {
            return Err(OpError::new(
                ResultCode::JoinFailedPeerAlreadyJoined,
                "this user is already in the room",
            ));
        }
        if mode == JoinMode::RejoinOnly {
            // Inactive actors (PlayerTtl) do not exist yet: there is never one to take back.
            return Err(OpError::new(
                ResultCode::JoinFailedWithRejoinerNotFound,
                "this user has no inactive actor in the room",
            ));
        }
        if !self.options.is_open {
            return Err(OpError::new(ResultCode::GameClosed, "the game is closed"));
        }
        let max = self.options.max_players as usize;
        let expected = self.expected_users.iter().any(|u| u == user_id);
        if max != 0 && !expected && self.taken() >= max {
            return Err(OpError::new(ResultCode::GameFull, "the game is full"));
        }
        self.reserve(user_id, expected_users)?;
        Ok(self.add(user_id))
    }

    fn add(&mut self, user_id: &str) -> JoinOutcome {
        let number = self.next_actor;
        self.next_actor += 1;
        self.expected_users.retain(|u| u != user_id);
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
        let a = r.join("alice", JoinMode::JoinOnly, &[]).unwrap();
        assert_eq!(a.joined.actor, 1);
        assert_eq!(a.joined.master_client, 1);
        assert_eq!(a.recipients, vec![1]);
        let b = r.join("bob", JoinMode::JoinOnly, &[]).unwrap();
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
        let a = r.join("alice", JoinMode::JoinOnly, &[]).unwrap();
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
        r.join("alice", JoinMode::JoinOnly, &[]).unwrap();
        let code = |e: OpError| e.result_code().unwrap();
        assert_eq!(
            code(r.join("alice", JoinMode::JoinOnly, &[]).unwrap_err()),
            ResultCode::JoinFailedPeerAlreadyJoined
        );
        assert_eq!(
            code(r.join("bob", JoinMode::JoinOnly, &[]).unwrap_err()),
            ResultCode::GameFull
        );
        let mut closed = Room::new(
            "c".into(),
            RoomOptions {
                is_open: false,
                ..RoomOptions::default()
            },
        );
        assert_eq!(
            code(closed.join("bob", JoinMode::JoinOnly, &[]).unwrap_err()),
            ResultCode::GameClosed
        );
    }

    #[test]
    fn leaving_moves_the_master_client_and_numbers_are_not_reused() {
        let mut r = Room::new("g".into(), RoomOptions::default());
        r.join("a", JoinMode::JoinOnly, &[]).unwrap();
        r.join("b", JoinMode::JoinOnly, &[]).unwrap();
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
        assert_eq!(
            r.join("a", JoinMode::JoinOnly, &[]).unwrap().joined.actor,
            3
        );
        r.leave(2).unwrap();
        r.leave(3).unwrap();
        assert!(r.is_empty());
        assert_eq!(r.master_client(), 0);
    }

    #[test]
    fn recipients_follow_targets_then_groups() {
        let mut r = Room::new("g".into(), RoomOptions::default());
        for u in ["a", "b", "c"] {
            r.join(u, JoinMode::JoinOnly, &[]).unwrap();
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
        r.join("a", JoinMode::JoinOnly, &[]).unwrap();
        let s = r.game_state();
        assert_eq!(s.users, vec!["a".to_string()]);
        assert_eq!(s.max_players, 4);
        assert_eq!(s.lobby_properties.len(), 1);
        assert!(s.lobby_properties.contains_key("map"));
    }

    #[test]
    fn expected_users_hold_slots() {
        let mut r = Room::new(
            "g".into(),
            RoomOptions {
                max_players: 3,
                ..RoomOptions::default()
            },
        );
        let friends = ["bob".to_string(), "carol".to_string()];
        r.create("alice", &friends).unwrap();
        assert_eq!(r.game_state().expected_users, friends.to_vec());
        // The room is "full" for strangers, open for the expected.
        let code = |e: OpError| e.result_code().unwrap();
        assert_eq!(
            code(r.join("mallory", JoinMode::JoinOnly, &[]).unwrap_err()),
            ResultCode::GameFull
        );
        r.join("bob", JoinMode::JoinOnly, &[]).unwrap();
        assert_eq!(r.game_state().expected_users, vec!["carol".to_string()]);
        assert_eq!(r.game_state().users.len(), 2);
        // A reservation that does not fit is refused.
        let mut small = Room::new(
            "s".into(),
            RoomOptions {
                max_players: 2,
                ..RoomOptions::default()
            },
        );
        let e = small.create("a", &["b".into(), "c".into()]).unwrap_err();
        assert_eq!(code(e), ResultCode::SlotError);
        small.create("a", &[]).unwrap();
        let e = small
            .join("b", JoinMode::JoinOnly, &["c".into()])
            .unwrap_err();
        assert_eq!(code(e), ResultCode::SlotError);
    }

    #[test]
    fn rejoin_only_finds_no_inactive_actor() {
        let mut r = Room::new("g".into(), RoomOptions::default());
        r.create("a", &[]).unwrap();
        let e = r.join("b", JoinMode::RejoinOnly, &[]).unwrap_err();
        assert_eq!(
            e.result_code(),
            Some(ResultCode::JoinFailedWithRejoinerNotFound)
        );
        r.join("b", JoinMode::RejoinOrJoin, &[]).unwrap();
    }
}
