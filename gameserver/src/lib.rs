//! The Switchboard game server: hosts rooms, relays events between their actors, and
//! reports its rooms, load and state to the master.
//!
//! - [`room`] — the sans-IO room core, the `switchboard-hive` crate;
//! - `room_actor` — one task per room owning a [`room::Room`], reached through a handle;
//! - `peer` — one client connection (handshake, operations, channels, datagrams, writer);
//! - `member` — what a room needs of a connection (queue, datagram, close), and
//!   `quic_member`, its QUIC implementation;
//! - `master_link` — registration and reporting, with reconnect;
//! - [`load`] — sampling the feedback controllers, and the [`load::LoadHook`] test hook;
//! - [`server_state`] — Normal / OutOfRotation / Offline, and the watched state file;
//! - `http` — `/metrics`, `/healthz`, `/readyz`;
//! - [`config`] — [`GameServerConfig`].
//!
//! [`GameServer::bind`] opens the listeners (port 0 works); [`GameServer::run`] serves until
//! the shutdown future completes, then drains: out of rotation until the rooms are empty
//! or the grace time passes, then Offline, then every connection is closed with a reason.

mod coalesce;
pub mod config;
mod http;
pub mod load;
pub mod master_link;
mod member;
mod peer;
mod quic_member;
mod reports;
pub use switchboard_hive as room;
mod room_actor;
pub mod server_state;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quinn::Endpoint;
use switchboard_protocol::{
    ALPN_GAME, CloseCode, ControllerLevels, LoadReport, OpError, ResultCode, ServerState,
    TicketClaims, TicketError, TicketKeys,
};
use switchboard_transport::prometheus::{Gauge, Histogram};
use switchboard_transport::{Admission, ResetKey, TlsError, server_endpoint};
use switchboard_workload::Levels;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, info_span};

pub use config::GameServerConfig;
pub use load::{LoadHook, SyntheticLoad};
pub use master_link::{GaveUp, LinkStatus};
use room::Registry;
use room_actor::RoomHandle;

/// Counters of the relay.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connected clients.
    pub peers: AtomicU32,
    /// Event deliveries queued to recipients.
    pub events_relayed: AtomicU64,
    /// Events dropped because a room's queue was full.
    pub room_queue_drops: AtomicU64,
    /// Clients disconnected because their queue was full.
    pub slow_consumers: AtomicU64,
    /// Whether the server is registered with a master right now.
    pub registered: AtomicBool,
    /// Bytes received from clients.
    pub bytes_in: AtomicU64,
    /// Bytes sent to clients.
    pub bytes_out: AtomicU64,
    /// Time to answer CreateGame and JoinGame.
    pub join_latency: Histogram,
    /// Live per-connection tasks; back to its old value once connections end.
    pub connection_tasks: Gauge,
    /// Joins with a valid ticket for a game this server does not host (reported to the
    /// master as stale).
    pub unknown_games: AtomicU64,
    /// Connections refused or closed by a defence, per reason (see `REFUSAL_REASONS`).
    pub refusals: [AtomicU64; REFUSAL_REASONS.len()],
    /// Joins, other operations, events and event bytes over a client's rate limits
    /// (refused or dropped), in that order.
    pub rate_limited: [AtomicU64; 4],
    /// Room operations refused by the room's rules: NotAllowed, then a size or count
    /// limit (OperationLimitReached).
    pub ops_refused: [AtomicU64; 2],
}

/// The reasons a connection is refused or closed before it is a player, as the metrics
/// label them.
pub const REFUSAL_REASONS: [&str; 3] = ["handshake", "join_deadline", "ticket_gate"];

/// Slow consumers are logged at most once a second.
static SLOW_LOG: switchboard_transport::LogLimit =
    switchboard_transport::LogLimit::new(Duration::from_secs(1));

/// Refusals are logged at most once a second.
static REFUSAL_LOG: switchboard_transport::LogLimit =
    switchboard_transport::LogLimit::new(Duration::from_secs(1));

