//! A local deployment of separate processes (one master, N game servers) on loopback,
//! for the fault scenarios: unlike `switchboard dev`, each server can be killed,
//! stopped and restarted on its own. Used by `bench failover` and the chaos tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchboard_client::{Client, ClientConfig};
use switchboard_transport::Trust;

use crate::procs::Proc;

/// How long a server may take to print its ready line.
const READY: Duration = Duration::from_secs(30);

/// What to start.
#[derive(Debug, Clone)]
pub struct DeploymentOptions {
    /// The `switchboard` binary.
    pub bin: PathBuf,
    /// Game servers (ids `gs-1`, `gs-2`, ...).
    pub game_servers: usize,
    /// Their `--drain-grace`, in seconds.
    pub drain_grace_secs: u64,
    /// Further flags for every game server.
    pub game_server_flags: Vec<String>,
    /// Further flags for the master.
    pub master_flags: Vec<String>,
}

impl DeploymentOptions {
    /// `game_servers` game servers of `bin`, draining for 3 s, without per-client rate
    /// limits (the fault scenarios drive a few clients hard).
    pub fn new(bin: PathBuf, game_servers: usize) -> Self {
        DeploymentOptions {
            bin,
            game_servers,
            drain_grace_secs: 3,
            game_server_flags: crate::limits::LimitArgs::unlimited_rates(),
            master_flags: crate::limits::LimitArgs::unlimited_rates(),
        }
    }
}

/// A game server process of the deployment.
#[derive(Debug)]
pub struct GameServerProc {
    /// Its id.
    pub id: String,
    /// The address clients are sent to.
    pub address: String,
    /// Its `/readyz` and `/metrics` base URL.
    pub http: String,
    /// The process.
    pub proc: Proc,
}

/// A running deployment. Dropping it kills every process and removes its directory.
#[derive(Debug)]
pub struct Deployment {
    opts: DeploymentOptions,
    dir: PathBuf,
    /// The cluster secret.
    pub secret: String,
    /// The admin API token.
    pub token: String,
    master: Option<Proc>,
    /// The master's client address.
    pub clients: String,
    /// The master's game-server address.
    pub cluster: String,
    /// The master's admin base URL.
    pub admin: String,
    /// The game servers.
    pub game_servers: Vec<GameServerProc>,
    /// What clients trust.
    pub trust: Trust,
    http: reqwest::Client,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

impl Deployment {
    /// Starts the master, then the game servers, and waits until each is ready (the game
    /// servers: registered).
    pub async fn start(opts: DeploymentOptions) -> anyhow::Result<Deployment> {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-deployment-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let secret = format!("{:032x}", rand::random::<u128>());
        let token = format!("{:032x}", rand::random::<u128>());
        let any = "127.0.0.1:0".to_string();
        let args = master_args(&opts, &dir, &secret, &token, [&any, &any, &any]);
        let bin = opts.bin.clone();
        let (master, ready) = blocking(move || Proc::spawn(&bin, "master", &args, READY)).await?;
        let field = |k: &str| -> anyhow::Result<String> {
            ready[k]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("the master's ready line has no {k}: {ready}"))
        };
        let (clients, cluster, admin) = (field("clients")?, field("cluster")?, field("admin")?);
        let trust = Trust::from_ca_file(&dir.join("tls").join("cert.pem"))?;
        let mut d = Deployment {
            opts,
            dir,
            secret,
            token,
            master: Some(master),
            clients,
            cluster,
            admin,
            game_servers: Vec::new(),
            trust,
            http: crate::http_client(),
        };
        for i in 1..=d.opts.game_servers {
            let id = format!("gs-{i}");
            let mut p = d.start_game_server(&id, &[])?;
            let ready = blocking(move || {
                let r = p.wait_ready(READY);
                r.map(|r| (p, r))
            })
            .await?;
            let (proc, ready) = ready;
            d.game_servers.push(GameServerProc {
                id,
                address: ready["public_address"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                http: ready["http"].as_str().unwrap_or_default().to_string(),
                proc,
            });
        }
        Ok(d)
    }

