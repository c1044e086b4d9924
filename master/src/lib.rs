//! The Switchboard master: authenticates clients, keeps the registry of game servers and
//! their games, and redirects clients with signed join tickets.
//!
//! - [`registry`] — the sans-IO view of servers and games;
//! - [`config`] — [`MasterConfig`];
//! - `client_link` / `cluster_link`: the QUIC shells of the two listeners.
//!
//! [`Master::bind`] opens the listeners (port 0 works), [`Master::run`] serves until the
//! shutdown future completes.

mod client_link;
mod cluster_link;
pub mod config;
pub mod registry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use quinn::Endpoint;
use switchboard_protocol::{ALPN_CLUSTER, ALPN_MASTER, CloseCode};
use switchboard_transport::{TlsError, server_endpoint};
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span};

pub use config::{ConfigError, MasterConfig};
pub use registry::Registry;

/// State shared by all connection tasks. The registry lock is never held across `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    config: MasterConfig,
    registry: Mutex<Registry>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A master with its listeners bound.
#[derive(Debug)]
pub struct Master {
    shared: Arc<Shared>,
    clients: Endpoint,
    cluster: Endpoint,
}

impl Master {
    /// Binds the client and game-server listeners.
    pub fn bind(config: MasterConfig) -> Result<Self, TlsError> {
        let clients = server_endpoint(
            config.client_addr,
            &config.identity,
            ALPN_MASTER,
            &config.limits,
        )?;
        let cluster = server_endpoint(
            config.cluster_addr,
            &config.identity,
            ALPN_CLUSTER,
            &config.limits,
        )?;
        Ok(Master {
            shared: Arc::new(Shared {
                config,
                registry: Mutex::new(Registry::new()),
            }),
            clients,
            cluster,
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

    /// Serves until `shutdown` completes, then closes every connection with
    /// [`CloseCode::ServerShutdown`] and waits (briefly) for the peers to acknowledge.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Master {
            shared,
            clients,
            cluster,
        } = self;
        let mut tasks = JoinSet::new();
        let sweeper = {
            let shared = shared.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let ttl = shared.config.ticket_ttl * 2;
                    let now = shared.now();
                    shared.registry().expire_reservations(now, ttl);
                }
            }
        };
        tasks.spawn(sweeper);
        let link_ids = AtomicU64::new(1);
        tokio::pin!(shutdown);
        info!(clients = %clients.local_addr().map(|a| a.to_string()).unwrap_or_default(),
              cluster = %cluster.local_addr().map(|a| a.to_string()).unwrap_or_default(),
              "master listening");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(incoming) = clients.accept() => {
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let Ok(conn) = incoming.await else { return };
                        let span = info_span!("client", remote = %conn.remote_address());
                        client_link::serve(shared, conn).instrument(span).await;
                    });
                }
                Some(incoming) = cluster.accept() => {
                    let shared = shared.clone();
                    let link = link_ids.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(async move {
                        let Ok(conn) = incoming.await else { return };
                        let span = info_span!("gameserver", remote = %conn.remote_address(), link);
                        cluster_link::serve(shared, conn, link).instrument(span).await;
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
