//! The game server's link to the master: register, send a snapshot of every room, then
//! report changes (batched), load (every `report_interval`, which is also the link's
//! heartbeat) and a digest of the rooms (every `sync_interval`), answering the master's
//! requests for a snapshot.
//!
//! The link runs with a short idle timeout and keep-alive (`link_limits`), and the master
//! signs stateless resets with a key derived from the cluster secret, so a master that
//! died or restarted is noticed within seconds. The link reconnects with a short backoff
//! (`reconnect_min` doubling to `reconnect_max`, each attempt bounded by
//! `connect_timeout`); rooms keep relaying meanwhile.
//!
//! Faults are logged once per incident: the master being unreachable at WARN, a refused
//! registration (wrong secret, untrusted certificate, id in use, displaced) at ERROR. A
//! refusal keeps `/readyz` failing; with `register_attempts` the server gives up after
//! that many refused attempts in a row.

use std::sync::Arc;
use std::time::Duration;

use quinn::{ConnectionError, ReadError};
use switchboard_protocol::messages::cluster::MAX_CLUSTER_FRAME;
use switchboard_protocol::{
    ALPN_CLUSTER, CloseCode, GsToMaster, Hello, MasterToGs, Register, ResultCode, encode_frame,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{ConnectError, FramedRecv, close, connect, send_frame};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::Shared;
use crate::reports::Closing;

/// Where the game server stands with its master (`/readyz` and the `ready` line follow
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    /// Not registered yet, or the link was lost and is being re-established.
    Connecting,
    /// Registered: the master routes players here.
    Registered,
    /// The master (or its certificate check) refused the registration.
    Refused {
        /// What was refused and why.
        reason: String,
        /// The cause will not go away by itself (wrong secret, untrusted certificate):
        /// only a configuration change helps.
        permanent: bool,
    },
}

/// Why a link attempt or session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkError {
    /// The master cannot be reached, or the link broke: retry.
    Unreachable(String),
    /// The registration was refused.
    Refused { reason: String, permanent: bool },
}

/// The game server gave up registering.
#[derive(Debug, Clone, thiserror::Error)]
#[error("registration refused {attempts} times in a row; last: {reason}")]
pub struct GaveUp {
    /// Refused attempts in a row.
    pub attempts: u32,
    /// The last refusal.
    pub reason: String,
}

/// Keeps the link to the master up until `stop` flips to true. Returns `Err` when it gave
/// up after `register_attempts` refusals in a row.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), GaveUp> {
    let cfg = &shared.config;
    let mut delay = cfg.reconnect_min;
    let mut refusals = 0u32;
    // The last fault logged, so that each is logged once, not once per retry.
    let mut logged: Option<LinkError> = None;
    let mut down_since: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let attempt = session(
            &shared,
            stop.clone(),
            &mut refusals,
            &mut logged,
            &mut down_since,
        )
        .await;
        if *stop.borrow() {
            return Ok(());
        }
        shared.set_registered(false);
        match attempt {
            Ok(()) => delay = cfg.reconnect_min,
            Err(e) => {
                if logged.as_ref() != Some(&e) {
                    match &e {
                        LinkError::Unreachable(why) => warn!(master = %cfg.master, reason = %why,
                            "no link to the master; reconnecting every {:?} at most", cfg.reconnect_max),
                        LinkError::Refused { reason, permanent } => error!(master = %cfg.master,
                            %reason, permanent, "registration refused; /readyz fails until it succeeds"),
                    }
                } else {
                    debug!(error = ?e, "master link attempt failed again");
                }
                if let LinkError::Refused { reason, permanent } = &e {
                    refusals += 1;
                    shared.set_link_status(LinkStatus::Refused {
                        reason: reason.clone(),
                        permanent: *permanent,
                    });
                    if cfg.register_attempts.is_some_and(|n| refusals >= n) {
                        return Err(GaveUp {
                            attempts: refusals,
                            reason: reason.clone(),
                        });
                    }
                } else if !matches!(*shared.link_status.borrow(), LinkStatus::Refused { .. }) {
                    shared.set_link_status(LinkStatus::Connecting);
                }
                logged = Some(e);
            }
        }
        down_since.get_or_insert_with(tokio::time::Instant::now);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        delay = (delay * 2).min(cfg.reconnect_max);
    }
}

