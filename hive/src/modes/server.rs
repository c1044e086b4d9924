//! The server mode: a dedicated server, authenticated at the master as one, created the
//! room and is its authority for the room's life (it cannot be displaced). Clients send
//! to it only; it sends to anyone. Properties, join approval and the room's end when the
//! authority leaves are the room's (`room/approval.rs`, `room/properties.rs`); this file
//! is the routing.

use std::time::Instant;

use switchboard_protocol::{EventData, GameReply, HostChange, OpError, RaiseEvent, ResultCode};

use super::{Mode, to_host_only};
use crate::room::Out;

/// The server mode (its authority is the room's).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Server;

impl Mode for Server {
    fn check_event(&self, host: u32, sender: u32, event: &RaiseEvent) -> Result<(), OpError> {
        if sender == host || to_host_only(host, event) {
            return Ok(());
        }
        Err(OpError::new(
            ResultCode::NotAllowed,
            format!(
                "in a Server room, clients send to the authority only (receivers Host, or target {host})"
            ),
        ))
    }

    fn relayed(&mut self, _: u32, _: &[u32], _: &EventData, _: bool) {}

    fn authority_moved(
        &mut self,
        _: u32,
        _: &[u32],
        _: u32,
        _: HostChange,
        _: Instant,
    ) -> Vec<Out> {
        Vec::new()
    }

    fn upload_snapshot(
        &mut self,
        _: u32,
        _: u32,
        _: bytes::Bytes,
        _: Instant,
    ) -> Result<GameReply, OpError> {
        Err(OpError::new(
            ResultCode::OperationInvalid,
            "snapshots are kept by Host rooms only; this room is a Server room",
        ))
    }
}
