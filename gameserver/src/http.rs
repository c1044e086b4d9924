//! The game server's HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (registered with a master and taking players).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use switchboard_protocol::ServerState;
use switchboard_transport::prometheus::Exposition;

use crate::{LinkStatus, Shared};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(shared)
}

async fn ready(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    let status = s.link_status.borrow().clone();
    match (status, s.server_state()) {
        (LinkStatus::Registered, ServerState::Normal) => (StatusCode::OK, "ready\n".into()),
        (LinkStatus::Registered, _) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not in rotation\n".into())
        }
        (LinkStatus::Connecting, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not registered with a master\n".into(),
        ),
        (LinkStatus::Refused { reason, .. }, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("registration refused: {reason}\n"),
        ),
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> String {
    let st = &s.stats;
    let levels = *s.levels.lock().unwrap_or_else(|p| p.into_inner());
    let actors: usize = s.reports.published().iter().map(|g| g.users.len()).sum();
    let mut e = Exposition::new();
    e.gauge(
        "switchboard_gs_connections",
        "Connected clients.",
        f64::from(st.peers.load(Ordering::Relaxed)),
    );
    e.gauge(
        "switchboard_gs_connection_tasks",
        "Live per-connection tasks; back to its old value once connections end.",
        st.connection_tasks.get() as f64,
    );
    e.gauge(
        "switchboard_gs_runtime_tasks",
        "Live tasks of the whole process's async runtime.",
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as f64,
    );
    e.gauge(
        "switchboard_gs_rooms",
        "Rooms hosted.",
        s.rooms().len() as f64,
    );
    e.gauge(
        "switchboard_gs_players",
        "Actors in rooms, inactive ones included.",
        actors as f64,
    );
    e.counter(
        "switchboard_gs_events_relayed_total",
        "Event deliveries queued to recipients.",
        st.events_relayed.load(Ordering::Relaxed),
    );
    e.counter(
        "switchboard_gs_bytes_in_total",
        "Bytes received from clients (frames and datagrams).",
        st.bytes_in.load(Ordering::Relaxed),
    );
    e.counter(
        "switchboard_gs_bytes_out_total",
        "Bytes sent to clients (frames and datagrams).",
        st.bytes_out.load(Ordering::Relaxed),
    );
    e.counter(
        "switchboard_gs_room_queue_drops_total",
        "Events dropped because a room's queue was full.",
        st.room_queue_drops.load(Ordering::Relaxed),
    );
    e.counter(
        "switchboard_gs_unknown_games_total",
        "Joins with a valid ticket for a game not hosted here (reported to the master as stale).",
        st.unknown_games.load(Ordering::Relaxed),
    );
    let mut refused: Vec<(&str, u64)> = s.admission.refused().to_vec();
    refused.extend(
        crate::REFUSAL_REASONS
            .iter()
            .zip(&st.refusals)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed))),
    );
    e.labeled_counter(
        "switchboard_gs_connections_refused_total",
        "Connections refused, or closed before joining, by reason.",
        "reason",
        &refused,
    );
    e.labeled_counter(
        "switchboard_gs_rate_limited_total",
        "Operations refused (RateLimited) and events dropped over a client's rate limit.",
        "kind",
        &[
            ("join", st.rate_limited[0].load(Ordering::Relaxed)),
            ("op", st.rate_limited[1].load(Ordering::Relaxed)),
            ("event", st.rate_limited[2].load(Ordering::Relaxed)),
            ("event_bytes", st.rate_limited[3].load(Ordering::Relaxed)),
        ],
    );
    e.labeled_counter(
        "switchboard_gs_operations_refused_total",
        "Room operations refused by the room's rules (another's properties, the room's settings by a non-master, size and count limits).",
        "reason",
        &[
            ("not_allowed", st.ops_refused[0].load(Ordering::Relaxed)),
            ("limit", st.ops_refused[1].load(Ordering::Relaxed)),
        ],
    );
    let w = &s.webhook_stats;
    e.labeled_counter(
        "switchboard_gs_webhooks_total",
        "Webhooks: delivered, attempts retried, given up after the last attempt, dropped (queue full).",
        "outcome",
        &[
            ("delivered", w.delivered.load(Ordering::Relaxed)),
            ("retried", w.retried.load(Ordering::Relaxed)),
            ("failed", w.failed.load(Ordering::Relaxed)),
            ("dropped", w.dropped.load(Ordering::Relaxed)),
        ],
    );
    e.counter(
        "switchboard_gs_retries_total",
        "Connections asked to validate their address first (QUIC Retry).",
        s.admission.retries(),
    );
    e.gauge(
        "switchboard_gs_connections_pending",
        "Connections that have not joined a room yet.",
        s.admission.pending() as f64,
    );
    e.counter(
        "switchboard_gs_slow_consumers_total",
        "Clients disconnected for not reading.",
        st.slow_consumers.load(Ordering::Relaxed),
    );
    e.labeled_gauge(
        "switchboard_gs_load_level",
        "Load level per feedback controller (0 to 9); overall is the highest.",
        "controller",
        &[
            ("cpu", f64::from(levels.cpu)),
            ("bandwidth", f64::from(levels.bandwidth)),
            ("peers", f64::from(levels.peers)),
            ("overall", f64::from(levels.overall())),
        ],
    );
    let state = s.server_state();
    e.labeled_gauge(
        "switchboard_gs_state",
        "1 for the current server state.",
        "state",
        &[
            ("normal", f64::from(u8::from(state == ServerState::Normal))),
            (
                "out_of_rotation",
                f64::from(u8::from(state == ServerState::OutOfRotation)),
            ),
            (
                "offline",
                f64::from(u8::from(state == ServerState::Offline)),
            ),
        ],
    );
    e.gauge(
        "switchboard_gs_registered",
        "1 while registered with a master.",
        f64::from(u8::from(st.registered.load(Ordering::Relaxed))),
    );
    e.histograms(
        "switchboard_gs_operation_seconds",
        "Time to answer operations.",
        "op",
        &[("join", &st.join_latency)],
    );
    e.finish()
}
