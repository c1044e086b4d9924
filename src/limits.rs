//! The defences' flags, shared by `master`, `gameserver` and `dev`. Each flag is optional:
//! when it is not given, the configuration's own default stays (the defaults live in one
//! place, the config structs; `docs/OPERATIONS.md` lists them).

use std::time::Duration;

use clap::Args;
use switchboard_gameserver::GameServerConfig;
use switchboard_master::MasterConfig;
use switchboard_transport::{AdmissionLimits, RetryPolicy};
use switchboard_workload::{Rate, RateLimits};

/// Rate limits, connection caps and queue bounds for client connections.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Joins (CreateGame, JoinGame, JoinRandomGame) per second per connection [2; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_JOIN_RATE")]
    pub join_rate: Option<f64>,
    /// Burst of joins [5].
    #[arg(long, env = "SWITCHBOARD_JOIN_BURST")]
    pub join_burst: Option<f64>,
    /// Other operations per second per connection [10; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_OP_RATE")]
    pub op_rate: Option<f64>,
    /// Burst of other operations [30].
    #[arg(long, env = "SWITCHBOARD_OP_BURST")]
    pub op_burst: Option<f64>,
    /// Events per second per connection on a game server [300; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_EVENT_RATE")]
    pub event_rate: Option<f64>,
    /// Burst of events [600].
    #[arg(long, env = "SWITCHBOARD_EVENT_BURST")]
    pub event_burst: Option<f64>,
    /// Bytes of event and state-update payloads per second per connection on a game
    /// server [262144; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_EVENT_BYTES_RATE")]
    pub event_bytes_rate: Option<f64>,
    /// Burst of event bytes [262144; at least 1]; a larger event passes when the burst
    /// is whole, leaving a debt the rate pays back.
    #[arg(long, env = "SWITCHBOARD_EVENT_BYTES_BURST")]
    pub event_bytes_burst: Option<f64>,
    /// Client connections from one IP address [1000; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Client connections not yet authenticated (or joined), in all [4096; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_MAX_PENDING")]
    pub max_pending: Option<usize>,
    /// Client connections not yet authenticated (or joined) from one IP address [64].
    #[arg(long, env = "SWITCHBOARD_MAX_PENDING_PER_IP")]
    pub max_pending_per_ip: Option<usize>,
    /// QUIC address validation (Retry): never, under-load or always [under-load].
    #[arg(long, env = "SWITCHBOARD_RETRY", value_parser = parse_retry)]
    pub retry: Option<RetryPolicy>,
    /// Bytes queued for one client before it is disconnected as a slow consumer [1048576].
    #[arg(long, env = "SWITCHBOARD_PEER_QUEUE_BYTES")]
    pub peer_queue_bytes: Option<usize>,
    /// Seconds a client may leave its queue undrained before it is disconnected [10].
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<u64>,
    /// (master) Joins on their way that one user may hold [3; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_MAX_RESERVATIONS_PER_USER")]
    pub max_reservations_per_user: Option<usize>,
    /// (master) Joins one connection may have in progress (redirects not followed yet)
    /// [1; 0 = no limit].
    #[arg(long, env = "SWITCHBOARD_MAX_JOINS_IN_FLIGHT")]
    pub max_joins_in_flight: Option<usize>,
    /// (game server) Seconds a client has to join a room after connecting [10].
    #[arg(long, env = "SWITCHBOARD_JOIN_TIMEOUT")]
    pub join_timeout: Option<u64>,
    /// Seconds a client has to send Hello after connecting [10].
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<u64>,
    /// (master) Seconds a client has to authenticate after Hello [10].
    #[arg(long, env = "SWITCHBOARD_AUTH_TIMEOUT")]
    pub auth_timeout: Option<u64>,
    /// (game server) Encoded bytes of one actor's properties [16384].
    #[arg(long, env = "SWITCHBOARD_MAX_ACTOR_PROP_BYTES")]
    pub max_actor_prop_bytes: Option<usize>,
    /// (game server) Keys of the room's properties, and of one actor's [100].
    #[arg(long, env = "SWITCHBOARD_MAX_PROP_KEYS")]
    pub max_prop_keys: Option<usize>,
    /// Lobby-listed properties of a room [16].
    #[arg(long, env = "SWITCHBOARD_MAX_LOBBY_PROPS")]
    pub max_lobby_props: Option<usize>,
    /// Encoded bytes of a room's lobby-listed property values [2048].
    #[arg(long, env = "SWITCHBOARD_MAX_LOBBY_PROP_BYTES")]
    pub max_lobby_prop_bytes: Option<usize>,
    /// (game server) Bytes of a Host room's snapshot [262144].
    #[arg(long, env = "SWITCHBOARD_MAX_SNAPSHOT_BYTES")]
    pub max_snapshot_bytes: Option<usize>,
    /// (game server) Milliseconds a join waits for a Server room's approval [10000].
    #[arg(long, env = "SWITCHBOARD_APPROVAL_TIMEOUT_MS")]
    pub approval_timeout_ms: Option<u64>,
    /// (game server) Milliseconds a Server room lasts after its authority left [5000].
    #[arg(long, env = "SWITCHBOARD_AUTHORITY_GRACE_MS")]
    pub authority_grace_ms: Option<u64>,
    /// (game server) The flush window of rooms that do not choose one, in ms: relayed
    /// events bound for one client within it leave together; 0 sends each at once [5].
    #[arg(long, env = "SWITCHBOARD_FLUSH_WINDOW_MS")]
    pub flush_window_ms: Option<u64>,
    /// (game server) The longest flush window a room may choose, in ms [50].
    #[arg(long, env = "SWITCHBOARD_MAX_FLUSH_WINDOW_MS")]
    pub max_flush_window_ms: Option<u64>,
}

