//! The calls beyond the first flow: room options and authority modes, a dedicated
//! server's authentication, random matchmaking and lobbies, the master client, join
//! approval, host snapshots, and network objects (docs/PROTOCOL.md §§5, 6 and 15).
//! Like every call they return at once; a refusal comes out of `sb_poll` as
//! `SB_EVENT_ERROR` with `SB_OP_ROOM` (room operations) or the call's own `SB_OP_*`.

use bytes::Bytes;
use switchboard_client::Delivery;
use switchboard_protocol::{
    CreateSpec, GameOp, JoinRandom, Lobby, LobbyKind, ObjectInfo, Properties, PropertyPolicy,
    RoomMode, RoomOptions, SetProperties, SpawnObject, StateUpdate, Value,
};

use crate::details::{
    SB_MODE_HOST, SB_MODE_RELAY, SB_MODE_SERVER, SB_MODE_SHARED, SB_VALUE_BOOL, SB_VALUE_BYTES,
    SB_VALUE_FLOAT, SB_VALUE_INT, SB_VALUE_NULL, SB_VALUE_STR, SbProperty,
};
use crate::{SB_ERR_INVALID, SB_ERR_NULL, SB_OK, SbClient, client, guard, required, text};

/// `sb_spawn` flag: another actor may take the object's state authority at any time.
pub const SB_SPAWN_ALLOW_OVERRIDE: u32 = 1;
/// `sb_spawn` flag: the object is despawned when its state authority leaves (else the
/// authority passes to the room).
pub const SB_SPAWN_DESPAWN_ON_LEAVE: u32 = 2;
/// `sb_spawn` flag: when its state authority leaves for good, the object passes to the
/// master client (else it is left with no state authority, for anyone to take).
pub const SB_SPAWN_MASTER_CLIENT_OBJECT: u32 = 4;

/// A room's options for `sb_create_game_with` and `sb_join_random` (docs/PROTOCOL.md,
/// `RoomOptions`). Fill one with `sb_room_options_default`, then change what you need.
/// The `u8` switches are on when non-zero.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbRoomOptions {
    /// At most this many players (0: no limit).
    pub max_players: u32,
    /// `SB_MODE_*`: who has authority in the room.
    pub mode: u32,
    /// 1: others may join (else only expected users and rejoins).
    pub is_open: u8,
    /// 1: listed in its lobby.
    pub is_visible: u8,
    /// 1: a `Server` room's authority approves each join (`SB_EVENT_JOIN_REQUEST`).
    pub join_approval: u8,
    /// 1: actors see each other's user ids.
    pub publish_user_id: u8,
    /// 1: any actor may set any property (Photon's behaviour); 0 (guarded, the
    /// default): each actor sets its own, and only the master client the room's.
    pub open_properties: u8,
    /// How long a player who left may come back, ms (-1: for as long as the room lives).
    pub player_ttl_ms: i32,
    /// How long the room outlives its last player, ms.
    pub empty_room_ttl_ms: u32,
    /// The per-recipient flush window for unreliable events, ms (-1: the server's
    /// default; 0: send at once).
    pub flush_window_ms: i32,
    /// The lobby the room is listed in, UTF-8 (null: the default lobby).
    pub lobby: *const u8,
    /// Its length.
    pub lobby_len: usize,
    /// 1: the lobby is an SQL lobby (its games are matched with filters).
    pub lobby_sql: u8,
    /// The room's first properties (`property_count` of them; null with 0: none).
    pub properties: *const SbProperty,
    /// How many.
    pub property_count: usize,
    /// The keys of the properties its lobby lists (and an SQL lobby matches on, e.g.
    /// `C0`), `lobby_property_count` of them.
    pub lobby_properties: *const SbText,
    /// How many.
    pub lobby_property_count: usize,
    /// 1: setting a property to `SB_VALUE_NULL` deletes it (else it keeps a null value,
    /// as in Photon by default).
    pub delete_null_properties: u8,
}

/// A UTF-8 string with its length.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbText {
    /// The bytes (not terminated).
    pub text: *const u8,
    /// How many.
    pub len: usize,
}