/// Classifies a failed connection attempt.
fn connect_error(e: ConnectError) -> LinkError {
    let crypto = |code: u64| (0x100..0x200).contains(&code);
    match e {
        ConnectError::Handshake {
            source: ConnectionError::TransportError(t),
            ..
        } if crypto(u64::from(t.code)) => LinkError::Refused {
            reason: format!("the master's certificate is not trusted (check --master-ca): {t}"),
            permanent: true,
        },
        ConnectError::Handshake {
            source: ConnectionError::ConnectionClosed(c),
            ..
        } if crypto(u64::from(c.error_code)) => LinkError::Refused {
            reason: format!("the master refused the TLS handshake (wrong port or protocol?): {c}"),
            permanent: true,
        },
        ConnectError::Tls(t) => LinkError::Refused {
            reason: t.to_string(),
            permanent: true,
        },
        other => LinkError::Unreachable(other.to_string()),
    }
}

/// Classifies a link whose stream failed.
fn read_error(e: &ReadError) -> LinkError {
    match e {
        ReadError::ConnectionLost(ConnectionError::ApplicationClosed(c))
            if c.error_code.into_inner() == u64::from(CloseCode::Displaced.to_wire()) =>
        {
            LinkError::Refused {
                reason: format!("displaced: {}", String::from_utf8_lossy(&c.reason)),
                permanent: false,
            }
        }
        ReadError::ConnectionLost(ConnectionError::Reset) => {
            LinkError::Unreachable("the master restarted (stateless reset)".into())
        }
        other => LinkError::Unreachable(format!("link lost: {other}")),
    }
}

fn unreachable(e: impl std::fmt::Display) -> LinkError {
    LinkError::Unreachable(e.to_string())
}

