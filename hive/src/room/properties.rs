//! `SetProperties` (with compare-and-set), `SetMasterClient` (compare-and-set on the
//! master client) and `ChangeGroups`.

use switchboard_protocol::frame::encoded_len;
use switchboard_protocol::messages::common::check_expected_users;
use switchboard_protocol::{
    OpError, Properties, PropertyPolicy, ResultCode, RoomEvent, RoomMode, SetProperties, Value,
};

use super::{Out, Room, actor_weight, check_request_properties, err};

fn matches_expected(current: &Properties, expected: &Properties) -> bool {
    expected.iter().all(|(k, v)| match current.get(k) {
        Some(c) => c == v,
        None => *v == Value::Null,
    })
}

fn apply(target: &mut Properties, changes: &Properties, delete_null: bool) {
    for (k, v) in changes {
        if delete_null && *v == Value::Null {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

impl Room {
    /// Sets room (`target` 0) or actor properties for active actor `sender`.
    pub(crate) fn set_properties(
        &mut self,
        sender: u32,
        sp: SetProperties,
    ) -> Result<Vec<Out>, OpError> {
        if !self.actors.get(&sender).is_some_and(|a| a.active()) {
            return Err(err(
                ResultCode::OperationNotAllowedInCurrentState,
                "not an active actor",
            ));
        }
        check_request_properties(&self.limits, &[&sp.properties, &sp.expected])?;
        if sp.target != 0 && sp.room != Default::default() {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                "room settings need target 0",
            ));
        }
        let open = self.options.property_policy == PropertyPolicy::Open;
        // A Server room's authority changes anything; the others nothing, unless the
        // room is Open, where they change their own properties (not the room's).
        let server = self.options.mode == RoomMode::Server;
        if server && self.authority != Some(sender) {
            if !open || sp.target != sender {
                return Err(err(
                    ResultCode::NotAllowed,
                    "in a Server room only the authority changes properties (in an Open one, actors change their own)",
                ));
            }
        } else if !open && !server {
            if (sp.target == 0 || sp.room != Default::default()) && sender != self.master_client() {
                return Err(err(
                    ResultCode::NotAllowed,
                    "only the master client changes the room's properties and settings",
                ));
            }
            if sp.target != 0 && sp.target != sender {
                return Err(err(
                    ResultCode::NotAllowed,
                    "an actor changes only its own properties",
                ));
            }
        }
        let cas = !sp.expected.is_empty();
        let delete_null = self.options.delete_null_props;
        let room_change = sp.room.clone();
        let mut lobby_relevant = false;
        if sp.target == 0 {
            if !matches_expected(&self.options.properties, &sp.expected) {
                return Err(err(
                    ResultCode::OperationInvalid,
                    "the expected values do not match",
                ));
            }
            let mut next = self.options.properties.clone();
            apply(&mut next, &sp.properties, delete_null);
            let size = encoded_len(&next);
            if size > self.limits.max_room_prop_bytes || next.len() > self.limits.max_prop_keys {
                return Err(err(
                    ResultCode::OperationLimitReached,
                    format!(
                        "room properties would take {size} bytes in {} keys; the limits are {} and {}",
                        next.len(),
                        self.limits.max_room_prop_bytes,
                        self.limits.max_prop_keys
                    ),
                ));
            }
            self.check_lobby_properties(&next)?;
            self.check_joined_size(size, self.actors_weight)?;
            self.check_room_change(&room_change)?;
            lobby_relevant = sp
                .properties
                .keys()
                .any(|k| self.options.lobby_properties.contains(k));
            self.options.properties = next;
            lobby_relevant |= self.apply_room_change(room_change);
        } else {
            if room_change != Default::default() {
                return Err(err(
                    ResultCode::InvalidRequestParameters,
                    "room settings need target 0",
                ));
            }
            let actor = self.actors.get(&sp.target).ok_or_else(|| {
                err(
                    ResultCode::InvalidRequestParameters,
                    format!("no actor {}", sp.target),
                )
            })?;
            if !matches_expected(&actor.properties, &sp.expected) {
                return Err(err(
                    ResultCode::OperationInvalid,
                    "the expected values do not match",
                ));
            }
            let mut next = actor.properties.clone();
            apply(&mut next, &sp.properties, delete_null);
            self.check_actor_properties(&next)?;
            let weight = actor_weight(&actor.user_id, &next);
            let total = self.actors_weight - actor.weight + weight;
            self.check_joined_size(encoded_len(&self.options.properties), total)?;
            let actor = self.actors.get_mut(&sp.target).expect("found above");
            actor.properties = next;
            actor.weight = weight;
            self.actors_weight = total;
        }
        let mut out = Vec::new();
        if sp.broadcast || cas {
            let to = if cas || self.options.broadcast_props_change_to_all {
                self.active_actors()
            } else {
                self.active_except(sender)
            };
            out.push(Out::Event {
                to,
                event: RoomEvent::PropertiesChanged {
                    target: sp.target,
                    sender,
                    properties: sp.properties,
                    room: sp.room,
                },
            });
        }
        if lobby_relevant {
            out.push(Out::Publish);
        }
        Ok(out)
    }

    fn check_room_change(&self, c: &switchboard_protocol::RoomChange) -> Result<(), OpError> {
        if let Some(max) = c.max_players {
            let needed = self.actors.len()
                + c.expected_users
                    .as_ref()
                    .map_or(self.expected_users.len(), Vec::len);
            if max != 0 && (max as usize) < needed {
                return Err(err(
                    ResultCode::InvalidRequestParameters,
                    format!("max_players {max} is below the {needed} actors and reserved slots"),
                ));
            }
        }
        if let Some(users) = &c.expected_users {
            check_expected_users(users)?;
            let max = c.max_players.unwrap_or(self.options.max_players) as usize;
            if max != 0 && self.actors.len() + users.len() > max {
                return Err(err(ResultCode::SlotError, "the expected users do not fit"));
            }
        }
        Ok(())
    }

    /// Applies checked room settings; true if anything lobby-relevant changed.
    fn apply_room_change(&mut self, c: switchboard_protocol::RoomChange) -> bool {
        let mut changed = false;
        if let Some(max) = c.max_players {
            changed |= self.options.max_players != max;
            self.options.max_players = max;
        }
        if let Some(open) = c.is_open {
            changed |= self.options.is_open != open;
            self.options.is_open = open;
        }
        if let Some(visible) = c.is_visible {
            changed |= self.options.is_visible != visible;
            self.options.is_visible = visible;
        }
        if let Some(users) = c.expected_users {
            let users: Vec<String> = users
                .into_iter()
                .filter(|u| !self.actors.values().any(|a| &a.user_id == u))
                .collect();
            changed |= self.expected_users != users;
            self.expected_users = users;
        }
        changed
    }

    /// Makes `new` the master client if the current one is still `expected`.
    pub(crate) fn set_master_client(
        &mut self,
        sender: u32,
        new: u32,
        expected: u32,
    ) -> Result<Vec<Out>, OpError> {
        if !self.actors.get(&sender).is_some_and(|a| a.active()) {
            return Err(err(
                ResultCode::OperationNotAllowedInCurrentState,
                "not an active actor",
            ));
        }
        if self.options.mode == RoomMode::Server {
            return Err(err(
                ResultCode::NotAllowed,
                "the authority of a Server room cannot be displaced",
            ));
        }
        let guarded = self.options.property_policy == PropertyPolicy::Guarded
            || self.options.mode == RoomMode::Host;
        if guarded && sender != self.master_client() {
            return Err(err(
                ResultCode::NotAllowed,
                "only the master client hands the role over",
            ));
        }
        if self.master_client() != expected {
            return Err(err(
                ResultCode::OperationInvalid,
                "the master client is not the expected one",
            ));
        }
        if !self.actors.get(&new).is_some_and(|a| a.active()) {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                format!("actor {new} is not active"),
            ));
        }
        self.master_override = Some(new);
        Ok(vec![Out::Event {
            to: self.active_actors(),
            event: RoomEvent::MasterClientChanged {
                master_client: new,
                sender,
            },
        }])
    }

    /// Leaves groups (`Some([])` = all) and joins others.
    pub(crate) fn change_groups(
        &mut self,
        actor: u32,
        remove: Option<Vec<u8>>,
        add: Vec<u8>,
    ) -> Result<(), OpError> {
        if add.contains(&0) {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                "group 0 is everyone and cannot be joined",
            ));
        }
        let a = self
            .actors
            .get_mut(&actor)
            .filter(|a| a.active())
            .ok_or_else(|| {
                err(
                    ResultCode::OperationNotAllowedInCurrentState,
                    "not an active actor",
                )
            })?;
        match remove {
            Some(r) if r.is_empty() => a.groups.clear(),
            Some(r) => a.groups.retain(|g| !r.contains(g)),
            None => {}
        }
        a.groups.extend(add);
        Ok(())
    }
}