/// Fills `*out` with the protocol's default options (no limit, open, visible, `Relay`
/// mode, the default lobby). Returns `SB_OK`.
///
/// # Safety
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_room_options_default(out: *mut SbRoomOptions) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err((SB_ERR_NULL, "out is null".into()));
        }
        let d = RoomOptions::default();
        let o = SbRoomOptions {
            max_players: d.max_players,
            mode: SB_MODE_RELAY,
            is_open: u8::from(d.is_open),
            is_visible: u8::from(d.is_visible),
            join_approval: u8::from(d.join_approval),
            publish_user_id: u8::from(d.publish_user_id),
            open_properties: u8::from(d.property_policy == PropertyPolicy::Open),
            player_ttl_ms: d.player_ttl_ms,
            empty_room_ttl_ms: d.empty_room_ttl_ms,
            flush_window_ms: -1,
            lobby: std::ptr::null(),
            lobby_len: 0,
            lobby_sql: 0,
            properties: std::ptr::null(),
            property_count: 0,
            lobby_properties: std::ptr::null(),
            lobby_property_count: 0,
            delete_null_properties: u8::from(d.delete_null_props),
        };
        // SAFETY: `out` is not null (checked) and writable (the caller's promise).
        unsafe { out.write(o) };
        Ok(SB_OK)
    })
}

fn lobby(name: Option<&str>, sql: u8) -> Lobby {
    let kind = if sql != 0 {
        LobbyKind::Sql
    } else {
        LobbyKind::Default
    };
    Lobby::new(name.unwrap_or(""), kind)
}

/// The protocol's options from the C struct.
///
/// # Safety
/// `o.lobby` must point to `o.lobby_len` readable bytes, or be null with 0.
unsafe fn options(o: &SbRoomOptions) -> Result<RoomOptions, (i32, String)> {
    let mode = match o.mode {
        SB_MODE_RELAY => RoomMode::Relay,
        SB_MODE_HOST => RoomMode::Host,
        SB_MODE_SERVER => RoomMode::Server,
        SB_MODE_SHARED => RoomMode::Shared,
        n => return Err((SB_ERR_INVALID, format!("mode {n} is not 0 to 3"))),
    };
    // SAFETY: forwarded from the caller.
    let name = unsafe { text(o.lobby, o.lobby_len, "lobby") }?;
    // SAFETY: forwarded from the caller.
    let properties = unsafe { properties(o.properties, o.property_count) }?;
    // SAFETY: forwarded from the caller.
    let keys = unsafe {
        array(
            o.lobby_properties,
            o.lobby_property_count,
            "lobby_properties",
        )
    }?;
    let lobby_properties = keys
        .iter()
        // SAFETY: the caller promises each SbText points to its `len` readable bytes.
        .map(|k| unsafe { required(k.text, k.len, "a lobby property key") }.map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RoomOptions {
        properties,
        lobby_properties,
        max_players: o.max_players,
        is_open: o.is_open != 0,
        is_visible: o.is_visible != 0,
        publish_user_id: o.publish_user_id != 0,
        lobby: lobby(name, o.lobby_sql),
        player_ttl_ms: o.player_ttl_ms,
        empty_room_ttl_ms: o.empty_room_ttl_ms,
        property_policy: if o.open_properties != 0 {
            PropertyPolicy::Open
        } else {
            PropertyPolicy::Guarded
        },
        mode,
        join_approval: o.join_approval != 0,
        delete_null_props: o.delete_null_properties != 0,
        flush_window_ms: u32::try_from(o.flush_window_ms).ok(),
        ..RoomOptions::default()
    })
}

/// The bytes at `data` (`len` of them), copied.
///
/// # Safety
/// `data` must point to `len` readable bytes, or be null with 0.
pub(crate) unsafe fn bytes(
    data: *const u8,
    len: usize,
    what: &str,
) -> Result<Bytes, (i32, String)> {
    if len == 0 {
        Ok(Bytes::new())
    } else if data.is_null() {
        Err((SB_ERR_NULL, format!("{what} is null")))
    } else {
        crate::checked_len(len, what)?;
        // SAFETY: the caller promises `len` readable bytes at `data`; copied now.
        Ok(Bytes::copy_from_slice(unsafe {
            std::slice::from_raw_parts(data, len)
        }))
    }
}

