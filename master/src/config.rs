//! Master configuration.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_protocol::TicketKeys;
use switchboard_transport::{AdmissionLimits, Limits, RetryPolicy, ServerIdentity};

use crate::auth::AuthConfig;
use crate::state::Settings;
use switchboard_workload::{RateLimits, Workload};

/// Smallest accepted cluster secret, in bytes.
pub const MIN_CLUSTER_SECRET: usize = 16;

/// Everything a master needs to run.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Where clients connect (default `0.0.0.0:5055`).
    pub client_addr: SocketAddr,
    /// Where game servers connect (default `0.0.0.0:4520`).
    pub cluster_addr: SocketAddr,
    /// The TLS identity of both listeners.
    pub identity: ServerIdentity,
    /// The secret game servers present to register.
    pub cluster_secret: String,
    /// Keys that sign join tickets (sent to game servers when they register).
    pub ticket_keys: TicketKeys,
    /// How long a join ticket is valid.
    pub ticket_ttl: Duration,
    /// How long a client has to send `Hello` after connecting.
    pub handshake_timeout: Duration,
    /// How long a client has to authenticate after `Hello`.
    pub auth_timeout: Duration,
    /// The authentication provider.
    pub auth: AuthConfig,
    /// The secret dedicated servers authenticate with (`AuthenticateServer`); `None`:
    /// no dedicated servers.
    pub server_secret: Option<String>,
    /// Matchmaking, lobby and load-balancing settings.
    pub settings: Settings,
    /// How often lobby subscribers get `GameListUpdate`.
    pub game_list_interval: Duration,
    /// How often authenticated clients get `AppStats`.
    pub app_stats_interval: Duration,
    /// Outgoing frames queued per client before it is disconnected as a slow consumer.
    pub peer_queue: usize,
    /// Outgoing bytes queued per client before it is disconnected as a slow consumer
    /// (one frame is always taken by an empty queue, whatever its size).
    pub peer_queue_bytes: usize,
    /// A client whose connection takes no queued bytes for this long is disconnected as
    /// a slow consumer.
    pub drain_timeout: Duration,
    /// Per-connection rate limits of joins (CreateGame, JoinGame, JoinRandomGame) and of
    /// the other operations (`events` is not used by the master).
    pub rate_limits: RateLimits,
    /// Caps on client connections per address and on clients not yet authenticated, and
    /// address validation.
    pub client_admission: AdmissionLimits,
    /// The same for the game-server listener.
    pub cluster_admission: AdmissionLimits,
    /// QUIC transport limits of the client listener.
    pub limits: Limits,
    /// QUIC transport limits of the game-server listener (short idle timeout: a dead
    /// game server is noticed within seconds).
    pub cluster_limits: Limits,
    /// Fixes the random choices (placement, generated names), for tests.
    pub seed: Option<u64>,
    /// Where the admin HTTP endpoint listens (`/metrics`, `/healthz`, `/readyz`, and the
    /// operator API); default 127.0.0.1:5080; `None` disables it.
    pub admin_addr: Option<SocketAddr>,
    /// The bearer token of the operator API; without one the API refuses every call.
    pub admin_token: Option<String>,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cluster secret is too short to resist guessing.
    #[error("the cluster secret must have at least {MIN_CLUSTER_SECRET} bytes")]
    WeakClusterSecret,
}

impl MasterConfig {
    /// A configuration with the defaults (the embedded workload.toml, `dev`
    /// authentication, random ticket keys) and the given identity and cluster secret.
    pub fn new(identity: ServerIdentity, cluster_secret: String) -> Result<Self, ConfigError> {
        if cluster_secret.len() < MIN_CLUSTER_SECRET {
            return Err(ConfigError::WeakClusterSecret);
        }
        let key: [u8; 32] = rand::random();
        let ticket_ttl = Duration::from_secs(30);
        let mut cfg = MasterConfig {
            client_addr: ([0, 0, 0, 0], 5055).into(),
            cluster_addr: ([0, 0, 0, 0], 4520).into(),
            identity,
            cluster_secret,
            ticket_keys: TicketKeys::single(rand::random(), key.to_vec())
                .expect("a 32-byte key is long enough"),
            ticket_ttl,
            handshake_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            auth: AuthConfig::Dev,
            server_secret: None,
            settings: Settings::default(),
            game_list_interval: Duration::from_secs(1),
            app_stats_interval: Duration::from_secs(5),
            peer_queue: 1024,
            peer_queue_bytes: 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
            // Clients and game servers talk to the master on their control stream only.
            limits: Limits {
                max_uni_streams: 0,
                ..Limits::default()
            },
            cluster_limits: Limits {
                max_uni_streams: 0,
                ..Limits::cluster()
            },
            rate_limits: RateLimits::default(),
            client_admission: AdmissionLimits::default(),
            cluster_admission: AdmissionLimits {
                max_per_ip: 64,
                max_pending: 256,
                max_pending_per_ip: 16,
                retry: RetryPolicy::UnderLoad,
            },
            seed: None,
            admin_addr: Some(([127, 0, 0, 1], 5080).into()),
            admin_token: None,
        };
        cfg.apply_workload(&Workload::default_embedded());
        Ok(cfg)
    }

    /// Takes the load-balancer settings and peer thresholds of a workload file.
    pub fn apply_workload(&mut self, w: &Workload) {
        self.settings.load_balancer = w.load_balancer.clone();
        self.settings.peer_levels = w.controllers.peers.value.to_vec();
    }
}
