//! A request/response session on a connection's control stream, shared by the master and
//! game-server links: the handshake, request ids, a reader task that routes responses to
//! their callers and events to a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::{CloseCode, Hello, OpError, frame::DEFAULT_MAX_FRAME};
use switchboard_transport::{FramedRecv, send_frame};
use tokio::sync::{mpsc, oneshot};

use crate::ClientError;

/// A frame from the server, sorted.
pub(crate) enum Incoming<R, E> {
    Welcome,
    Response(u32, Result<R, OpError>),
    Event(E),
}

/// The message types of one link.
pub(crate) trait Link: 'static {
    type Out: Serialize + Send + Sync;
    type In: DeserializeOwned + Send;
    type Op: Send;
    type Reply: Send + 'static;
    type Event: Send + 'static;
    fn hello(h: Hello) -> Self::Out;
    fn request(id: u32, op: Self::Op) -> Self::Out;
    fn sort(msg: Self::In) -> Incoming<Self::Reply, Self::Event>;
    /// Events that may be dropped when the application is behind (statistics); the
    /// others are waited for, which pushes back on the server.
    fn droppable(_event: &Self::Event) -> bool {
        false
    }
}

type Pending<R> = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<R, OpError>>>>>;

/// One control stream.
pub(crate) struct Session<L: Link> {
    pub conn: Connection,
    send: tokio::sync::Mutex<SendStream>,
    pending: Pending<L::Reply>,
    next_id: AtomicU32,
    timeout: Duration,
}

impl<L: Link> std::fmt::Debug for Session<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("remote", &self.conn.remote_address())
            .finish()
    }
}

impl<L: Link> Session<L> {
    /// Opens the control stream, sends `Hello` and starts the reader, which expects
    /// `Welcome` first and then sends events to `events` (waiting when it is full, which
    /// pushes back on the server). It does not wait for `Welcome`: the first request
    /// leaves right behind `Hello`, saving a round trip (the server handles it once it has
    /// accepted `Hello`; if it refuses, the request fails with its close reason).
    pub async fn open(
        conn: Connection,
        agent: &str,
        timeout: Duration,
        events: mpsc::Sender<L::Event>,
    ) -> Result<Self, ClientError> {
        let (mut send, recv) = conn.open_bi().await?;
        let recv = FramedRecv::new(recv, DEFAULT_MAX_FRAME);
        send_frame(&mut send, &L::hello(Hello::new(agent)))
            .await
            .map_err(|e| closed(&conn, e.to_string()))?;
        let pending: Pending<L::Reply> = Arc::default();
        tokio::spawn(read_loop::<L>(conn.clone(), recv, pending.clone(), events));
        Ok(Session {
            conn,
            send: tokio::sync::Mutex::new(send),
            pending,
            next_id: AtomicU32::new(1),
            timeout,
        })
    }

    /// Sends a message that has no response.
    pub async fn send(&self, msg: &L::Out) -> Result<(), ClientError> {
        let mut send = self.send.lock().await;
        send_frame(&mut send, msg)
            .await
            .map_err(|e| closed(&self.conn, e.to_string()))
    }

    /// Sends an operation and waits for its response (the request timeout).
    pub async fn request(&self, op: L::Op) -> Result<L::Reply, ClientError> {
        self.request_within(op, self.timeout).await
    }

    /// Sends an operation and waits up to `timeout` for its response.
    pub async fn request_within(
        &self,
        op: L::Op,
        timeout: Duration,
    ) -> Result<L::Reply, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        self.send(&L::request(id, op)).await?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                Err(ClientError::Timeout(timeout))
            }
            Ok(Err(_)) => Err(closed(&self.conn, "connection lost".into())),
            Ok(Ok(result)) => result.map_err(ClientError::Refused),
        }
    }

    /// Finishes the control stream (a clean goodbye).
    pub async fn finish(&self) {
        let _ = self.send.lock().await.finish();
    }
}

/// The error for a connection that went away: the server's close reason if it gave one.
pub(crate) fn closed(conn: &Connection, fallback: String) -> ClientError {
    match conn.close_reason() {
        Some(reason) => reason.into(),
        None => ClientError::Closed {
            code: None,
            reason: fallback,
        },
    }
}

async fn read_loop<L: Link>(
    conn: Connection,
    mut recv: FramedRecv,
    pending: Pending<L::Reply>,
    events: mpsc::Sender<L::Event>,
) {
    let mut welcomed = false;
    while let Ok(Some(msg)) = recv.next::<L::In>().await {
        let msg = L::sort(msg);
        if !welcomed {
            if matches!(msg, Incoming::Welcome) {
                welcomed = true;
                continue;
            }
            conn.close(
                CloseCode::ProtocolViolation.to_wire().into(),
                b"expected Welcome",
            );
            break;
        }
        match msg {
            Incoming::Response(id, result) => {
                let waiter = pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(result);
                }
            }
            Incoming::Event(ev) => {
                // An error means nobody listens any more: keep answering requests.
                if L::droppable(&ev) {
                    let _ = events.try_send(ev);
                } else {
                    let _ = events.send(ev).await;
                }
            }
            Incoming::Welcome => break,
        }
    }
    // Dropping the waiters fails every outstanding request.
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}
