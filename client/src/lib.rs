//! The async Rust client for Switchboard, for games, bots and the bench tool.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_client::{Client, ClientConfig, Delivery};
//! use switchboard_protocol::{RaiseEvent, ReceiverGroup, RoomOptions};
//! // A deployment with a public CA's certificate: the system's roots, the default.
//! let mut client = Client::connect("master.example.com:5055", ClientConfig::default()).await?;
//! // `switchboard dev` (or a private CA): trust exactly its certificate file.
//! let trust = switchboard_transport::Trust::from_ca_file(std::path::Path::new("ca.pem"))?;
//! let mut client = Client::connect("127.0.0.1:5055", ClientConfig::new(trust)).await?;
//! client.authenticate("alice", "").await?;
//! let mut room = client.create_game(Some("room-1"), RoomOptions::default()).await?;
//! room.raise_event(7, b"hello".to_vec(), Delivery::Reliable).await?;
//! while let Some(event) = room.next_event().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! The client hides the master → game server hop: `create_game` and `join_game` ask the
//! master, follow its redirect with the join ticket, and return a joined [`Room`].

mod error;
pub mod poll;
mod room;
mod session;

use std::time::Duration;

use quinn::Endpoint;
use switchboard_protocol::{
    ALPN_MASTER, ClientToMaster, FriendStatus, Hello, JoinMode, JoinRandom, Lobby, LobbyStats,
    MasterEvent, MasterOp, MasterReply, MasterToClient, Properties, Redirect, RoomOptions,
    TicketAction,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{Limits, Trust, connect};
use tokio::sync::mpsc;

pub use error::ClientError;
pub use poll::{Op, PollClient, PollEvent};
pub use room::{Delivery, Room};
use session::{Incoming, Link, Session};
pub use switchboard_protocol as protocol;

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Roots the servers' certificates must chain to.
    pub trust: Trust,
    /// QUIC transport limits.
    pub limits: Limits,
    /// The agent text sent in `Hello`.
    pub agent: String,
    /// How long to wait for a response.
    pub request_timeout: Duration,
    /// How long to wait for a game server's answer to a join or create, which the server
    /// may hold: for a `Server` room's approval (10 s by default), or while a persistent
    /// room is being saved (up to ~21 s with default webhook settings). Longer than
    /// both, so the client hears the server's verdict (docs/PROTOCOL.md 10).
    pub join_timeout: Duration,
    /// How long a connection attempt (to the master, or to the game server of a
    /// redirect) may take before the call fails with [`ClientError::Timeout`].
    pub connect_timeout: Duration,
    /// Room events buffered before the client stops reading (and the server, in turn,
    /// sees a slow consumer).
    pub event_buffer: usize,
}

/// Defaults trusting the system's root certificates ([`Trust::default`]).
impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new(Trust::default())
    }
}

impl ClientConfig {
    /// Defaults with the given trust roots.
    pub fn new(trust: Trust) -> Self {
        ClientConfig {
            trust,
            limits: Limits::default(),
            agent: format!("switchboard-client/{}", env!("CARGO_PKG_VERSION")),
            request_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            event_buffer: 4096,
        }
    }
}

pub(crate) struct MasterLink;

impl Link for MasterLink {
    type Out = ClientToMaster;
    type In = MasterToClient;
    type Op = MasterOp;
    type Reply = MasterReply;
    type Event = MasterEvent;
    fn hello(h: Hello) -> ClientToMaster {
        ClientToMaster::Hello(h)
    }
    fn request(id: u32, op: MasterOp) -> ClientToMaster {
        ClientToMaster::Request { id, op }
    }
    fn sort(msg: MasterToClient) -> Incoming<MasterReply, MasterEvent> {
        match msg {
            MasterToClient::Welcome(_) => Incoming::Welcome,
            MasterToClient::Response(r) => Incoming::Response(r.id, r.result),
            MasterToClient::Event(e) => Incoming::Event(e),
        }
    }
    fn droppable(event: &MasterEvent) -> bool {
        matches!(event, MasterEvent::AppStats { .. })
    }
}

