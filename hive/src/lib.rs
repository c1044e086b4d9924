//! Switchboard's room core, sans-IO in the style of quinn-proto: it owns no socket, no
//! task and no clock. The game server's shell feeds it what members send, with the time,
//! and carries out what comes back.
//!
//! - [`room`]: one room with Photon's Hive semantics (actors, master client, PlayerTtl,
//!   relay recipients, groups, cache, properties).

pub mod room;

pub use room::{Actor, Input, Origin, Out, Presence, Room, RoomLimits, Via};