impl Stats {
    /// Counts a refusal by its reason (one of `REFUSAL_REASONS`), and logs it at most
    /// once a second.
    pub(crate) fn refused(&self, reason: &str) {
        if let Some(i) = REFUSAL_REASONS.iter().position(|r| *r == reason) {
            self.refusals[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(left_out) = REFUSAL_LOG.check(std::time::Instant::now()) {
            tracing::warn!(reason, left_out, "client connection closed before joining");
        }
    }

    /// Counts a client disconnected as a slow consumer, and logs it at most once a
    /// second.
    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        if let Some(left_out) = SLOW_LOG.check(std::time::Instant::now()) {
            tracing::warn!(left_out, "client disconnected as a slow consumer");
        }
    }

    /// Counts a room operation refused by the room's rules.
    pub(crate) fn op_refused(&self, code: Option<ResultCode>) {
        let i = match code {
            Some(ResultCode::NotAllowed) => 0,
            Some(ResultCode::OperationLimitReached) => 1,
            _ => return,
        };
        self.ops_refused[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared by the game server's tasks. No lock is held across `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    config: GameServerConfig,
    public_address: String,
    client_endpoint: Endpoint,
    rooms: Mutex<Registry<RoomHandle>>,
    /// The studio's backend, if configured.
    webhooks: Option<webhooks::Webhooks>,
    /// Counters of the webhooks.
    webhook_stats: Arc<webhooks::WebhookStats>,
    /// Names joiners until they are actors (unique on this server).
    joiners: AtomicU64,
    /// What the master link reports: the rooms' published states and their changes.
    reports: reports::Reports,
    /// Signalled when a room ends (a drain waits for the last one).
    rooms_changed: Notify,
    keys: RwLock<Option<TicketKeys>>,
    /// Where this server stands with its master.
    link_status: watch::Sender<LinkStatus>,
    /// Who may connect to the client listener.
    admission: Arc<Admission>,
    stats: Arc<Stats>,
    /// The feedback controllers' latest levels.
    levels: Mutex<Levels>,
    /// Wakes the master link to report load and state now.
    report_now: Notify,
    load_hook: LoadHook,
    state: Mutex<ServerState>,
    /// When an Offline server stops.
    offline_at: watch::Sender<Option<tokio::time::Instant>>,
}

impl Shared {
    fn load(&self) -> LoadReport {
        let levels = *self.levels.lock().unwrap_or_else(|p| p.into_inner());
        LoadReport {
            peers: self.stats.peers.load(Ordering::Relaxed),
            games: self.rooms().len() as u32,
            level: levels.overall(),
            state: self.server_state(),
            controllers: ControllerLevels {
                cpu: levels.cpu,
                bandwidth: levels.bandwidth,
                peers: levels.peers,
            },
        }
    }

    fn set_keys(&self, keys: TicketKeys) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(keys);
    }

    fn set_registered(&self, registered: bool) {
        self.stats.registered.store(registered, Ordering::Relaxed);
        if registered {
            self.set_link_status(LinkStatus::Registered);
        } else if *self.link_status.borrow() == LinkStatus::Registered {
            self.set_link_status(LinkStatus::Connecting);
        }
    }

    fn set_link_status(&self, status: LinkStatus) {
        self.link_status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    fn verify_ticket(&self, ticket: &[u8], now_ms: u64) -> Result<TicketClaims, TicketError> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        // Without keys from a master no ticket can be genuine.
        let keys = keys.as_ref().ok_or(TicketError::UnknownKey(0))?;
        keys.verify(ticket, now_ms, &self.config.server_id)
    }

    fn room(&self, game: &str) -> Option<RoomHandle> {
        self.rooms().get(game).ok()
    }

    /// Starts `room` holding its first member (the creator of an `Input::Create`, or the
    /// first joiner of a restored room) and its actor; the room answers the member, its
    /// `Joined` ahead of every room event. `Ok(None)`: the room refused the member (and
    /// said so). `asked`: its `GameCreate` hook was asked before it existed.
    fn start_room(
        self: &Arc<Self>,
        room: room::Room,
        creator: member::MemberRef,
        create: room::Input,
        asked: Option<webhooks::HookRoom>,
    ) -> Result<Option<(RoomHandle, u32)>, OpError> {
        let game = room.name().to_string();
        let mut rooms = self.rooms();
        rooms.check_free(&game)?;
        let Some((actor, n)) = room_actor::create(self.clone(), room, creator, create, asked)
        else {
            return Ok(None);
        };
        let handle = rooms.insert_with(game, |id| room_actor::spawn(actor, id));
        Ok(Some((handle, n)))
    }

    /// A fresh joiner token.
    fn joiner_token(&self) -> u64 {
        self.joiners.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The rooms (never held across an `.await`).
    fn rooms(&self) -> std::sync::MutexGuard<'_, Registry<RoomHandle>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a room's actor when it ends.
    fn remove_room(&self, game: &str, id: u64) {
        if self.rooms().remove(game, id) {
            self.reports.remove(game);
            self.rooms_changed.notify_waiters();
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// A game server with its listeners bound.
#[derive(Debug)]
pub struct GameServer {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    http: Option<tokio::net::TcpListener>,
}

/// Why a game server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS material or the socket.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A socket (the master link's).
    #[error("cannot bind: {0}")]
    Io(#[from] std::io::Error),
    /// A listener's address could not be bound.
    #[error("cannot bind the {listener} address {addr}: {source}")]
    Bind {
        /// Which listener: `clients` or `http`.
        listener: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// `listen` is 0.0.0.0 or :: and no public address was given.
    #[error("public_address is required when listening on the unspecified address {0}")]
    NoPublicAddress(SocketAddr),
}

impl GameServer {
    /// Binds the client listener (and the HTTP endpoint, if configured). Call from within a
    /// tokio runtime.
    pub fn bind(config: GameServerConfig) -> Result<Self, StartError> {
        // Resets signed with a key from the cluster secret and this server's id survive a
        // restart: clients of the dead process learn of it from their next packet.
        let reset = ResetKey::derive(
            config.cluster_secret.as_bytes(),
            &format!("gameserver/{}", config.server_id),
        );
        let endpoint = server_endpoint(
            config.listen,
            &config.identity,
            ALPN_GAME,
            &config.limits,
            Some(&reset),
        )
        .map_err(|e| match e {
            TlsError::Bind { addr, source } => StartError::Bind {
                listener: "clients",
                addr,
                source,
            },
            e => StartError::Tls(e),
        })?;
        let bound = endpoint.local_addr()?;
        let public_address = match &config.public_address {
            Some(a) => a.clone(),
            None if bound.ip().is_unspecified() => return Err(StartError::NoPublicAddress(bound)),
            None => bound.to_string(),
        };
        let http = match config.http_addr {
            Some(addr) => {
                let bind = |source| StartError::Bind {
                    listener: "http",
                    addr,
                    source,
                };
                let l = std::net::TcpListener::bind(addr).map_err(bind)?;
                l.set_nonblocking(true).map_err(bind)?;
                Some(tokio::net::TcpListener::from_std(l).map_err(bind)?)
            }
            None => None,
        };
        let client_endpoint = switchboard_transport::client_endpoint(bound.is_ipv6())?;
        let (offline_at, _) = watch::channel(None);
        let admission = Admission::new(config.admission.clone());
        let webhook_stats = Arc::new(webhooks::WebhookStats::default());
        let webhooks = config
            .webhooks
            .clone()
            .map(|w| webhooks::Webhooks::start(w, &config.server_id, webhook_stats.clone()).0);
        Ok(GameServer {
            shared: Arc::new(Shared {
                config,
                public_address,
                client_endpoint,
                rooms: Mutex::default(),
                webhooks,
                webhook_stats,
                joiners: AtomicU64::new(0),
                reports: reports::Reports::default(),
                rooms_changed: Notify::new(),
                keys: RwLock::new(None),
                link_status: watch::channel(LinkStatus::Connecting).0,
                admission,
                stats: Arc::new(Stats::default()),
                levels: Mutex::new(Levels::default()),
                report_now: Notify::new(),
                load_hook: LoadHook::default(),
                state: Mutex::new(ServerState::Normal),
                offline_at,
            }),
            endpoint,
            http,
        })
    }

    /// The bound client address.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .expect("bound endpoint has an address")
    }

    /// The bound HTTP address, if the endpoint is enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address the master hands to clients.
    pub fn public_address(&self) -> &str {
        &self.shared.public_address
    }

    /// The relay counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// The hook that feeds synthetic load to the feedback controllers.
    pub fn load_hook(&self) -> LoadHook {
        self.shared.load_hook.clone()
    }

    /// Where the server stands with its master; changes as it registers, loses the link
    /// or is refused.
    pub fn link_status(&self) -> watch::Receiver<LinkStatus> {
        self.shared.link_status.subscribe()
    }

    /// Serves until `shutdown` completes (or an Offline state's time runs out), then
    /// drains and closes every connection with [`CloseCode::ServerShutdown`]. Returns
    /// [`GaveUp`] when the master refused the registration `register_attempts` times in a
    /// row.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), GaveUp> {
        let GameServer {
            shared,
            endpoint,
            http,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut link = tokio::spawn(master_link::run(shared.clone(), stop_rx));
        let mut background = JoinSet::new();
        background.spawn(load::run(shared.clone()));
        if let Some(path) = shared.config.state_file.clone() {
            background.spawn(server_state::watch_file(shared.clone(), path));
        }
        if let Some(listener) = http {
            let app = http::router(shared.clone());
            background.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        let mut offline_at = shared.offline_at.subscribe();
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        info!(id = %shared.config.server_id, address = %shared.public_address, "game server listening");
        // Connections are accepted until the very end, through a drain too: joins to the
        // rooms still here keep working until the server goes Offline (and the master
        // knows before the listener closes).
        let mut drain: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        let mut gave_up = None;
        let reason = loop {
            let deadline = *offline_at.borrow_and_update();
            tokio::select! {
                _ = &mut shutdown, if drain.is_none() => {
                    drain = Some(Box::pin(drain_rooms(shared.clone())));
                }
                _ = async { drain.as_mut().expect("guarded").await }, if drain.is_some() => {
                    break "game server shut down";
                }
                // A drain sets Offline itself and ends on its own clock.
                _ = sleep_until(deadline), if drain.is_none() => break "game server went offline",
                _ = offline_at.changed(), if drain.is_none() => {}
                result = &mut link => {
                    if let Ok(Err(e)) = result {
                        error!(error = %e, "giving up: the master refuses this game server");
                        gave_up = Some(e);
                    }
                    break "game server stopped: the master refused its registration";
                }
                Some(incoming) = endpoint.accept() => {
                    let Some((incoming, pass)) = shared.admission.admit(incoming, "game server") else {
                        continue;
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let _live = shared.stats.connection_tasks.enter();
                        let Ok(conn) = incoming.await else { return };
                        let span = info_span!("peer", remote = %conn.remote_address());
                        peer::serve(shared, conn, pass).instrument(span).await;
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        info!(reason, "game server stopping");
        let _ = stop_tx.send(true);
        if !link.is_finished() {
            let _ = link.await;
        }
        endpoint.close(
            CloseCode::ServerShutdown.to_wire().into(),
            reason.as_bytes(),
        );
        shared.client_endpoint.close(
            CloseCode::ServerShutdown.to_wire().into(),
            reason.as_bytes(),
        );
        tasks.abort_all();
        background.abort_all();
        // The rooms still here end now, their actors left inactive (and their state saved
        // when rooms are persistent); what the backend has not been told yet leaves
        // within the drain grace.
        let until = tokio::time::Instant::now() + shared.config.drain_grace;
        let handles: Vec<RoomHandle> = shared.rooms().rooms().cloned().collect();
        for h in &handles {
            h.shutdown().await;
        }
        let ended = async {
            loop {
                let changed = shared.rooms_changed.notified();
                if shared.rooms().is_empty() {
                    break;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout_at(until, ended).await;
        if let Some(w) = &shared.webhooks {
            w.flush(until.saturating_duration_since(tokio::time::Instant::now()))
                .await;
            let lost = w.pending();
            if lost > 0 {
                tracing::error!(
                    lost,
                    grace = ?shared.config.drain_grace,
                    "webhooks not delivered before stopping (room saves among them are lost): \
                     the backend is too slow for --drain-grace"
                );
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        match gave_up {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Out of rotation until the rooms are empty or the grace time passes; then Offline,
/// telling the players that remain and the master.
async fn drain_rooms(shared: Arc<Shared>) {
    shared.set_state(ServerState::OutOfRotation, Duration::ZERO);
    info!(rooms = shared.rooms().len(), grace = ?shared.config.drain_grace, "draining");
    let emptied = async {
        loop {
            let changed = shared.rooms_changed.notified();
            if shared.rooms().is_empty() {
                break;
            }
            changed.await;
        }
    };
    let _ = tokio::time::timeout(shared.config.drain_grace, emptied).await;
    shared.set_state(ServerState::Offline, Duration::ZERO);
    // Let the GameServerOffline events and the Offline report leave before closing.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
