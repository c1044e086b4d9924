//! `switchboard`: run a master, a game server, a development cluster, or probe one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use switchboard::dev::{DevCluster, DevOptions, default_tls_dir};
use switchboard::devstate::DevState;
use switchboard::limits::LimitArgs;
use switchboard_gameserver::{GameServer, GameServerConfig};

use switchboard_master::auth::{Authenticator, HttpConfig, JwtConfig};
use switchboard_master::jsonwebtoken::Algorithm;
use switchboard_master::workload::Workload;
use switchboard_master::{AuthConfig, Master, MasterConfig};
use switchboard_protocol::TicketKeys;
use switchboard_transport::{ServerIdentity, TlsError, Trust};
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
    /// Threads of the async runtime (default: one per core). A game server on one thread
    /// spends less CPU per event (no wake-ups across threads) but uses one core: run one
    /// such process per core (docs/OPERATIONS.md).
    #[arg(long, global = true, env = "SWITCHBOARD_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
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
    /// Operate a running master: list servers and games, set a server's state.
    Admin(switchboard::admin::AdminArgs),
    /// Mint a JSON Web Token for trying a `--auth jwt` master; prints it.
    Token(TokenArgs),
    /// Load-generate against a deployment, with a baseline measured in the same run.
    Bench(switchboard::bench::BenchArgs),
    /// A baseline server for `bench` (started by it).
    #[command(hide = true)]
    BenchBaseline(switchboard::bench::baseline::BaselineArgs),
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
            (Some(cert), Some(key), _) => {
                ServerIdentity::from_pem_files(cert, key).map_err(|e| {
                    // Name the flag whose file is wrong.
                    let flag = match &e {
                        TlsError::Pem { path, .. } | TlsError::Io { path, .. } if path == key => {
                            "--key"
                        }
                        _ => "--cert",
                    };
                    anyhow::anyhow!("{flag} {e}")
                })
            }
            (_, _, Some(dir)) => Ok(ServerIdentity::dev(dir)
                .with_context(|| format!("--dev-tls-dir {}", dir.display()))?
                .0),
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
    /// A ticket-signing key `ID=HEX` (at least 16 bytes); repeat to keep an old key valid
    /// while rotating. Default: one random key per start.
    #[arg(
        long = "ticket-key",
        env = "SWITCHBOARD_TICKET_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    ticket_keys: Vec<String>,
    /// The id of the key that signs new tickets (default: the last --ticket-key).
    #[arg(long, env = "SWITCHBOARD_TICKET_SIGNING_KEY")]
    ticket_signing_key: Option<u32>,
    /// workload.toml with load-balancer weights (default: the embedded file).
    #[arg(long, env = "SWITCHBOARD_WORKLOAD")]
    workload: Option<PathBuf>,
    /// Most games in one game list.
    #[arg(long, env = "SWITCHBOARD_GAME_LIST_LIMIT", default_value_t = 500)]
    game_list_limit: usize,
    /// Seconds a game server's context is kept after its link drops.
    #[arg(long, env = "SWITCHBOARD_LINK_TTL", default_value_t = 20)]
    link_ttl: u64,
    /// Milliseconds without a report (game servers report every second) after which a
    /// game server gets no new games and no joins until it reports again.
    #[arg(long, env = "SWITCHBOARD_REPORT_TIMEOUT_MS", default_value_t = 3000)]
    report_timeout_ms: u64,
    /// Address of the admin HTTP endpoint (/metrics, /healthz, /readyz, operator API).
    #[arg(long, env = "SWITCHBOARD_ADMIN_ADDR", default_value = "127.0.0.1:5080")]
    admin_addr: SocketAddr,
    /// Serve no admin HTTP endpoint at all.
    #[arg(long, env = "SWITCHBOARD_NO_ADMIN")]
    no_admin: bool,
    /// Bearer token of the operator API (without it the API refuses every call).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Persistent rooms (Photon's AsyncJoin): a join of a game that is not listed goes to a
    /// game server anyway, which asks the backend for its saved state (pair with the game
    /// servers' --webhook-persistent).
    #[arg(long, env = "SWITCHBOARD_ASYNC_JOIN")]
    async_join: bool,
    /// Secret dedicated servers authenticate with (AuthenticateServer), at least 16
    /// bytes; without it, no dedicated server is accepted.
    #[arg(long, env = "SWITCHBOARD_SERVER_SECRET", hide_env_values = true)]
    server_secret: Option<String>,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthKind {
    /// Any user id (development only).
    Dev,
    /// JSON Web Tokens from the studio's backend, verified locally.
    Jwt,
    /// Ask the studio's backend over HTTP (Photon-style custom authentication).
    Http,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JwtAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
}

