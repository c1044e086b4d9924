//! A room's flush window, sans IO: relayed events bound for one member within the window
//! are held and leave together, unreliable ones as one datagram (a `DatagramDown::Batch`)
//! and reliable ones as one write per channel. The first event after a quiet period
//! (nothing sent to that member for a whole window) is never held: it leaves at once and
//! opens the window; what arrives while it is open leaves when it closes, and a window
//! that closes with something to send opens the next one.
//!
//! Sending one packet for several events is what makes a delivery cheaper than a bare
//! relay's: packets, not bytes, are what a server and its clients pay for.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use switchboard_protocol::messages::game::{batch_datagram, batch_len};

use switchboard_transport::Weighed;

use crate::member::Outbound;

/// Bytes held for one member at most: reaching it sends what is held at once (a window
/// saves packets of small events; a large event fills packets on its own, and nothing
/// a peer sends may make the server hold an unbounded amount).
pub(crate) const MAX_HELD_BYTES: usize = 16 * 1024;

/// What to do with an offered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Send it now, as without a window (the member was quiet; its window is now open).
    Now,
    /// Held until the member's window closes.
    Held,
    /// Held, and the member's held bytes reached [`MAX_HELD_BYTES`]: send what is held
    /// now ([`Coalescer::take`]); the window goes on.
    Full,
}

/// What is held for one member.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Encoded `DatagramDown::Event`s and `State`s, in the order relayed.
    pub datagrams: Vec<Bytes>,
    /// Reliable frames with their channel, in the order relayed.
    pub frames: Vec<(u8, Bytes)>,
    /// The bytes of both.
    bytes: usize,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.datagrams.is_empty() && self.frames.is_empty()
    }

    /// The reliable frames as one write per channel, channels in the order first used.
    pub fn writes(&mut self) -> Vec<Outbound> {
        let mut order: Vec<u8> = Vec::new();
        let mut bufs: HashMap<u8, BytesMut> = HashMap::new();
        for (ch, f) in self.frames.drain(..) {
            bufs.entry(ch)
                .or_insert_with(|| {
                    order.push(ch);
                    BytesMut::new()
                })
                .extend_from_slice(&f);
        }
        order
            .into_iter()
            .map(|ch| {
                let b = bufs
                    .remove(&ch)
                    .expect("every channel has a buffer")
                    .freeze();
                if ch == 0 {
                    Outbound::Frame(b)
                } else {
                    Outbound::Channel(ch, b)
                }
            })
            .collect()
    }
}

#[derive(Debug)]
struct Member {
    /// Events to this member are held until then; after it, the member is quiet.
    open_until: Instant,
    held: Held,
}

/// The flush windows of one room's members.
#[derive(Debug)]
pub(crate) struct Coalescer {
    window: Duration,
    members: HashMap<u32, Member>,
    /// The earliest window end with something held.
    due: Option<Instant>,
}

impl Coalescer {
    /// Windows of `window` (not zero: a room without a window needs no coalescer).
    pub fn new(window: Duration) -> Self {
        debug_assert!(!window.is_zero());
        Coalescer {
            window,
            members: HashMap::new(),
            due: None,
        }
    }

    /// When the next window with something held closes.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A relayed event (an encoded datagram, or a reliable frame on a channel) for
    /// `actor` at `now`: send it now, or it is held.
    pub fn offer(&mut self, actor: u32, out: &Outbound, now: Instant) -> Offer {
        let window = self.window;
        let m = self.members.entry(actor).or_insert(Member {
            open_until: now,
            held: Held::default(),
        });
        // Quiet for a whole window (or new): this one goes now and opens the window. A
        // window that ended with something still held (its flush is late) keeps order:
        // the event joins what is held, which is due at once.
        if now >= m.open_until && m.held.is_empty() {
            m.open_until = now + window;
            return Offer::Now;
        }
        match out {
            Outbound::Datagram(d) => m.held.datagrams.push(d.clone()),
            Outbound::Frame(f) => m.held.frames.push((0, f.clone())),
            Outbound::Channel(ch, f) => m.held.frames.push((*ch, f.clone())),
        }
        m.held.bytes += out.weight();
        if m.held.bytes >= MAX_HELD_BYTES {
            return Offer::Full;
        }
        let end = m.open_until;
        self.due = Some(self.due.map_or(end, |d| d.min(end)));
        Offer::Held
    }

    /// Everything held for members whose window has closed by `now`; each of those
    /// windows opens again (the member is not quiet: something is being sent). Members
    /// whose window closed with nothing held are quiet and forgotten.
    pub fn take_due(&mut self, now: Instant) -> Vec<(u32, Held)> {
        if self.due.is_none_or(|d| d > now) {
            return Vec::new();
        }
        let window = self.window;
        let mut out = Vec::new();
        self.members.retain(|actor, m| {
            if m.open_until > now {
                return true;
            }
            if m.held.is_empty() {
                return false;
            }
            out.push((*actor, std::mem::take(&mut m.held)));
            m.open_until = now + window;
            true
        });
        self.due = self.next_due();
        out
    }

