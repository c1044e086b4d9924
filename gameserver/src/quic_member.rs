//! [`Member`] over a QUIC connection: the connection's bounded outgoing queue (drained by
//! its writer task in `peer`) and the connection itself for datagrams and closing.

use bytes::Bytes;
use quinn::{Connection, SendDatagramError};
use switchboard_protocol::CloseCode;
use switchboard_transport::{OutTx, Overflow, close};

use crate::member::{Datagram, Member, Outbound};

/// A client connection as a room member.
#[derive(Debug)]
pub(crate) struct QuicMember {
    pub tx: OutTx<Outbound>,
    pub conn: Connection,
}

impl Member for QuicMember {
    fn queue(&self, out: Outbound) -> Result<(), Overflow> {
        self.tx.try_send(out)
    }

    /// Straight on the connection, without the hop through the queue and the wake-up of
    /// the writer (the relay's hot path: profiling showed those two as most of what
    /// Switchboard spends per delivery beyond a bare relay). Only when nothing is queued
    /// ahead of it, so that a datagram does not overtake frames still waiting (a Join
    /// response, say; datagrams and streams were never ordered with each other on the
    /// wire). One that does not fit the path is refused by quinn without being sent (one
    /// lock of the connection instead of a size check and a send), and queued: the
    /// writer sends its reliable equivalent.
    fn datagram_now(&self, d: &Bytes) -> Datagram {
        if !self.tx.is_empty() {
            return Datagram::Queue;
        }
        match self.conn.send_datagram(d.clone()) {
            Ok(()) => Datagram::Sent(d.len()),
            Err(SendDatagramError::ConnectionLost(_)) => Datagram::Gone,
            Err(_) => Datagram::Queue,
        }
    }

    fn max_datagram(&self) -> Option<usize> {
        self.conn.max_datagram_size()
    }

    fn close(&self, code: CloseCode, reason: &str) {
        close(&self.conn, code, reason);
    }
}
