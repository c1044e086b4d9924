//! One client connection on the master's client listener: handshake, an authentication
//! deadline, operations answered in order, and a writer task draining the connection's
//! bounded outgoing queue (responses and pushed events).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use quinn::Connection;
use switchboard_protocol::frame::{DEFAULT_MAX_FRAME, PRE_AUTH_MAX_FRAME};
use switchboard_protocol::messages::common::{MAX_USER_ID, check_game_name};
use switchboard_protocol::{
    ClientToMaster, CloseCode, MasterEvent, MasterOp, MasterReply, MasterToClient, OpError,
    Redirect, Response, ResultCode, TicketClaims, encode_frame,
};
use switchboard_transport::handshake::accept_control;
use switchboard_transport::{LogLimit, Pass, WriterEnd, close, out_queue, write_queued};
use switchboard_workload::TokenBucket;
use tracing::{debug, info, warn};

use crate::matchmaking::Admission;
use crate::{PeerHandle, SLOW_CONSUMER, Shared};

/// Refused operations are logged at most once a second.
static RATE_LOG: LogLimit = LogLimit::new(Duration::from_secs(1));
/// Likewise joins over the reservation quota.
static QUOTA_LOG: LogLimit = LogLimit::new(Duration::from_secs(1));

/// Largest number of users in one `FindFriends`.
const MAX_FRIENDS: usize = 64;

/// Serves one client until it disconnects or breaks the protocol.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Connection, peer: u64, mut pass: Pass) {
    let handshake = accept_control(
        &conn,
        shared.config.handshake_timeout,
        PRE_AUTH_MAX_FRAME,
        "switchboard-master",
        |m| match m {
            ClientToMaster::Hello(h) => Some(h),
            ClientToMaster::Request { .. } => None,
        },
        MasterToClient::Welcome,
    );
    let (send, mut recv) = match handshake.await {
        Ok(streams) => streams,
        Err((code, reason)) => {
            debug!(%reason, "client handshake failed");
            close(&conn, code, &reason);
            return;
        }
    };
    let (tx, rx) = out_queue(shared.config.peer_queue, shared.config.peer_queue_bytes);
    let drain = shared.config.drain_timeout;
    let writer = tokio::spawn({
        let conn = conn.clone();
        async move {
            if write_queued(send, rx, drain).await == WriterEnd::Stalled {
                close(&conn, CloseCode::SlowConsumer, SLOW_CONSUMER);
            }
        }
    });
    let handle = Arc::new(PeerHandle {
        tx,
        conn: conn.clone(),
        authenticated: AtomicBool::new(false),
    });
    shared.peers.insert(peer, handle.clone());
    let mut user: Option<String> = None;
    let mut session = Session::default();
    let mut joins = TokenBucket::new(shared.config.rate_limits.joins);
    // Redirects this connection got and has not followed yet: (game, until).
    let mut in_flight: Vec<(String, Instant)> = Vec::new();
    let mut ops = TokenBucket::new(shared.config.rate_limits.ops);
    let deadline = tokio::time::sleep(shared.config.auth_timeout);
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            msg = recv.next::<ClientToMaster>() => msg,
            _ = &mut deadline, if user.is_none() => {
                close(&conn, CloseCode::AuthenticationFailed, "not authenticated in time");
                break;
            }
        };
        let (id, op) = match msg {
            Ok(Some(ClientToMaster::Request { id, op })) => (id, op),
            Ok(Some(ClientToMaster::Hello(_))) => {
                close(&conn, CloseCode::ProtocolViolation, "Hello sent twice");
                break;
            }
            Ok(None) | Err(switchboard_transport::RecvError::Read(_)) => break,
            Err(e) => {
                close(&conn, CloseCode::ProtocolViolation, &e.to_string());
                break;
            }
        };
        let joined_lobby = matches!(op, MasterOp::JoinLobby { .. });
        let op_index = op_index(&op);
        let started = std::time::Instant::now();
        let is_join = matches!(
            op,
            MasterOp::CreateGame { .. } | MasterOp::JoinGame { .. } | MasterOp::JoinRandomGame(_)
        );
        let bucket = if is_join { &mut joins } else { &mut ops };
        let now = shared.now();
        let busy = is_join && joins_in_flight(&shared, &user, &mut in_flight, now);
        let (result, list) = if busy {
            (
                Err(OpError::new(
                    ResultCode::JoinInProgress,
                    "a join is in progress on this connection: follow its redirect first",
                )),
                None,
            )
        } else if bucket.try_take(started) {
            handle_op(&shared, peer, &mut user, &mut session, op, now).await
        } else {
            shared.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            if let Some(left_out) = RATE_LOG.check(started) {
                warn!(
                    user = user.as_deref().unwrap_or(""),
                    left_out, "operations over a client's rate limit refused"
                );
            }
            (
                Err(OpError::new(
                    ResultCode::RateLimited,
                    "too many operations; slow down",
                )),
                None,
            )
        };
        shared.op_latency[op_index].observe(started.elapsed());
        if let Ok(MasterReply::Redirect(r)) = &result
            && shared.config.settings.max_joins_in_flight != 0
        {
            in_flight.push((r.game.clone(), now + shared.config.settings.joining_ttl));
        }
        if let Err(e) = &result
            && e.result_code() == Some(ResultCode::TooManyReservations)
        {
            shared
                .counters
                .reservations_refused
                .fetch_add(1, Ordering::Relaxed);
            if let Some(left_out) = QUOTA_LOG.check(started) {
                warn!(
                    user = user.as_deref().unwrap_or(""),
                    left_out, "joins over a user's reservation quota refused"
                );
            }
        }
        if user.is_some() && !handle.authenticated.swap(true, Ordering::Relaxed) {
            // Authenticated: full frames, streams and receive window from now on.
            pass.established();
            recv.set_max_frame(DEFAULT_MAX_FRAME);
            shared.config.limits.authenticated(&conn);
        }
        let reply = encode_frame(&MasterToClient::Response(Response { id, result }));
        if !handle.push(reply) {
            break;
        }
        if joined_lobby && let Some(list) = list {
            // The list follows the JoinedLobby response.
            if !handle.push(list) {
                break;
            }
        }
    }
    shared.peers.remove(&peer);
    shared.state().peer_gone(peer, user.as_deref());
    // The writer ends once every sender is gone: this task's and the handle's (the
    // handle kept it alive forever once, and with it this task and its memory).
    drop(handle);
    // Let queued frames (a last refusal, say) go out, but never wait on a client that
    // does not read: past the bound the writer is stopped and the connection closed.
    let stop_writer = writer.abort_handle();
    if tokio::time::timeout(FLUSH_BOUND, writer).await.is_err() {
        stop_writer.abort();
    }
    close(&conn, CloseCode::Normal, "goodbye");
    info!(
        user = user.as_deref().unwrap_or(""),
        "client left the master"
    );
}

