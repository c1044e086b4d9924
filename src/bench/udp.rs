//! The physical reference for `relay` and `ccu`: a plain-UDP fan-out relay with batched
//! system calls (`recvmmsg` / `sendmmsg`), no encryption, no congestion control, no
//! reliability and no protocol beyond a one-byte kind. It tells what this machine's kernel
//! and loopback can move when almost nothing is done per packet; the bare quinn relay then
//! tells what QUIC costs on top, and Switchboard what rooms and the protocol cost on top of
//! that.
//!
//! Packets (little-endian):
//! - `JOIN`: `[0][room u32][client u32]`; the relay records the sender's address for that
//!   client and echoes the packet back as the acknowledgement.
//! - `DATA`: `[1][client u32][payload…]`; the relay sends the packet unchanged to every
//!   other client of the sender's room.
//!
//! The load generator multiplexes its clients over a few sockets (a client is its id, not
//! its address) so that its own cost stays small next to the relay's, and batches its
//! sends and receives the same way.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg};
use switchboard_transport::Limits;

/// Packet kind: join a room.
pub const JOIN: u8 = 0;
/// Packet kind: data to relay to the rest of the room.
pub const DATA: u8 = 1;
/// Messages per `recvmmsg` call.
const RX_BATCH: usize = 64;
/// Messages per `sendmmsg` call (the kernel's limit is 1024).
const TX_BATCH: usize = 512;
/// Largest packet handled.
const MAX_PACKET: usize = 1500;

/// The relay's routing, without IO: who gets a packet.
#[derive(Debug, Default)]
pub struct FanOut {
    clients: HashMap<u32, (u32, SocketAddrV4)>,
    rooms: HashMap<u32, Vec<(u32, SocketAddrV4)>>,
}

