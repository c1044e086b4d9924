//! The master's HTTP endpoint (loopback by default): `/metrics` (Prometheus text),
//! `/healthz`, `/readyz`, and the operator API behind a bearer token:
//!
//! - `GET /servers`: every game server with its state, load level per controller, rooms
//!   and players;
//! - `GET /games`: every game;
//! - `POST /servers/{id}/state` with `{"state": "Normal"|"OutOfRotation"|"Offline",
//!   "offline_after_secs": n}`: forwarded to that game server, which applies it and
//!   reports back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use switchboard_protocol::{LobbyKind, MasterToGs, ServerState};
use switchboard_transport::prometheus::Exposition;

use crate::Shared;

/// A game server as `GET /servers` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerView {
    /// Server id.
    pub id: String,
    /// Client address.
    pub address: String,
    /// Priority group.
    pub priority: u8,
    /// Normal, OutOfRotation or Offline.
    pub state: String,
    /// Overall load level.
    pub level: u8,
    /// CPU controller level.
    pub cpu_level: u8,
    /// Bandwidth controller level.
    pub bandwidth_level: u8,
    /// Peer-count controller level.
    pub peers_level: u8,
    /// Rooms, from its last report; `null` while it is not reporting (an old count is
    /// not a current one).
    pub rooms: Option<u32>,
    /// Connected clients, from its last report; `null` while it is not reporting.
    pub peers: Option<u32>,
    /// Whether its link to the master is up.
    pub link_up: bool,
    /// Whether it reports (its link carried a message within the report timeout): only
    /// then do new games and joins go there.
    pub reporting: bool,
    /// Milliseconds since its link last carried a message.
    pub last_report_ms_ago: u64,
}

/// A game as `GET /games` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GameView {
    /// Name.
    pub game: String,
    /// Hosting server.
    pub server: String,
    /// Lobby name ("" = default).
    pub lobby: String,
    /// Default or Sql.
    pub lobby_kind: String,
    /// Actors, joining players and reserved slots.
    pub players: u32,
    /// 0 = unlimited.
    pub max_players: u32,
    /// Accepts joins.
    pub open: bool,
    /// Listed.
    pub visible: bool,
    /// The game's server is not reporting: the counts are its last known ones, and no
    /// joins go there.
    pub stale: bool,
}

/// The body of `POST /servers/{id}/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetStateBody {
    /// Normal, OutOfRotation or Offline.
    pub state: String,
    /// For Offline: seconds the players get (default 900).
    #[serde(default = "default_offline_after")]
    pub offline_after_secs: u32,
}

fn default_offline_after() -> u32 {
    900
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/servers", get(servers))
        .route("/games", get(games))
        .route("/servers/{id}/state", post(set_state))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .merge(api)
        .with_state(shared)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn authorize(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    // An empty token is no token: it would let a request without one in.
    let Some(token) = s.config.admin_token.as_deref().filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::FORBIDDEN,
            "the admin API is disabled: start the master with --admin-token",
        );
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        next.run(req).await
    } else {
        error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
    }
}