fn parse_retry(s: &str) -> Result<RetryPolicy, String> {
    RetryPolicy::parse(s).ok_or_else(|| format!("{s:?} is not never, under-load or always"))
}

fn rate(r: &mut Rate, per_second: Option<f64>, burst: Option<f64>) {
    if let Some(p) = per_second {
        r.per_second = p.max(0.0);
    }
    if let Some(b) = burst {
        r.burst = b.max(1.0);
    }
}

impl LimitArgs {
    fn rates(&self, r: &mut RateLimits) {
        rate(&mut r.joins, self.join_rate, self.join_burst);
        rate(&mut r.ops, self.op_rate, self.op_burst);
        rate(&mut r.events, self.event_rate, self.event_burst);
        rate(
            &mut r.event_bytes,
            self.event_bytes_rate,
            self.event_bytes_burst,
        );
    }

    fn admission(&self, a: &mut AdmissionLimits) {
        if let Some(n) = self.max_connections_per_ip {
            a.max_per_ip = n;
        }
        if let Some(n) = self.max_pending {
            a.max_pending = n;
        }
        if let Some(n) = self.max_pending_per_ip {
            a.max_pending_per_ip = n;
        }
        if let Some(r) = self.retry {
            a.retry = r;
        }
    }

    /// Applies the given flags to a master's configuration.
    pub fn apply_master(&self, c: &mut MasterConfig) {
        self.rates(&mut c.rate_limits);
        self.admission(&mut c.client_admission);
        if let Some(n) = self.peer_queue_bytes {
            c.peer_queue_bytes = n;
        }
        if let Some(s) = self.drain_timeout {
            c.drain_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = self.max_reservations_per_user {
            c.settings.max_reservations_per_user = n;
        }
        if let Some(s) = self.handshake_timeout {
            c.handshake_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.auth_timeout {
            c.auth_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = self.max_lobby_props {
            c.settings.max_lobby_props = n;
        }
        if let Some(n) = self.max_joins_in_flight {
            c.settings.max_joins_in_flight = n;
        }
        if let Some(n) = self.max_lobby_prop_bytes {
            c.settings.max_lobby_prop_bytes = n;
        }
    }

    /// Applies the given flags to a game server's configuration.
    pub fn apply_gameserver(&self, c: &mut GameServerConfig) {
        self.rates(&mut c.rate_limits);
        self.admission(&mut c.admission);
        if let Some(n) = self.peer_queue_bytes {
            c.peer_queue_bytes = n;
        }
        if let Some(s) = self.drain_timeout {
            c.drain_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.join_timeout {
            c.join_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.handshake_timeout {
            c.handshake_timeout = Duration::from_secs(s.max(1));
        }
        let r = &mut c.room_limits;
        if let Some(n) = self.max_actor_prop_bytes {
            r.max_actor_prop_bytes = n;
        }
        if let Some(n) = self.max_prop_keys {
            r.max_prop_keys = n;
        }
        if let Some(n) = self.max_lobby_props {
            r.max_lobby_props = n;
        }
        if let Some(n) = self.max_lobby_prop_bytes {
            r.max_lobby_prop_bytes = n;
        }
        if let Some(n) = self.max_snapshot_bytes {
            r.max_snapshot_bytes = n;
        }
        if let Some(ms) = self.approval_timeout_ms {
            r.approval_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = self.authority_grace_ms {
            r.authority_grace = Duration::from_millis(ms);
        }
        if let Some(ms) = self.flush_window_ms {
            r.flush_window = Duration::from_millis(ms);
        }
        if let Some(ms) = self.max_flush_window_ms {
            r.max_flush_window = Duration::from_millis(ms);
        }
    }

    /// No rate limits and no reservation quota (the bench measures throughput; it sets
    /// its own).
    pub fn unlimited_rates() -> Vec<String> {
        [
            "--join-rate",
            "0",
            "--op-rate",
            "0",
            "--event-rate",
            "0",
            "--event-bytes-rate",
            "0",
            "--max-reservations-per-user",
            "0",
            "--max-joins-in-flight",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}
