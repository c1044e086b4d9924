//! One game server's link on the master's game-server listener: handshake and
//! registration under one deadline with small frames (nothing big is read before the
//! cluster secret is checked), then reports, digests and snapshots in, operator commands
//! out. Faults are logged at WARN with the server named, once per incident.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quinn::{Connection, SendStream};
use subtle::ConstantTimeEq;
use switchboard_protocol::messages::cluster::{MAX_CLUSTER_FRAME, MAX_CLUSTER_HANDSHAKE_FRAME};
use switchboard_protocol::{
    CloseCode, GsToMaster, MasterToGs, OpError, Register, ResultCode, version,
};
use switchboard_transport::{FramedRecv, Pass, close, send_frame};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::Shared;

/// A command for a link's task.
#[derive(Debug)]
pub(crate) enum LinkCmd {
    /// Send this to the game server.
    Send(MasterToGs),
    /// Another registration took the id: close this link with `Displaced`.
    Displaced {
        /// The address of the server that took over.
        by: String,
    },
}

/// Why a link ended, for the log.
enum Ending {
    /// The game server said goodbye (it is stopping) or the master is shutting down.
    Closed,
    /// Another registration of the same id replaced this link.
    Displaced,
    /// The connection broke or timed out.
    Lost(String),
}

/// Serves one game server link until it ends.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection, link: u64, mut pass: Pass) {
    let remote = conn.remote_address();
    let attach = tokio::time::timeout(shared.config.handshake_timeout, handshake(&shared, &conn));
    let (mut send, mut recv, reg) = match attach.await {
        Ok(Ok(attached)) => attached,
        Ok(Err(Refusal {
            code,
            reason,
            server,
            label,
        })) => {
            shared.counters.refused(label);
            shared.log_refusal(&server, remote.ip(), &reason);
            close(&conn, code, &reason);
            return;
        }
        Err(_) => {
            shared.counters.refused("deadline");
            debug!("no registration within the handshake deadline");
            close(
                &conn,
                CloseCode::ProtocolViolation,
                "no Hello and Register in time",
            );
            return;
        }
    };
    let server_id = reg.server_id.clone();
    let registration = shared.state().register(&reg, link, shared.now());
    let registration = match registration {
        Ok(r) => r,
        Err(e) => {
            shared.counters.refused("id_in_use");
            shared.log_refusal(&server_id, remote.ip(), &e.message);
            refuse(&conn, &mut send, e).await;
            return;
        }
    };
    shared.refusal_resolved(&server_id);
    if let Some(old) = registration.displaced {
        shared.displace(&server_id, old, &reg.address);
    }
    info!(server = %server_id, address = %reg.address, "game server registered");
    // Registered: its snapshot (every room) may be large.
    pass.established();
    recv.set_max_frame(MAX_CLUSTER_FRAME);
    shared.config.cluster_limits.authenticated(&conn);
    let registered = MasterToGs::Registered {
        ticket_keys: shared.config.ticket_keys.clone(),
    };
    let (tx, mut commands) = mpsc::channel(16);
    shared.links.insert(server_id.clone(), (link, tx));
    let ending = if send_frame(&mut send, &registered).await.is_ok() {
        loop {
            tokio::select! {
                msg = recv.next::<GsToMaster>() => match msg {
                    Ok(Some(msg)) => {
                        if let Some(reply) = apply(&shared, &server_id, link, msg)
                            && send_frame(&mut send, &reply).await.is_err()
                        {
                            break Ending::Lost("cannot write to the link".into());
                        }
                    }
                    Ok(None) => break Ending::Closed,
                    Err(switchboard_transport::RecvError::Read(e)) => break ending_of(&e),
                    Err(e) => {
                        close(&conn, CloseCode::ProtocolViolation, &e.to_string());
                        break Ending::Lost(format!("protocol violation: {e}"));
                    }
                },
                Some(cmd) = commands.recv() => match cmd {
                    LinkCmd::Send(msg) => {
                        if send_frame(&mut send, &msg).await.is_err() {
                            break Ending::Lost("cannot write to the link".into());
                        }
                    }
                    LinkCmd::Displaced { by } => {
                        close(
                            &conn,
                            CloseCode::Displaced,
                            &format!("another game server registered as {server_id:?} from {by}"),
                        );
                        break Ending::Displaced;
                    }
                },
            }
        }
    } else {
        Ending::Lost("cannot write to the link".into())
    };
    shared.links.remove_if(&server_id, |_, (l, _)| *l == link);
    let current = shared.state().link_lost(&server_id, link, shared.now());
    match ending {
        Ending::Lost(why) if current => {
            shared.counters.links_lost.fetch_add(1, Ordering::Relaxed);
            warn!(server = %server_id, reason = %why,
                "game server link lost: no new games or joins go there; its games stay listed for the link TTL");
        }
        Ending::Closed if current => {
            info!(server = %server_id, "game server link closed");
        }
        Ending::Displaced => {
            warn!(server = %server_id, "game server link displaced by a newer registration of the same id");
        }
        _ => debug!(server = %server_id, "a replaced link ended"),
    }
}

