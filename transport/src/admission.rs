//! Who may connect to a listener: caps on connections per source address and on
//! connections not yet authenticated (in their handshake, or before `Authenticate`, the
//! first join or `Register`), in all and per address, and QUIC Retry (address
//! validation) under load or always.
//!
//! A listener screens each incoming connection ([`Admission::screen`]); an admitted one
//! holds a [`Pass`] that counts it until it ends, and that leaves the *pending* count
//! once the connection authenticates ([`Pass::established`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// When to ask for address validation (a QUIC Retry round trip) before a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    /// Never.
    Never,
    /// When more than a quarter of `max_pending` connections are pending (a flood of
    /// handshakes from spoofed addresses then costs the server one small packet each).
    #[default]
    UnderLoad,
    /// For every connection (one more round trip for every client).
    Always,
}

impl RetryPolicy {
    /// Parses `never`, `under-load` or `always`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "never" => Some(RetryPolicy::Never),
            "under-load" => Some(RetryPolicy::UnderLoad),
            "always" => Some(RetryPolicy::Always),
            _ => None,
        }
    }
}

/// The limits of one listener. 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Connections from one IP address (players behind one NAT share one).
    pub max_per_ip: usize,
    /// Connections not yet authenticated, in all.
    pub max_pending: usize,
    /// Connections not yet authenticated from one IP address.
    pub max_pending_per_ip: usize,
    /// Address validation.
    pub retry: RetryPolicy,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_per_ip: 1000,
            max_pending: 4096,
            max_pending_per_ip: 64,
            retry: RetryPolicy::UnderLoad,
        }
    }
}

impl AdmissionLimits {
    /// No limits at all (`switchboard dev` and the bench run thousands of clients from
    /// 127.0.0.1).
    pub fn unlimited() -> Self {
        AdmissionLimits {
            max_per_ip: 0,
            max_pending: 0,
            max_pending_per_ip: 0,
            retry: RetryPolicy::Never,
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many connections from its address.
    PerIp,
    /// Too many connections still authenticating, in all.
    Pending,
    /// Too many connections still authenticating from its address.
    PendingPerIp,
}

impl Refusal {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::PerIp => "per_ip",
            Refusal::Pending => "pending",
            Refusal::PendingPerIp => "pending_per_ip",
        }
    }
}

/// What to do with an incoming connection.
#[derive(Debug)]
pub enum Screen {
    /// Accept it; the pass counts it.
    Admit(Pass),
    /// Ask the client to prove its address first (QUIC Retry).
    Retry,
    /// Turn it away.
    Refuse(Refusal),
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    all: usize,
    pending: usize,
}

#[derive(Debug, Default)]
struct State {
    by_ip: HashMap<IpAddr, Counts>,
    pending: usize,
}

/// The admission state of one listener.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    state: Mutex<State>,
    refused: [AtomicU64; 3],
    retries: AtomicU64,
}

impl Admission {
    /// A listener's admission with these limits.
    pub fn new(limits: AdmissionLimits) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            state: Mutex::default(),
            refused: Default::default(),
            retries: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Screens a connection from `ip` whose address is (or is not) validated yet.
    pub fn screen(self: &Arc<Self>, ip: IpAddr, validated: bool) -> Screen {
        let l = &self.limits;
        let over = |n: usize, max: usize| max != 0 && n >= max;
        let mut st = self.state();
        let retry = !validated
            && match l.retry {
                RetryPolicy::Never => false,
                RetryPolicy::Always => true,
                RetryPolicy::UnderLoad => l.max_pending != 0 && st.pending >= l.max_pending / 4,
            };
        if retry {
            self.retries.fetch_add(1, Ordering::Relaxed);
            return Screen::Retry;
        }
        let counts = st.by_ip.get(&ip).copied().unwrap_or_default();
        let refusal = if over(counts.all, l.max_per_ip) {
            Some(Refusal::PerIp)
        } else if over(counts.pending, l.max_pending_per_ip) {
            Some(Refusal::PendingPerIp)
        } else if over(st.pending, l.max_pending) {
            Some(Refusal::Pending)
        } else {
            None
        };
        if let Some(r) = refusal {
            self.refused[r as usize].fetch_add(1, Ordering::Relaxed);
            return Screen::Refuse(r);
        }
        let c = st.by_ip.entry(ip).or_default();
        c.all += 1;
        c.pending += 1;
        st.pending += 1;
        Screen::Admit(Pass {
            admission: self.clone(),
            ip,
            pending: true,
        })
    }

    /// Connections refused so far, per reason label.
    pub fn refused(&self) -> [(&'static str, u64); 3] {
        [Refusal::PerIp, Refusal::PendingPerIp, Refusal::Pending]
            .map(|r| (r.label(), self.refused[r as usize].load(Ordering::Relaxed)))
    }

    /// Retries asked for so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Connections not yet authenticated now.
    pub fn pending(&self) -> usize {
        self.state().pending
    }

    /// The limits.
    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }
}

