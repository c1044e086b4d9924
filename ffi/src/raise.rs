//! Events with every option of `RaiseEvent` (docs/PROTOCOL.md 6.1): explicit target
//! actors, interest groups, the room's event cache and reliable channels; and joining
//! and leaving interest groups.

use switchboard_client::Delivery;
use switchboard_protocol::messages::game::MAX_CHANNEL;
use switchboard_protocol::{EventCaching, GameOp, RaiseEvent, ReceiverGroup};

use crate::room::{array, bytes};
use crate::{SB_ERR_INVALID, SB_OK, SbClient, client, guard};

/// How `sb_raise_event_with` sends an event. All zero is "to the others, unreliable,
/// not cached, no group, channel 0".
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SbRaiseOptions {
    /// 0 others, 1 all, 2 the master client, 3 the host (when `targets` is empty).
    pub receivers: u8,
    /// Non-zero: reliable, on `channel`; else a datagram (reliably when it does not fit).
    pub reliable: u8,
    /// Reliable channel 0 to 15: events of one channel arrive in order, channels do not
    /// wait for each other (0 shares the control stream with the room's operations).
    pub channel: u8,
    /// Interest group 1 to 255 (its members but the sender), 0: none.
    pub group: u8,
    /// The room's event cache: 0 none, 1 add (removed when the sender leaves), 2 add for
    /// the room's life, 3 remove cached events with this code (0: any) of the senders in
    /// `targets` (none: any), 4 remove those of actors who left. 3 and 4 deliver nothing.
    pub cache: u8,
    /// Explicit recipients (actor numbers); when given they take precedence.
    pub targets: *const u32,
    /// How many.
    pub target_count: usize,
}

impl Default for SbRaiseOptions {
    fn default() -> Self {
        SbRaiseOptions {
            receivers: 0,
            reliable: 0,
            channel: 0,
            group: 0,
            cache: 0,
            targets: std::ptr::null(),
            target_count: 0,
        }
    }
}

/// Raises an event with `how` (null: the defaults, all zero). Values outside the enums
/// and a channel over 15 are refused at once with `SB_ERR_INVALID`. Events have no
/// answer: what the room refuses (caching an event with targets or a group; in a `Host`
/// or `Server` room, an event not addressed to the authority; docs/PROTOCOL.md 6.1 and
/// 14) comes back as `SB_EVENT_ERROR_INFO`, and an event over the connection's byte rate
/// (256 KiB/s, burst 256 KiB by default) is dropped.
///
/// # Safety
/// As `sb_raise_event`; `how` null or readable, its `targets` pointing to
/// `target_count` readable numbers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_raise_event_with(
    client: *mut SbClient,
    code: u8,
    data: *const u8,
    len: usize,
    how: *const SbRaiseOptions,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let c = unsafe { self::client(client) }?;
        // SAFETY: the caller promises `how` is null or readable.
        let how = unsafe { how.as_ref() }.copied().unwrap_or_default();
        let receivers = match how.receivers {
            0 => ReceiverGroup::Others,
            1 => ReceiverGroup::All,
            2 => ReceiverGroup::MasterClient,
            3 => ReceiverGroup::Host,
            n => return Err((SB_ERR_INVALID, format!("receivers {n} is not 0 to 3"))),
        };
        let cache = match how.cache {
            0 => EventCaching::DoNotCache,
            1 => EventCaching::AddToRoomCache,
            2 => EventCaching::AddToRoomCacheGlobal,
            3 => EventCaching::RemoveFromRoomCache,
            4 => EventCaching::RemoveFromRoomCacheForActorsLeft,
            n => return Err((SB_ERR_INVALID, format!("cache {n} is not 0 to 4"))),
        };
        // SAFETY: the caller promises `target_count` readable numbers; copied now.
        let targets = unsafe { array(how.targets, how.target_count, "targets") }?.to_vec();
        // SAFETY: forwarded from the caller.
        let data = unsafe { bytes(data, len, "data") }?;
        let event = RaiseEvent {
            code,
            receivers,
            targets,
            group: how.group,
            cache,
            channel: how.channel,
            data,
        };
        if how.channel > MAX_CHANNEL {
            return Err((
                SB_ERR_INVALID,
                format!("channel {} is not 0 to {MAX_CHANNEL}", how.channel),
            ));
        }
        let delivery = match (how.reliable != 0, how.channel) {
            (false, _) => Delivery::Unreliable,
            (true, 0) => Delivery::Reliable,
            (true, ch) => Delivery::Channel(ch),
        };
        c.inner.raise_event(event, delivery);
        Ok(SB_OK)
    })
}

/// Leaves interest groups, then joins others (1 to 255): `remove_all` non-zero leaves
/// every group (then `remove` is ignored), else the `remove_len` groups at `remove`;
/// then joins the `add_len` groups at `add`. Events raised to a group reach its members.
///
/// # Safety
/// As `sb_authenticate`; `remove` and `add` point to their lengths' readable bytes (or
/// are null with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_change_groups(
    client: *mut SbClient,
    remove_all: u8,
    remove: *const u8,
    remove_len: usize,
    add: *const u8,
    add_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let c = unsafe { self::client(client) }?;
        let remove = if remove_all != 0 {
            Some(Vec::new())
        } else if remove_len == 0 {
            None
        } else {
            // SAFETY: forwarded from the caller.
            Some(unsafe { bytes(remove, remove_len, "remove") }?.to_vec())
        };
        // SAFETY: forwarded from the caller.
        let add = unsafe { bytes(add, add_len, "add") }?.to_vec();
        c.inner.room_op(GameOp::ChangeGroups { remove, add });
        Ok(SB_OK)
    })
}
