//! Switchboard's room core, sans-IO in the style of quinn-proto: it owns no socket, no
//! task and no clock. The game server's shell feeds it what members send, with the time,
//! and carries out what comes back.
//!
//! - [`room`]: one room with Photon's Hive semantics (actors, master client, PlayerTtl,
//!   relay recipients, groups, cache, properties), and its one entry point,
//!   [`Room::handle`];
//! - `modes`: how a room routes events and who holds authority (`relay`, `host`), one
//!   file per mode behind one trait;
//! - [`admission`]: who may create or join here (server state, ticket, terms);
//! - [`registry`]: the server's rooms by name;
//! - `harness` (tests): in-memory members and a virtual clock.

pub mod admission;
#[cfg(test)]
mod harness;
mod modes;
pub mod registry;
pub mod room;

pub use registry::Registry;
pub use room::persist::{SavedActor, SavedEvent, SavedMode, SavedObject, SavedRoom};
pub use room::{Actor, Input, Origin, Out, Presence, Room, RoomLimits, To, Via};
