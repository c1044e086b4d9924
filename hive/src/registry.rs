//! The rooms of one game server by name, sans-IO: a name is taken once; a room that ends
//! frees its name only if it is still the room registered under it (a later room of the
//! same name is left alone). `H` is whatever the shell reaches a room by.

use std::collections::HashMap;

use switchboard_protocol::{OpError, ResultCode};

/// Rooms by name.
#[derive(Debug)]
pub struct Registry<H> {
    rooms: HashMap<String, (u64, H)>,
    next_id: u64,
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Registry {
            rooms: HashMap::new(),
            next_id: 0,
        }
    }
}

impl<H: Clone> Registry<H> {
    /// Refuses a name that is taken (`GameIdAlreadyExists`).
    pub fn check_free(&self, name: &str) -> Result<(), OpError> {
        if self.rooms.contains_key(name) {
            return Err(OpError::new(
                ResultCode::GameIdAlreadyExists,
                format!("a game named {name:?} already exists"),
            ));
        }
        Ok(())
    }

    /// Registers a room under a free name (see [`Registry::check_free`]); its id, which
    /// tells it apart from later rooms of the same name.
    pub fn insert(&mut self, name: String, room: H) -> u64 {
        self.insert_with(name, |_| room);
        self.next_id
    }

    /// Registers the room `make` builds with its id, under a free name; returns it.
    pub fn insert_with(&mut self, name: String, make: impl FnOnce(u64) -> H) -> H {
        self.next_id += 1;
        let room = make(self.next_id);
        self.rooms.insert(name, (self.next_id, room.clone()));
        room
    }

    /// The room of that name (`GameDoesNotExist`).
    pub fn get(&self, name: &str) -> Result<H, OpError> {
        self.rooms.get(name).map(|(_, h)| h.clone()).ok_or_else(|| {
            OpError::new(
                ResultCode::GameDoesNotExist,
                format!("no game named {name:?} here"),
            )
        })
    }

    /// Removes room `id` of that name; false if another room holds the name now.
    pub fn remove(&mut self, name: &str, id: u64) -> bool {
        if self.rooms.get(name).is_some_and(|(i, _)| *i == id) {
            self.rooms.remove(name);
            return true;
        }
        false
    }

    /// The number of rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every room.
    pub fn rooms(&self) -> impl Iterator<Item = &H> {
        self.rooms.values().map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_taken_once_and_freed_only_by_its_own_room() {
        let mut r = Registry::default();
        let first = r.insert("g".into(), 'a');
        assert_eq!(
            r.check_free("g").unwrap_err().result_code(),
            Some(ResultCode::GameIdAlreadyExists)
        );
        assert!(r.remove("g", first));
        let second = r.insert("g".into(), 'b');
        assert!(
            !r.remove("g", first),
            "an old room does not free a new one's name"
        );
        assert_eq!(r.get("g"), Ok('b'));
        assert!(r.remove("g", second));
        assert_eq!(
            r.get("g").unwrap_err().result_code(),
            Some(ResultCode::GameDoesNotExist)
        );
        assert!(r.is_empty());
    }
}