/// Authentication provider settings.
#[derive(Debug, Args)]
struct AuthArgs {
    /// The authentication provider.
    #[arg(long, env = "SWITCHBOARD_AUTH", value_enum)]
    auth: AuthKind,
    /// JWT: the only algorithm accepted.
    #[arg(
        long,
        env = "SWITCHBOARD_JWT_ALGORITHM",
        value_enum,
        default_value = "HS256"
    )]
    jwt_algorithm: JwtAlgorithm,
    /// JWT: file with the HS256 secret, or the RS256/ES256 public key in PEM.
    #[arg(long, env = "SWITCHBOARD_JWT_KEY_FILE")]
    jwt_key_file: Option<PathBuf>,
    /// JWT: seconds of clock skew tolerated on exp and nbf.
    #[arg(long, env = "SWITCHBOARD_JWT_LEEWAY", default_value_t = 5)]
    jwt_leeway: u64,
    /// JWT: required issuer (iss).
    #[arg(long, env = "SWITCHBOARD_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// JWT: required audience (aud).
    #[arg(long, env = "SWITCHBOARD_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// HTTP: the backend URL the master POSTs credentials to.
    #[arg(long, env = "SWITCHBOARD_AUTH_URL")]
    auth_url: Option<String>,
    /// HTTP: milliseconds to wait for the backend.
    #[arg(long, env = "SWITCHBOARD_AUTH_TIMEOUT_MS", default_value_t = 5000)]
    auth_timeout_ms: u64,
    /// HTTP: accept clients when the backend cannot be reached (default: refuse them).
    #[arg(long, env = "SWITCHBOARD_AUTH_FAIL_OPEN")]
    auth_fail_open: bool,
}

impl AuthArgs {
    fn config(&self) -> anyhow::Result<AuthConfig> {
        Ok(match self.auth {
            AuthKind::Dev => AuthConfig::Dev,
            AuthKind::Jwt => {
                let path = self
                    .jwt_key_file
                    .as_ref()
                    .context("--auth jwt needs --jwt-key-file")?;
                let mut key = std::fs::read(path)
                    .with_context(|| format!("--jwt-key-file {}", path.display()))?;
                let algorithm = match self.jwt_algorithm {
                    JwtAlgorithm::Hs256 => {
                        // A secret file may end with a newline; it is not part of the secret.
                        while key.last().is_some_and(|b| b.is_ascii_whitespace()) {
                            key.pop();
                        }
                        Algorithm::HS256
                    }
                    JwtAlgorithm::Rs256 => Algorithm::RS256,
                    JwtAlgorithm::Es256 => Algorithm::ES256,
                };
                let config = AuthConfig::Jwt(JwtConfig {
                    algorithm,
                    key,
                    leeway: Duration::from_secs(self.jwt_leeway),
                    issuer: self.jwt_issuer.clone(),
                    audience: self.jwt_audience.clone(),
                });
                // The key is checked here, so its error names the flag that gave it.
                Authenticator::new(&config).with_context(|| {
                    format!(
                        "--jwt-key-file {} (--jwt-algorithm {:?})",
                        path.display(),
                        algorithm
                    )
                })?;
                config
            }
            AuthKind::Http => {
                let url = self
                    .auth_url
                    .clone()
                    .context("--auth http needs --auth-url")?;
                let config = AuthConfig::Http(HttpConfig {
                    url: url.clone(),
                    timeout: Duration::from_millis(self.auth_timeout_ms),
                    fail_open: self.auth_fail_open,
                });
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    anyhow::bail!("--auth-url {url}: not an http:// or https:// URL");
                }
                Authenticator::new(&config).with_context(|| format!("--auth-url {url}"))?;
                config
            }
        })
    }
}

