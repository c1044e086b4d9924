//! One game server's link on the master's game-server listener.

use std::sync::Arc;
use std::time::Duration;

use quinn::Connection;
use subtle::ConstantTimeEq;
use switchboard_protocol::messages::cluster::MAX_CLUSTER_FRAME;
use switchboard_protocol::{
    CloseCode, GsToMaster, MasterToGs, OpError, Register, ResultCode, version,
};
use switchboard_transport::{FramedRecv, close, send_frame};
use tracing::{info, warn};

use crate::Shared;

/// Serves one game server link until it ends.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection, link: u64) {
    let (mut send, recv) = match conn.accept_bi().await {
        Ok(s) => s,
        Err(_) => return,
    };
    let mut recv = FramedRecv::new(recv, MAX_CLUSTER_FRAME);
    let fail = |code: CloseCode, reason: String| {
        warn!(%reason, "game server link refused");
        close(&conn, code, &reason);
    };
    let hello = match tokio::time::timeout(shared.config.handshake_timeout, recv.next()).await {
        Ok(Ok(Some(GsToMaster::Hello(h)))) => h,
        _ => return fail(CloseCode::ProtocolViolation, "expected Hello".into()),
    };
    let welcome = match version::accept_hello(&hello, "switchboard-master") {
        Ok(w) => w,
        Err(e) => return fail(e.close_code(), e.to_string()),
    };
    if send_frame(&mut send, &MasterToGs::Welcome(welcome))
        .await
        .is_err()
    {
        return;
    }
    let reg: Register = match recv.next().await {
        Ok(Some(GsToMaster::Register(r))) => r,
        _ => return fail(CloseCode::ProtocolViolation, "expected Register".into()),
    };
    let secret_ok: bool = reg
        .secret
        .as_bytes()
        .ct_eq(shared.config.cluster_secret.as_bytes())
        .into();
    if !secret_ok {
        let refusal = MasterToGs::Refused(OpError::new(
            ResultCode::InvalidAuthentication,
            "wrong cluster secret",
        ));
        let _ = send_frame(&mut send, &refusal).await;
        let _ = send.finish();
        // Closing discards unsent data: let the refusal arrive first (bounded).
        let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
        return fail(
            CloseCode::AuthenticationFailed,
            "wrong cluster secret".into(),
        );
    }
    let server_id = reg.server_id.clone();
    shared.state().register(&reg, link);
    info!(server = %server_id, address = %reg.address, games = reg.games.len(), "game server registered");
    let registered = MasterToGs::Registered {
        ticket_keys: shared.config.ticket_keys.clone(),
    };
    let (tx, mut commands) = tokio::sync::mpsc::channel(16);
    shared.links.insert(server_id.clone(), (link, tx));
    if send_frame(&mut send, &registered).await.is_ok() {
        loop {
            tokio::select! {
                msg = recv.next::<GsToMaster>() => match msg {
                    Ok(Some(msg)) => apply(&shared, &server_id, msg),
                    Ok(None) => break,
                    Err(e) => {
                        close(&conn, CloseCode::ProtocolViolation, &e.to_string());
                        break;
                    }
                },
                Some(cmd) = commands.recv() => {
                    if send_frame(&mut send, &cmd).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    shared.links.remove_if(&server_id, |_, (l, _)| *l == link);
    if shared.state().link_lost(&server_id, link, shared.now()) {
        info!(server = %server_id, "game server link ended; its context is kept for the link TTL");
    }
}

fn apply(shared: &Shared, server: &str, msg: GsToMaster) {
    let mut registry = shared.state();
    match msg {
        GsToMaster::Load(load) => registry.update_load(server, load),
        GsToMaster::GameUpdate(state) => {
            if !registry.update_game(server, state.clone()) {
                warn!(server, game = %state.game, "game reported by a server that does not own it");
            }
        }
        GsToMaster::GameRemoved { game } => registry.remove_game(server, &game),
        GsToMaster::Hello(_) | GsToMaster::Register(_) => {
            warn!(server, "repeated handshake message ignored");
        }
    }
}
