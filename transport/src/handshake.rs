//! The server side of the version handshake on a client's control stream, shared by the
//! master and the game servers.

use std::time::Duration;

use quinn::{Connection, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::{CloseCode, Hello, Welcome, version};

use crate::{FramedRecv, send_frame};

/// Why a handshake failed: the close code and reason to close the connection with.
pub type Refusal = (CloseCode, String);

/// Accepts the control stream, reads `Hello` (`hello` picks it out of the link's first
/// message type), checks the version, and answers `Welcome` (wrapped by `welcome`) —
/// all within `timeout`. Frames are at most `max_frame` bytes until the caller raises the
/// limit (an unauthenticated peer gets a small one).
pub async fn accept_control<In, Out>(
    conn: &Connection,
    timeout: Duration,
    max_frame: usize,
    server: &str,
    hello: impl FnOnce(In) -> Option<Hello>,
    welcome: impl FnOnce(Welcome) -> Out,
) -> Result<(SendStream, FramedRecv), Refusal>
where
    In: DeserializeOwned,
    Out: Serialize,
{
    let accept = async {
        let (mut send, recv) = conn
            .accept_bi()
            .await
            .map_err(|e| (CloseCode::Normal, e.to_string()))?;
        let mut recv = FramedRecv::new(recv, max_frame);
        let first = match recv.next::<In>().await {
            Ok(Some(msg)) => hello(msg),
            Ok(None) => None,
            Err(e) => return Err((CloseCode::ProtocolViolation, e.to_string())),
        };
        let h =
            first.ok_or_else(|| (CloseCode::ProtocolViolation, "expected Hello".to_string()))?;
        let w = version::accept_hello(&h, server).map_err(|e| (e.close_code(), e.to_string()))?;
        send_frame(&mut send, &welcome(w))
            .await
            .map_err(|e| (CloseCode::Normal, e.to_string()))?;
        Ok((send, recv))
    };
    tokio::time::timeout(timeout, accept)
        .await
        .map_err(|_| (CloseCode::ProtocolViolation, "no Hello in time".to_string()))?
}