/// Parses `ID=HEX` ticket keys.
fn ticket_keys(specs: &[String], signing: Option<u32>) -> anyhow::Result<Option<TicketKeys>> {
    if specs.is_empty() {
        return Ok(None);
    }
    let mut keys = BTreeMap::new();
    let mut last = 0;
    for spec in specs {
        let (id, hex) = spec.split_once('=').context("--ticket-key takes ID=HEX")?;
        let id: u32 = id
            .trim()
            .parse()
            .context("--ticket-key: the id must be a number")?;
        let hex = hex.trim();
        if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--ticket-key {id}: the key must be hexadecimal");
        }
        let key: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex"))
            .collect();
        keys.insert(id, key);
        last = id;
    }
    Ok(Some(
        TicketKeys::new(keys, signing.unwrap_or(last)).context("--ticket-key")?,
    ))
}

#[derive(Debug, Args)]
struct GameServerArgs {
    /// Stable id of this game server.
    #[arg(long, env = "SWITCHBOARD_SERVER_ID")]
    id: String,
    /// The studio's backend to send webhooks to (base URL; none: no webhooks).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The key of the webhooks' X-Switchboard-Signature HMAC (at least 16 bytes).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Extra header on every webhook, `Name: value` (repeatable).
    #[arg(
        long = "webhook-header",
        env = "SWITCHBOARD_WEBHOOK_HEADERS",
        value_delimiter = ','
    )]
    webhook_headers: Vec<String>,
    /// A hook's path if not its name, `Hook=path` (repeatable; `Hook=` turns it off):
    /// GameCreate, GameJoin, GameLeave, GameClose, GameEvent, GameEvents, GameProperties.
    #[arg(
        long = "webhook-path",
        env = "SWITCHBOARD_WEBHOOK_PATHS",
        value_delimiter = ','
    )]
    webhook_paths: Vec<String>,
    /// Milliseconds one webhook attempt may take.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_TIMEOUT_MS", default_value_t = 2000)]
    webhook_timeout_ms: u64,
    /// Attempts per webhook before it is given up.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_ATTEMPTS", default_value_t = 5)]
    webhook_attempts: u32,
    /// Webhooks held before new ones are dropped.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_QUEUE", default_value_t = 4096)]
    webhook_queue: usize,
    /// Tell the sender of a forwarded event the backend never accepted (ErrorInfo).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_ERROR_INFO")]
    webhook_error_info: bool,
    /// Persistent rooms (Photon's IsPersistent): a room that ends with actors sends its
    /// whole state to the backend, and a create (or a join of a room not here) resumes the
    /// state the backend answers.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_PERSISTENT")]
    webhook_persistent: bool,
    /// Milliseconds between a room's batches of forwarded events.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_BATCH_MS", default_value_t = 1000)]
    webhook_batch_ms: u64,
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
    /// Priority group for the master's load balancer (lower groups are used first).
    #[arg(long, env = "SWITCHBOARD_PRIORITY", default_value_t = 0)]
    priority: u8,
    /// workload.toml with the feedback-controller thresholds (default: the embedded file).
    #[arg(long, env = "SWITCHBOARD_WORKLOAD")]
    workload: Option<PathBuf>,
    /// A state file to watch: line 1 Normal, OutOfRotation or Offline; line 2 the seconds
    /// until an Offline server stops.
    #[arg(long, env = "SWITCHBOARD_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// Seconds to wait for rooms to empty after SIGTERM before going Offline.
    #[arg(long, env = "SWITCHBOARD_DRAIN_GRACE", default_value_t = 30)]
    drain_grace: u64,
    /// Address of the HTTP endpoint (/metrics, /healthz, /readyz); none if not given.
    #[arg(long, env = "SWITCHBOARD_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// The longest EmptyRoomTtl a room may ask for, in seconds.
    #[arg(long, env = "SWITCHBOARD_EMPTY_ROOM_TTL_CAP", default_value_t = 60)]
    empty_room_ttl_cap: u64,
    /// Take this server id over even from a live game server registered elsewhere (that
    /// server is told, logs it and fails its readiness).
    #[arg(long, env = "SWITCHBOARD_REPLACE_REGISTRATION")]
    replace_registration: bool,
    /// Exit (status 1) after this many refused registrations in a row (wrong secret,
    /// untrusted master certificate, id in use); default: retry forever.
    #[arg(long, env = "SWITCHBOARD_REGISTER_ATTEMPTS")]
    register_attempts: Option<u32>,
    /// Seconds between digests of the rooms sent to the master to compare views.
    #[arg(long, env = "SWITCHBOARD_SYNC_INTERVAL", default_value_t = 60)]
    sync_interval: u64,
    #[command(flatten)]
    limits: LimitArgs,
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
    /// Directory of the development certificate; default: `tls` in the user's dev
    /// directory ($SWITCHBOARD_DEV_HOME, else $XDG_RUNTIME_DIR/switchboard, else
    /// <tmp>/switchboard-<uid>), where `dev.json` tells probe, admin and bench about it.
    #[arg(long, env = "SWITCHBOARD_DEV_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Port of the master's admin HTTP endpoint (0 = any free port).
    #[arg(long, env = "SWITCHBOARD_DEV_ADMIN_PORT", default_value_t = 5080)]
    admin_port: u16,
    /// workload.toml for the master and the game servers (default: the embedded file).
    #[arg(long, env = "SWITCHBOARD_WORKLOAD")]
    workload: Option<PathBuf>,
    /// Seconds a join ticket stays valid (and a player sent to a game counts there
    /// before arriving), as the master's --ticket-ttl.
    #[arg(long, env = "SWITCHBOARD_TICKET_TTL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    ticket_ttl: u64,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// The master's client address (host:port); default: the master of this user's
    /// running `switchboard dev`.
    #[arg(long, env = "SWITCHBOARD_MASTER_ADDR")]
    master: Option<String>,
    /// Certificate(s) to trust (PEM); default: the `switchboard dev` certificate for that
    /// `dev`'s master, else the system's root certificates.
    #[arg(long, env = "SWITCHBOARD_CA")]
    ca: Option<PathBuf>,
    /// Seconds before the probe gives up.
    #[arg(long, env = "SWITCHBOARD_PROBE_TIMEOUT", default_value_t = 10)]
    timeout: u64,
    /// The first client's user id (it creates the room).
    #[arg(long, env = "SWITCHBOARD_PROBE_USER_A", default_value = "probe-a")]
    user_a: String,
    /// The first client's token (`@FILE`: read from FILE); for a `jwt` or `http` master.
    #[arg(
        long,
        env = "SWITCHBOARD_PROBE_TOKEN_A",
        hide_env_values = true,
        default_value = ""
    )]
    token_a: String,
    /// The second client's user id (it joins).
    #[arg(long, env = "SWITCHBOARD_PROBE_USER_B", default_value = "probe-b")]
    user_b: String,
    /// The second client's token (`@FILE`: read from FILE).
    #[arg(
        long,
        env = "SWITCHBOARD_PROBE_TOKEN_B",
        hide_env_values = true,
        default_value = ""
    )]
    token_b: String,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// The HS256 secret file the master reads, or the RS256/ES256 private key (PEM).
    #[arg(long)]
    jwt_key_file: PathBuf,
    /// The algorithm.
    #[arg(long, value_enum, default_value = "HS256")]
    jwt_algorithm: JwtAlgorithm,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// The issuer (iss), if the master requires one.
    #[arg(long)]
    issuer: Option<String>,
    /// The audience (aud), if the master requires one.
    #[arg(long)]
    audience: Option<String>,
}