/// Refusals are logged at most once a second per listener.
static REFUSAL_LOG: crate::LogLimit = crate::LogLimit::new(std::time::Duration::from_secs(1));

impl Admission {
    /// Screens an incoming connection on listener `listener`: asks for a Retry, refuses it
    /// (logged at most once a second, with the count left out), or returns it with its
    /// pass.
    pub fn admit(
        self: &Arc<Self>,
        incoming: quinn::Incoming,
        listener: &str,
    ) -> Option<(quinn::Incoming, Pass)> {
        let remote = incoming.remote_address();
        match self.screen(
            remote.ip().to_canonical(),
            incoming.remote_address_validated(),
        ) {
            Screen::Admit(pass) => Some((incoming, pass)),
            Screen::Retry => {
                if incoming.may_retry() {
                    let _ = incoming.retry();
                } else {
                    incoming.refuse();
                }
                None
            }
            Screen::Refuse(r) => {
                if let Some(left_out) = REFUSAL_LOG.check(std::time::Instant::now()) {
                    tracing::warn!(listener, %remote, reason = r.label(), left_out,
                        "connection refused by the admission limits");
                }
                incoming.refuse();
                None
            }
        }
    }
}

/// An admitted connection, counted until dropped.
#[derive(Debug)]
pub struct Pass {
    admission: Arc<Admission>,
    ip: IpAddr,
    pending: bool,
}

impl Pass {
    /// The connection authenticated: it no longer counts as pending.
    pub fn established(&mut self) {
        if std::mem::replace(&mut self.pending, false) {
            let mut st = self.admission.state();
            st.pending -= 1;
            if let Some(c) = st.by_ip.get_mut(&self.ip) {
                c.pending -= 1;
            }
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut st = self.admission.state();
        if self.pending {
            st.pending -= 1;
        }
        let gone = match st.by_ip.get_mut(&self.ip) {
            Some(c) => {
                c.all -= 1;
                if self.pending {
                    c.pending -= 1;
                }
                c.all == 0
            }
            None => false,
        };
        if gone {
            st.by_ip.remove(&self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_per_ip: 3,
            max_pending: 4,
            max_pending_per_ip: 2,
            retry: RetryPolicy::Never,
        }
    }

    fn admit(a: &Arc<Admission>, from: IpAddr) -> Pass {
        match a.screen(from, true) {
            Screen::Admit(p) => p,
            other => panic!("not admitted: {other:?}"),
        }
    }

    fn refusal(a: &Arc<Admission>, from: IpAddr) -> Refusal {
        match a.screen(from, true) {
            Screen::Refuse(r) => r,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn pending_connections_are_capped_per_address_and_in_all() {
        let a = Admission::new(limits());
        let mut p1 = admit(&a, ip(1));
        let _p2 = admit(&a, ip(1));
        assert_eq!(refusal(&a, ip(1)), Refusal::PendingPerIp);
        // Authenticated connections leave the pending count...
        p1.established();
        let _p3 = admit(&a, ip(1));
        // ...but still count per address.
        assert_eq!(refusal(&a, ip(1)), Refusal::PerIp);
        let _q1 = admit(&a, ip(2));
        let _q2 = admit(&a, ip(3));
        assert_eq!(a.pending(), 4);
        assert_eq!(refusal(&a, ip(4)), Refusal::Pending);
        assert_eq!(
            a.refused(),
            [("per_ip", 1), ("pending_per_ip", 1), ("pending", 1)]
        );
    }

    #[test]
    fn passes_give_their_place_back() {
        let a = Admission::new(limits());
        let passes: Vec<Pass> = (1..=3).map(|i| admit(&a, ip(i))).collect::<Vec<_>>();
        drop(passes);
        assert_eq!(a.pending(), 0);
        assert!(
            a.state().by_ip.is_empty(),
            "nothing kept for a gone address"
        );
        let mut p = admit(&a, ip(1));
        p.established();
        drop(p);
        assert!(a.state().by_ip.is_empty());
    }

    #[test]
    fn retry_under_load_or_always_for_unvalidated_addresses() {
        let a = Admission::new(AdmissionLimits {
            retry: RetryPolicy::UnderLoad,
            max_pending: 8,
            max_pending_per_ip: 0,
            max_per_ip: 0,
        });
        let _held: Vec<Pass> = (0..2).map(|i| admit(&a, ip(i))).collect();
        assert!(
            matches!(a.screen(ip(9), false), Screen::Retry),
            "2 of 8 pending"
        );
        assert!(
            matches!(a.screen(ip(9), true), Screen::Admit(_)),
            "a validated address goes through"
        );
        let always = Admission::new(AdmissionLimits {
            retry: RetryPolicy::Always,
            ..AdmissionLimits::unlimited()
        });
        assert!(matches!(always.screen(ip(1), false), Screen::Retry));
        assert_eq!(always.retries(), 1);
        let unlimited = Admission::new(AdmissionLimits::unlimited());
        let _many: Vec<Pass> = (0..10_000).map(|_| admit(&unlimited, ip(1))).collect();
    }
}
