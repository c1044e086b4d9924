//! The client's error type.

use switchboard_protocol::{CloseCode, OpError, ResultCode};
use switchboard_transport::{ConnectError, TlsError};

/// What went wrong in a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection could not be made.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local socket.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused the operation.
    #[error("refused: {0}")]
    Refused(OpError),
    /// The connection is closed; `code` and `reason` are the server's when it closed it.
    #[error("connection closed{}: {reason}", code.map(|c| format!(" ({c:?})")).unwrap_or_default())]
    Closed {
        /// The application close code, when the server closed with a known one.
        code: Option<CloseCode>,
        /// The reason text.
        reason: String,
    },
    /// The server broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

impl ClientError {
    /// The result code of a refusal.
    pub fn result_code(&self) -> Option<ResultCode> {
        match self {
            ClientError::Refused(e) => e.result_code(),
            _ => None,
        }
    }
}

impl From<quinn::ConnectionError> for ClientError {
    fn from(e: quinn::ConnectionError) -> Self {
        match e {
            quinn::ConnectionError::ApplicationClosed(c) => ClientError::Closed {
                code: CloseCode::from_wire(c.error_code.into_inner()),
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            },
            other => ClientError::Closed {
                code: None,
                reason: other.to_string(),
            },
        }
    }
}
