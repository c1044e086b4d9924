//! `RaiseEvent`: recipients (explicit targets, else an interest group, else a receiver
//! group) and the event cache, replayed to joiners. A cache that passes its limits is
//! discarded, the room is closed, and every actor gets `ErrorInfo`.

use switchboard_protocol::messages::game::MAX_CHANNEL;
use switchboard_protocol::{
    EventCaching, EventData, RaiseEvent, ReceiverGroup, ResultCode, RoomEvent, RoomMode,
};

use super::{Cached, Out, Room, Via};
use crate::modes::Mode;

impl Room {
    /// Who receives `event` from active actor `sender`.
    pub fn recipients(&self, sender: u32, event: &RaiseEvent) -> Vec<u32> {
        if !event.targets.is_empty() {
            let mut t: Vec<u32> = event
                .targets
                .iter()
                .copied()
                .filter(|n| self.actors.get(n).is_some_and(|a| a.active()))
                .collect();
            t.sort_unstable();
            t.dedup();
            return t;
        }
        if event.group != 0 {
            return self
                .actors
                .iter()
                .filter(|(n, a)| a.active() && **n != sender && a.groups.contains(&event.group))
                .map(|(n, _)| *n)
                .collect();
        }
        match event.receivers {
            ReceiverGroup::Others => self.active_except(sender),
            ReceiverGroup::All => self.active_actors(),
            ReceiverGroup::MasterClient => match self.master_client() {
                0 => Vec::new(),
                m => vec![m],
            },
            ReceiverGroup::Host => match self.host() {
                0 => Vec::new(),
                h => vec![h],
            },
        }
    }

    pub(crate) fn error_to(&self, to: Vec<u32>, code: ResultCode, message: &str) -> Out {
        Out::Event {
            to,
            event: RoomEvent::ErrorInfo {
                code: code.to_wire(),
                message: message.to_string(),
            },
        }
    }

    /// Relays an event of `sender` that arrived `via` a stream or a datagram: a reliable
    /// event's `channel` must be the channel of the stream it came on (the control stream
    /// is channel 0), else the sender gets `ErrorInfo(InvalidRequestParameters)` and the
    /// event goes nowhere; a datagram's `channel` is not used.
    pub(crate) fn raise_via(&mut self, sender: u32, event: RaiseEvent, via: Via) -> Vec<Out> {
        let stream = match via {
            Via::Datagram => return self.raise(sender, event, false),
            Via::Control => 0,
            Via::Channel(c) => c,
        };
        if event.channel != stream && self.actors.get(&sender).is_some_and(|a| a.active()) {
            return vec![self.error_to(
                vec![sender],
                ResultCode::InvalidRequestParameters,
                &format!(
                    "an event's channel must be that of the stream it is sent on: {stream}, not {}",
                    event.channel
                ),
            )];
        }
        self.raise(sender, event, true)
    }

    /// Relays (and caches) an event of active actor `sender`.
    pub(crate) fn raise(&mut self, sender: u32, event: RaiseEvent, reliable: bool) -> Vec<Out> {
        if !self.actors.get(&sender).is_some_and(|a| a.active()) {
            return Vec::new();
        }
        if reliable && event.channel > MAX_CHANNEL {
            return vec![self.error_to(
                vec![sender],
                ResultCode::InvalidRequestParameters,
                "reliable channels are 0 to 15",
            )];
        }
        let host = self.host();
        if let Err(e) = self.mode.check_event(host, sender, &event) {
            return vec![self.error_to(vec![sender], ResultCode::NotAllowed, &e.message)];
        }
        // In Host and Server rooms a client removes only its own cached events.
        let guarded =
            matches!(self.options.mode, RoomMode::Host | RoomMode::Server) && sender != host;
        match event.cache {
            EventCaching::RemoveFromRoomCacheForActorsLeft if guarded => {
                return vec![self.error_to(
                    vec![sender],
                    ResultCode::NotAllowed,
                    "only the room's authority cleans the cache of actors that left",
                )];
            }
            EventCaching::RemoveFromRoomCache => {
                let code = event.code;
                let senders = if guarded { vec![sender] } else { event.targets };
                self.drop_cached_of_matching(|c| {
                    (code == 0 || c.code == code)
                        && (senders.is_empty() || senders.contains(&c.sender))
                });
                return Vec::new();
            }
            EventCaching::RemoveFromRoomCacheForActorsLeft => {
                let present: Vec<u32> = self.actors.keys().copied().collect();
                self.drop_cached_of_matching(|c| !c.global && !present.contains(&c.sender));
                return Vec::new();
            }
            EventCaching::DoNotCache
            | EventCaching::AddToRoomCache
            | EventCaching::AddToRoomCacheGlobal => {}
        }
        let cacheable = event.targets.is_empty()
            && event.group == 0
            && matches!(event.receivers, ReceiverGroup::Others | ReceiverGroup::All);
        let caching = event.cache != EventCaching::DoNotCache;
        if caching && !cacheable {
            return vec![self.error_to(
                vec![sender],
                ResultCode::InvalidRequestParameters,
                "only events for Others or All can be cached",
            )];
        }
        let to = self.recipients(sender, &event);
        let channel = if reliable { event.channel } else { 0 };
        let data = EventData {
            sender,
            code: event.code,
            data: event.data,
        };
        let mut out = Vec::new();
        if !to.is_empty() {
            self.mode.relayed(host, &to, &data, reliable);
            out.push(Out::Relay {
                to,
                data: data.clone(),
                reliable,
                channel,
            });
        }
        if caching {
            self.cache_bytes += data.data.len();
            self.cache.push(Cached {
                sender,
                code: data.code,
                data: data.data,
                global: event.cache == EventCaching::AddToRoomCacheGlobal,
            });
            if self.cache.len() > self.limits.max_cache_events
                || self.cache_bytes > self.limits.max_cache_bytes
            {
                self.cache.clear();
                self.cache_bytes = 0;
                self.options.is_open = false;
                out.push(self.error_to(
                    self.active_actors(),
                    ResultCode::EventCacheExceeded,
                    "the event cache exceeded its limits: it was discarded and the room closed",
                ));
                out.push(Out::Publish);
            }
        }
        out
    }

    /// Removes the non-global cached events whose sender matches.
    pub(super) fn drop_cached_of(&mut self, sender: impl Fn(u32) -> bool) {
        self.drop_cached_of_matching(|c| !c.global && sender(c.sender));
    }

    fn drop_cached_of_matching(&mut self, pred: impl Fn(&Cached) -> bool) {
        self.cache.retain(|c| !pred(c));
        self.cache_bytes = self.cache.iter().map(|c| c.data.len()).sum();
    }

    /// Events in the cache.
    pub fn cached_events(&self) -> usize {
        self.cache.len()
    }
}
