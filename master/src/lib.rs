//! The Switchboard master: authenticates clients, keeps lobbies and game lists, matches
//! players and redirects them with signed join tickets to the game server the load
//! balancer picks, from the game servers' own reports.
//!
//! Sans-IO core (no sockets, `now` passed in):
//! - [`state`] — [`MasterState`]: servers, games, lobbies, online users, the periodic tick;
//! - [`registry`] — game-server registration, link TTL, reconciliation, placement;
//! - [`games`] — games and the per-lobby indexes;
//! - [`matchmaking`] — CreateGame, JoinGame, JoinRandomGame;
//! - [`load_balancer`] — weighted choice over load levels and priority groups;
//! - [`sql_filter`] — the filter language of SQL lobbies;
//! - [`auth`] — the `dev`, `jwt` and `http` providers;
//! - [`config`] — [`MasterConfig`].
//!
//! QUIC shells: `client_link` and `cluster_link`. [`Master::bind`] opens the listeners
//! (port 0 works); [`Master::run`] serves until the shutdown future completes.

pub mod admin;
pub mod auth;
mod client_link;
mod cluster_link;
pub mod config;
pub mod games;
pub mod load_balancer;
pub mod matchmaking;
pub mod registry;
pub mod sql_filter;
pub mod state;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use quinn::{Connection, Endpoint};
use switchboard_protocol::{
    ALPN_CLUSTER, ALPN_MASTER, CloseCode, MasterEvent, MasterToClient, encode_frame,
};
use switchboard_transport::prometheus::{Gauge, Histogram};
use switchboard_transport::{
    Admission, OutTx, Overflow, ResetKey, TlsError, close, server_endpoint,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

pub use auth::{AuthConfig, Authenticator};
pub use config::{ConfigError, MasterConfig};
pub use jsonwebtoken;
pub use state::{MasterState, Settings};
pub use switchboard_workload as workload;

/// A connected client, as the tickers see it.
#[derive(Debug)]
pub(crate) struct PeerHandle {
    tx: OutTx<Bytes>,
    conn: Connection,
    authenticated: AtomicBool,
}

/// The close reason of a slow consumer.
pub(crate) const SLOW_CONSUMER: &str =
    "disconnected: the client did not read its events fast enough";

impl PeerHandle {
    /// Queues a frame; a client whose queue is full (in frames or bytes) is closed as a
    /// slow consumer. Returns whether the frame was queued.
    fn push(&self, frame: Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(Overflow::Full) => {
                close(&self.conn, CloseCode::SlowConsumer, SLOW_CONSUMER);
                false
            }
            Err(Overflow::Closed) => false,
        }
    }
}

/// Operation names, in the order of `Shared::op_latency`.
pub(crate) const OP_NAMES: [&str; 8] = [
    "authenticate",
    "create_game",
    "join_game",
    "join_random_game",
    "join_lobby",
    "leave_lobby",
    "lobby_stats",
    "find_friends",
];

/// State shared by all connection tasks. The state lock is never held across `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    config: MasterConfig,
    state: Mutex<MasterState>,
    auth: Authenticator,
    peers: DashMap<u64, Arc<PeerHandle>>,
    /// Command senders of the connected game servers' links: (link id, sender).
    links: DashMap<String, (u64, mpsc::Sender<cluster_link::LinkCmd>)>,
    /// Cluster faults, counted for `/metrics`.
    counters: Counters,
    /// Who may connect to the client listener.
    client_admission: Arc<Admission>,
    /// Who may connect to the game-server listener.
    cluster_admission: Arc<Admission>,
    /// Refused registrations already logged at WARN, by (server id, address): a refused
    /// server retrying every second is logged once, not once per attempt.
    refusals_logged: Mutex<HashMap<(String, IpAddr), String>>,
    /// Latency per operation (see `OP_NAMES`).
    op_latency: [Histogram; OP_NAMES.len()],
    /// Live per-connection tasks of the client listener.
    client_tasks: Gauge,
    /// Live per-connection tasks of the game-server listener.
    link_tasks: Gauge,
}

/// Counts of cluster faults.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Game servers that went silent (no report for the report timeout).
    silent: AtomicU64,
    /// Links that broke (not closed by the game server).
    links_lost: AtomicU64,
    /// Refused registrations: wrong secret.
    refused_secret: AtomicU64,
    /// Refused registrations: the id is held by a live server elsewhere.
    refused_id_in_use: AtomicU64,
    /// Refused registrations: protocol errors.
    refused_protocol: AtomicU64,
    /// Refused registrations: nothing in time.
    refused_deadline: AtomicU64,
    /// Links closed because another registration took their id.
    displaced: AtomicU64,
    /// Stale games dropped on a game server's word.
    stale_games_dropped: AtomicU64,
    /// Digests compared.
    digests: AtomicU64,
    /// Client operations refused for their connection's rate limit.
    rate_limited: AtomicU64,
    /// Joins refused for the user's reservation quota.
    reservations_refused: AtomicU64,
    /// Digests that did not match the master's view.
    divergences: AtomicU64,
}

