//! The relay mode: Photon's Hive rules. Any active actor sends to anyone; the master
//! client is the authority only in name (`ReceiverGroup::Host` reaches it), and its
//! changes are announced by the room's own `Leave` and `MasterClientChanged` events.

use std::time::Instant;

use switchboard_protocol::{EventData, GameReply, HostChange, OpError, RaiseEvent, ResultCode};

use super::Mode;
use crate::room::Out;

/// The relay mode (no state).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Relay;

impl Mode for Relay {
    fn check_event(&self, _: u32, _: u32, _: &RaiseEvent) -> Result<(), OpError> {
        Ok(())
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
            "snapshots are kept by Host rooms only; this room is a Relay room",
        ))
    }
}
