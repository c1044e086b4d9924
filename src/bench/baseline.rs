//! The baselines, measured in the same run as Switchboard: what QUIC itself does on this
//! machine without rooms, matchmaking or protocol.
//!
//! - **relay**: a bare quinn fan-out relay. A client opens one bidirectional stream and
//!   writes its room number (u32 LE); after that every datagram it sends is forwarded to
//!   the other clients of the room, and every length-prefixed frame it writes on the stream
//!   is forwarded on theirs.
//! - **echo**: a bare quinn request/echo server: every length-prefixed frame is written
//!   back, with the same framing Switchboard uses.
//!
//! The server runs as `switchboard bench-baseline --kind relay|echo` in its own process,
//! so its CPU time is measured like Switchboard's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, ValueEnum};
use quinn::{Connection, Endpoint};
use switchboard_protocol::frame::DEFAULT_MAX_FRAME;
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{FramedRecv, Limits, ServerIdentity, Trust, connect, server_endpoint};
use tokio::sync::mpsc;

/// ALPN of the baseline servers.
pub const ALPN_BASELINE: &[u8] = b"switchboard-baseline/1";

/// Which baseline server.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Kind {
    /// Fan-out relay.
    Relay,
    /// Request/echo.
    Echo,
    /// Plain-UDP fan-out relay with batched system calls (see [`super::udp`]).
    Udp,
}

/// Flags of the hidden `switchboard bench-baseline` command.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Which server.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Directory of the development certificate to serve.
    #[arg(long)]
    pub tls_dir: PathBuf,
}

/// Serves a baseline until killed; prints `{"ready":true,"addr":...}` first.
pub async fn serve(args: BaselineArgs) -> anyhow::Result<()> {
    #[cfg(not(target_os = "linux"))]
    if args.kind == Kind::Udp {
        anyhow::bail!("the plain-UDP baseline needs Linux (batched socket calls)");
    }
    #[cfg(target_os = "linux")]
    if args.kind == Kind::Udp {
        let socket = super::udp::socket()?;
        println!(
            "{}",
            serde_json::json!({ "ready": true, "addr": socket.local_addr()?.to_string() })
        );
        let stop = std::sync::atomic::AtomicBool::new(false);
        tokio::task::spawn_blocking(move || super::udp::serve(&socket, &stop)).await??;
        return Ok(());
    }
    let (identity, _) = ServerIdentity::dev(&args.tls_dir)?;
    let any: SocketAddr = "127.0.0.1:0".parse().expect("valid");
    let ep = server_endpoint(any, &identity, ALPN_BASELINE, &Limits::default(), None)?;
    println!(
        "{}",
        serde_json::json!({ "ready": true, "addr": ep.local_addr()?.to_string() })
    );
    let rooms: Rooms = Arc::default();
    while let Some(incoming) = ep.accept().await {
        let rooms = rooms.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            // A baseline trusts its peers: the full windows and streams from the start.
            Limits::default().authenticated(&conn);
            let _ = match args.kind {
                Kind::Relay => relay(conn, rooms).await,
                Kind::Echo => echo(conn).await,
                Kind::Udp => Ok(()),
            };
        });
    }
    Ok(())
}

#[derive(Clone)]
struct Member {
    id: usize,
    conn: Connection,
    tx: mpsc::Sender<Bytes>,
}

type Rooms = Arc<Mutex<HashMap<u32, Vec<Member>>>>;

fn frame(body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + body.len());
    b.put_u32_le(body.len() as u32);
    b.put_slice(body);
    b.freeze()
}

/// Writes queued frames to the stream, coalescing what is queued (what Switchboard's
/// writers do, minus the byte budget and the drain timeout: a baseline has no hostile
/// peers).
async fn drain_into(mut stream: quinn::SendStream, mut rx: mpsc::Receiver<Bytes>) {
    let mut frames = Vec::with_capacity(64);
    while rx.recv_many(&mut frames, 64).await > 0 {
        if stream.write_all_chunks(&mut frames).await.is_err() {
            return;
        }
        frames.clear();
    }
    let _ = stream.finish();
}

async fn relay(conn: Connection, rooms: Rooms) -> anyhow::Result<()> {
    let (send, mut recv) = conn.accept_bi().await?;
    let mut room = [0u8; 4];
    recv.read_exact(&mut room).await?;
    let room = u32::from_le_bytes(room);
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(drain_into(send, rx));
    let id = conn.stable_id();
    rooms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(room)
        .or_default()
        .push(Member {
            id,
            conn: conn.clone(),
            tx,
        });
    let others = || -> Vec<Member> {
        let r = rooms.lock().unwrap_or_else(|p| p.into_inner());
        r.get(&room)
            .map(|m| m.iter().filter(|m| m.id != id).cloned().collect())
            .unwrap_or_default()
    };
    let mut frames = FramedRecv::new(recv, DEFAULT_MAX_FRAME);
    loop {
        tokio::select! {
            dg = conn.read_datagram() => {
                let Ok(dg) = dg else { break };
                for m in others() {
                    let _ = m.conn.send_datagram(dg.clone());
                }
            }
            body = frames.next_body() => {
                let Ok(Some(body)) = body else { break };
                let f = frame(&body);
                for m in others() {
                    let _ = m.tx.try_send(f.clone());
                }
            }
        }
    }
    if let Some(members) = rooms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(&room)
    {
        members.retain(|m| m.id != id);
    }
    Ok(())
}

async fn echo(conn: Connection) -> anyhow::Result<()> {
    let (send, recv) = conn.accept_bi().await?;
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(drain_into(send, rx));
    let mut frames = FramedRecv::new(recv, DEFAULT_MAX_FRAME);
    while let Ok(Some(body)) = frames.next_body().await {
        if tx.send(frame(&body)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// A running baseline server (a child process).
#[derive(Debug)]
pub struct BaselineServer {
    /// Its address.
    pub addr: String,
    /// Its process id (for CPU and memory).
    pub pid: u32,
    child: std::process::Child,
}

impl BaselineServer {
    /// Starts one, serving the certificate in `tls_dir`.
    pub fn start(kind: Kind, tls_dir: &Path) -> anyhow::Result<Self> {
        let kind = match kind {
            Kind::Relay => "relay",
            Kind::Echo => "echo",
            Kind::Udp => "udp",
        };
        let dir = tls_dir.to_str().unwrap_or_default();
        let (child, ready) =
            super::target::spawn_ready(&["bench-baseline", "--kind", kind, "--tls-dir", dir])?;
        Ok(BaselineServer {
            addr: ready["addr"].as_str().unwrap_or_default().to_string(),
            pid: child.id(),
            child,
        })
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects a baseline client.
pub async fn connect_baseline(
    endpoint: &Endpoint,
    trust: &Trust,
    addr: &str,
) -> anyhow::Result<Connection> {
    let cfg = client_config(trust, ALPN_BASELINE, &Limits::default())?;
    Ok(connect(endpoint, cfg, addr).await?)
}

/// A length-prefixed frame around `body`.
pub fn baseline_frame(body: &[u8]) -> Bytes {
    frame(body)
}
