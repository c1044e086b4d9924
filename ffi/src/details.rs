//! What an event carries beyond `SbEvent`'s fields (properties, the actors of a room, a
//! lobby's games, a network object), read by index after `sb_poll` with the
//! `sb_event_*` functions. Like `SbEvent`'s own pointers, what they point into stays
//! valid until the next `sb_poll` or `sb_client_free` on that client.

use switchboard_protocol::{ActorInfo, GameListEntry, ObjectInfo, Properties, RoomMode, Value};

use crate::{SB_ERR_NULL, SbClient, client, guard};

/// The last polled event's details.
#[derive(Debug, Default)]
pub(crate) struct Details {
    pub(crate) properties: Vec<(String, Value)>,
    pub(crate) claims: Vec<(String, Value)>,
    pub(crate) actors: Vec<ActorInfo>,
    pub(crate) games: Vec<GameListEntry>,
    pub(crate) object: Option<ObjectInfo>,
}

/// A property's value is absent (null: deleted, or a null value).
pub const SB_VALUE_NULL: u32 = 0;
/// A property's value is a boolean, in `int_value` (0 or 1).
pub const SB_VALUE_BOOL: u32 = 1;
/// A property's value is an integer, in `int_value`.
pub const SB_VALUE_INT: u32 = 2;
/// A property's value is a float, in `float_value`.
pub const SB_VALUE_FLOAT: u32 = 3;
/// A property's value is UTF-8 text, in `data`/`data_len`.
pub const SB_VALUE_STR: u32 = 4;
/// A property's value is bytes, in `data`/`data_len`.
pub const SB_VALUE_BYTES: u32 = 5;

/// Room modes (`SbRoomOptions.mode`, and `flags` of `SB_EVENT_JOINED`): the Photon relay,
/// no authority but the master client.
pub const SB_MODE_RELAY: u32 = 0;
/// Room mode: a player hosts the match, with host migration.
pub const SB_MODE_HOST: u32 = 1;
/// Room mode: a dedicated server owns the room.
pub const SB_MODE_SERVER: u32 = 2;
/// Room mode: players own network objects, the room manages state authority.
pub const SB_MODE_SHARED: u32 = 3;

/// One property (key and value): read with the `sb_event_*` functions, and given to
/// `sb_set_properties`, `SbRoomOptions.properties` and `sb_join_random` (where `kind`
/// says which value field counts).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbProperty {
    /// The key, UTF-8 (not terminated).
    pub key: *const u8,
    /// Its length.
    pub key_len: usize,
    /// `SB_VALUE_*`.
    pub kind: u32,
    /// A boolean's or integer's value.
    pub int_value: i64,
    /// A float's value.
    pub float_value: f64,
    /// Text's or bytes' value.
    pub data: *const u8,
    /// Its length.
    pub data_len: usize,
}

/// One actor of a room.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbActor {
    /// Its number.
    pub actor: u32,
    /// 1 if it is inactive (may come back), else 0.
    pub inactive: u32,
    /// Its user id, UTF-8 (empty unless the room publishes user ids).
    pub user_id: *const u8,
    /// Its length.
    pub user_id_len: usize,
    /// How many properties it has (`sb_event_actor_property`).
    pub property_count: u32,
}

/// One game of a lobby's list.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbGame {
    /// Its name, UTF-8.
    pub name: *const u8,
    /// Its length.
    pub name_len: usize,
    /// 1 if this update removes the game from the list.
    pub removed: u32,
    /// 1 if it can be joined.
    pub is_open: u32,
    /// Its active players.
    pub player_count: u32,
    /// Its limit (0: none).
    pub max_players: u32,
    /// How many properties the lobby shows of it (`sb_event_game_property`).
    pub property_count: u32,
}

/// A network object, as spawned.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbObject {
    /// Its number.
    pub object: u32,
    /// The application's type number.
    pub type_id: u32,
    /// The object it is nested in (0: none).
    pub parent: u32,
    /// Who holds its state authority (0: nobody).
    pub state_authority: u32,
    /// Who holds its input authority (0: nobody).
    pub input_authority: u32,
    /// `SB_SPAWN_*` bits it was spawned with.
    pub flags: u32,
    /// The tick of its state.
    pub tick: u64,
    /// Its state.
    pub state: *const u8,
    /// Its length.
    pub state_len: usize,
}

pub(crate) fn mode_number(mode: RoomMode) -> u32 {
    match mode {
        RoomMode::Relay => SB_MODE_RELAY,
        RoomMode::Host => SB_MODE_HOST,
        RoomMode::Server => SB_MODE_SERVER,
        RoomMode::Shared => SB_MODE_SHARED,
    }
}