/// The `count` items at `items` (an empty slice for 0).
///
/// # Safety
/// `items` must point to `count` readable items, or be null with 0.
pub(crate) unsafe fn array<'a, T>(
    items: *const T,
    count: usize,
    what: &str,
) -> Result<&'a [T], (i32, String)> {
    if count == 0 {
        return Ok(&[]);
    }
    if items.is_null() {
        return Err((SB_ERR_NULL, format!("{what} is null")));
    }
    if count > isize::MAX as usize / size_of::<T>().max(1) {
        return Err((SB_ERR_INVALID, format!("{what}: {count} is not a count")));
    }
    // SAFETY: the caller promises `count` readable items; the size fits (checked).
    Ok(unsafe { std::slice::from_raw_parts(items, count) })
}

/// Properties from C (`SbProperty`, its `kind` saying which value field counts).
///
/// # Safety
/// `props` must point to `count` readable `SbProperty`s whose pointers point to their
/// lengths' readable bytes.
pub(crate) unsafe fn properties(
    props: *const SbProperty,
    count: usize,
) -> Result<Properties, (i32, String)> {
    // SAFETY: forwarded from the caller.
    let props = unsafe { array(props, count, "properties") }?;
    let mut out = Properties::new();
    for p in props {
        // SAFETY: forwarded from the caller.
        let key = unsafe { required(p.key, p.key_len, "a property key") }?;
        let value = match p.kind {
            SB_VALUE_NULL => Value::Null,
            SB_VALUE_BOOL => Value::Bool(p.int_value != 0),
            SB_VALUE_INT => Value::Int(p.int_value),
            SB_VALUE_FLOAT => Value::Float(p.float_value),
            // SAFETY: forwarded from the caller.
            SB_VALUE_STR => Value::Str(
                unsafe { text(p.data, p.data_len, "a text value") }?
                    .unwrap_or("")
                    .to_string(),
            ),
            // SAFETY: forwarded from the caller.
            SB_VALUE_BYTES => Value::Bytes(unsafe { bytes(p.data, p.data_len, "a bytes value") }?),
            k => {
                return Err((
                    SB_ERR_INVALID,
                    format!("property {key:?}: kind {k} is not 0 to 5"),
                ));
            }
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// Runs `f` on the live client behind `c`.
///
/// # Safety
/// `c` must be null or a live handle used by no other thread during the call.
unsafe fn with(
    c: *mut SbClient,
    f: impl FnOnce(&mut SbClient) -> Result<(), (i32, String)>,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let c = unsafe { client(c) }?;
        f(c)?;
        Ok(SB_OK)
    })
}

/// Authenticates as a dedicated server (`name` and the secret the master was configured
/// with; docs/PROTOCOL.md 5.1); `SB_EVENT_AUTHENTICATED` follows. A room created after it
/// in `SB_MODE_SERVER` has this client as its authority.
///
/// # Safety
/// As `sb_authenticate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_authenticate_server(
    client: *mut SbClient,
    name: *const u8,
    name_len: usize,
    secret: *const u8,
    secret_len: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let name = required(name, name_len, "name")?;
            let secret = text(secret, secret_len, "secret")?.unwrap_or("");
            c.inner.authenticate_server(name, secret);
            Ok(())
        })
    }
}

/// Creates a game with `options` (null: the defaults) and joins it (`name` null: the
/// master names it).
///
/// # Safety
/// As `sb_authenticate`; `options` null or readable, its `lobby` as its fields say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_create_game_with(
    client: *mut SbClient,
    name: *const u8,
    name_len: usize,
    options: *const SbRoomOptions,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let name = text(name, name_len, "name")?;
            let options = match options.as_ref() {
                Some(o) => self::options(o)?,
                None => RoomOptions::default(),
            };
            c.inner.create_game(name, options);
            Ok(())
        })
    }
}