    /// What is held for `actor`, now (something else must not overtake it, or it
    /// leaves); its window stays as it is.
    pub fn take(&mut self, actor: u32) -> Option<Held> {
        let m = self.members.get_mut(&actor)?;
        if m.held.is_empty() {
            return None;
        }
        let held = std::mem::take(&mut m.held);
        self.due = self.next_due();
        Some(held)
    }

    /// Everything held, for every member (the room ends).
    pub fn take_all(&mut self) -> Vec<(u32, Held)> {
        self.due = None;
        self.members
            .iter_mut()
            .filter(|(_, m)| !m.held.is_empty())
            .map(|(a, m)| (*a, std::mem::take(&mut m.held)))
            .collect()
    }

    /// `actor` is gone: what was held for it is dropped.
    pub fn forget(&mut self, actor: u32) {
        if self.members.remove(&actor).is_some() {
            self.due = self.next_due();
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.members
            .values()
            .filter(|m| !m.held.is_empty())
            .map(|m| m.open_until)
            .min()
    }
}

/// Held datagrams packed for a path that carries datagrams of at most `max` bytes
/// (`None`: the member takes no datagrams), in relay order: several items as a batch,
/// an item alone as itself. An item too large for any datagram stays where it is, alone
/// (sent, it takes the reliable fallback, and what follows it queues behind it, as
/// without a window); so does every item for a member that takes no datagrams.
pub(crate) fn pack(items: Vec<Bytes>, max: Option<usize>) -> Vec<Bytes> {
    let Some(max) = max else {
        return items;
    };
    let mut datagrams = Vec::new();
    let mut group: Vec<Bytes> = Vec::new();
    let mut group_bytes = 0;
    let close = |group: &mut Vec<Bytes>, datagrams: &mut Vec<Bytes>| match group.len() {
        0 => {}
        1 => datagrams.push(group.pop().expect("one item")),
        _ => datagrams.push(batch_datagram(&std::mem::take(group))),
    };
    for item in items {
        if item.len() > max {
            close(&mut group, &mut datagrams);
            group_bytes = 0;
            datagrams.push(item);
            continue;
        }
        if !group.is_empty() && batch_len(group.len() + 1, group_bytes + item.len()) > max {
            close(&mut group, &mut datagrams);
            group_bytes = 0;
        }
        group_bytes += item.len();
        group.push(item);
    }
    close(&mut group, &mut datagrams);
    datagrams
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{DatagramDown, EventData, Unreliable, decode_body, encode_body};

    const W: Duration = Duration::from_millis(5);

    fn event(sender: u32, len: usize) -> Bytes {
        encode_body(&DatagramDown::Event(EventData {
            sender,
            code: 1,
            data: Bytes::from(vec![sender as u8; len]),
        }))
    }

    fn senders(datagram: &Bytes) -> Vec<u32> {
        decode_body::<DatagramDown>(datagram)
            .unwrap()
            .into_items()
            .into_iter()
            .map(|i| match i {
                Unreliable::Event(e) => e.sender,
                Unreliable::State(s) => s.sender,
            })
            .collect()
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn the_first_event_after_a_quiet_period_is_never_held() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(W);
        let d = Outbound::Datagram(event(1, 10));
        assert_eq!(c.offer(7, &d, t0), Offer::Now);
        // Within the window: held, due when the window closes.
        assert_eq!(c.offer(7, &d, ms(t0, 1)), Offer::Held);
        assert_eq!(c.due(), Some(ms(t0, 5)));
        assert!(c.take_due(ms(t0, 4)).is_empty());
        let flushed = c.take_due(ms(t0, 5));
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].1.datagrams.len(), 1);
        // Something was sent at 5: the window opened again until 10.
        assert_eq!(c.offer(7, &d, ms(t0, 9)), Offer::Held);
        c.take_due(ms(t0, 10));
        // Nothing held when the window at 15 closes: quiet from then on.
        assert!(c.take_due(ms(t0, 15)).is_empty());
        assert_eq!(c.offer(7, &d, ms(t0, 16)), Offer::Now);
        // Quiet longer than the window, even with no flush in between, is quiet.
        assert_eq!(c.offer(7, &d, ms(t0, 30)), Offer::Now);
        // Another member has its own window.
        assert_eq!(c.offer(8, &d, ms(t0, 31)), Offer::Now);
        assert_eq!(c.offer(7, &d, ms(t0, 31)), Offer::Held);
    }

    #[test]
    fn held_events_keep_their_order_and_a_late_flush_does_not_let_one_overtake() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(W);
        assert_eq!(c.offer(1, &Outbound::Datagram(event(9, 1)), t0), Offer::Now);
        for s in 1..=3 {
            assert_eq!(
                c.offer(1, &Outbound::Datagram(event(s, 1)), ms(t0, 1)),
                Offer::Held
            );
        }
        // The window closed at 5 but nobody flushed: a new event joins the queue.
        assert_eq!(
            c.offer(1, &Outbound::Datagram(event(4, 1)), ms(t0, 6)),
            Offer::Held
        );
        assert_eq!(c.due(), Some(ms(t0, 5)));
        let mut flushed = c.take_due(ms(t0, 6));
        let datagrams = pack(std::mem::take(&mut flushed[0].1.datagrams), Some(1200));
        assert_eq!(datagrams.len(), 1);
        assert_eq!(senders(&datagrams[0]), vec![1, 2, 3, 4]);
    }

    #[test]
    fn reliable_frames_leave_as_one_write_per_channel() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(W);
        let f = |b: &'static [u8]| Bytes::from_static(b);
        assert_eq!(c.offer(1, &Outbound::Frame(f(b"a")), t0), Offer::Now);
        c.offer(1, &Outbound::Frame(f(b"b")), ms(t0, 1));
        c.offer(1, &Outbound::Channel(3, f(b"x")), ms(t0, 1));
        c.offer(1, &Outbound::Frame(f(b"c")), ms(t0, 2));
        c.offer(1, &Outbound::Channel(3, f(b"y")), ms(t0, 2));
        let mut held = c.take(1).unwrap();
        assert!(c.take(1).is_none());
        assert_eq!(c.due(), None);
        let writes = held.writes();
        assert!(matches!(&writes[0], Outbound::Frame(b) if &b[..] == b"bc"));
        assert!(matches!(&writes[1], Outbound::Channel(3, b) if &b[..] == b"xy"));
        assert_eq!(writes.len(), 2);
        // Taken early, the window still runs: the next event is held.
        assert_eq!(
            c.offer(1, &Outbound::Frame(f(b"d")), ms(t0, 3)),
            Offer::Held
        );
    }

    #[test]
    fn packing_spills_into_the_next_datagram_and_keeps_relay_order() {
        // Items of 104 bytes (a 100-byte event): 11 fit 1162 bytes with the batch
        // header (2 + 11 * 104 = 1146), a twelfth does not.
        let items: Vec<Bytes> = (1..=25).map(|s| event(s, 100)).collect();
        assert_eq!(items[0].len(), 104);
        let datagrams = pack(items, Some(1162));
        assert_eq!(datagrams.len(), 3);
        assert!(datagrams.iter().all(|d| d.len() <= 1162));
        assert_eq!(senders(&datagrams[0]), (1..=11).collect::<Vec<_>>());
        assert_eq!(senders(&datagrams[1]), (12..=22).collect::<Vec<_>>());
        assert_eq!(senders(&datagrams[2]), vec![23, 24, 25]);
        // A lone item is sent as itself, not as a batch of one.
        let one = pack(vec![event(1, 10)], Some(1162));
        assert_eq!(one[0][0], 0);
        // Too big for any datagram: alone, in its place (it goes reliably, and what
        // follows queues behind it); the ones around it still batch.
        let datagrams = pack(
            vec![
                event(1, 10),
                event(2, 10),
                event(3, 2000),
                event(4, 10),
                event(5, 10),
            ],
            Some(1162),
        );
        assert_eq!(datagrams.len(), 3);
        assert_eq!(senders(&datagrams[0]), vec![1, 2]);
        assert_eq!(senders(&datagrams[1]), vec![3]);
        assert!(datagrams[1].len() > 1162);
        assert_eq!(senders(&datagrams[2]), vec![4, 5]);
        // A member that takes no datagrams gets every item as it is (each goes reliably).
        let datagrams = pack(vec![event(1, 10), event(2, 10)], None);
        assert_eq!(datagrams.len(), 2);
        assert_eq!(senders(&datagrams[1]), vec![2]);
    }

    #[test]
    fn what_is_held_for_one_member_is_bounded() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(W);
        let d = Outbound::Datagram(event(1, 1000));
        assert_eq!(c.offer(1, &d, t0), Offer::Now);
        let mut held = 0;
        let full = loop {
            match c.offer(1, &d, ms(t0, 1)) {
                Offer::Held => held += 1,
                Offer::Full => break c.take(1).unwrap(),
                Offer::Now => unreachable!("the window is open"),
            }
        };
        // 1,004-byte items: the 17th reaches 16 KiB.
        assert_eq!(held, 16);
        assert_eq!(full.datagrams.len(), 17);
        assert_eq!(c.due(), None);
        // Taken, the count starts again; the window goes on.
        assert_eq!(c.offer(1, &d, ms(t0, 2)), Offer::Held);
        assert_eq!(c.due(), Some(ms(t0, 5)));
    }

    #[test]
    fn a_member_that_is_gone_is_forgotten_with_what_was_held() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(W);
        let d = Outbound::Datagram(event(1, 1));
        c.offer(1, &d, t0);
        c.offer(1, &d, ms(t0, 1));
        c.offer(2, &d, ms(t0, 2));
        c.offer(2, &d, ms(t0, 3));
        assert_eq!(c.due(), Some(ms(t0, 5)));
        c.forget(1);
        assert_eq!(c.due(), Some(ms(t0, 7)));
        let all = c.take_all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, 2);
        assert_eq!(c.due(), None);
    }
}