/// How long a closing connection's queued frames may take to leave.
const FLUSH_BOUND: Duration = Duration::from_secs(2);

/// Whether the connection has as many joins in progress as it may (redirects whose
/// player has neither arrived at the game server nor let the ticket expire); forgets the
/// ones that are over.
fn joins_in_flight(
    shared: &Shared,
    user: &Option<String>,
    in_flight: &mut Vec<(String, Instant)>,
    now: Instant,
) -> bool {
    let max = shared.config.settings.max_joins_in_flight;
    let Some(user) = user else {
        return false;
    };
    // No limit: nothing to track (the list would only grow for a ticket lifetime, and
    // forgetting its entries costs a look into the shared state per operation).
    if max == 0 {
        in_flight.clear();
        return false;
    }
    if in_flight.is_empty() {
        return false;
    }
    let state = shared.state();
    in_flight.retain(|(game, until)| state.is_joining(game, user, *until, now));
    max != 0 && in_flight.len() >= max
}

/// The index of an operation in `OP_NAMES`.
fn op_index(op: &MasterOp) -> usize {
    match op {
        MasterOp::Authenticate { .. } | MasterOp::AuthenticateServer { .. } => 0,
        MasterOp::CreateGame { .. } => 1,
        MasterOp::JoinGame { .. } => 2,
        MasterOp::JoinRandomGame(_) => 3,
        MasterOp::JoinLobby { .. } => 4,
        MasterOp::LeaveLobby => 5,
        MasterOp::GetLobbyStats => 6,
        MasterOp::FindFriends { .. } => 7,
    }
}

fn not_allowed(message: &str) -> OpError {
    OpError::new(ResultCode::OperationNotAllowedInCurrentState, message)
}

/// What the connection's authentication established besides the user id.
#[derive(Debug, Default)]
struct Session {
    /// Authenticated as a dedicated server (`AuthenticateServer`).
    authority: bool,
    /// What the provider verified about the user.
    claims: switchboard_protocol::Properties,
}

/// Checks a dedicated server's secret against the master's (in constant time).
fn server_secret_ok(shared: &Shared, secret: &str) -> Result<(), OpError> {
    let Some(expected) = &shared.config.server_secret else {
        return Err(OpError::new(
            ResultCode::InvalidAuthentication,
            "this master accepts no dedicated servers (no server secret is configured)",
        ));
    };
    let same = expected.len() == secret.len()
        && expected
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(OpError::new(
            ResultCode::InvalidAuthentication,
            "wrong server secret",
        ))
    }
}