/// The close reason of a link whose stream failed.
fn ending_of(e: &quinn::ReadError) -> Ending {
    match e {
        quinn::ReadError::ConnectionLost(quinn::ConnectionError::ApplicationClosed(c))
            if c.error_code.into_inner() == u64::from(CloseCode::ServerShutdown.to_wire()) =>
        {
            Ending::Closed
        }
        quinn::ReadError::ConnectionLost(quinn::ConnectionError::LocallyClosed) => Ending::Closed,
        other => Ending::Lost(other.to_string()),
    }
}

/// A registration that cannot go on.
struct Refusal {
    code: CloseCode,
    reason: String,
    /// The id the peer claimed (empty before `Register`).
    server: String,
    /// Metrics label.
    label: &'static str,
}

/// Accepts the control stream, `Hello` → `Welcome`, then `Register` with the right
/// secret; frames are at most `MAX_CLUSTER_HANDSHAKE_FRAME` bytes until then.
async fn handshake(
    shared: &Shared,
    conn: &Connection,
) -> Result<(SendStream, FramedRecv, Register), Refusal> {
    let violation = |reason: String| Refusal {
        code: CloseCode::ProtocolViolation,
        reason,
        server: String::new(),
        label: "protocol",
    };
    let (mut send, recv) = conn
        .accept_bi()
        .await
        .map_err(|e| violation(e.to_string()))?;
    let mut recv = FramedRecv::new(recv, MAX_CLUSTER_HANDSHAKE_FRAME);
    let hello = match recv.next().await {
        Ok(Some(GsToMaster::Hello(h))) => h,
        Ok(_) => return Err(violation("expected Hello".into())),
        Err(e) => return Err(violation(format!("expected Hello: {e}"))),
    };
    let welcome = version::accept_hello(&hello, "switchboard-master").map_err(|e| Refusal {
        code: e.close_code(),
        reason: e.to_string(),
        server: String::new(),
        label: "protocol",
    })?;
    send_frame(&mut send, &MasterToGs::Welcome(welcome))
        .await
        .map_err(|e| violation(e.to_string()))?;
    let reg: Register = match recv.next().await {
        Ok(Some(GsToMaster::Register(r))) => r,
        Ok(_) => return Err(violation("expected Register".into())),
        Err(e) => return Err(violation(format!("expected Register: {e}"))),
    };
    let secret_ok: bool = reg
        .secret
        .as_bytes()
        .ct_eq(shared.config.cluster_secret.as_bytes())
        .into();
    if !secret_ok {
        let e = OpError::new(ResultCode::InvalidAuthentication, "wrong cluster secret");
        refuse(conn, &mut send, e).await;
        return Err(Refusal {
            code: CloseCode::AuthenticationFailed,
            reason: "wrong cluster secret".into(),
            server: reg.server_id,
            label: "secret",
        });
    }
    Ok((send, recv, reg))
}

/// Sends `Refused` and closes the link once it has arrived (bounded).
async fn refuse(conn: &Connection, send: &mut SendStream, e: OpError) {
    let reason = e.message.clone();
    let _ = send_frame(send, &MasterToGs::Refused(e)).await;
    let _ = send.finish();
    // Closing discards unsent data: let the refusal arrive first (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
    close(conn, CloseCode::AuthenticationFailed, &reason);
}

/// Applies one message of a registered server; returns what to answer, if anything.
fn apply(shared: &Shared, server: &str, link: u64, msg: GsToMaster) -> Option<MasterToGs> {
    let now = shared.now();
    let mut state = shared.state();
    if state.heard_from(server, link, now) {
        info!(server, "game server is reporting again");
    }
    match msg {
        GsToMaster::Load(load) => state.update_load(server, load),
        GsToMaster::GameUpdate(game) => {
            let name = game.game.clone();
            if !state.update_game(server, game) {
                warn!(server, game = %name, "game reported by a server that does not own it");
            }
        }
        GsToMaster::GameRemoved { game } => state.remove_game(server, &game),
        GsToMaster::GameUnknown { game } => {
            if state.game_unknown(server, &game) {
                shared
                    .counters
                    .stale_games_dropped
                    .fetch_add(1, Ordering::Relaxed);
                warn!(server, %game,
                    "dropped a stale game: a client was sent there and the server does not host it");
            }
        }
        GsToMaster::JoinRefused { game, user_id } => {
            if state.join_refused(server, &game, &user_id) {
                debug!(server, %game, user = %user_id, "a redirected join was refused by the game server");
            }
        }
        GsToMaster::Snapshot(games) => {
            let r = state.reconcile(server, &games);
            if r.any() {
                info!(
                    server,
                    games = games.len(),
                    dropped = r.dropped,
                    changed = r.changed,
                    "game server's rooms reconciled"
                );
            }
        }
        GsToMaster::Digest(theirs) => {
            shared.counters.digests.fetch_add(1, Ordering::Relaxed);
            let ours = state.digest_of(server);
            if ours != theirs {
                shared.counters.divergences.fetch_add(1, Ordering::Relaxed);
                warn!(
                    server,
                    master_games = ours.games,
                    server_games = theirs.games,
                    "views of the game server's rooms diverged; asking for a snapshot"
                );
                return Some(MasterToGs::Resync);
            }
        }
        GsToMaster::Hello(_) | GsToMaster::Register(_) => {
            warn!(server, "repeated handshake message ignored");
        }
    }
    None
}
