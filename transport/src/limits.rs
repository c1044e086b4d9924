//! Transport limits, set explicitly rather than left at quinn's defaults.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

/// The QUIC transport limits of an endpoint. Defaults suit a game relay: a client needs
/// one control stream and a few event channels, so stream counts stay small (memory per
/// connection grows with them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A PING is sent after this much quiet, keeping NAT bindings and the idle timer alive.
    pub keep_alive: Duration,
    /// Bidirectional streams the peer may have open at once.
    pub max_bidi_streams: u32,
    /// Unidirectional streams the peer may have open at once.
    pub max_uni_streams: u32,
    /// Bytes the peer may send on one stream ahead of our reading.
    pub stream_receive_window: u32,
    /// Bytes the peer may send on all streams ahead of our reading.
    pub receive_window: u32,
    /// Bytes we may have in flight to the peer (sent, not yet acknowledged). Also what
    /// a peer that stops acknowledging while granting unlimited flow-control credit can
    /// make us hold beyond our own outgoing queue.
    pub send_window: u64,
    /// Bytes of received datagrams buffered before the oldest are dropped.
    pub datagram_receive_buffer: usize,
    /// Bytes of outgoing datagrams buffered before the oldest are dropped.
    pub datagram_send_buffer: usize,
    /// Bytes a client that has not authenticated (or joined) yet may send ahead of our
    /// reading, on all its streams together; a server raises it to `receive_window`, and
    /// opens the further streams, once the client has ([`Limits::authenticated`]).
    pub pre_auth_receive_window: u32,
    /// Connections quinn holds before the server has accepted or refused them.
    pub max_incoming: usize,
    /// Bytes of early data quinn buffers for one connection not yet accepted.
    pub incoming_buffer: u64,
    /// Bytes of early data quinn buffers for all connections not yet accepted.
    pub incoming_buffer_total: u64,
    /// The round-trip time assumed before one is measured: it paces the first
    /// retransmissions of a handshake (quinn's default is 333 ms).
    pub initial_rtt: Duration,
    /// The UDP socket's kernel receive and send buffers (the kernel caps them at its
    /// `net.core.rmem_max` / `wmem_max`). Bursts of a busy relay overflow the usual
    /// ~200 KiB default before the process gets to read them.
    pub socket_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            // Exactly what the protocol uses: the control stream, and on a game server
            // one stream per reliable channel 1 to 15. A peer cannot open more.
            max_bidi_streams: 1,
            max_uni_streams: 15,
            stream_receive_window: 1024 * 1024,
            receive_window: 4 * 1024 * 1024,
            // 1 MiB in flight is 80 Mbit/s at a 100 ms round trip, far beyond a game
            // client's needs, and bounds what a client that stops acknowledging holds.
            send_window: 1024 * 1024,
            datagram_receive_buffer: 256 * 1024,
            datagram_send_buffer: 256 * 1024,
            initial_rtt: Duration::from_millis(333),
            pre_auth_receive_window: 64 * 1024,
            max_incoming: 2048,
            incoming_buffer: 64 * 1024,
            incoming_buffer_total: 8 * 1024 * 1024,
            socket_buffer: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The limits of the master ↔ game server link: a short idle timeout with a
    /// keep-alive well inside it (the game server also reports every second), so either
    /// side notices a dead peer within 3 s; a short initial RTT (servers of one cluster
    /// sit close together), so a reconnect's handshake is retried quickly while a
    /// restarted master comes up.
    pub fn cluster() -> Self {
        Limits {
            idle_timeout: Duration::from_secs(3),
            keep_alive: Duration::from_millis(500),
            initial_rtt: Duration::from_millis(100),
            // A snapshot of every room (up to 16 MiB) crosses the link on reconnect.
            send_window: 4 * 1024 * 1024,
            ..Limits::default()
        }
    }
}

impl Limits {
    /// A UDP socket bound to `addr` with the configured kernel buffers.
    pub fn udp_socket(&self, addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            // Accept IPv4 too on an unspecified IPv6 address, as std's bind does not.
            let _ = socket.set_only_v6(false);
        }
        // Best effort: the kernel caps (or a container forbids) larger buffers.
        let _ = socket.set_recv_buffer_size(self.socket_buffer);
        let _ = socket.set_send_buffer_size(self.socket_buffer);
        socket.bind(&addr.into())?;
        Ok(socket.into())
    }

    /// The transport configuration of a server listener: until a connection
    /// authenticates, one bidirectional stream (the control stream), no unidirectional
    /// one, and `pre_auth_receive_window` bytes in flight from the client.
    pub fn server_transport_config(&self) -> Arc<TransportConfig> {
        let mut t = self.transport();
        t.max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .receive_window(VarInt::from_u32(
                self.pre_auth_receive_window.min(self.receive_window),
            ));
        Arc::new(t)
    }

    /// A server's connection authenticated: the full streams and receive window.
    pub fn authenticated(&self, conn: &quinn::Connection) {
        conn.set_receive_window(VarInt::from_u32(self.receive_window));
        conn.set_max_concurrent_bi_streams(VarInt::from_u32(self.max_bidi_streams));
        conn.set_max_concurrent_uni_streams(VarInt::from_u32(self.max_uni_streams));
    }

    /// The quinn transport configuration for these limits (clients; servers start with
    /// [`Limits::server_transport_config`]).
    pub fn transport_config(&self) -> Arc<TransportConfig> {
        Arc::new(self.transport())
    }

    fn transport(&self) -> TransportConfig {
        let mut t = TransportConfig::default();
        t.max_idle_timeout(Some(
            IdleTimeout::try_from(self.idle_timeout).expect("idle timeout fits a varint"),
        ))
        .keep_alive_interval(Some(self.keep_alive))
        .max_concurrent_bidi_streams(VarInt::from_u32(self.max_bidi_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(self.max_uni_streams))
        .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
        .receive_window(VarInt::from_u32(self.receive_window))
        .send_window(self.send_window)
        .datagram_receive_buffer_size(Some(self.datagram_receive_buffer))
        .datagram_send_buffer_size(self.datagram_send_buffer)
        .initial_rtt(self.initial_rtt);
        t
    }
}
