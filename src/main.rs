//! `switchboard`: run a master, a game server, a development cluster, or probe one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchboard::dev::{DevCluster, DevOptions, default_tls_dir};
use switchboard::probe::probe;
use switchboard_gameserver::{GameServer, GameServerConfig};
use switchboard_master::{Master, MasterConfig};
use switchboard_transport::{ServerIdentity, Trust};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A self-hosted, Photon-style master/game-server relay over QUIC"
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SWITCHBOARD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a master.
    Master(MasterArgs),
    /// Run a game server.
    Gameserver(GameServerArgs),
    /// Run a master and game servers in one process on loopback, no config needed.
    Dev(DevArgs),
    /// Check a running deployment end to end; prints one JSON line, exits 0 if it held.
    Probe(ProbeArgs),
}

/// TLS identity: PEM files, or a development certificate generated into a directory.
#[derive(Debug, Args)]
struct TlsArgs {
    /// Certificate chain (PEM).
    #[arg(
        long,
        env = "SWITCHBOARD_CERT",
        requires = "key",
        conflicts_with = "dev_tls_dir"
    )]
    cert: Option<PathBuf>,
    /// Private key (PEM).
    #[arg(long, env = "SWITCHBOARD_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// Use (or create) a development certificate in this directory.
    #[arg(long, env = "SWITCHBOARD_DEV_TLS_DIR")]
    dev_tls_dir: Option<PathBuf>,
}

impl TlsArgs {
    fn identity(&self) -> anyhow::Result<ServerIdentity> {
        match (&self.cert, &self.key, &self.dev_tls_dir) {
            (Some(cert), Some(key), _) => Ok(ServerIdentity::from_pem_files(cert, key)?),
            (_, _, Some(dir)) => Ok(ServerIdentity::dev(dir)?.0),
            _ => bail!("give --cert and --key, or --dev-tls-dir for a development certificate"),
        }
    }
}

#[derive(Debug, Args)]
struct MasterArgs {
    /// Address for clients.
    #[arg(long, env = "SWITCHBOARD_CLIENT_ADDR", default_value = "0.0.0.0:5055")]
    client_addr: SocketAddr,
    /// Address for game servers.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_ADDR", default_value = "0.0.0.0:4520")]
    cluster_addr: SocketAddr,
    /// Secret game servers present to register (at least 16 bytes).
    #[arg(long, env = "SWITCHBOARD_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: String,
    /// Seconds a join ticket stays valid.
    #[arg(long, env = "SWITCHBOARD_TICKET_TTL", default_value_t = 30)]
    ticket_ttl: u64,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Debug, Args)]
struct GameServerArgs {
    /// Stable id of this game server.
    #[arg(long, env = "SWITCHBOARD_SERVER_ID")]
    id: String,
    /// Address for clients.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "0.0.0.0:5056")]
    listen: SocketAddr,
    /// Address the master hands to clients (host:port); required with a 0.0.0.0 listen.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_ADDRESS")]
    public_address: Option<String>,
    /// The master's game-server address (host:port).
    #[arg(long, env = "SWITCHBOARD_MASTER", default_value = "127.0.0.1:4520")]
    master: String,
    /// Certificate(s) the master's certificate must chain to (PEM).
    #[arg(long, env = "SWITCHBOARD_MASTER_CA")]
    master_ca: PathBuf,
    /// Secret shared with the master.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: String,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Number of game servers.
    #[arg(long, env = "SWITCHBOARD_DEV_GAME_SERVERS", default_value_t = 2)]
    game_servers: usize,
    /// Master client port (0 = any free port).
    #[arg(long, env = "SWITCHBOARD_DEV_MASTER_PORT", default_value_t = 5055)]
    master_port: u16,
    /// Master game-server port (0 = any free port).
    #[arg(long, env = "SWITCHBOARD_DEV_CLUSTER_PORT", default_value_t = 4520)]
    cluster_port: u16,
    /// First game server port; the others follow (0 = any free ports).
    #[arg(long, env = "SWITCHBOARD_DEV_GS_PORT", default_value_t = 5056)]
    gs_base_port: u16,
    /// Directory of the development certificate.
    #[arg(long, env = "SWITCHBOARD_DEV_TLS_DIR")]
    tls_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// The master's client address (host:port).
    #[arg(
        long,
        env = "SWITCHBOARD_MASTER_ADDR",
        default_value = "127.0.0.1:5055"
    )]
    master: String,
    /// Certificate(s) to trust (PEM); defaults to the `switchboard dev` certificate.
    #[arg(long, env = "SWITCHBOARD_CA")]
    ca: Option<PathBuf>,
    /// Seconds before the probe gives up.
    #[arg(long, env = "SWITCHBOARD_PROBE_TIMEOUT", default_value_t = 10)]
    timeout: u64,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Master(args) => {
            let mut cfg = MasterConfig::new(args.tls.identity()?, args.cluster_secret)?;
            cfg.client_addr = args.client_addr;
            cfg.cluster_addr = args.cluster_addr;
            cfg.ticket_ttl = Duration::from_secs(args.ticket_ttl);
            let master = Master::bind(cfg).context("binding the master")?;
            let ready = serde_json::json!({
                "ready": true,
                "role": "master",
                "clients": master.client_addr().to_string(),
                "cluster": master.cluster_addr().to_string(),
            });
            println!("{ready}");
            master.run(shutdown_signal()).await;
        }
        Command::Gameserver(args) => {
            let trust = Trust::from_ca_file(&args.master_ca)?;
            let mut cfg = GameServerConfig::new(
                args.id,
                args.master,
                trust,
                args.tls.identity()?,
                args.cluster_secret,
            );
            cfg.listen = args.listen;
            cfg.public_address = args.public_address;
            let gs = GameServer::bind(cfg).context("binding the game server")?;
            let ready = serde_json::json!({
                "ready": true,
                "role": "gameserver",
                "listen": gs.local_addr().to_string(),
                "public_address": gs.public_address(),
            });
            println!("{ready}");
            gs.run(shutdown_signal()).await;
        }
        Command::Dev(args) => {
            let opts = DevOptions {
                game_servers: args.game_servers,
                master_port: args.master_port,
                cluster_port: args.cluster_port,
                gs_base_port: args.gs_base_port,
                tls_dir: args.tls_dir.unwrap_or_else(default_tls_dir),
                ..DevOptions::default()
            };
            let cluster = DevCluster::start(opts).await?;
            let ready = serde_json::json!({
                "ready": true,
                "master": cluster.master.to_string(),
                "cluster": cluster.cluster.to_string(),
                "game_servers": cluster.game_servers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "ca": cluster.ca.display().to_string(),
            });
            println!("{ready}");
            eprintln!(
                "switchboard dev: master on {}; try `switchboard probe --master {} --ca {}`; Ctrl-C stops",
                cluster.master,
                cluster.master,
                cluster.ca.display()
            );
            shutdown_signal().await;
            cluster.shutdown().await;
        }
        Command::Probe(args) => {
            let ca = args
                .ca
                .unwrap_or_else(|| default_tls_dir().join("cert.pem"));
            let trust = Trust::from_ca_file(&ca).with_context(|| {
                format!(
                    "trusting {} (give --ca for a deployment not started by `switchboard dev`)",
                    ca.display()
                )
            })?;
            let report = probe(&args.master, trust, Duration::from_secs(args.timeout)).await;
            println!("{}", serde_json::to_string(&report)?);
            if !report.ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