/// One connection to the master. `Ok` when it was registered and later ended cleanly
/// (the master shut down, or this server is stopping).
async fn session(
    shared: &Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    refusals: &mut u32,
    logged: &mut Option<LinkError>,
    down_since: &mut Option<tokio::time::Instant>,
) -> Result<(), LinkError> {
    let cfg = &shared.config;
    let endpoint = shared.client_endpoint.clone();
    let client_cfg =
        client_config(&cfg.master_trust, ALPN_CLUSTER, &cfg.link_limits).map_err(|e| {
            LinkError::Refused {
                reason: e.to_string(),
                permanent: true,
            }
        })?;
    let attach = async {
        let conn = tokio::time::timeout(
            cfg.connect_timeout,
            connect(&endpoint, client_cfg, &cfg.master),
        )
        .await
        .map_err(|_| unreachable(format!("no answer within {:?}", cfg.connect_timeout)))?
        .map_err(connect_error)?;
        let (mut send, recv) = conn.open_bi().await.map_err(unreachable)?;
        let mut recv = FramedRecv::new(recv, MAX_CLUSTER_FRAME);
        send_frame(
            &mut send,
            &GsToMaster::Hello(Hello::new("switchboard-gameserver")),
        )
        .await
        .map_err(unreachable)?;
        let closed = |e: switchboard_transport::RecvError| match e {
            switchboard_transport::RecvError::Read(r) => match read_error(&r) {
                LinkError::Unreachable(_) => match conn.close_reason() {
                    Some(ConnectionError::ApplicationClosed(c)) => LinkError::Refused {
                        reason: format!(
                            "the master closed the link: {}",
                            String::from_utf8_lossy(&c.reason)
                        ),
                        permanent: true,
                    },
                    _ => unreachable(r),
                },
                refused => refused,
            },
            other => unreachable(other),
        };
        match recv.next::<MasterToGs>().await {
            Ok(Some(MasterToGs::Welcome(_))) => {}
            Ok(other) => return Err(unreachable(format!("expected Welcome, got {other:?}"))),
            Err(e) => return Err(closed(e)),
        }
        let register = Register {
            server_id: cfg.server_id.clone(),
            address: shared.public_address.clone(),
            secret: cfg.cluster_secret.clone(),
            priority: cfg.priority,
            replace: cfg.replace_registration,
        };
        send_frame(&mut send, &GsToMaster::Register(register))
            .await
            .map_err(unreachable)?;
        match recv.next::<MasterToGs>().await {
            Ok(Some(MasterToGs::Registered { ticket_keys })) => shared.set_keys(ticket_keys),
            Ok(Some(MasterToGs::Refused(e))) => {
                let permanent = e.result_code() != Some(ResultCode::ServerIdInUse);
                return Err(LinkError::Refused {
                    reason: format!(
                        "{}: {}",
                        e.result_code()
                            .map_or("refused".into(), |c| format!("{c:?}")),
                        e.message
                    ),
                    permanent,
                });
            }
            Ok(other) => return Err(unreachable(format!("expected Registered, got {other:?}"))),
            Err(e) => return Err(closed(e)),
        }
        // Every room, in one cut with the reports that follow.
        let mut frames = shared.reports.take(Closing::Snapshot);
        send.write_all_chunks(&mut frames)
            .await
            .map_err(unreachable)?;
        Ok::<_, LinkError>((conn, send, recv))
    };
    let (conn, mut send, mut recv) = tokio::select! {
        r = attach => r?,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
    };
    shared.set_registered(true);
    *refusals = 0;
    *logged = None;
    match down_since.take() {
        Some(t) => info!(master = %cfg.master, after = ?t.elapsed(), rooms = shared.rooms().len(),
            "registered with the master again"),
        None => {
            info!(master = %cfg.master, rooms = shared.rooms().len(), "registered with the master")
        }
    }
    let mut tick = tokio::time::interval(cfg.report_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sync = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.sync_interval,
        cfg.sync_interval,
    );
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let write = |e: quinn::WriteError| match e {
        quinn::WriteError::ConnectionLost(c) => read_error(&ReadError::ConnectionLost(c)),
        other => unreachable(format!("link lost: {other}")),
    };
    loop {
        tokio::select! {
            _ = shared.reports.changed.notified() => {
                let mut frames = shared.reports.take(Closing::Changes);
                send.write_all_chunks(&mut frames).await.map_err(write)?;
            }
            _ = sync.tick() => {
                let mut frames = shared.reports.take(Closing::Digest);
                send.write_all_chunks(&mut frames).await.map_err(write)?;
            }
            _ = tick.tick() => {
                send_frame(&mut send, &GsToMaster::Load(shared.load())).await.map_err(write)?;
            }
            _ = shared.report_now.notified() => {
                send_frame(&mut send, &GsToMaster::Load(shared.load())).await.map_err(write)?;
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                // A last report (the state is Offline when draining ends), then goodbye.
                let last = async {
                    let mut frames = shared.reports.take(Closing::Changes);
                    frames.push(encode_frame(&GsToMaster::Load(shared.load())));
                    let _ = send.write_all_chunks(&mut frames).await;
                    let _ = send.finish();
                    let _ = send.stopped().await;
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), last).await;
                close(&conn, CloseCode::ServerShutdown, "game server stopping");
                return Ok(());
            }
            msg = recv.next::<MasterToGs>() => match msg {
                Ok(None) => return Ok(()),
                Err(switchboard_transport::RecvError::Read(ReadError::ConnectionLost(
                    ConnectionError::ApplicationClosed(c),
                ))) if c.error_code.into_inner() == u64::from(CloseCode::ServerShutdown.to_wire()) => {
                    return Err(unreachable("the master shut down"));
                }
                Err(switchboard_transport::RecvError::Read(r)) => return Err(read_error(&r)),
                Err(e) => {
                    close(&conn, CloseCode::ProtocolViolation, &e.to_string());
                    return Err(unreachable(format!("the master broke the protocol: {e}")));
                }
                Ok(Some(MasterToGs::Registered { ticket_keys })) => shared.set_keys(ticket_keys),
                Ok(Some(MasterToGs::SetState { state, offline_after_secs })) => {
                    info!(?state, offline_after_secs, "state set by the master");
                    shared.set_state(state, Duration::from_secs(u64::from(offline_after_secs)));
                }
                Ok(Some(MasterToGs::Resync)) => {
                    warn!(master = %cfg.master, "the master's view of this server's rooms diverged; sending a snapshot");
                    let mut frames = shared.reports.take(Closing::Snapshot);
                    send.write_all_chunks(&mut frames).await.map_err(write)?;
                }
                Ok(Some(other)) => {
                    close(&conn, CloseCode::ProtocolViolation, "unexpected message");
                    return Err(unreachable(format!("unexpected message from the master: {other:?}")));
                }
            },
        }
    }
}
