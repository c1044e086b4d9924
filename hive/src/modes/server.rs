//! The server mode: a dedicated server, authenticated at the master as one, created the
//! room and is its authority for the room's life (it cannot be displaced). Clients send
//! to it only; it sends to anyone. Properties, join approval and the room's end when the
//! authority leaves are the room's (`room/approval.rs`, `room/properties.rs`); this file
//! is the routing.

use switchboard_protocol::{OpError, RaiseEvent};

use super::{Mode, authority_routing};

/// The server mode (its authority is the room's).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Server;

impl Mode for Server {
    fn check_event(&self, host: u32, sender: u32, event: &RaiseEvent) -> Result<(), OpError> {
        authority_routing(host, sender, event, "Server")
    }
}
