//! QUIC transport shared by the master, the game servers and the client library:
//! endpoint construction with explicit transport limits ([`limits`]), TLS identities and
//! trust ([`tls`]), and framed messages on QUIC streams ([`framed`]).
//!
//! This crate moves bytes; the protocol itself lives in `switchboard-protocol`.

pub mod admission;
pub mod endpoint;
pub mod framed;
pub mod handshake;
pub mod limits;
pub mod log_limit;
pub mod prometheus;
pub mod queue;
pub mod tls;

pub use admission::{Admission, AdmissionLimits, Pass, RetryPolicy, Screen};
pub use endpoint::{ConnectError, ResetKey, client_endpoint, close, connect, server_endpoint};
pub use framed::{FramedRecv, RecvError, WriterEnd, send_frame, write_queued};
pub use limits::Limits;
pub use log_limit::LogLimit;
pub use queue::{Budget, OutRx, OutTx, Overflow, Weighed, out_queue, out_queue_sharing};
pub use tls::{ServerIdentity, TlsError, Trust, https_client_config};
