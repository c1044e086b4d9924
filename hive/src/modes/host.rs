//! The host mode (Photon Fusion's host mode, with the room on the relay): one active
//! actor, the host, is the authority. It is the master client, so it is chosen the same
//! way: the creator first; when it leaves or drops, at once the active actor with the
//! lowest number; by hand with `SetMasterClient`.
//!
//! - The others send to the host only (receivers `Host` or `MasterClient`, or the host as
//!   the only target); the host sends to anyone.
//! - The host uploads snapshots of its game state (opaque, bounded); the room keeps the
//!   latest, with its upload time.
//! - The room keeps every reliable event a host was sent since that snapshot (bounded):
//!   a new host gets the snapshot, then those events, so nothing sent to a host that
//!   died is lost, whenever it died. An upload empties the replay.
//! - When the authority moves, the new host gets `HostChanged` with the handover and the
//!   replay; every other active actor gets `HostChanged` without it.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use switchboard_protocol::{
    EventData, GameReply, Handover, HostChange, HostSnapshot, OpError, RaiseEvent, ResultCode,
    RoomEvent,
};

use super::{Mode, authority_routing};
use crate::room::{Out, RoomLimits};

/// The host mode's state.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// The latest snapshot and when it came.
    snapshot: Option<(Bytes, Instant)>,
    /// Reliable events sent to a host since the snapshot, oldest first.
    replay: VecDeque<EventData>,
    replay_bytes: usize,
    /// Whether events were dropped from the front of the replay.
    truncated: bool,
    max_snapshot_bytes: usize,
    max_replay_events: usize,
    max_replay_bytes: usize,
}

impl Host {
    pub(crate) fn new(limits: &RoomLimits) -> Host {
        Host {
            snapshot: None,
            replay: VecDeque::new(),
            replay_bytes: 0,
            truncated: false,
            max_snapshot_bytes: limits.max_snapshot_bytes,
            max_replay_events: limits.max_replay_events,
            max_replay_bytes: limits.max_replay_bytes,
        }
    }
}

impl Host {
    /// What a saved room keeps of the host mode.
    pub(crate) fn save(&self) -> crate::SavedMode {
        crate::SavedMode::Host {
            snapshot: self.snapshot.as_ref().map(|(s, _)| s.clone()),
            replay: self.replay.iter().cloned().collect(),
            truncated: self.truncated,
        }
    }

    /// The host mode of a restored room, within `limits`.
    pub(crate) fn restore(
        limits: &RoomLimits,
        snapshot: Option<Bytes>,
        replay: Vec<EventData>,
        truncated: bool,
        now: Instant,
    ) -> Result<Host, String> {
        let mut host = Host::new(limits);
        if let Some(s) = &snapshot
            && s.len() > host.max_snapshot_bytes
        {
            return Err(format!(
                "a host snapshot of {} bytes; the limit is {}",
                s.len(),
                host.max_snapshot_bytes
            ));
        }
        let bytes: usize = replay.iter().map(|e| e.data.len()).sum();
        if replay.len() > host.max_replay_events || bytes > host.max_replay_bytes {
            return Err(format!(
                "a host replay of {} events and {bytes} bytes; the limits are {} and {}",
                replay.len(),
                host.max_replay_events,
                host.max_replay_bytes
            ));
        }
        host.snapshot = snapshot.map(|s| (s, now));
        host.replay = replay.into();
        host.replay_bytes = bytes;
        host.truncated = truncated;
        Ok(host)
    }
}

impl Mode for Host {
    fn check_event(&self, host: u32, sender: u32, event: &RaiseEvent) -> Result<(), OpError> {
        authority_routing(host, sender, event, "Host")
    }

    fn relayed(&mut self, host: u32, to: &[u32], data: &EventData, reliable: bool) {
        if !reliable || data.sender == host || !to.contains(&host) {
            return;
        }
        self.replay_bytes += data.data.len();
        self.replay.push_back(data.clone());
        while self.replay.len() > self.max_replay_events
            || self.replay_bytes > self.max_replay_bytes
        {
            let Some(old) = self.replay.pop_front() else {
                break;
            };
            self.replay_bytes -= old.data.len();
            self.truncated = true;
        }
    }

    fn authority_moved(
        &mut self,
        host: u32,
        active: &[u32],
        previous: u32,
        reason: HostChange,
        now: Instant,
    ) -> Vec<Out> {
        let handover = Handover {
            snapshot: self.snapshot.as_ref().map(|(data, at)| HostSnapshot {
                data: data.clone(),
                age_ms: now.saturating_duration_since(*at).as_millis() as u64,
            }),
            replay: self.replay.len() as u32,
            replay_truncated: self.truncated,
        };
        let changed = |handover| RoomEvent::HostChanged {
            host,
            previous,
            reason,
            handover,
        };
        let mut out = vec![Out::Event {
            to: vec![host],
            event: changed(Some(handover)),
        }];
        // The replay stays until the next upload: should this host go before it
        // uploads, the next one needs all of it again.
        out.extend(self.replay.iter().map(|data| Out::Relay {
            to: vec![host],
            data: data.clone(),
            reliable: true,
            channel: 0,
        }));
        let others: Vec<u32> = active.iter().copied().filter(|a| *a != host).collect();
        if !others.is_empty() {
            out.push(Out::Event {
                to: others,
                event: changed(None),
            });
        }
        out
    }

    fn upload_snapshot(
        &mut self,
        host: u32,
        sender: u32,
        data: Bytes,
        now: Instant,
    ) -> Result<GameReply, OpError> {
        if sender != host {
            return Err(OpError::new(
                ResultCode::NotAllowed,
                format!("only the host (actor {host}) uploads snapshots"),
            ));
        }
        if data.len() > self.max_snapshot_bytes {
            return Err(OpError::new(
                ResultCode::OperationLimitReached,
                format!(
                    "a snapshot may have {} bytes; this one has {}",
                    self.max_snapshot_bytes,
                    data.len()
                ),
            ));
        }
        self.snapshot = Some((data, now));
        self.replay.clear();
        self.replay_bytes = 0;
        self.truncated = false;
        Ok(GameReply::SnapshotStored)
    }
}