/// Joins a random open game of a lobby (`lobby` null: the default lobby; `lobby_sql` 1:
/// an SQL lobby, matched with `filter`, e.g. `C0 > 3`, on the games' lobby properties;
/// docs/PROTOCOL.md 5.3) whose limit is `max_players` (0: any) and whose lobby
/// properties have the `expected_count` values at `expected` (a default lobby). With `create_if_none` not null, creates a game with
/// those options when none matches; else no match is `SB_EVENT_ERROR` with
/// `NoRandomMatchFound` (32760).
///
/// # Safety
/// As `sb_authenticate`; `create_if_none` as `sb_create_game_with`'s `options`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sb_join_random(
    client: *mut SbClient,
    lobby: *const u8,
    lobby_len: usize,
    lobby_sql: u8,
    filter: *const u8,
    filter_len: usize,
    max_players: u32,
    expected: *const SbProperty,
    expected_count: usize,
    create_if_none: *const SbRoomOptions,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let name = text(lobby, lobby_len, "lobby")?;
            let filter = text(filter, filter_len, "filter")?.unwrap_or("");
            let expected_properties = properties(expected, expected_count)?;
            let create_if_none = match create_if_none.as_ref() {
                Some(o) => Some(CreateSpec {
                    game: None,
                    options: self::options(o)?,
                }),
                None => None,
            };
            c.inner.join_random(JoinRandom {
                lobby: self::lobby(name, lobby_sql),
                expected_max_players: max_players,
                expected_properties,
                sql_filter: filter.to_string(),
                create_if_none,
                ..JoinRandom::default()
            });
            Ok(())
        })
    }
}

/// Joins a lobby: its game list comes out as `SB_EVENT_GAME_LIST` (the whole list, then
/// changes), each game read with `sb_event_game`.
///
/// # Safety
/// As `sb_authenticate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_join_lobby(
    client: *mut SbClient,
    name: *const u8,
    name_len: usize,
    sql: u8,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let name = text(name, name_len, "name")?;
            c.inner.join_lobby(lobby(name, sql));
            Ok(())
        })
    }
}

/// Leaves the lobby.
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_leave_lobby(client: *mut SbClient) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            c.inner.leave_lobby();
            Ok(())
        })
    }
}

/// Sets a bytes property of the room (`target` 0) or an actor, and tells everyone.
///
/// # Safety
/// As `sb_authenticate`; `value` must point to `value_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_set_property_bytes(
    client: *mut SbClient,
    target: u32,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let key = required(key, key_len, "key")?;
            let value = bytes(value, value_len, "value")?;
            crate::set_property(c, target, key, Value::Bytes(value));
            Ok(())
        })
    }
}

/// This client's actor properties (`count` at `props`) for every later create and join:
/// the others see them in `SB_EVENT_ACTOR_JOINED` (and a dedicated server in
/// `SB_EVENT_JOIN_REQUEST`). Nothing is sent now; `sb_set_properties` changes them in a
/// room.
///
/// # Safety
/// As `sb_set_properties`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_set_actor_properties(
    client: *mut SbClient,
    props: *const SbProperty,
    count: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let properties = properties(props, count)?;
            c.inner.set_actor_properties(properties);
            Ok(())
        })
    }
}

/// Sets `count` properties of the room (`target` 0) or an actor at once (any kind;
/// `SB_VALUE_NULL` deletes the key in a room created with `delete_null_properties`,
/// else sets it to null), and tells everyone.
///
/// # Safety
/// As `sb_authenticate`; `props` points to `count` readable `SbProperty`s, their
/// pointers to their lengths' readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_set_properties(
    client: *mut SbClient,
    target: u32,
    props: *const SbProperty,
    count: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let properties = properties(props, count)?;
            c.inner.set_properties(SetProperties {
                target,
                properties,
                broadcast: true,
                ..SetProperties::default()
            });
            Ok(())
        })
    }
}

/// Makes `actor` the master client if the master client is still `expected`
/// (compare-and-set; docs/PROTOCOL.md 6.1); everyone gets
/// `SB_EVENT_MASTER_CLIENT_CHANGED`.
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_set_master_client(
    client: *mut SbClient,
    actor: u32,
    expected: u32,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            c.inner.room_op(GameOp::SetMasterClient { actor, expected });
            Ok(())
        })
    }
}

/// (The authority of a room with join approval) answers `SB_EVENT_JOIN_REQUEST`'s
/// `request`: lets the joiner in (`approve` 1) or refuses it with `reason` (at most 256
/// bytes; the joiner's `SB_EVENT_ERROR` carries it).
///
/// # Safety
/// As `sb_authenticate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_approve_join(
    client: *mut SbClient,
    request: u32,
    approve: u8,
    reason: *const u8,
    reason_len: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let reason = text(reason, reason_len, "reason")?.unwrap_or("");
            c.inner.room_op(GameOp::ApproveJoin {
                request,
                approve: approve != 0,
                reason: reason.to_string(),
            });
            Ok(())
        })
    }
}