/// A client connected to a master.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    config: ClientConfig,
    master: Session<MasterLink>,
    events: mpsc::Receiver<MasterEvent>,
    user_id: Option<String>,
    /// Given with joins that name no actor properties of their own.
    actor_properties: Properties,
}

/// How to join a game by name.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// Join only, create if missing, or rejoin.
    pub mode: JoinMode,
    /// Users for whom slots are reserved.
    pub expected_users: Vec<String>,
    /// Room options if the game is created (`CreateIfNotExists`, or a random join that
    /// creates).
    pub create_options: RoomOptions,
    /// This client's actor properties.
    pub actor_properties: Properties,
}

impl Client {
    /// Connects to the master's client listener at `master` (`host:port`).
    pub async fn connect(master: &str, config: ClientConfig) -> Result<Self, ClientError> {
        let ipv6 = master.starts_with('[');
        let endpoint = switchboard_transport::client_endpoint(ipv6)?;
        Self::connect_on(endpoint, master, config).await
    }

    /// Connects through an existing endpoint (one UDP socket can carry many clients: load
    /// generators use a few endpoints for thousands of clients).
    pub async fn connect_on(
        endpoint: Endpoint,
        master: &str,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let cfg = client_config(&config.trust, ALPN_MASTER, &config.limits)?;
        let conn = tokio::time::timeout(config.connect_timeout, connect(&endpoint, cfg, master))
            .await
            .map_err(|_| ClientError::Timeout(config.connect_timeout))??;
        let (tx, events) = mpsc::channel(config.event_buffer);
        let master = Session::open(conn, &config.agent, config.request_timeout, tx).await?;
        Ok(Client {
            endpoint,
            config,
            master,
            events,
            user_id: None,
            actor_properties: Properties::new(),
        })
    }

    /// Authenticates; returns the user id the master accepted.
    pub async fn authenticate(
        &mut self,
        user_id: &str,
        token: &str,
    ) -> Result<String, ClientError> {
        self.authenticate_with(MasterOp::Authenticate {
            user_id: user_id.into(),
            token: token.into(),
        })
        .await
    }

    /// Authenticates as a dedicated server named `name` with the master's server secret:
    /// it may then create `Server` rooms, whose authority it is.
    pub async fn authenticate_server(
        &mut self,
        name: &str,
        secret: &str,
    ) -> Result<String, ClientError> {
        self.authenticate_with(MasterOp::AuthenticateServer {
            name: name.into(),
            secret: secret.into(),
        })
        .await
    }