impl Counters {
    fn refused(&self, label: &str) {
        let c = match label {
            "secret" => &self.refused_secret,
            "id_in_use" => &self.refused_id_in_use,
            "deadline" => &self.refused_deadline,
            _ => &self.refused_protocol,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Most refusals remembered for logging once per incident.
const REFUSALS_REMEMBERED: usize = 1024;

impl Shared {
    /// Logs a refused registration at WARN the first time it happens for this server
    /// id and address with this reason, at DEBUG while it repeats.
    fn log_refusal(&self, server: &str, ip: IpAddr, reason: &str) {
        let mut logged = self
            .refusals_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = (server.to_string(), ip);
        if logged.get(&key).is_some_and(|r| r == reason) {
            debug!(server, %ip, reason, "game server registration refused again");
            return;
        }
        if logged.len() >= REFUSALS_REMEMBERED {
            logged.clear();
        }
        logged.insert(key, reason.to_string());
        warn!(server, %ip, reason, "game server registration refused");
    }

    /// A server registered: its earlier refusals are over.
    fn refusal_resolved(&self, server: &str) {
        self.refusals_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| id != server);
    }

    /// Tells the task of link `old` of `server` that a newer registration replaced it.
    fn displace(&self, server: &str, old: u64, by: &str) {
        self.counters.displaced.fetch_add(1, Ordering::Relaxed);
        warn!(
            server,
            by, "a newer registration of this game server id replaces its older link"
        );
        if let Some(l) = self.links.get(server)
            && l.0 == old
        {
            let _ =
                l.1.try_send(cluster_link::LinkCmd::Displaced { by: by.to_string() });
        }
    }

    /// Marks game servers that stopped reporting; logs each incident once.
    fn check_liveness(&self) {
        let silent = self.state().silent_servers(self.now());
        for server in silent {
            self.counters.silent.fetch_add(1, Ordering::Relaxed);
            warn!(%server, timeout = ?self.config.settings.report_timeout,
                "game server stopped reporting: no new games or joins go there until it reports again");
        }
    }

    fn state(&self) -> MutexGuard<'_, MasterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// Game-list updates to lobby subscribers.
    fn send_list_updates(&self) {
        let now = self.now();
        let updates = self.state().tick(now);
        for u in updates {
            let frame = encode_frame(&MasterToClient::Event(MasterEvent::GameListUpdate {
                lobby: u.lobby,
                games: u.games,
            }));
            for id in u.subscribers {
                if let Some(p) = self.peers.get(&id) {
                    p.push(frame.clone());
                }
            }
        }
    }

    /// `AppStats` to every authenticated client.
    fn send_app_stats(&self) {
        let (players, games) = self.state().app_stats();
        let on_master = self
            .peers
            .iter()
            .filter(|p| p.authenticated.load(Ordering::Relaxed))
            .count() as u32;
        let frame = encode_frame(&MasterToClient::Event(MasterEvent::AppStats {
            peers_on_master: on_master,
            peers_in_games: players,
            games,
        }));
        for p in self.peers.iter() {
            if p.authenticated.load(Ordering::Relaxed) {
                p.push(frame.clone());
            }
        }
    }
}

/// Why a master could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS material or a socket.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The authentication provider's configuration.
    #[error(transparent)]
    Auth(#[from] auth::AuthConfigError),
    /// A listener's address could not be bound.
    #[error("cannot bind the {listener} address {addr}: {source}")]
    Bind {
        /// Which listener: `clients`, `cluster` or `admin`.
        listener: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Names the listener of a bind failure; other errors pass through.
fn bind_error(listener: &'static str) -> impl FnOnce(TlsError) -> StartError {
    move |e| match e {
        TlsError::Bind { addr, source } => StartError::Bind {
            listener,
            addr,
            source,
        },
        e => StartError::Tls(e),
    }
}

/// A master with its listeners bound.
#[derive(Debug)]
pub struct Master {
    shared: Arc<Shared>,
    clients: Endpoint,
    cluster: Endpoint,
    admin: Option<tokio::net::TcpListener>,
}

impl Master {
    /// Binds the client and game-server listeners and the admin HTTP endpoint (call from
    /// within a tokio runtime).
    pub fn bind(config: MasterConfig) -> Result<Self, StartError> {
        let admin = match config.admin_addr {
            Some(addr) => {
                let bind = |source| StartError::Bind {
                    listener: "admin",
                    addr,
                    source,
                };
                let l = std::net::TcpListener::bind(addr).map_err(bind)?;
                l.set_nonblocking(true).map_err(bind)?;
                Some(tokio::net::TcpListener::from_std(l).map_err(bind)?)
            }
            None => None,
        };
        let auth = Authenticator::new(&config.auth)?;
        // Resets signed with keys from the cluster secret survive a restart: peers of
        // the dead process learn of it from their next packet.
        let secret = config.cluster_secret.as_bytes();
        let clients = server_endpoint(
            config.client_addr,
            &config.identity,
            ALPN_MASTER,
            &config.limits,
            Some(&ResetKey::derive(secret, "master/clients")),
        )
        .map_err(bind_error("clients"))?;
        let cluster = server_endpoint(
            config.cluster_addr,
            &config.identity,
            ALPN_CLUSTER,
            &config.cluster_limits,
            Some(&ResetKey::derive(secret, "master/cluster")),
        )
        .map_err(bind_error("cluster"))?;
        let state = MasterState::new(config.settings.clone(), config.seed);
        let client_admission = Admission::new(config.client_admission.clone());
        let cluster_admission = Admission::new(config.cluster_admission.clone());
        Ok(Master {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                auth,
                peers: DashMap::new(),
                links: DashMap::new(),
                counters: Counters::default(),
                client_admission,
                cluster_admission,
                refusals_logged: Mutex::new(HashMap::new()),
                op_latency: Default::default(),
                client_tasks: Gauge::default(),
                link_tasks: Gauge::default(),
            }),
            clients,
            cluster,
            admin,
        })
    }

    /// The bound client address.
    pub fn client_addr(&self) -> SocketAddr {
        self.clients
            .local_addr()
            .expect("bound endpoint has an address")
    }

    /// The bound game-server address.
    pub fn cluster_addr(&self) -> SocketAddr {
        self.cluster
            .local_addr()
            .expect("bound endpoint has an address")
    }

    /// The bound admin HTTP address, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then closes every connection with
    /// [`CloseCode::ServerShutdown`] and waits (briefly) for the peers to acknowledge.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Master {
            shared,
            clients,
            cluster,
            admin,
        } = self;
        let mut tasks = JoinSet::new();
        if let Some(listener) = admin {
            let app = admin::router(shared.clone());
            tasks.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        tasks.spawn(every(shared.config.game_list_interval, {
            let shared = shared.clone();
            move || shared.send_list_updates()
        }));
        tasks.spawn(every(shared.config.app_stats_interval, {
            let shared = shared.clone();
            move || shared.send_app_stats()
        }));
        tasks.spawn(every(LIVENESS_CHECK, {
            let shared = shared.clone();
            move || shared.check_liveness()
        }));
        let ids = AtomicU64::new(1);
        tokio::pin!(shutdown);
        info!(clients = %clients.local_addr().map(|a| a.to_string()).unwrap_or_default(),
              cluster = %cluster.local_addr().map(|a| a.to_string()).unwrap_or_default(),
              "master listening");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(incoming) = clients.accept() => {
                    let Some((incoming, pass)) = shared.client_admission.admit(incoming, "master clients") else {
                        continue;
                    };
                    let shared = shared.clone();
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(async move {
                        let _live = shared.client_tasks.enter();
                        let Ok(conn) = incoming.await else { return };
                        let span = info_span!("client", remote = %conn.remote_address(), peer = id);
                        client_link::serve(shared, conn, id, pass).instrument(span).await;
                    });
                }
                Some(incoming) = cluster.accept() => {
                    let Some((incoming, pass)) = shared.cluster_admission.admit(incoming, "master cluster") else {
                        continue;
                    };
                    let shared = shared.clone();
                    let link = ids.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(async move {
                        let _live = shared.link_tasks.enter();
                        let Ok(conn) = incoming.await else { return };
                        let span = info_span!("gameserver", remote = %conn.remote_address(), link);
                        cluster_link::serve(shared, conn, link, pass).instrument(span).await;
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        info!("master shutting down");
        for ep in [&clients, &cluster] {
            ep.close(
                CloseCode::ServerShutdown.to_wire().into(),
                b"master shutting down",
            );
        }
        tasks.abort_all();
        let idle = async {
            clients.wait_idle().await;
            cluster.wait_idle().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), idle).await;
    }
}

/// How often the master looks for game servers that stopped reporting (routing decisions
/// check the time themselves; this moves their games out of the lobby indexes and logs).
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

/// Runs `f` every `period` (the first time after one period).
async fn every(period: Duration, f: impl Fn()) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        f();
    }
}
