//! What a room actor needs of a member's connection, and nothing more: queue a frame,
//! try a datagram now, close. The QUIC implementation is in `quic_member`; another
//! transport (WebTransport, an in-process test member) implements the same trait.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_protocol::CloseCode;
use switchboard_transport::{Overflow, Weighed};

/// Something to send to one member.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A complete frame for the control stream (channel 0).
    Frame(Bytes),
    /// A complete frame for reliable channel 1 to 15.
    Channel(u8, Bytes),
    /// An encoded `DatagramDown`.
    Datagram(Bytes),
}

impl Weighed for Outbound {
    fn weight(&self) -> usize {
        match self {
            Outbound::Frame(b) | Outbound::Channel(_, b) | Outbound::Datagram(b) => b.len(),
        }
    }
}

/// What became of a datagram offered for sending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datagram {
    /// Sent, this many bytes.
    Sent(usize),
    /// Not now: queue it behind what is queued (the writer sends it, or its reliable
    /// equivalent when it does not fit).
    Queue,
    /// The connection is going away; its own leave follows.
    Gone,
}

/// A room member's connection, as the room actor uses it.
pub(crate) trait Member: Send + Sync + std::fmt::Debug {
    /// Queues `out` behind what is queued (bounded: `Full` means the member does not
    /// read fast enough).
    fn queue(&self, out: Outbound) -> Result<(), Overflow>;
    /// Sends an encoded datagram at once if nothing is queued ahead of it and it fits.
    fn datagram_now(&self, datagram: &Bytes) -> Datagram;
    /// The largest datagram the member's path carries now (`None`: it takes none).
    fn max_datagram(&self) -> Option<usize>;
    /// Closes the connection with a code and a reason.
    fn close(&self, code: CloseCode, reason: &str);
}

/// A shared member.
pub(crate) type MemberRef = Arc<dyn Member>;