async fn servers(State(s): State<Arc<Shared>>) -> Json<Vec<ServerView>> {
    let now = s.now();
    let state = s.state();
    let mut out: Vec<ServerView> = state
        .servers()
        .map(|(id, e)| (id, e, state.reporting_now(id, now)))
        .map(|(id, e, reporting)| ServerView {
            id: id.clone(),
            address: e.address.clone(),
            priority: e.priority,
            state: e.load.state.name().to_string(),
            level: e.load.level,
            cpu_level: e.load.controllers.cpu,
            bandwidth_level: e.load.controllers.bandwidth,
            peers_level: e.load.controllers.peers,
            rooms: reporting.then_some(e.load.games),
            peers: reporting.then_some(e.load.peers),
            link_up: e.link.is_some(),
            reporting,
            last_report_ms_ago: now.saturating_duration_since(e.last_report).as_millis() as u64,
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Json(out)
}

async fn games(State(s): State<Arc<Shared>>) -> Json<Vec<GameView>> {
    let now = s.now();
    let state = s.state();
    let mut out: Vec<GameView> = state
        .games()
        .map(|g| GameView {
            game: g.name.clone(),
            server: g.server.clone(),
            lobby: g.state.lobby.name.clone(),
            lobby_kind: match g.state.lobby.kind {
                LobbyKind::Default => "Default",
                LobbyKind::Sql => "Sql",
            }
            .to_string(),
            players: g.player_count(),
            max_players: g.state.max_players,
            open: g.state.is_open,
            visible: g.state.is_visible,
            stale: !state.reporting_now(&g.server, now),
        })
        .collect();
    out.sort_by(|a, b| a.game.cmp(&b.game));
    Json(out)
}

async fn set_state(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Option<Json<SetStateBody>>,
) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            r#"expected a JSON body {"state": "...", "offline_after_secs": n}"#,
        );
    };
    let Some(state) = ServerState::parse(&body.state) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not Normal, OutOfRotation or Offline", body.state),
        );
    };
    if s.state().server(&id).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no game server {id:?}"));
    }
    let Some(link) = s.links.get(&id).map(|l| l.1.clone()) else {
        return error(
            StatusCode::CONFLICT,
            format!("game server {id:?} is not connected; try again when its link is up"),
        );
    };
    let cmd = crate::cluster_link::LinkCmd::Send(MasterToGs::SetState {
        state,
        offline_after_secs: body.offline_after_secs,
    });
    if link.send(cmd).await.is_err() {
        return error(
            StatusCode::CONFLICT,
            format!("game server {id:?} just disconnected"),
        );
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "server": id, "state": state.name(), "offline_after_secs": body.offline_after_secs })),
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> String {
    let (servers, up, silent, games, players) = {
        let st = s.state();
        let up = st.servers().filter(|(_, e)| e.link.is_some()).count();
        let silent = st.servers().filter(|(_, e)| !e.responsive).count();
        let (players, games) = st.app_stats();
        (st.server_count(), up, silent, games, players)
    };
    let authenticated = s
        .peers
        .iter()
        .filter(|p| p.authenticated.load(Ordering::Relaxed))
        .count();
    let mut e = Exposition::new();
    e.gauge(
        "switchboard_master_connections",
        "Client connections.",
        s.peers.len() as f64,
    );
    e.gauge(
        "switchboard_master_connection_tasks",
        "Live per-connection tasks (client and game-server listeners); back to its old value once connections end.",
        (s.client_tasks.get() + s.link_tasks.get()) as f64,
    );
    e.gauge(
        "switchboard_master_runtime_tasks",
        "Live tasks of the whole process's async runtime.",
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as f64,
    );
    e.gauge(
        "switchboard_master_authenticated",
        "Authenticated client connections.",
        authenticated as f64,
    );
    e.gauge(
        "switchboard_master_game_servers",
        "Registered game servers (links up or within their TTL).",
        servers as f64,
    );
    e.gauge(
        "switchboard_master_game_servers_up",
        "Game servers whose link is up.",
        up as f64,
    );
    e.gauge(
        "switchboard_master_games",
        "Games reported by game servers.",
        f64::from(games),
    );
    e.gauge(
        "switchboard_master_players_in_games",
        "Actors in games.",
        f64::from(players),
    );
    for (listener, a) in [
        ("clients", &s.client_admission),
        ("cluster", &s.cluster_admission),
    ] {
        e.labeled_counter(
            &format!("switchboard_master_{listener}_refused_total"),
            "Connections refused by the admission limits, by reason.",
            "reason",
            &a.refused(),
        );
        e.counter(
            &format!("switchboard_master_{listener}_retries_total"),
            "Connections asked to validate their address first (QUIC Retry).",
            a.retries(),
        );
        e.gauge(
            &format!("switchboard_master_{listener}_pending"),
            "Connections not authenticated yet.",
            a.pending() as f64,
        );
    }
    let c = &s.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    e.gauge(
        "switchboard_master_game_servers_silent",
        "Registered game servers that are not reporting (no message for the report timeout, or link down).",
        silent as f64,
    );
    e.counter(
        "switchboard_master_game_servers_went_silent_total",
        "Times a game server stopped reporting (missed reports for the report timeout).",
        n(&c.silent),
    );
    e.counter(
        "switchboard_master_links_lost_total",
        "Game-server links that broke (not closed by the game server).",
        n(&c.links_lost),
    );
    e.labeled_counter(
        "switchboard_master_registrations_refused_total",
        "Game-server registrations refused, by reason.",
        "reason",
        &[
            ("secret", n(&c.refused_secret)),
            ("id_in_use", n(&c.refused_id_in_use)),
            ("protocol", n(&c.refused_protocol)),
            ("deadline", n(&c.refused_deadline)),
        ],
    );
    e.counter(
        "switchboard_master_links_displaced_total",
        "Game-server links closed because a newer registration took their id.",
        n(&c.displaced),
    );
    e.counter(
        "switchboard_master_stale_games_dropped_total",
        "Games dropped because their game server said it does not host them.",
        n(&c.stale_games_dropped),
    );
    e.labeled_counter(
        "switchboard_master_operations_refused_total",
        "Client operations refused by a defence, by reason (RateLimited, TooManyReservations).",
        "reason",
        &[
            ("rate_limited", n(&c.rate_limited)),
            ("reservations", n(&c.reservations_refused)),
        ],
    );
    e.counter(
        "switchboard_master_digests_total",
        "Digests of game servers' rooms compared with the master's view.",
        n(&c.digests),
    );
    e.counter(
        "switchboard_master_divergences_total",
        "Digests of a game server's rooms that did not match the master's view (each is followed by a resync).",
        n(&c.divergences),
    );
    let ops: Vec<(&str, &switchboard_transport::prometheus::Histogram)> = crate::OP_NAMES
        .iter()
        .zip(s.op_latency.iter())
        .map(|(n, h)| (*n, h))
        .collect();
    e.histograms(
        "switchboard_master_operation_seconds",
        "Time to answer client operations.",
        "op",
        &ops,
    );
    e.finish()
}