    /// Starts a game server of this deployment (without waiting for it) with id `id`.
    /// `flags` are added; a flag among them that the usual set has too
    /// (`--cluster-secret`, `--master-ca`, `--http-addr`) replaces the usual one.
    pub fn start_game_server(&self, id: &str, flags: &[&str]) -> anyhow::Result<Proc> {
        let ca = self.dir.join("tls").join("cert.pem");
        let tls = self.dir.join("tls");
        let grace = self.opts.drain_grace_secs.to_string();
        let mut args = strings(&[
            "gameserver",
            "--id",
            id,
            "--listen",
            "127.0.0.1:0",
            "--master",
            &self.cluster,
            "--dev-tls-dir",
            tls.to_str().unwrap_or_default(),
            "--drain-grace",
            &grace,
        ]);
        let usual = [
            ("--cluster-secret", self.secret.clone()),
            ("--master-ca", ca.to_str().unwrap_or_default().to_string()),
            ("--http-addr", "127.0.0.1:0".to_string()),
        ];
        for (flag, value) in usual {
            if !flags.contains(&flag) {
                args.extend([flag.to_string(), value]);
            }
        }
        args.extend(self.opts.game_server_flags.iter().cloned());
        args.extend(strings(flags));
        Proc::start(&self.opts.bin, id, &args, None)
    }

    /// The directory of the deployment's development certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// The game server `id`.
    pub fn game_server(&self, id: &str) -> &GameServerProc {
        self.game_servers
            .iter()
            .find(|g| g.id == id)
            .expect("a game server of this deployment")
    }

    /// The master process (absent between [`Deployment::kill_master`] and
    /// [`Deployment::start_master`]).
    pub fn master(&self) -> Option<&Proc> {
        self.master.as_ref()
    }

    /// Kills the master (SIGKILL); returns when it is gone.
    pub async fn kill_master(&mut self) -> anyhow::Result<Instant> {
        let Some(old) = self.master.take() else {
            bail!("the master is not running");
        };
        blocking(move || {
            let mut old = old;
            old.kill();
            Ok(Instant::now())
        })
        .await
    }

    /// Starts a master on the same ports as the first; returns when it is listening
    /// (printed its ready line).
    pub async fn start_master(&mut self) -> anyhow::Result<Instant> {
        let args = master_args(
            &self.opts,
            &self.dir,
            &self.secret,
            &self.token,
            [&self.clients, &self.cluster, &self.admin_addr()],
        );
        let bin = self.opts.bin.clone();
        let new = blocking(move || Ok(Proc::spawn(&bin, "master", &args, READY)?.0)).await?;
        self.master = Some(new);
        Ok(Instant::now())
    }

    fn admin_addr(&self) -> String {
        self.admin.trim_start_matches("http://").to_string()
    }

    /// A client connected to the master and authenticated as `user`.
    pub async fn client(&self, user: &str) -> anyhow::Result<Client> {
        let mut c = Client::connect(&self.clients, ClientConfig::new(self.trust.clone()))
            .await
            .context("connecting to the master")?;
        c.authenticate(user, "").await.context("authenticating")?;
        Ok(c)
    }

    /// `GET` on the master's admin API.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("GET {path}: {}", r.status());
        }
        Ok(r.json().await?)
    }

    /// The master's view of game server `id` (`GET /servers`), if it lists it.
    pub async fn server_view(&self, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let servers = self.admin_get("/servers").await?;
        Ok(servers
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == id).cloned()))
    }

    /// `GET` on a URL, returning the status and the body.
    pub async fn get(&self, url: &str) -> anyhow::Result<(u16, String)> {
        let r = self.http.get(url).send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }
}

fn master_args(
    opts: &DeploymentOptions,
    dir: &std::path::Path,
    secret: &str,
    token: &str,
    [clients, cluster, admin]: [&String; 3],
) -> Vec<String> {
    let tls = dir.join("tls");
    let mut args = strings(&[
        "master",
        "--client-addr",
        clients,
        "--cluster-addr",
        cluster,
        "--admin-addr",
        admin,
        "--admin-token",
        token,
        "--cluster-secret",
        secret,
        "--auth",
        "dev",
        "--dev-tls-dir",
        tls.to_str().unwrap_or_default(),
    ]);
    args.extend(opts.master_flags.iter().cloned());
    args
}

/// Runs blocking process work off the async threads (clients keep running meanwhile).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a blocking task panicked")?
}