/// Signs a token the way a studio's backend would, for trying a `jwt` master.
fn mint_token(args: &TokenArgs) -> anyhow::Result<String> {
    use switchboard_master::jsonwebtoken::{EncodingKey, Header, encode};
    if args.user.is_empty() {
        bail!("--user must not be empty");
    }
    let flag = || format!("--jwt-key-file {}", args.jwt_key_file.display());
    let mut key = std::fs::read(&args.jwt_key_file).with_context(flag)?;
    let (algorithm, key) = match args.jwt_algorithm {
        JwtAlgorithm::Hs256 => {
            // As the master reads it: a trailing newline is not part of the secret.
            while key.last().is_some_and(|b| b.is_ascii_whitespace()) {
                key.pop();
            }
            // As the master would refuse it.
            if key.len() < 32 {
                bail!(
                    "{}: an HS256 secret needs at least 32 bytes, this one has {}",
                    flag(),
                    key.len()
                );
            }
            (
                Algorithm::HS256,
                EncodingKey::from_secret(&key).with_context(|| format!("{}: empty", flag()))?,
            )
        }
        JwtAlgorithm::Rs256 => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&key)
                .with_context(|| format!("{}: not an RSA private key in PEM", flag()))?,
        ),
        JwtAlgorithm::Es256 => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&key)
                .with_context(|| format!("{}: not an EC private key in PEM", flag()))?,
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let mut claims = serde_json::json!({ "sub": args.user, "iat": now, "exp": now + args.ttl });
    if let Some(iss) = &args.issuer {
        claims["iss"] = iss.clone().into();
    }
    if let Some(aud) = &args.audience {
        claims["aud"] = aud.clone().into();
    }
    Ok(encode(&Header::new(algorithm), &claims, &key)?)
}

