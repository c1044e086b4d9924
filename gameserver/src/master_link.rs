//! The game server's link to the master: register with every room, then report changes
//! (batched) and load (every `report_interval`). The link reconnects with exponential
//! backoff; rooms keep relaying while the master is away, and on each reconnect every
//! room is re-published in the `Register` snapshot.

use std::sync::Arc;

use switchboard_protocol::messages::cluster::MAX_CLUSTER_FRAME;
use switchboard_protocol::{
    ALPN_CLUSTER, CloseCode, GsToMaster, Hello, MasterToGs, Register, encode_frame,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{FramedRecv, close, connect, send_frame};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Shared;

/// Keeps the link to the master up until `stop` flips to true.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let cfg = &shared.config;
    let mut delay = cfg.reconnect_min;
    loop {
        if *stop.borrow() {
            return;
        }
        let attempt = session(&shared, stop.clone()).await;
        if *stop.borrow() {
            return;
        }
        match attempt {
            Ok(()) => delay = cfg.reconnect_min,
            Err(e) => {
                warn!(master = %cfg.master, error = %e, "master link down; retrying in {delay:?}")
            }
        }
        shared.set_registered(false);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(cfg.reconnect_max);
    }
}

/// One connection to the master. `Ok` when it was registered and later ended.
async fn session(shared: &Arc<Shared>, mut stop: watch::Receiver<bool>) -> Result<(), String> {
    let cfg = &shared.config;
    let endpoint = shared.client_endpoint.clone();
    let client_cfg =
        client_config(&cfg.master_trust, ALPN_CLUSTER, &cfg.limits).map_err(|e| e.to_string())?;
    // Connecting and registering can take up to the idle timeout when the master is gone:
    // a stop must not wait for that.
    let attach = async {
        let conn = connect(&endpoint, client_cfg, &cfg.master)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        let mut recv = FramedRecv::new(recv, MAX_CLUSTER_FRAME);
        send_frame(
            &mut send,
            &GsToMaster::Hello(Hello::new("switchboard-gameserver")),
        )
        .await
        .map_err(|e| e.to_string())?;
        match recv.next::<MasterToGs>().await {
            Ok(Some(MasterToGs::Welcome(_))) => {}
            other => return Err(format!("expected Welcome, got {other:?}")),
        }
        // Everything changed from here on is reported after the snapshot.
        shared.take_dirty();
        let register = Register {
            server_id: cfg.server_id.clone(),
            address: shared.public_address.clone(),
            secret: cfg.cluster_secret.clone(),
            priority: cfg.priority,
            games: shared.snapshot(),
        };
        let games = register.games.len();
        send_frame(&mut send, &GsToMaster::Register(register))
            .await
            .map_err(|e| e.to_string())?;
        match recv.next::<MasterToGs>().await {
            Ok(Some(MasterToGs::Registered { ticket_keys })) => shared.set_keys(ticket_keys),
            Ok(Some(MasterToGs::Refused(e))) => return Err(format!("registration refused: {e}")),
            other => return Err(format!("expected Registered, got {other:?}")),
        }
        Ok::<_, String>((conn, send, recv, games))
    };
    let (conn, mut send, mut recv, games) = tokio::select! {
        r = attach => r?,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
    };
    shared.set_registered(true);
    info!(master = %cfg.master, games, "registered with the master");
    let mut tick = tokio::time::interval(cfg.report_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.dirty_notify.notified() => {
                let mut frames = dirty_frames(shared);
                send.write_all_chunks(&mut frames).await.map_err(|e| e.to_string())?;
            }
            _ = tick.tick() => {
                send_frame(&mut send, &GsToMaster::Load(shared.load())).await.map_err(|e| e.to_string())?;
            }
            _ = shared.report_now.notified() => {
                send_frame(&mut send, &GsToMaster::Load(shared.load())).await.map_err(|e| e.to_string())?;
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                // A last report (the state is Offline when draining ends), then goodbye.
                let last = async {
                    let mut frames = dirty_frames(shared);
                    frames.push(encode_frame(&GsToMaster::Load(shared.load())));
                    let _ = send.write_all_chunks(&mut frames).await;
                    let _ = send.finish();
                    let _ = send.stopped().await;
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), last).await;
                close(&conn, CloseCode::ServerShutdown, "game server stopping");
                return Ok(());
            }
            msg = recv.next::<MasterToGs>() => match msg {
                Ok(None) | Err(_) => return Ok(()),
                Ok(Some(MasterToGs::Registered { ticket_keys })) => shared.set_keys(ticket_keys),
                Ok(Some(MasterToGs::SetState { state, offline_after_secs })) => {
                    info!(?state, offline_after_secs, "state set by the master");
                    shared.set_state(state, std::time::Duration::from_secs(u64::from(offline_after_secs)));
                }
                Ok(Some(other)) => {
                    close(&conn, CloseCode::ProtocolViolation, "unexpected message");
                    return Err(format!("unexpected message from the master: {other:?}"));
                }
            },
        }
    }
}

/// The reports for every room changed since the last call: its new state, or its removal.
fn dirty_frames(shared: &Shared) -> Vec<bytes::Bytes> {
    shared
        .take_dirty()
        .into_iter()
        .map(|game| match shared.published.get(&game) {
            Some(state) => encode_frame(&GsToMaster::GameUpdate(state.clone())),
            None => encode_frame(&GsToMaster::GameRemoved { game }),
        })
        .collect()
}