    async fn authenticate_with(&mut self, op: MasterOp) -> Result<String, ClientError> {
        let reply = self.master.request(op).await?;
        match reply {
            MasterReply::Authenticated { user_id } => {
                self.user_id = Some(user_id.clone());
                Ok(user_id)
            }
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// The authenticated user id.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// Creates a game (named, or with a name the master generates) and joins it.
    pub async fn create_game(
        &self,
        game: Option<&str>,
        options: RoomOptions,
    ) -> Result<Room, ClientError> {
        let redirect = self
            .redirect(MasterOp::CreateGame {
                game: game.map(str::to_string),
                options: options.clone(),
                expected_users: Vec::new(),
            })
            .await?;
        let join = JoinOptions {
            create_options: options,
            ..JoinOptions::default()
        };
        self.follow(redirect, &join).await
    }

    /// Joins an existing game by name.
    pub async fn join_game(&self, game: &str) -> Result<Room, ClientError> {
        self.join_game_with(game, JoinOptions::default()).await
    }

    /// Joins a game by name with a join mode and expected users.
    pub async fn join_game_with(&self, game: &str, join: JoinOptions) -> Result<Room, ClientError> {
        let redirect = self
            .redirect(MasterOp::JoinGame {
                game: game.into(),
                mode: join.mode,
                expected_users: join.expected_users.clone(),
                create_options: join.create_options.clone(),
            })
            .await?;
        self.follow(redirect, &join).await
    }

    /// Joins a random matching game (or creates one, if `q.create_if_none` says so).
    pub async fn join_random_game(&self, q: JoinRandom) -> Result<Room, ClientError> {
        let mut join = JoinOptions {
            expected_users: q.expected_users.clone(),
            ..JoinOptions::default()
        };
        if let Some(spec) = &q.create_if_none {
            join.create_options = spec.options.clone();
            join.create_options.lobby = q.lobby.clone();
        }
        let redirect = self.redirect(MasterOp::JoinRandomGame(q)).await?;
        self.follow(redirect, &join).await
    }

    /// Follows a redirect obtained with [`Client::redirect`]: creates the room (with
    /// `join.create_options`) or joins it, as the redirect's action says.
    pub async fn follow(
        &self,
        redirect: Redirect,
        join: &JoinOptions,
    ) -> Result<Room, ClientError> {
        let with_own;
        let join = if join.actor_properties.is_empty() && !self.actor_properties.is_empty() {
            with_own = JoinOptions {
                actor_properties: self.actor_properties.clone(),
                ..join.clone()
            };
            &with_own
        } else {
            join
        };
        match redirect.action {
            TicketAction::Create => {
                Room::create(&self.endpoint, &self.config, redirect, join).await
            }
            TicketAction::Join => Room::join(&self.endpoint, &self.config, redirect, join).await,
        }
    }

    /// This client's actor properties, given with every later join and create that does
    /// not name its own (`JoinOptions::actor_properties`), as Photon's local player's
    /// custom properties: the others see them in `Join` and `Joined`.
    pub fn set_actor_properties(&mut self, properties: Properties) {
        self.actor_properties = properties;
    }

    /// Joins a lobby; its `GameList` arrives as a master event, then `GameListUpdate`s.
    pub async fn join_lobby(&self, lobby: Lobby) -> Result<(), ClientError> {
        match self.master.request(MasterOp::JoinLobby { lobby }).await? {
            MasterReply::JoinedLobby => Ok(()),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// Leaves the lobby.
    pub async fn leave_lobby(&self) -> Result<(), ClientError> {
        match self.master.request(MasterOp::LeaveLobby).await? {
            MasterReply::LeftLobby => Ok(()),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// Peers and games of every lobby.
    pub async fn lobby_stats(&self) -> Result<Vec<LobbyStats>, ClientError> {
        match self.master.request(MasterOp::GetLobbyStats).await? {
            MasterReply::LobbyStats(s) => Ok(s),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// Whether these users are online, and in which game.
    pub async fn find_friends(
        &self,
        user_ids: Vec<String>,
    ) -> Result<Vec<FriendStatus>, ClientError> {
        match self
            .master
            .request(MasterOp::FindFriends { user_ids })
            .await?
        {
            MasterReply::Friends(f) => Ok(f),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// The next event from the master (game lists, statistics); `None` once the master
    /// connection is closed. Read them: game-list updates that are not read eventually
    /// stop the connection.
    pub async fn next_event(&mut self) -> Option<MasterEvent> {
        self.events.recv().await
    }

    /// Asks the master for a redirect without following it.
    pub async fn redirect(&self, op: MasterOp) -> Result<Redirect, ClientError> {
        match self.master.request(op).await? {
            MasterReply::Redirect(r) => Ok(r),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// The client's QUIC endpoint (one UDP socket for the master and game servers).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Closes the master connection politely.
    pub async fn close(self) {
        self.master.finish().await;
        switchboard_transport::close(
            &self.master.conn,
            switchboard_protocol::CloseCode::Normal,
            "bye",
        );
        self.endpoint.wait_idle().await;
    }

    /// Closes the master connection without waiting for the endpoint (which other clients
    /// may share).
    pub fn disconnect(&self) {
        switchboard_transport::close(
            &self.master.conn,
            switchboard_protocol::CloseCode::Normal,
            "bye",
        );
    }
}
