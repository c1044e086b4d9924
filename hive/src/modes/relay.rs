//! The relay mode: Photon's Hive rules. Any active actor sends to anyone; the master
//! client is the authority only in name (`ReceiverGroup::Host` reaches it), and its
//! changes are announced by the room's own `Leave` and `MasterClientChanged` events.

use switchboard_protocol::{OpError, RaiseEvent};

use super::Mode;

/// The relay mode (no state).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Relay;

impl Mode for Relay {
    fn check_event(&self, _: u32, _: u32, _: &RaiseEvent) -> Result<(), OpError> {
        Ok(())
    }
}
