//! `switchboard dev`: a master and N game servers in one process on loopback, with a
//! generated development certificate and a random cluster secret. No config file needed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use switchboard_gameserver::{GameServer, GameServerConfig, LoadHook};
use switchboard_master::workload::Workload;
use switchboard_master::{Master, MasterConfig};
use switchboard_transport::{AdmissionLimits, ServerIdentity, Trust};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What to start.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Number of game servers.
    pub game_servers: usize,
    /// Master client port (0 = any free port).
    pub master_port: u16,
    /// Master game-server port (0 = any free port).
    pub cluster_port: u16,
    /// First game server port; the others follow (0 = any free ports).
    pub gs_base_port: u16,
    /// Directory of the development certificate (created if missing).
    pub tls_dir: PathBuf,
    /// Address to bind (loopback by default).
    pub host: IpAddr,
    /// How long join tickets stay valid.
    pub ticket_ttl: Duration,
    /// Port of the master's admin HTTP endpoint (0 = any free port).
    pub admin_port: u16,
    /// workload.toml for the master and every game server (default: the embedded one).
    pub workload: Option<Workload>,
}

pub use crate::devstate::default_tls_dir;

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            game_servers: 2,
            master_port: 5055,
            cluster_port: 4520,
            gs_base_port: 5056,
            tls_dir: default_tls_dir(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ticket_ttl: Duration::from_secs(30),
            admin_port: 5080,
            workload: None,
        }
    }
}

/// A running development cluster.
#[derive(Debug)]
pub struct DevCluster {
    /// The master's client address.
    pub master: SocketAddr,
    /// The master's game-server address.
    pub cluster: SocketAddr,
    /// The game servers' client addresses.
    pub game_servers: Vec<SocketAddr>,
    /// The certificate clients trust (`--ca`).
    pub ca: PathBuf,
    /// The master's admin HTTP address.
    pub admin: SocketAddr,
    /// The admin API's bearer token (random per start).
    pub admin_token: String,
    /// The secret dedicated servers authenticate with (random per start).
    pub server_secret: String,
    /// The game servers' HTTP addresses (`/metrics`, `/healthz`, `/readyz`).
    pub game_server_http: Vec<SocketAddr>,
    /// The game servers' load hooks, in order.
    pub load_hooks: Vec<LoadHook>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl DevCluster {
    /// Starts the master and game servers and waits until every game server has
    /// registered.
    pub async fn start(opts: DevOptions) -> anyhow::Result<Self> {
        Self::start_with(opts, |_| {}, |_| {}).await
    }

    /// Like [`DevCluster::start`], letting `master` and `game_server` change the servers'
    /// configurations (authentication, intervals, limits) before they start.
    pub async fn start_with(
        opts: DevOptions,
        master: impl FnOnce(&mut MasterConfig),
        game_server: impl Fn(&mut GameServerConfig),
    ) -> anyhow::Result<Self> {
        if opts.tls_dir == default_tls_dir() {
            // The user's own directory: created closed, refused if somebody else's.
            crate::devstate::ensure_private_dir(&crate::devstate::dev_home())?;
        }
        let (identity, ca) = ServerIdentity::dev(&opts.tls_dir)
            .with_context(|| format!("development certificate in {}", opts.tls_dir.display()))?;
        let trust = Trust::from_ca_file(&ca)?;
        let secret = format!("{:032x}", rand::random::<u128>());
        let mut mc = MasterConfig::new(identity.clone(), secret.clone())?;
        mc.client_addr = SocketAddr::new(opts.host, opts.master_port);
        mc.cluster_addr = SocketAddr::new(opts.host, opts.cluster_port);
        mc.ticket_ttl = opts.ticket_ttl;
        mc.settings.joining_ttl = opts.ticket_ttl;
        mc.admin_addr = Some(SocketAddr::new(opts.host, opts.admin_port));
        let admin_token = format!("{:032x}", rand::random::<u128>());
        mc.admin_token = Some(admin_token.clone());
        let server_secret = format!("{:032x}", rand::random::<u128>());
        mc.server_secret = Some(server_secret.clone());
        // Everything comes from 127.0.0.1 here, thousands of clients in a bench.
        mc.client_admission = AdmissionLimits::unlimited();
        if let Some(w) = &opts.workload {
            mc.apply_workload(w);
        }
        master(&mut mc);
        let master = Master::bind(mc).map_err(|e| match e {
            switchboard_master::StartError::Bind {
                listener,
                addr,
                source,
            } => {
                let flag = match listener {
                    "clients" => "--master-port",
                    "cluster" => "--cluster-port",
                    _ => "--admin-port",
                };
                anyhow::anyhow!(
                    "cannot bind {flag} {} ({addr}): {source}; is another `switchboard dev` \
                     running? ({flag} 0 picks a free port)",
                    addr.port()
                )
            }
            e => anyhow::Error::new(e).context("master"),
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let (master_addr, cluster_addr) = (master.client_addr(), master.cluster_addr());
        let admin = master
            .admin_addr()
            .context("the admin endpoint is disabled")?;
        tasks.spawn(master.run(stopped(stop_rx.clone())));
        let mut game_servers = Vec::new();
        let mut game_server_http = Vec::new();
        let mut load_hooks = Vec::new();
        let mut stats = Vec::new();
        for i in 0..opts.game_servers {
            let mut gc = GameServerConfig::new(
                format!("gs-{}", i + 1),
                cluster_addr.to_string(),
                trust.clone(),
                identity.clone(),
                secret.clone(),
            );
            let port = if opts.gs_base_port == 0 {
                0
            } else {
                opts.gs_base_port + i as u16
            };
            gc.listen = SocketAddr::new(opts.host, port);
            gc.http_addr = Some(SocketAddr::new(opts.host, 0));
            gc.admission = AdmissionLimits::unlimited();
            // A development cluster stops at once: nobody waits for its rooms to drain.
            gc.drain_grace = Duration::ZERO;
            if let Some(w) = &opts.workload {
                gc.workload = w.clone();
            }
            game_server(&mut gc);
            let gs = GameServer::bind(gc).map_err(|e| match e {
                switchboard_gameserver::StartError::Bind { addr, source, .. } => anyhow::anyhow!(
                    "cannot bind game server {} at {addr} (--gs-base-port {}): {source}; \
                     is another `switchboard dev` running? (--gs-base-port 0 picks free ports)",
                    i + 1,
                    opts.gs_base_port
                ),
                e => anyhow::Error::new(e).context(format!("game server {}", i + 1)),
            })?;
            game_servers.push(gs.local_addr());
            game_server_http.extend(gs.http_addr());
            load_hooks.push(gs.load_hook());
            stats.push(gs.stats());
            let stop = stopped(stop_rx.clone());
            tasks.spawn(async move {
                // A development game server retries forever: it cannot give up.
                let _ = gs.run(stop).await;
            });
        }
        let registered = async {
            while !stats.iter().all(|s| s.registered.load(Ordering::Relaxed)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), registered)
            .await
            .is_err()
        {
            bail!("game servers did not register with the master within 10 s");
        }
        Ok(DevCluster {
            master: master_addr,
            cluster: cluster_addr,
            game_servers,
            ca,
            admin,
            admin_token,
            server_secret,
            game_server_http,
            load_hooks,
            stop,
            tasks,
        })
    }

    /// Stops every server and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
