//! ALPN identifiers and the version handshake.
//!
//! Each listener has its own ALPN identifier, so a client that dials the wrong port fails
//! in the TLS handshake with a clear error instead of exchanging garbage. The first frame
//! a client sends on its control stream is [`Hello`]; the server answers with
//! [`Welcome`] or closes the connection with [`crate::CloseCode::UnsupportedVersion`].

use serde::{Deserialize, Serialize};

/// ALPN of the master's client listener (default port 5055).
pub const ALPN_MASTER: &[u8] = b"switchboard-master/4";
/// ALPN of a game server's client listener (default port 5056).
pub const ALPN_GAME: &[u8] = b"switchboard-game/4";
/// ALPN of the master's game-server listener (default port 4520).
pub const ALPN_CLUSTER: &[u8] = b"switchboard-cluster/4";

/// The protocol version this build speaks. A server accepts exactly the versions it
/// lists in [`SUPPORTED_VERSIONS`].
pub const PROTOCOL_VERSION: u16 = 4;
/// Versions a server of this build accepts in [`Hello`].
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// First frame from the connecting side on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the client speaks.
    pub version: u16,
    /// Free text naming the client software, for logs (at most 64 bytes).
    pub agent: String,
}

impl Hello {
    /// A hello for this build's version.
    pub fn new(agent: impl Into<String>) -> Self {
        Hello {
            version: PROTOCOL_VERSION,
            agent: agent.into(),
        }
    }
}

/// The server's answer to an accepted [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version both sides now speak.
    pub version: u16,
    /// Free text naming the server software.
    pub server: String,
}

/// Why a [`Hello`] was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The version is not one this server speaks.
    #[error("protocol version {got} is not supported (this server speaks {supported:?})")]
    UnsupportedVersion {
        /// The version the client asked for.
        got: u16,
        /// The versions this server accepts.
        supported: &'static [u16],
    },
    /// The agent text is longer than 64 bytes.
    #[error("agent text of {0} bytes is longer than 64")]
    AgentTooLong(usize),
}

impl HandshakeError {
    /// The close code the server closes the connection with.
    pub fn close_code(&self) -> crate::CloseCode {
        match self {
            HandshakeError::UnsupportedVersion { .. } => crate::CloseCode::UnsupportedVersion,
            HandshakeError::AgentTooLong(_) => crate::CloseCode::ProtocolViolation,
        }
    }
}

/// Checks a client's [`Hello`] and returns the [`Welcome`] to send back.
pub fn accept_hello(hello: &Hello, server: &str) -> Result<Welcome, HandshakeError> {
    if !SUPPORTED_VERSIONS.contains(&hello.version) {
        return Err(HandshakeError::UnsupportedVersion {
            got: hello.version,
            supported: SUPPORTED_VERSIONS,
        });
    }
    if hello.agent.len() > 64 {
        return Err(HandshakeError::AgentTooLong(hello.agent.len()));
    }
    Ok(Welcome {
        version: hello.version,
        server: server.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_version_is_accepted() {
        let w = accept_hello(&Hello::new("test"), "sb").unwrap();
        assert_eq!(w.version, PROTOCOL_VERSION);
    }

    #[test]
    fn unknown_version_is_refused() {
        let hello = Hello {
            version: 99,
            agent: "x".into(),
        };
        assert!(matches!(
            accept_hello(&hello, "sb"),
            Err(HandshakeError::UnsupportedVersion { got: 99, .. })
        ));
    }

    #[test]
    fn long_agent_is_refused() {
        let hello = Hello::new("a".repeat(65));
        assert_eq!(
            accept_hello(&hello, "sb"),
            Err(HandshakeError::AgentTooLong(65))
        );
    }
}