/// A token given on the command line: as is, or `@FILE` for the contents of FILE
/// (without surrounding whitespace).
fn token_arg(value: &str, flag: &str) -> anyhow::Result<String> {
    match value.strip_prefix('@') {
        Some(path) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("{flag} {value}: cannot read {path}"))?
            .trim()
            .to_string()),
        // A token is never a path: a file of that name was meant to be read.
        None if value.is_empty() || !std::path::Path::new(value).is_file() => Ok(value.to_string()),
        None => bail!(
            "{flag} {value}: a file of that name exists: write {flag} @{value} to read the token from it"
        ),
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: a log file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a signal that comes right after the ready line (a
/// supervisor, a script) must find them in place, or it kills the process outright.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        runtime.worker_threads(n.into());
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    // A failure is one readable line with its causes, whatever RUST_BACKTRACE says.
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("switchboard: {}", switchboard::one_line(&e));
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.log_format);
    match cli.command {
        Command::Master(args) => {
            // Before anything starts: a stop request is never lost (other commands keep
            // the default Ctrl-C).
            let stop = shutdown_signal();
            let mut cfg = MasterConfig::new(args.tls.identity()?, args.cluster_secret)
                .context("--cluster-secret (SWITCHBOARD_CLUSTER_SECRET)")?;
            cfg.client_addr = args.client_addr;
            cfg.cluster_addr = args.cluster_addr;
            cfg.ticket_ttl = Duration::from_secs(args.ticket_ttl);
            cfg.settings.joining_ttl = cfg.ticket_ttl;
            cfg.settings.game_list_limit = args.game_list_limit;
            cfg.settings.link_ttl = Duration::from_secs(args.link_ttl);
            cfg.settings.report_timeout = Duration::from_millis(args.report_timeout_ms);
            cfg.settings.async_join = args.async_join;
            cfg.auth = args.auth.config()?;
            cfg.admin_addr = (!args.no_admin).then_some(args.admin_addr);
            if let Some(t) = &args.admin_token
                && t.len() < 16
            {
                anyhow::bail!(
                    "--admin-token (SWITCHBOARD_ADMIN_TOKEN) must have at least 16 bytes, this one has {}",
                    t.len()
                );
            }
            cfg.admin_token = args.admin_token;
            if let Some(s) = &args.server_secret
                && s.len() < 16
            {
                anyhow::bail!("--server-secret must have at least 16 bytes");
            }
            cfg.server_secret = args.server_secret;
            if let Some(path) = &args.workload {
                cfg.apply_workload(&Workload::load(path).context("--workload")?);
            }
            if let Some(keys) = ticket_keys(&args.ticket_keys, args.ticket_signing_key)? {
                cfg.ticket_keys = keys;
            }
            args.limits.apply_master(&mut cfg);
            let master = Master::bind(cfg).map_err(|e| match e {
                switchboard_master::StartError::Bind {
                    listener,
                    addr,
                    source,
                } => {
                    let flag = match listener {
                        "clients" => "--client-addr",
                        "cluster" => "--cluster-addr",
                        _ => "--admin-addr",
                    };
                    anyhow::anyhow!("cannot bind {flag} {addr}: {source}")
                }
                e => anyhow::Error::new(e).context("starting the master"),
            })?;
            let ready = serde_json::json!({
                "ready": true,
                "role": "master",
                "clients": master.client_addr().to_string(),
                "cluster": master.cluster_addr().to_string(),
                "admin": master.admin_addr().map(|a| format!("http://{a}")),
            });
            println!("{ready}");
            master.run(stop).await;
        }
        Command::Gameserver(args) => {
            // Before anything starts: a stop request is never lost (other commands keep
            // the default Ctrl-C).
            let stop = shutdown_signal();
            if args.id.trim().is_empty() {
                anyhow::bail!("--id (SWITCHBOARD_SERVER_ID) must not be empty");
            }
            // Its own identity first: with --dev-tls-dir shared with a master starting at
            // the same moment, whichever comes first writes the certificate both use.
            let identity = args.tls.identity()?;
            let trust = Trust::from_ca_file(&args.master_ca).context("--master-ca")?;
            let mut cfg =
                GameServerConfig::new(args.id, args.master, trust, identity, args.cluster_secret);
            cfg.listen = args.listen;
            cfg.public_address = args.public_address;
            cfg.priority = args.priority;
            if let Some(path) = &args.workload {
                cfg.workload = Workload::load(path).context("--workload")?;
            }
            cfg.state_file = args.state_file;
            cfg.drain_grace = Duration::from_secs(args.drain_grace);
            cfg.http_addr = args.http_addr;
            cfg.room_limits.empty_room_ttl_cap = Duration::from_secs(args.empty_room_ttl_cap);
            cfg.replace_registration = args.replace_registration;
            cfg.register_attempts = args.register_attempts;
            cfg.sync_interval = Duration::from_secs(args.sync_interval.max(1));
            args.limits.apply_gameserver(&mut cfg);
            if let Some(url) = args.webhook_url {
                let secret = args
                    .webhook_secret
                    .filter(|s| s.len() >= 16)
                    .context("--webhook-url needs --webhook-secret of at least 16 bytes")?;
                let mut w = switchboard_gameserver::webhooks::WebhookConfig::new(url, secret);
                w.timeout = Duration::from_millis(args.webhook_timeout_ms.max(1));
                w.max_attempts = args.webhook_attempts.max(1);
                w.queue = args.webhook_queue.max(1);
                w.error_info = args.webhook_error_info;
                w.persistent = args.webhook_persistent;
                w.batch_interval = Duration::from_millis(args.webhook_batch_ms.max(10));
                for p in &args.webhook_paths {
                    let (hook, path) = p
                        .split_once('=')
                        .with_context(|| format!("--webhook-path {p:?} is not `Hook=path`"))?;
                    let hook = hook.trim();
                    if !switchboard_gameserver::webhooks::HOOKS.contains(&hook) {
                        anyhow::bail!(
                            "--webhook-path {p:?}: no hook named {hook:?} (one of {})",
                            switchboard_gameserver::webhooks::HOOKS.join(", ")
                        );
                    }
                    w.paths.insert(hook.to_string(), path.trim().to_string());
                }
                for h in &args.webhook_headers {
                    let (k, v) = h
                        .split_once(':')
                        .with_context(|| format!("--webhook-header {h:?} is not `Name: value`"))?;
                    w.headers.push((k.trim().to_string(), v.trim().to_string()));
                }
                cfg.webhooks = Some(w);
            }
            let gs = GameServer::bind(cfg).map_err(|e| match e {
                switchboard_gameserver::StartError::Bind {
                    listener,
                    addr,
                    source,
                } => {
                    let flag = if listener == "http" {
                        "--http-addr"
                    } else {
                        "--listen"
                    };
                    anyhow::anyhow!("cannot bind {flag} {addr}: {source}")
                }
                switchboard_gameserver::StartError::NoPublicAddress(addr) => anyhow::anyhow!(
                    "--listen {addr} is the unspecified address: give --public-address, the \
                     host:port clients reach this server at"
                ),
                e => anyhow::Error::new(e).context("starting the game server"),
            })?;
            let ready = serde_json::json!({
                "ready": true,
                "role": "gameserver",
                "listen": gs.local_addr().to_string(),
                "public_address": gs.public_address(),
                "http": gs.http_addr().map(|a| format!("http://{a}")),
            });
            // Ready means registered with the master: announced once, when it first is.
            let mut status = gs.link_status();
            tokio::spawn(async move {
                if status
                    .wait_for(|s| *s == switchboard_gameserver::LinkStatus::Registered)
                    .await
                    .is_ok()
                {
                    println!("{ready}");
                }
            });
            if let Err(e) = gs.run(stop).await {
                anyhow::bail!("{e}");
            }
        }
        Command::Dev(args) => {
            // Before anything starts: a stop request is never lost (other commands keep
            // the default Ctrl-C).
            let stop = shutdown_signal();
            let opts = DevOptions {
                game_servers: args.game_servers,
                master_port: args.master_port,
                cluster_port: args.cluster_port,
                gs_base_port: args.gs_base_port,
                tls_dir: args.tls_dir.unwrap_or_else(default_tls_dir),
                admin_port: args.admin_port,
                workload: args
                    .workload
                    .as_deref()
                    .map(Workload::load)
                    .transpose()
                    .context("--workload")?,
                ticket_ttl: Duration::from_secs(args.ticket_ttl),
                ..DevOptions::default()
            };
            let limits = args.limits.clone();
            let cluster = DevCluster::start_with(
                opts,
                |m| limits.apply_master(m),
                |g| limits.apply_gameserver(g),
            )
            .await?;
            let ready = serde_json::json!({
                "ready": true,
                "master": cluster.master.to_string(),
                "cluster": cluster.cluster.to_string(),
                "game_servers": cluster.game_servers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "ca": cluster.ca.display().to_string(),
                "admin": format!("http://{}", cluster.admin),
                "admin_token": cluster.admin_token,
                "server_secret": cluster.server_secret,
                "game_server_http": cluster.game_server_http.iter().map(|a| format!("http://{a}")).collect::<Vec<_>>(),
            });
            // `probe`, `admin` and `bench` of this user find this cluster through it.
            let state = DevState {
                pid: std::process::id(),
                master: cluster.master.to_string(),
                ca: cluster.ca.clone(),
                admin: format!("http://{}", cluster.admin),
                admin_token: cluster.admin_token.clone(),
                server_secret: cluster.server_secret.clone(),
                game_servers: cluster.game_servers.iter().map(|a| a.to_string()).collect(),
            };
            let registered = state.write()?;
            println!("{ready}");
            if registered {
                eprintln!(
                    "switchboard dev: master on {}; try `switchboard probe` and `switchboard admin servers` \
                     (they find this cluster through {}); Ctrl-C stops",
                    cluster.master,
                    DevState::path().display(),
                );
            } else {
                eprintln!(
                    "switchboard dev: master on {}; another `switchboard dev` is registered in {}, so \
                     `probe` and `admin` find that one: give them --master {} --ca {} (admin: --url \
                     http://{} --token {}); Ctrl-C stops",
                    cluster.master,
                    DevState::path().display(),
                    cluster.master,
                    cluster.ca.display(),
                    cluster.admin,
                    cluster.admin_token,
                );
            }
            stop.await;
            DevState::remove_if_ours();
            cluster.shutdown().await;
        }
        Command::Admin(args) => switchboard::admin::run(args).await?,
        Command::Token(args) => println!("{}", mint_token(&args)?),
        Command::Bench(args) => switchboard::bench::run(args).await?,
        Command::BenchBaseline(args) => switchboard::bench::baseline::serve(args).await?,
        Command::Probe(args) => {
            // Without --master: this user's running `dev`, else the default address.
            // Without --ca: the system's roots, unless the master is this user's `dev`.
            let found = DevState::find();
            let dev = found.as_ref().ok().cloned();
            let master = match (args.master, &found) {
                (Some(m), _) => m,
                (None, Ok(d)) => d.master.clone(),
                (None, Err(why)) => anyhow::bail!("no --master given, and {why}"),
            };
            let trust = match (&args.ca, &dev) {
                (Some(ca), _) => Trust::from_ca_file(ca).context("--ca")?,
                (None, Some(d)) if d.master == master => {
                    Trust::from_ca_file(&d.ca).with_context(|| {
                        format!("the `switchboard dev` certificate {}", d.ca.display())
                    })?
                }
                (None, _) => Trust::system_roots().context("the system's root certificates")?,
            };
            let creds = switchboard::probe::Credentials {
                a: (args.user_a, token_arg(&args.token_a, "--token-a")?),
                b: (args.user_b, token_arg(&args.token_b, "--token-b")?),
            };
            let report = switchboard::probe::probe_as(
                &master,
                trust,
                Duration::from_secs(args.timeout),
                &creds,
            )
            .await;
            println!("{}", serde_json::to_string(&report)?);
            if !report.ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
