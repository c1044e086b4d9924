//! A connection's outgoing queue, bounded in messages **and in bytes**: a peer that stops
//! reading can pin at most the byte budget (plus what QUIC itself holds in flight, its
//! send window), and is then disconnected as a slow consumer.
//!
//! The budget is shared by everything queued for one connection (a writer that forwards
//! frames to per-channel writers keeps them counted until they are written), and is
//! released by whoever finally writes the bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Something with a size in bytes.
pub trait Weighed {
    /// Its size in bytes.
    fn weight(&self) -> usize;
}

impl Weighed for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// The bytes queued for one connection, and its limit.
#[derive(Debug)]
pub struct Budget {
    queued: AtomicUsize,
    max: usize,
}

impl Budget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            queued: AtomicUsize::new(0),
            max,
        })
    }

    /// Counts `n` more bytes unless that would pass the limit. An empty queue always takes
    /// one message, however large: a single big frame is not a slow reader.
    pub fn take(&self, n: usize) -> bool {
        let mut current = self.queued.load(Ordering::Relaxed);
        loop {
            if current > 0 && current.saturating_add(n) > self.max {
                return false;
            }
            match self.queued.compare_exchange_weak(
                current,
                current + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// `n` bytes were written (or dropped).
    pub fn release(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The queue is full (messages or bytes): the peer does not read fast enough.
    Full,
    /// The connection's writer is gone.
    Closed,
}

/// The sending side of an outgoing queue.
#[derive(Debug)]
pub struct OutTx<T> {
    tx: mpsc::Sender<T>,
    budget: Arc<Budget>,
}

impl<T> Clone for OutTx<T> {
    fn clone(&self) -> Self {
        OutTx {
            tx: self.tx.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<T: Weighed> OutTx<T> {
    /// Queues a message, or says why not (never waits).
    pub fn try_send(&self, item: T) -> Result<(), Overflow> {
        let w = item.weight();
        if !self.budget.take(w) {
            return Err(Overflow::Full);
        }
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.budget.release(w);
                Err(Overflow::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.budget.release(w);
                Err(Overflow::Closed)
            }
        }
    }

    /// Queues a message whose bytes the shared budget already counts (a writer handing a
    /// frame on to another writer of the same connection).
    pub fn try_forward(&self, item: T) -> Result<(), Overflow> {
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Overflow::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Overflow::Closed),
        }
    }

    /// Whether nothing is queued (a datagram may then skip the queue without overtaking
    /// anything).
    pub fn is_empty(&self) -> bool {
        self.tx.capacity() == self.tx.max_capacity()
    }

    /// The shared byte budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }
}

/// The receiving side of an outgoing queue: whoever writes a message releases its bytes
/// with [`Budget::release`].
#[derive(Debug)]
pub struct OutRx<T> {
    rx: mpsc::Receiver<T>,
    budget: Arc<Budget>,
}

impl<T> OutRx<T> {
    /// The next message; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }

    /// A message if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Up to `limit` messages into `out`; 0 once every sender is gone.
    pub async fn recv_many(&mut self, out: &mut Vec<T>, limit: usize) -> usize {
        self.rx.recv_many(out, limit).await
    }

    /// The shared byte budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }
}

/// A queue of at most `messages` messages and `bytes` bytes.
pub fn out_queue<T>(messages: usize, bytes: usize) -> (OutTx<T>, OutRx<T>) {
    out_queue_sharing(messages, Budget::new(bytes))
}

/// A queue of at most `messages` messages that shares a byte budget with the other
/// queues of the same connection.
pub fn out_queue_sharing<T>(messages: usize, budget: Arc<Budget>) -> (OutTx<T>, OutRx<T>) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    (
        OutTx {
            tx,
            budget: budget.clone(),
        },
        OutRx { rx, budget },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_bound_the_queue_as_well_as_messages() {
        let (tx, mut rx) = out_queue::<Bytes>(100, 10);
        assert_eq!(tx.try_send(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(
            tx.try_send(Bytes::from_static(b"1234")),
            Ok(()),
            "exactly 10"
        );
        assert_eq!(tx.try_send(Bytes::from_static(b"1")), Err(Overflow::Full));
        assert_eq!(tx.budget().queued(), 10);
        let first = rx.try_recv().unwrap();
        rx.budget().release(first.len());
        assert_eq!(tx.try_send(Bytes::from_static(b"1")), Ok(()), "room again");
    }

    #[test]
    fn an_empty_queue_takes_one_large_message() {
        let (tx, mut rx) = out_queue::<Bytes>(100, 10);
        assert_eq!(tx.try_send(Bytes::from(vec![0u8; 50])), Ok(()));
        assert_eq!(tx.try_send(Bytes::from_static(b"x")), Err(Overflow::Full));
        let big = rx.try_recv().unwrap();
        rx.budget().release(big.len());
        assert!(tx.is_empty());
    }

    #[test]
    fn messages_bound_it_too_and_a_closed_queue_says_so() {
        let (tx, rx) = out_queue::<Bytes>(1, 1000);
        assert_eq!(tx.try_send(Bytes::from_static(b"a")), Ok(()));
        assert_eq!(tx.try_send(Bytes::from_static(b"b")), Err(Overflow::Full));
        assert_eq!(tx.budget().queued(), 1, "a refused message is not counted");
        drop(rx);
        assert_eq!(tx.try_send(Bytes::from_static(b"c")), Err(Overflow::Closed));
    }
}
