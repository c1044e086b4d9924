//! One client connection on the master's client listener.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quinn::{Connection, SendStream};
use switchboard_protocol::messages::common::{MAX_USER_ID, check_game_name};
use switchboard_protocol::{
    ClientToMaster, CloseCode, MasterOp, MasterReply, MasterToClient, OpError, Redirect, Response,
    ResultCode, TicketAction, TicketClaims, frame::DEFAULT_MAX_FRAME, version,
};
use switchboard_transport::{FramedRecv, close, send_frame};
use tracing::{debug, info};

use crate::Shared;
use crate::registry::Placement;

/// Serves one client until it disconnects or breaks the protocol.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection) {
    let (mut send, recv) = match handshake(&shared, &conn).await {
        Ok(streams) => streams,
        Err((code, reason)) => {
            debug!(%reason, "client handshake failed");
            close(&conn, code, &reason);
            return;
        }
    };
    let mut recv = recv;
    let mut user: Option<String> = None;
    loop {
        let msg = match recv.next::<ClientToMaster>().await {
            Ok(Some(msg)) => msg,
            Ok(None) => break,
            Err(e) => {
                close(&conn, CloseCode::ProtocolViolation, &e.to_string());
                return;
            }
        };
        let (id, op) = match msg {
            ClientToMaster::Request { id, op } => (id, op),
            ClientToMaster::Hello(_) => {
                close(&conn, CloseCode::ProtocolViolation, "Hello sent twice");
                return;
            }
        };
        let result = handle(&shared, &mut user, op);
        let reply = MasterToClient::Response(Response { id, result });
        if send_frame(&mut send, &reply).await.is_err() {
            break;
        }
    }
    let _ = send.finish();
    info!(
        user = user.as_deref().unwrap_or(""),
        "client left the master"
    );
}

type Streams = (SendStream, FramedRecv);

async fn handshake(shared: &Shared, conn: &Connection) -> Result<Streams, (CloseCode, String)> {
    let accept = async {
        let (mut send, recv) = conn
            .accept_bi()
            .await
            .map_err(|e| (CloseCode::Normal, e.to_string()))?;
        let mut recv = FramedRecv::new(recv, DEFAULT_MAX_FRAME);
        let hello = match recv.next::<ClientToMaster>().await {
            Ok(Some(ClientToMaster::Hello(h))) => h,
            Ok(_) => return Err((CloseCode::ProtocolViolation, "expected Hello".into())),
            Err(e) => return Err((CloseCode::ProtocolViolation, e.to_string())),
        };
        let welcome = version::accept_hello(&hello, "switchboard-master")
            .map_err(|e| (e.close_code(), e.to_string()))?;
        send_frame(&mut send, &MasterToClient::Welcome(welcome))
            .await
            .map_err(|e| (CloseCode::Normal, e.to_string()))?;
        Ok((send, recv))
    };
    tokio::time::timeout(shared.config.handshake_timeout, accept)
        .await
        .map_err(|_| (CloseCode::ProtocolViolation, "no Hello in time".to_string()))?
}

fn handle(
    shared: &Shared,
    user: &mut Option<String>,
    op: MasterOp,
) -> Result<MasterReply, OpError> {
    let Some(user_id) = user.clone() else {
        return match op {
            MasterOp::Authenticate { user_id, token: _ } => {
                if user_id.is_empty() || user_id.len() > MAX_USER_ID {
                    return Err(OpError::new(
                        ResultCode::InvalidAuthentication,
                        format!("user id must be 1 to {MAX_USER_ID} bytes"),
                    ));
                }
                *user = Some(user_id.clone());
                Ok(MasterReply::Authenticated { user_id })
            }
            _ => Err(OpError::new(
                ResultCode::OperationNotAllowedInCurrentState,
                "authenticate first",
            )),
        };
    };
    match op {
        MasterOp::Authenticate { .. } => Err(OpError::new(
            ResultCode::OperationNotAllowedInCurrentState,
            "already authenticated",
        )),
        MasterOp::CreateGame { game, options: _ } => {
            let game = match game {
                Some(name) => {
                    check_game_name(&name)?;
                    name
                }
                None => format!("{:032x}", rand::random::<u128>()),
            };
            let placement = shared.registry().reserve_game(&game, shared.now())?;
            Ok(redirect(
                shared,
                user_id,
                game,
                placement,
                TicketAction::Create,
            ))
        }
        MasterOp::JoinGame { game } => {
            check_game_name(&game)?;
            let placement = shared.registry().join_target(&game)?;
            Ok(redirect(
                shared,
                user_id,
                game,
                placement,
                TicketAction::Join,
            ))
        }
    }
}

fn redirect(
    shared: &Shared,
    user_id: String,
    game: String,
    placement: Placement,
    action: TicketAction,
) -> MasterReply {
    let expires_at_ms = unix_ms(SystemTime::now() + shared.config.ticket_ttl);
    let ticket = shared.config.ticket_keys.sign(TicketClaims {
        user_id,
        game: game.clone(),
        game_server: placement.server,
        action,
        expires_at_ms,
        key_id: 0,
    });
    MasterReply::Redirect(Redirect {
        game,
        address: placement.address,
        ticket,
    })
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