/// Handles one operation; for `JoinLobby` also returns the encoded `GameList` event.
async fn handle_op(
    shared: &Shared,
    peer: u64,
    user: &mut Option<String>,
    session: &mut Session,
    op: MasterOp,
    now: Instant,
) -> (Result<MasterReply, OpError>, Option<Bytes>) {
    let Some(user_id) = user.clone() else {
        let verified = match op {
            MasterOp::Authenticate { user_id, token } => {
                // Boxed: it runs once per connection, and inlined it would size the
                // connection's task (idle for hours) by its largest await.
                Box::pin(shared.auth.authenticate(&user_id, &token)).await
            }
            MasterOp::AuthenticateServer { name, secret } => server_secret_ok(shared, &secret)
                .and_then(|()| crate::auth::check_user_id(&name))
                .map(|()| {
                    session.authority = true;
                    crate::auth::Verified {
                        user_id: name,
                        claims: Default::default(),
                    }
                }),
            _ => return (Err(not_allowed("authenticate first")), None),
        };
        return match verified {
            Ok(v) => {
                shared.state().user_online(&v.user_id);
                *user = Some(v.user_id.clone());
                session.claims = v.claims;
                (Ok(MasterReply::Authenticated { user_id: v.user_id }), None)
            }
            Err(e) => (Err(e), None),
        };
    };
    let authority = session.authority;
    let redirect = |a| redirect(shared, &user_id, session, a);
    let result = match op {
        MasterOp::Authenticate { .. } | MasterOp::AuthenticateServer { .. } => {
            Err(not_allowed("already authenticated"))
        }
        MasterOp::CreateGame {
            game,
            options,
            expected_users,
        } => shared
            .state()
            .create_game(&user_id, authority, game, options, &expected_users, now)
            .map(redirect),
        MasterOp::JoinGame {
            game,
            mode,
            expected_users,
            create_options,
        } => shared
            .state()
            .join_game(
                &user_id,
                authority,
                &game,
                mode,
                &expected_users,
                create_options,
                now,
            )
            .map(redirect),
        MasterOp::JoinRandomGame(q) => shared
            .state()
            .join_random(&user_id, authority, &q, now)
            .map(redirect),
        MasterOp::JoinLobby { lobby } => {
            if lobby.name.len() > 128 || lobby.name.chars().any(char::is_control) {
                Err(OpError::new(
                    ResultCode::InvalidRequestParameters,
                    "lobby names are at most 128 bytes",
                ))
            } else {
                let games = shared.state().join_lobby(peer, lobby.clone());
                let list = encode_frame(&MasterToClient::Event(MasterEvent::GameList {
                    lobby,
                    games,
                }));
                return (Ok(MasterReply::JoinedLobby), Some(list));
            }
        }
        MasterOp::LeaveLobby => {
            if shared.state().leave_lobby(peer) {
                Ok(MasterReply::LeftLobby)
            } else {
                Err(not_allowed("not in a lobby"))
            }
        }
        MasterOp::GetLobbyStats => Ok(MasterReply::LobbyStats(shared.state().lobby_stats())),
        MasterOp::FindFriends { user_ids } => {
            if user_ids.len() > MAX_FRIENDS || user_ids.iter().any(|u| u.len() > MAX_USER_ID) {
                Err(OpError::new(
                    ResultCode::OperationLimitReached,
                    format!("at most {MAX_FRIENDS} user ids of up to {MAX_USER_ID} bytes"),
                ))
            } else {
                Ok(MasterReply::Friends(shared.state().find_friends(&user_ids)))
            }
        }
    };
    (result, None)
}

fn redirect(shared: &Shared, user_id: &str, session: &Session, a: Admission) -> MasterReply {
    debug_assert!(check_game_name(&a.game).is_ok());
    let expires_at_ms = unix_ms(SystemTime::now() + shared.config.ticket_ttl);
    let ticket = shared.config.ticket_keys.sign(TicketClaims {
        user_id: user_id.to_string(),
        game: a.game.clone(),
        game_server: a.placement.server,
        action: a.action,
        expires_at_ms,
        key_id: 0,
        terms: a.terms,
        authority: session.authority,
        claims: session.claims.clone(),
    });
    MasterReply::Redirect(Redirect {
        game: a.game,
        address: a.placement.address,
        ticket,
        action: a.action,
    })
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
