//! Master configuration.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_protocol::TicketKeys;
use switchboard_transport::{Limits, ServerIdentity};

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
    /// QUIC transport limits.
    pub limits: Limits,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cluster secret is too short to resist guessing.
    #[error("cluster_secret must be at least {MIN_CLUSTER_SECRET} bytes")]
    WeakClusterSecret,
}

impl MasterConfig {
    /// A configuration with the defaults, random ticket keys, and the given identity and
    /// cluster secret.
    pub fn new(identity: ServerIdentity, cluster_secret: String) -> Result<Self, ConfigError> {
        if cluster_secret.len() < MIN_CLUSTER_SECRET {
            return Err(ConfigError::WeakClusterSecret);
        }
        let key: [u8; 32] = rand::random();
        Ok(MasterConfig {
            client_addr: ([0, 0, 0, 0], 5055).into(),
            cluster_addr: ([0, 0, 0, 0], 4520).into(),
            identity,
            cluster_secret,
            ticket_keys: TicketKeys::single(rand::random(), key.to_vec())
                .expect("a 32-byte key is long enough"),
            ticket_ttl: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            limits: Limits::default(),
        })
    }
}
