//! Endpoint construction and connecting by `host:port`.

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ClientConfig, Connection, Endpoint, ServerConfig, VarInt};
use switchboard_protocol::CloseCode;

use crate::{Limits, ServerIdentity, TlsError, Trust};

/// The key a server signs stateless resets with. Derived from a secret that outlives the
/// process (the cluster secret), a restarted server signs resets exactly as its previous
/// incarnation did: a peer still talking over a connection of the dead process gets a
/// reset it trusts with its very next packet, and reconnects at once instead of waiting
/// for its idle timeout.
///
/// Both halves matter: quinn drops a packet whose connection ID its generator did not
/// sign, so the connection-ID key is derived from the secret too (quinn's
/// `HashedConnectionIdGenerator::from_key` exists for exactly this).
#[derive(Clone)]
pub struct ResetKey {
    hmac: Arc<ring::hmac::Key>,
    cid_key: u64,
}

impl std::fmt::Debug for ResetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetKey(..)")
    }
}

impl ResetKey {
    /// HMAC-SHA256(secret, "switchboard stateless reset/" + label) as the key; the label
    /// keeps the keys of different listeners apart.
    pub fn derive(secret: &[u8], label: &str) -> Self {
        let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(
            &root,
            format!("switchboard stateless reset/{label}").as_bytes(),
        );
        let cid = ring::hmac::sign(
            &root,
            format!("switchboard connection ids/{label}").as_bytes(),
        );
        let mut cid_key = [0u8; 8];
        cid_key.copy_from_slice(&cid.as_ref()[..8]);
        ResetKey {
            hmac: Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, tag.as_ref())),
            cid_key: u64::from_le_bytes(cid_key),
        }
    }

    /// A random key (a server without a lasting secret).
    pub fn random() -> Self {
        Self::derive(&rand_bytes(), "random")
    }
}

fn rand_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source works");
    b
}

/// Binds a server endpoint speaking one ALPN protocol, signing stateless resets with
/// `reset` (a random key when `None`).
pub fn server_endpoint(
    addr: SocketAddr,
    identity: &ServerIdentity,
    alpn: &[u8],
    limits: &Limits,
    reset: Option<&ResetKey>,
) -> Result<Endpoint, TlsError> {
    let tls = identity.rustls_config(alpn)?;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Other(e.to_string()))?;
    let mut cfg = ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(limits.server_transport_config())
        .max_incoming(limits.max_incoming)
        .incoming_buffer_size(limits.incoming_buffer)
        .incoming_buffer_size_total(limits.incoming_buffer_total);
    let io = |source| TlsError::Bind { addr, source };
    let socket = limits.udp_socket(addr).map_err(io)?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| io(std::io::Error::other("no async runtime")))?;
    let key = reset.cloned().unwrap_or_else(ResetKey::random);
    let mut endpoint_config = quinn::EndpointConfig::new(key.hmac);
    let cid_key = key.cid_key;
    endpoint_config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    Endpoint::new(endpoint_config, Some(cfg), socket, runtime).map_err(io)
}

/// The client configuration for one ALPN protocol.
pub fn client_config(
    trust: &Trust,
    alpn: &[u8],
    limits: &Limits,
) -> Result<ClientConfig, TlsError> {
    let tls = trust.rustls_config(alpn)?;
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Other(e.to_string()))?;
    let mut cfg = ClientConfig::new(Arc::new(quic));
    cfg.transport_config(limits.transport_config());
    Ok(cfg)
}

/// Binds a client endpoint on an ephemeral port of the given family, with the default
/// limits' socket buffers.
pub fn client_endpoint(ipv6: bool) -> std::io::Result<Endpoint> {
    let bind: SocketAddr = if ipv6 {
        "[::]:0".parse().expect("valid")
    } else {
        "0.0.0.0:0".parse().expect("valid")
    };
    let socket = Limits::default().udp_socket(bind)?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime"))?;
    Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `address` is not `host:port`, or the host does not resolve.
    #[error("cannot resolve {address:?}: {reason}")]
    Resolve {
        /// The address given.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// quinn refused to start the connection.
    #[error("connect to {address}: {source}")]
    Start {
        /// The address given.
        address: String,
        /// The cause.
        source: quinn::ConnectError,
    },
    /// The handshake failed or the connection was closed during it.
    #[error("connect to {address}: {source}")]
    Handshake {
        /// The address given.
        address: String,
        /// The cause.
        source: quinn::ConnectionError,
    },
}

/// Connects to `address` (`host:port`); `host` is also the name the server's certificate
/// must carry.
pub async fn connect(
    endpoint: &Endpoint,
    config: ClientConfig,
    address: &str,
) -> Result<Connection, ConnectError> {
    let resolve = |reason: String| ConnectError::Resolve {
        address: address.to_string(),
        reason,
    };
    let (host, _) = address
        .rsplit_once(':')
        .ok_or_else(|| resolve("expected host:port".into()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = tokio::net::lookup_host(address)
        .await
        .map_err(|e| resolve(e.to_string()))?
        .next()
        .ok_or_else(|| resolve("no address".into()))?;
    let connecting = endpoint
        .connect_with(config, addr, host)
        .map_err(|source| ConnectError::Start {
            address: address.to_string(),
            source,
        })?;
    connecting.await.map_err(|source| ConnectError::Handshake {
        address: address.to_string(),
        source,
    })
}

/// Closes a connection with an application close code and a reason a person can read.
pub fn close(conn: &Connection, code: CloseCode, reason: &str) {
    conn.close(VarInt::from_u32(code.to_wire()), reason.as_bytes());
}