/// (The host of a `Host` room) stores the game's state (at most 256 KiB) on the server:
/// the next host receives it with `SB_EVENT_HOST_CHANGED` if this one goes away.
///
/// # Safety
/// As `sb_authenticate`; `data` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_upload_snapshot(
    client: *mut SbClient,
    data: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let data = bytes(data, len, "data")?;
            c.inner.room_op(GameOp::UploadSnapshot { data });
            Ok(())
        })
    }
}

pub(crate) fn spawn_flags(o: &ObjectInfo) -> u32 {
    let mut flags = 0;
    if o.allow_override {
        flags |= SB_SPAWN_ALLOW_OVERRIDE;
    }
    if o.despawn_on_leave {
        flags |= SB_SPAWN_DESPAWN_ON_LEAVE;
    }
    if o.master_client_object {
        flags |= SB_SPAWN_MASTER_CLIENT_OBJECT;
    }
    flags
}

/// (`Shared` rooms) spawns a network object of `type_id` nested in `parent` (0: none)
/// with its first state; this client holds its state and input authority. Everyone,
/// this client too, gets `SB_EVENT_OBJECT_SPAWNED` with the object's number. `flags`:
/// `SB_SPAWN_*` bits.
///
/// # Safety
/// As `sb_authenticate`; `state` must point to `state_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_spawn(
    client: *mut SbClient,
    type_id: u32,
    parent: u32,
    tick: u64,
    state: *const u8,
    state_len: usize,
    flags: u32,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            if flags & !7 != 0 {
                return Err((SB_ERR_INVALID, format!("flags {flags:#x}: only bits 0-2")));
            }
            let state = bytes(state, state_len, "state")?;
            c.inner.spawn(SpawnObject {
                type_id,
                parent,
                state,
                tick,
                allow_override: flags & SB_SPAWN_ALLOW_OVERRIDE != 0,
                despawn_on_leave: flags & SB_SPAWN_DESPAWN_ON_LEAVE != 0,
                master_client_object: flags & SB_SPAWN_MASTER_CLIENT_OBJECT != 0,
            });
            Ok(())
        })
    }
}

/// (`Shared` rooms) despawns an object (and those nested in it) this client holds the
/// state authority of.
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_despawn(client: *mut SbClient, object: u32) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            c.inner.room_op(GameOp::Despawn { object });
            Ok(())
        })
    }
}

/// (`Shared` rooms) sends an object's new state (this client must hold its state
/// authority): the others get `SB_EVENT_OBJECT_STATE`. `reliable` 0 sends it as a
/// datagram (datagrams may be lost or reordered: the room drops one whose tick is lower
/// than this client's latest for the object), else on the control stream (always
/// applied).
///
/// # Safety
/// As `sb_authenticate`; `state` must point to `state_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_update_state(
    client: *mut SbClient,
    object: u32,
    tick: u64,
    state: *const u8,
    state_len: usize,
    reliable: u8,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            let state = bytes(state, state_len, "state")?;
            let delivery = if reliable != 0 {
                Delivery::Reliable
            } else {
                Delivery::Unreliable
            };
            c.inner.update_state(
                StateUpdate {
                    object,
                    tick,
                    state,
                },
                delivery,
            );
            Ok(())
        })
    }
}

/// (`Shared` rooms) asks for an object's state authority: granted when nobody holds it
/// or the object allows override; everyone gets `SB_EVENT_AUTHORITY_CHANGED` then. This
/// client gets `SB_EVENT_STATE_AUTHORITY` naming the holder either way.
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_request_state_authority(client: *mut SbClient, object: u32) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            c.inner.room_op(GameOp::RequestStateAuthority { object });
            Ok(())
        })
    }
}

/// (`Shared` rooms) gives up an object's state authority (`SB_EVENT_STATE_AUTHORITY`
/// answers).
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_release_state_authority(client: *mut SbClient, object: u32) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            c.inner.room_op(GameOp::ReleaseStateAuthority { object });
            Ok(())
        })
    }
}

/// (`Shared` rooms; the object's state authority) gives an object's input authority to
/// `actor` (0: nobody).
///
/// # Safety
/// `client` must be a live handle used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_assign_input_authority(
    client: *mut SbClient,
    object: u32,
    actor: u32,
) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with(client, |c| {
            c.inner
                .room_op(GameOp::AssignInputAuthority { object, actor });
            Ok(())
        })
    }
}
