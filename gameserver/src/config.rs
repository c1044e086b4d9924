//! Game server configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use switchboard_workload::{RateLimits, Workload};

use switchboard_transport::{AdmissionLimits, Limits, ServerIdentity, Trust};

use crate::room::RoomLimits;

/// Everything a game server needs to run.
#[derive(Debug, Clone)]
pub struct GameServerConfig {
    /// Stable id; the master keys the server's context by it.
    pub server_id: String,
    /// Where clients connect (default `0.0.0.0:5056`).
    pub listen: SocketAddr,
    /// The address the master hands to clients, `host:port`. Required when `listen` is an
    /// unspecified address (0.0.0.0 or ::), since clients cannot dial that.
    pub public_address: Option<String>,
    /// The master's game-server listener, `host:port`.
    pub master: String,
    /// Roots that the master's certificate must chain to.
    pub master_trust: Trust,
    /// The TLS identity of the client listener.
    pub identity: ServerIdentity,
    /// The secret shared with the master.
    pub cluster_secret: String,
    /// Priority group for the master's load balancer (lower is used first).
    pub priority: u8,
    /// QUIC transport limits of the client listener.
    pub limits: Limits,
    /// QUIC transport limits of the link to the master (short idle timeout: a dead
    /// master is noticed within seconds).
    pub link_limits: Limits,
    /// Outgoing messages queued per client before it is disconnected as a slow consumer.
    pub peer_queue: usize,
    /// Outgoing bytes queued per client (all its streams together) before it is
    /// disconnected as a slow consumer; an empty queue always takes one message.
    pub peer_queue_bytes: usize,
    /// A client whose connection takes no queued bytes for this long is disconnected as
    /// a slow consumer.
    pub drain_timeout: Duration,
    /// Commands queued per room before further events are dropped.
    pub room_queue: usize,
    /// Limits of every room (event cache, properties, EmptyRoomTtl cap).
    pub room_limits: RoomLimits,
    /// How long a client has to send `Hello` after connecting.
    pub handshake_timeout: Duration,
    /// How long a client has, from connecting, to join or create a room.
    pub join_timeout: Duration,
    /// Per-client rate limits of joins, other operations and events.
    pub rate_limits: RateLimits,
    /// Caps on connections per address and on connections that have not joined yet, and
    /// address validation.
    pub admission: AdmissionLimits,
    /// The studio's backend to tell about rooms (none by default).
    pub webhooks: Option<crate::webhooks::WebhookConfig>,
    /// How often load is reported to the master (the link's heartbeat: the master
    /// stops routing to a server that misses its report timeout, 3 s by default).
    pub report_interval: Duration,
    /// How often the server sends the master a digest of its rooms to compare views.
    pub sync_interval: Duration,
    /// First delay before reconnecting to the master; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts (short: a restarted master should see
    /// every game server again within a couple of seconds).
    pub reconnect_max: Duration,
    /// How long one connection attempt to the master may take.
    pub connect_timeout: Duration,
    /// Take this server id over even from a live server elsewhere (that server is told
    /// and refused from then on).
    pub replace_registration: bool,
    /// Stop after this many refused registrations in a row (wrong secret, untrusted
    /// certificate, id in use); `None` retries forever.
    pub register_attempts: Option<u32>,
    /// Feedback-controller thresholds and sampling (workload.toml).
    pub workload: Workload,
    /// A state file to watch (`ServerState.txt` habit), if any.
    pub state_file: Option<PathBuf>,
    /// On shutdown, how long to wait for rooms to empty before going Offline.
    pub drain_grace: Duration,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`, if anywhere.
    pub http_addr: Option<SocketAddr>,
}

impl GameServerConfig {
    /// A configuration with the defaults.
    pub fn new(
        server_id: impl Into<String>,
        master: impl Into<String>,
        master_trust: Trust,
        identity: ServerIdentity,
        cluster_secret: impl Into<String>,
    ) -> Self {
        GameServerConfig {
            server_id: server_id.into(),
            listen: ([0, 0, 0, 0], 5056).into(),
            public_address: None,
            master: master.into(),
            master_trust,
            identity,
            cluster_secret: cluster_secret.into(),
            priority: 0,
            limits: Limits::default(),
            link_limits: Limits::cluster(),
            peer_queue: 1024,
            peer_queue_bytes: 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
            room_queue: 4096,
            room_limits: RoomLimits::default(),
            handshake_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            rate_limits: RateLimits::default(),
            admission: AdmissionLimits::default(),
            webhooks: None,
            report_interval: Duration::from_secs(1),
            sync_interval: Duration::from_secs(60),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            replace_registration: false,
            register_attempts: None,
            workload: Workload::default_embedded(),
            state_file: None,
            drain_grace: Duration::from_secs(30),
            http_addr: None,
        }
    }
}