impl FanOut {
    /// Handles one packet from `from`, calling `send` with each address it goes to.
    /// Short, unknown or unjoined packets go nowhere.
    pub fn handle(
        &mut self,
        packet: &[u8],
        from: SocketAddrV4,
        mut send: impl FnMut(SocketAddrV4),
    ) {
        let u32_at = |i: usize| {
            packet
                .get(i..i + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        match packet.first() {
            Some(&JOIN) => {
                let (Some(room), Some(client)) = (u32_at(1), u32_at(5)) else {
                    return;
                };
                if let Some((old, _)) = self.clients.insert(client, (room, from))
                    && let Some(members) = self.rooms.get_mut(&old)
                {
                    members.retain(|(c, _)| *c != client);
                }
                self.rooms.entry(room).or_default().push((client, from));
                send(from);
            }
            Some(&DATA) => {
                let Some(client) = u32_at(1) else { return };
                let Some((room, _)) = self.clients.get(&client) else {
                    return;
                };
                for (other, addr) in &self.rooms[room] {
                    if *other != client {
                        send(*addr);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A UDP socket on loopback with the same kernel buffers as Switchboard's endpoints.
pub fn socket() -> io::Result<UdpSocket> {
    Limits::default().udp_socket("127.0.0.1:0".parse().expect("valid"))
}

fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::other("the UDP reference is IPv4 only")),
    }
}

/// Buffers and headers for `recvmmsg`, reused call after call.
struct RecvBatch {
    bufs: Vec<[u8; MAX_PACKET]>,
    headers: MultiHeaders<SockaddrIn>,
    /// Length and sender of each datagram of the last batch.
    got: Vec<(usize, Option<SocketAddrV4>)>,
}

impl RecvBatch {
    fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![[0u8; MAX_PACKET]; RX_BATCH],
            headers: MultiHeaders::preallocate(RX_BATCH, None),
            got: Vec::with_capacity(RX_BATCH),
        }
    }

    /// Receives up to `RX_BATCH` datagrams, waiting for the first one up to the socket's
    /// read timeout. `Ok(false)` when the wait ended with nothing to read.
    fn recv(&mut self, socket: &UdpSocket) -> Result<bool, Errno> {
        self.got.clear();
        let mut iovs: Vec<[IoSliceMut; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let flags = MsgFlags::MSG_WAITFORONE;
        match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            flags,
            None,
        ) {
            Ok(msgs) => {
                self.got
                    .extend(msgs.map(|m| (m.bytes, m.address.map(Into::into))));
                Ok(true)
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The `i`-th datagram of the last batch.
    fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.got[i].0]
    }

    /// The datagrams of the last batch, with their senders.
    fn packets(&self) -> impl Iterator<Item = (usize, &[u8], Option<SocketAddrV4>)> {
        (0..self.got.len()).map(|i| (i, self.packet(i), self.got[i].1))
    }
}

/// Sends datagrams with `sendmmsg`, `TX_BATCH` per call; a `None` address goes to the
/// socket's connected peer. A blocking send of datagrams sends all or fails on the first.
fn send_batches(
    socket: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrIn>,
    packets: &[(&[u8], Option<SocketAddrV4>)],
) -> Result<(), Errno> {
    for chunk in packets.chunks(TX_BATCH) {
        let slices: Vec<[IoSlice; 1]> = chunk.iter().map(|(p, _)| [IoSlice::new(p)]).collect();
        let addrs: Vec<Option<SockaddrIn>> =
            chunk.iter().map(|(_, a)| a.map(SockaddrIn::from)).collect();
        sendmmsg(
            socket.as_raw_fd(),
            headers,
            &slices,
            &addrs,
            [],
            MsgFlags::empty(),
        )?;
    }
    Ok(())
}

/// Serves the relay on `socket` until `stop` is set (checked at least every 100 ms).
pub fn serve(socket: &UdpSocket, stop: &AtomicBool) -> io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut rx = RecvBatch::new();
    let mut tx = MultiHeaders::<SockaddrIn>::preallocate(TX_BATCH, None);
    let mut fan = FanOut::default();
    while !stop.load(Ordering::Relaxed) {
        if !rx.recv(socket)? {
            continue;
        }
        let mut out = Vec::with_capacity(rx.got.len() * 8);
        for (_, packet, from) in rx.packets() {
            if let Some(from) = from {
                fan.handle(packet, from, |to| out.push((packet, Some(to))));
            }
        }
        // A failed send (say, a full queue) drops the rest of its batch, which the
        // generator counts as loss.
        let _ = send_batches(socket, &mut tx, &out);
    }
    Ok(())
}

/// What one generator run measured.
#[derive(Debug)]
pub struct Generated {
    /// Events sent.
    pub sent: u64,
    /// Deliveries received.
    pub received: u64,
    /// Latency of deliveries, µs.
    pub hist: Histogram<u64>,
}

/// The load: clients in rooms, each sending at a rate, for a time.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Clients (whole rooms only).
    pub clients: usize,
    /// Clients per room.
    pub room_size: usize,
    /// Events per second per client.
    pub rate: f64,
    /// Payload bytes per event (at least 8 for the timestamp).
    pub bytes: usize,
    /// Seconds of sending.
    pub seconds: f64,
}

/// Sockets the generator spreads its clients over (one receiving thread each).
const SHARDS: usize = 2;

/// Runs `load` against the relay at `server`: joins every client, sends for
/// `load.seconds`, and receives for one more second. Blocking.
pub fn generate(server: SocketAddr, load: Load) -> anyhow::Result<Generated> {
    let server = v4(server)?;
    let sockets = (0..SHARDS)
        .map(|_| {
            let s = socket()?;
            s.connect(server)?;
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
            Ok(s)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let n = load.clients / load.room_size.max(2) * load.room_size.max(2);
    anyhow::ensure!(n > 0, "--clients must be at least --room-size");
    join(&sockets, n, load.room_size.max(2))?;

    let start = Instant::now() + Duration::from_millis(200);
    let end = start + super::secs(load.seconds);
    let drain_end = end + Duration::from_secs(1);
    std::thread::scope(|scope| {
        let receivers: Vec<_> = sockets
            .iter()
            .map(|s| scope.spawn(move || receive(s, drain_end)))
            .collect();
        let sent = send(&sockets, n, load, start, end);
        let mut out = Generated {
            sent: sent?,
            received: 0,
            hist: super::histogram(),
        };
        for r in receivers {
            let (received, hist) = r
                .join()
                .map_err(|_| anyhow::anyhow!("a receiving thread panicked"))??;
            out.received += received;
            let _ = out.hist.add(&hist);
        }
        Ok(out)
    })
}

fn join_packet(room: u32, client: u32) -> [u8; 9] {
    let mut p = [JOIN, 0, 0, 0, 0, 0, 0, 0, 0];
    p[1..5].copy_from_slice(&room.to_le_bytes());
    p[5..9].copy_from_slice(&client.to_le_bytes());
    p
}

/// Joins clients `0..n` (rooms of `room_size`, client `i` on socket `i % SHARDS`), a
/// batch at a time, resending what was not acknowledged.
fn join(sockets: &[UdpSocket], n: usize, room_size: usize) -> anyhow::Result<()> {
    let mut buf = [0u8; MAX_PACKET];
    for batch in (0..n).collect::<Vec<_>>().chunks(256) {
        let mut pending: std::collections::HashSet<usize> = batch.iter().copied().collect();
        for _attempt in 0..20 {
            for &i in &pending {
                let p = join_packet((i / room_size) as u32, i as u32);
                sockets[i % SHARDS].send(&p)?;
            }
            let deadline = Instant::now() + Duration::from_millis(250);
            while !pending.is_empty() && Instant::now() < deadline {
                for s in sockets {
                    s.set_nonblocking(true)?;
                    while let Ok(len) = s.recv(&mut buf) {
                        if len == 9 && buf[0] == JOIN {
                            let client = u32::from_le_bytes(buf[5..9].try_into().expect("4"));
                            pending.remove(&(client as usize));
                        }
                    }
                    s.set_nonblocking(false)?;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if pending.is_empty() {
                break;
            }
        }
        anyhow::ensure!(
            pending.is_empty(),
            "{} clients of the UDP reference were never acknowledged",
            pending.len()
        );
    }
    Ok(())
}

/// Sends every client's events, spread evenly: the `j`-th event of the run is client
/// `j % n`'s, due at `start + j × period / n`.
fn send(
    sockets: &[UdpSocket],
    n: usize,
    load: Load,
    start: Instant,
    end: Instant,
) -> anyhow::Result<u64> {
    let gap = Duration::from_secs_f64(1.0 / load.rate.max(0.001) / n as f64);
    let size = load.bytes.max(8) + 5;
    let mut tx = MultiHeaders::<SockaddrIn>::preallocate(TX_BATCH, None);
    let mut batches: Vec<Vec<u8>> = vec![Vec::new(); SHARDS];
    let (mut j, mut sent) = (0u64, 0u64);
    loop {
        let due = start + gap.mul_f64(j as f64);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if due > now {
            // Wake at most once per millisecond, like the QUIC clients' tokio timers, and
            // send everything due by then: fewer wake-ups leave the cores to the relay.
            std::thread::sleep((due - now).max(Duration::from_millis(1)));
            continue;
        }
        // Every event due by now, a batch per socket.
        let stamp = super::relay::epoch().elapsed().as_nanos() as u64;
        let mut count = 0;
        while count < TX_BATCH && {
            let t = start + gap.mul_f64(j as f64);
            t <= now && t < end
        } {
            let client = (j % n as u64) as usize;
            let b = &mut batches[client % SHARDS];
            b.push(DATA);
            b.extend_from_slice(&(client as u32).to_le_bytes());
            b.extend_from_slice(&stamp.to_le_bytes());
            b.resize(b.len() + size - 13, 0xab);
            j += 1;
            count += 1;
        }
        for (s, b) in sockets.iter().zip(batches.iter_mut()) {
            if b.is_empty() {
                continue;
            }
            let packets: Vec<_> = b.chunks(size).map(|p| (p, None)).collect();
            match send_batches(s, &mut tx, &packets) {
                Ok(()) => sent += packets.len() as u64,
                Err(Errno::EAGAIN | Errno::EINTR | Errno::ENOBUFS) => {}
                Err(e) => {
                    return Err(anyhow::Error::from(e).context("sending to the UDP reference"));
                }
            }
            b.clear();
        }
    }
    Ok(sent)
}

/// Receives deliveries until `until`, recording each one's latency.
fn receive(socket: &UdpSocket, until: Instant) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut rx = RecvBatch::new();
    let mut hist = super::histogram();
    let mut received = 0u64;
    while Instant::now() < until {
        match rx.recv(socket) {
            Ok(true) => {}
            Ok(false) | Err(Errno::ECONNREFUSED) => continue,
            Err(e) => {
                return Err(anyhow::Error::from(e).context("receiving from the UDP reference"));
            }
        }
        for (_, packet, _) in rx.packets() {
            if packet.len() >= 13 && packet[0] == DATA {
                received += 1;
                super::relay::record(&mut hist, &packet[5..]);
            }
        }
    }
    Ok((received, hist))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)
    }

    fn data(client: u32) -> Vec<u8> {
        let mut p = vec![DATA];
        p.extend_from_slice(&client.to_le_bytes());
        p.extend_from_slice(&[7; 8]);
        p
    }

    fn routed(fan: &mut FanOut, packet: &[u8], from: SocketAddrV4) -> Vec<SocketAddrV4> {
        let mut out = Vec::new();
        fan.handle(packet, from, |a| out.push(a));
        out.sort();
        out
    }

    #[test]
    fn data_goes_to_every_other_member_of_the_room_only() {
        let mut fan = FanOut::default();
        for (client, room, port) in [(1, 10, 1001), (2, 10, 1002), (3, 10, 1003), (4, 11, 1004)] {
            assert_eq!(
                routed(&mut fan, &join_packet(room, client), addr(port)),
                vec![addr(port)],
                "a join is acknowledged to its sender"
            );
        }
        assert_eq!(
            routed(&mut fan, &data(1), addr(1001)),
            vec![addr(1002), addr(1003)]
        );
        assert!(
            routed(&mut fan, &data(4), addr(1004)).is_empty(),
            "alone in room 11"
        );
    }

    #[test]
    fn clients_sharing_a_socket_each_get_their_copy() {
        let mut fan = FanOut::default();
        for client in 0..4 {
            routed(&mut fan, &join_packet(1, client), addr(2000));
        }
        assert_eq!(routed(&mut fan, &data(0), addr(2000)).len(), 3);
    }

    #[test]
    fn rejoining_moves_a_client_to_its_new_room() {
        let mut fan = FanOut::default();
        routed(&mut fan, &join_packet(1, 1), addr(1));
        routed(&mut fan, &join_packet(1, 2), addr(2));
        routed(&mut fan, &join_packet(2, 2), addr(2));
        assert!(routed(&mut fan, &data(1), addr(1)).is_empty());
    }

    #[test]
    fn malformed_or_unknown_packets_go_nowhere() {
        let mut fan = FanOut::default();
        routed(&mut fan, &join_packet(1, 1), addr(1));
        routed(&mut fan, &join_packet(1, 2), addr(2));
        for p in [
            &[][..],
            &[DATA][..],
            &[DATA, 1, 0][..],
            &[9, 1, 0, 0, 0][..],
            &[JOIN, 1][..],
        ] {
            assert!(routed(&mut fan, p, addr(1)).is_empty(), "{p:?}");
        }
        assert!(
            routed(&mut fan, &data(99), addr(1)).is_empty(),
            "not joined"
        );
    }

    /// The relay and the generator over real sockets on loopback: every event reaches
    /// the other members of its room (no speed is asserted; a lost datagram is possible
    /// on a loaded machine, so the check allows a little loss).
    #[test]
    fn the_relay_and_generator_move_events_over_loopback() {
        let server = socket().unwrap();
        let addr = server.local_addr().unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let relay = s.spawn(|| serve(&server, &stop));
            let load = Load {
                clients: 12,
                room_size: 4,
                rate: 50.0,
                bytes: 100,
                seconds: 0.5,
            };
            let g = generate(addr, load).unwrap();
            stop.store(true, Ordering::Relaxed);
            relay.join().unwrap().unwrap();
            assert!(g.sent > 100, "{g:?}");
            let expected = g.sent * 3;
            assert!(g.received <= expected, "{g:?}");
            assert!(g.received * 10 >= expected * 9, "{g:?}");
            assert_eq!(g.hist.len(), g.received);
        });
    }
}