fn property(key: &str, value: &Value) -> SbProperty {
    let mut p = SbProperty {
        key: key.as_ptr(),
        key_len: key.len(),
        kind: SB_VALUE_NULL,
        int_value: 0,
        float_value: 0.0,
        data: std::ptr::null(),
        data_len: 0,
    };
    match value {
        Value::Null => {}
        Value::Bool(b) => (p.kind, p.int_value) = (SB_VALUE_BOOL, i64::from(*b)),
        Value::Int(i) => (p.kind, p.int_value) = (SB_VALUE_INT, *i),
        Value::Float(f) => (p.kind, p.float_value) = (SB_VALUE_FLOAT, *f),
        Value::Str(t) => (p.kind, p.data, p.data_len) = (SB_VALUE_STR, t.as_ptr(), t.len()),
        Value::Bytes(b) => (p.kind, p.data, p.data_len) = (SB_VALUE_BYTES, b.as_ptr(), b.len()),
    }
    p
}

/// Writes `item(details)` to `out` when it exists: returns 1, or 0 past the end.
///
/// # Safety
/// `c` as for every call; `out` must be writable (null is refused).
unsafe fn read<T>(c: *mut SbClient, out: *mut T, item: impl FnOnce(&Details) -> Option<T>) -> i32 {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let c = unsafe { client(c) }?;
        if out.is_null() {
            return Err((SB_ERR_NULL, "out is null".into()));
        }
        Ok(match item(&c.details) {
            Some(v) => {
                // SAFETY: `out` is not null (checked) and writable (the caller's promise).
                unsafe { out.write(v) };
                1
            }
            None => 0,
        })
    })
}

/// Property number `index` (in key order) of a map.
fn nth(props: &Properties, index: u32) -> Option<SbProperty> {
    let (k, v) = props.iter().nth(index as usize)?;
    Some(property(k, v))
}

fn sorted(props: &[(String, Value)], index: usize) -> Option<SbProperty> {
    props.get(index).map(|(k, v)| property(k, v))
}

/// The last event's property number `index` (from 0; in key order): the room's for
/// `SB_EVENT_JOINED`, the joiner's for `SB_EVENT_ACTOR_JOINED` and
/// `SB_EVENT_JOIN_REQUEST`, what changed for `SB_EVENT_PROPERTIES_CHANGED`. Returns 1
/// and fills `*out`, or 0 when there is no such property.
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call; `out` must be
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_property(
    client: *mut SbClient,
    index: u32,
    out: *mut SbProperty,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe { read(client, out, |d| sorted(&d.properties, index as usize)) }
}

/// The claims of `SB_EVENT_JOIN_REQUEST`'s joiner (what its authentication provider
/// said of it), like `sb_event_property`.
///
/// # Safety
/// As `sb_event_property`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_claim(
    client: *mut SbClient,
    index: u32,
    out: *mut SbProperty,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe { read(client, out, |d| sorted(&d.claims, index as usize)) }
}

/// `SB_EVENT_JOINED`'s actor number `index` (from 0, `count` of them). Returns 1 and
/// fills `*out`, or 0.
///
/// # Safety
/// As `sb_event_property`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_actor(
    client: *mut SbClient,
    index: u32,
    out: *mut SbActor,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(client, out, |d| {
            d.actors.get(index as usize).map(|a| SbActor {
                actor: a.actor,
                inactive: u32::from(a.inactive),
                user_id: a.user_id.as_ptr(),
                user_id_len: a.user_id.len(),
                property_count: a.properties.len() as u32,
            })
        })
    }
}

/// Property number `index` of `SB_EVENT_JOINED`'s actor number `actor_index`.
///
/// # Safety
/// As `sb_event_property`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_actor_property(
    client: *mut SbClient,
    actor_index: u32,
    index: u32,
    out: *mut SbProperty,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(client, out, |d| {
            nth(&d.actors.get(actor_index as usize)?.properties, index)
        })
    }
}

/// `SB_EVENT_GAME_LIST`'s game number `index` (from 0, `count` of them). Returns 1 and
/// fills `*out`, or 0.
///
/// # Safety
/// As `sb_event_property`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_game(client: *mut SbClient, index: u32, out: *mut SbGame) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(client, out, |d| {
            d.games.get(index as usize).map(|g| SbGame {
                name: g.game.as_ptr(),
                name_len: g.game.len(),
                removed: u32::from(g.removed),
                is_open: u32::from(g.is_open),
                player_count: g.player_count,
                max_players: g.max_players,
                property_count: g.properties.len() as u32,
            })
        })
    }
}

/// Property number `index` of `SB_EVENT_GAME_LIST`'s game number `game_index`.
///
/// # Safety
/// As `sb_event_property`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_game_property(
    client: *mut SbClient,
    game_index: u32,
    index: u32,
    out: *mut SbProperty,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(client, out, |d| {
            nth(&d.games.get(game_index as usize)?.properties, index)
        })
    }
}

/// `SB_EVENT_OBJECT_SPAWNED`'s object. Returns 1 and fills `*out`, or 0 for another
/// event.
///
/// # Safety
/// As `sb_event_property`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_event_object(client: *mut SbClient, out: *mut SbObject) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(client, out, |d| {
            d.object.as_ref().map(|o| SbObject {
                object: o.object,
                type_id: o.type_id,
                parent: o.parent,
                state_authority: o.state_authority,
                input_authority: o.input_authority,
                flags: crate::room::spawn_flags(o),
                tick: o.tick,
                state: o.state.as_ptr(),
                state_len: o.state.len(),
            })
        })
    }
}
