//! A poll-style client for game engines: calls return at once, and everything that
//! happens comes out of [`PollClient::poll`] as a [`PollEvent`], on the caller's thread,
//! in order. Engines call the network once a frame from their main loop and must never
//! be called back from another thread; this is the shape they need, and the core the C
//! API (`switchboard-ffi`) and its bindings wrap.
//!
//! Inside, a small tokio runtime (one worker thread) runs the async [`Client`] and
//! [`Room`]: a driver task takes the calls in order, one at a time, and queues what
//! results. A request's refusal comes out as [`PollEvent::Error`] with the protocol's
//! result code and the operation it answers.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_protocol::{
    ActorInfo, CloseCode, GameListEntry, GameOp, GameReply, JoinMode, JoinRandom, Lobby,
    MasterEvent, Properties, RaiseEvent, RoomEvent, RoomMode, RoomOptions, SetProperties,
    SpawnObject, StateUpdate,
};
use tokio::sync::mpsc as tmpsc;

use crate::{Client, ClientConfig, ClientError, Delivery, JoinOptions, Room};

/// Which call an error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Connecting to the master.
    Connect,
    /// `authenticate` or `authenticate_server`.
    Authenticate,
    /// `create_game`.
    CreateGame,
    /// `join_game` or `join_random`.
    JoinGame,
    /// `join_lobby` or `leave_lobby`.
    Lobby,
    /// `leave`.
    Leave,
    /// `raise_event` or `update_state` (sent without an answer: only local failures).
    Send,
    /// A room operation (`set_properties`, `set_master_client`, `change_groups`,
    /// snapshots, join approval, objects).
    Room,
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PollEvent {
    /// Connected to the master.
    Connected,
    /// Authenticated as this user id.
    Authenticated {
        /// The user id the master uses.
        user_id: String,
    },
    /// A lobby's games: the whole list after `join_lobby` (`update` false), then the
    /// changes (`update` true).
    GameList {
        /// Only changes.
        update: bool,
        /// The games.
        games: Vec<GameListEntry>,
    },
    /// The answer to `lobby_stats`.
    LobbyStats(Vec<switchboard_protocol::LobbyStats>),
    /// The answer to `find_friends`, in the order asked.
    Friends(Vec<switchboard_protocol::FriendStatus>),
    /// Now in a room.
    Joined {
        /// The game's name.
        game: String,
        /// This client's actor number.
        actor: u32,
        /// The master client.
        master_client: u32,
        /// The room's authority (host or dedicated server; the master client in a
        /// Relay room).
        host: u32,
        /// The room's authority mode.
        mode: RoomMode,
        /// Every actor in the room, this one included.
        actors: Vec<ActorInfo>,
        /// The room's properties.
        properties: Properties,
    },
    /// Another actor joined (or came back). (This client's own join is `Joined`.)
    ActorJoined {
        /// Its number.
        actor: u32,
        /// Its user id (empty unless the room publishes user ids).
        user_id: String,
        /// Its properties.
        properties: Properties,
    },
    /// An actor left, or became inactive.
    ActorLeft {
        /// Its number.
        actor: u32,
        /// Whether it may come back.
        inactive: bool,
        /// The master client now.
        master_client: u32,
    },
    /// An application event (reliable or not).
    Event {
        /// Who sent it.
        sender: u32,
        /// Its code.
        code: u8,
        /// Its payload.
        data: Bytes,
    },
    /// Properties changed.
    PropertiesChanged {
        /// 0 for the room, else the actor.
        target: u32,
        /// Who changed them.
        sender: u32,
        /// What was set.
        properties: Properties,
    },
    /// The master client changed.
    MasterClientChanged {
        /// The new master client.
        master_client: u32,
    },
    /// Any other room event (host migration, join approval, network objects, errors
    /// about events, the server going offline): the protocol's own event.
    Room(RoomEvent),
    /// The answer to a state authority request or release (`Shared` rooms): who holds
    /// the object now (0: nobody). A refused request names the holder it was refused for.
    StateAuthority {
        /// The object.
        object: u32,
        /// Its state authority now.
        holder: u32,
    },
    /// Left the room (this client asked).
    Left,
    /// A call was refused or failed. `code` is the protocol's result code for a
    /// refusal (docs/PROTOCOL.md 9.1), 0 for a local or transport failure.
    Error {
        /// The call.
        op: Op,
        /// The result code, or 0.
        code: i16,
        /// Text for people.
        message: String,
    },
    /// A connection closed: the room's (`room` true) or the master's. `code` is the QUIC
    /// application close code when the server gave one (docs/PROTOCOL.md 9.2).
    Disconnected {
        /// Whether it was the game server connection.
        room: bool,
        /// The close code, if known.
        code: Option<u64>,
        /// Why.
        reason: String,
    },
}

enum Command {
    Authenticate {
        user: String,
        token: String,
    },
    AuthenticateServer {
        name: String,
        secret: String,
    },
    CreateGame {
        name: Option<String>,
        options: RoomOptions,
    },
    JoinGame {
        name: String,
        join: JoinOptions,
    },
    JoinRandom(JoinRandom),
    JoinLobby(Lobby),
    LeaveLobby,
    LobbyStats,
    FindFriends(Vec<String>),
    Leave {
        will_come_back: bool,
    },
    Raise {
        event: RaiseEvent,
        delivery: Delivery,
    },
    Update {
        update: StateUpdate,
        delivery: Delivery,
    },
    Room(GameOp),
    ActorProperties(Properties),
}

impl Command {
    /// The call an error about this command names.
    fn op(&self) -> Op {
        match self {
            Command::Authenticate { .. } | Command::AuthenticateServer { .. } => Op::Authenticate,
            Command::CreateGame { .. } => Op::CreateGame,
            Command::JoinGame { .. } | Command::JoinRandom(_) => Op::JoinGame,
            Command::JoinLobby(_)
            | Command::LeaveLobby
            | Command::LobbyStats
            | Command::FindFriends(_) => Op::Lobby,
            Command::Leave { .. } => Op::Leave,
            Command::Raise { .. } | Command::Update { .. } => Op::Send,
            Command::Room(_) | Command::ActorProperties(_) => Op::Room,
        }
    }
}

/// A client to call from a game loop. Not to be shared between threads at once (each
/// call takes `&mut self`); calls return at once and queue their work.
pub struct PollClient {
    runtime: tokio::runtime::Runtime,
    commands: tmpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<PollEvent>,
    /// The client's QUIC endpoint (the master's and the room's connections), closed on
    /// drop.
    endpoint: quinn::Endpoint,
}

impl std::fmt::Debug for PollClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollClient").finish_non_exhaustive()
    }
}

fn error(op: Op, e: &ClientError) -> PollEvent {
    PollEvent::Error {
        op,
        code: e.result_code().map(|c| c.to_wire()).unwrap_or(0),
        message: e.to_string(),
    }
}

fn closed(room: bool, e: Option<ClientError>) -> PollEvent {
    let (code, reason) = match e {
        Some(ClientError::Closed { code, reason }) => (code.map(CloseCode::to_wire), reason),
        Some(other) => (None, other.to_string()),
        None => (None, "closed".to_string()),
    };
    PollEvent::Disconnected {
        room,
        code: code.map(u64::from),
        reason,
    }
}

impl PollClient {
    /// Starts connecting to the master at `master` (`host:port`); `Connected` (or an
    /// `Error` with `Op::Connect`, then `Disconnected`) comes out of `poll`.
    pub fn connect(master: &str, config: ClientConfig) -> std::io::Result<PollClient> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-client")
            .enable_all()
            .build()?;
        let (commands, rx) = tmpsc::unbounded_channel();
        let (tx, events) = mpsc::channel();
        let endpoint = {
            let _inside = runtime.enter();
            switchboard_transport::client_endpoint(master.starts_with('['))?
        };
        runtime.spawn(drive(endpoint.clone(), master.to_string(), config, rx, tx));
        Ok(PollClient {
            runtime,
            commands,
            events,
            endpoint,
        })
    }

    fn send(&mut self, c: Command) {
        // The driver ends only with the client; a send after that is a no-op, and
        // `poll` has said `Disconnected`.
        let _ = self.commands.send(c);
    }

    /// The next thing that happened, if any; never blocks.
    pub fn poll(&mut self) -> Option<PollEvent> {
        self.events.try_recv().ok()
    }

    /// Authenticates (see the master's provider in docs/PROTOCOL.md 5.1).
    pub fn authenticate(&mut self, user_id: &str, token: &str) {
        self.send(Command::Authenticate {
            user: user_id.into(),
            token: token.into(),
        });
    }

    /// Authenticates as a dedicated server.
    pub fn authenticate_server(&mut self, name: &str, secret: &str) {
        self.send(Command::AuthenticateServer {
            name: name.into(),
            secret: secret.into(),
        });
    }

    /// Creates a game and joins it.
    pub fn create_game(&mut self, name: Option<&str>, options: RoomOptions) {
        self.send(Command::CreateGame {
            name: name.map(Into::into),
            options,
        });
    }

    /// Joins a game by name.
    pub fn join_game(&mut self, name: &str, mode: JoinMode) {
        self.send(Command::JoinGame {
            name: name.into(),
            join: JoinOptions {
                mode,
                ..JoinOptions::default()
            },
        });
    }

    /// Joins a random matching game.
    pub fn join_random(&mut self, query: JoinRandom) {
        self.send(Command::JoinRandom(query));
    }

    /// Joins a lobby (its games come out as `GameList`).
    pub fn join_lobby(&mut self, lobby: Lobby) {
        self.send(Command::JoinLobby(lobby));
    }

    /// Leaves the lobby.
    pub fn leave_lobby(&mut self) {
        self.send(Command::LeaveLobby);
    }

    /// Asks for the lobbies' statistics (`LobbyStats` follows).
    pub fn lobby_stats(&mut self) {
        self.send(Command::LobbyStats);
    }

    /// Asks where these users are (`Friends` follows).
    pub fn find_friends(&mut self, user_ids: Vec<String>) {
        self.send(Command::FindFriends(user_ids));
    }

    /// Leaves the room (for good, or to come back within its PlayerTtl).
    pub fn leave(&mut self, will_come_back: bool) {
        self.send(Command::Leave { will_come_back });
    }

    /// Raises an event in the room.
    pub fn raise_event(&mut self, event: RaiseEvent, delivery: Delivery) {
        self.send(Command::Raise { event, delivery });
    }

    /// Sets properties.
    pub fn set_properties(&mut self, sp: SetProperties) {
        self.send(Command::Room(GameOp::SetProperties(sp)));
    }

    /// Any other room operation (`SetMasterClient`, `ChangeGroups`, `UploadSnapshot`,
    /// `ApproveJoin`, the object operations); refusals come out as `Error`.
    pub fn room_op(&mut self, op: GameOp) {
        self.send(Command::Room(op));
    }

    /// (`Shared` rooms) Sends an object's new state.
    pub fn update_state(&mut self, update: StateUpdate, delivery: Delivery) {
        self.send(Command::Update { update, delivery });
    }

    /// This client's actor properties for every later join and create (the others see
    /// them when it joins); nothing is sent now.
    pub fn set_actor_properties(&mut self, properties: Properties) {
        self.send(Command::ActorProperties(properties));
    }

    /// Spawns an object (`Room(ObjectSpawned)` follows for everyone).
    pub fn spawn(&mut self, object: SpawnObject) {
        self.send(Command::Room(GameOp::Spawn(object)));
    }
}

/// How long dropping a client waits for the calls already made (a leave) to finish.
const FINISH_CALLS: Duration = Duration::from_secs(1);
/// How long dropping a client waits for its connections' closes to go out (they leave
/// at once; the rest of the wait is QUIC's draining period, which nobody needs).
const SEND_CLOSES: Duration = Duration::from_millis(50);

impl Drop for PollClient {
    /// Finishes the calls already made (so a `leave` or a reliable event right before the
    /// drop still reaches the room; at most [`FINISH_CALLS`]), then closes the connections
    /// so that the servers see this client go at once, not after their idle timeout (at
    /// most [`SEND_CLOSES`] more). Without a `leave` first, that is a disconnect: the
    /// actor stays inactive for the room's PlayerTtl.
    fn drop(&mut self) {
        // Closing the command channel ends the driver after the queued calls; the events
        // channel disconnects when the driver is gone.
        let (tx, _) = tmpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.commands, tx));
        let deadline = std::time::Instant::now() + FINISH_CALLS;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        // Whatever the driver did not close (it was stuck in a call) closes now; then the
        // endpoint's task sends the closes before the runtime stops.
        self.endpoint
            .close(CloseCode::Normal.to_wire().into(), b"client closed");
        let endpoint = self.endpoint.clone();
        let (done, sent) = mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tokio::time::timeout(SEND_CLOSES, endpoint.wait_idle()).await;
            let _ = done.send(());
        });
        let _ = sent.recv_timeout(SEND_CLOSES + Duration::from_millis(50));
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("an empty runtime"),
        );
        runtime.shutdown_timeout(Duration::from_millis(100));
    }
}

/// The driver: owns the async client and room, takes the calls in order. It lives as
/// long as the `PollClient`: when the master connection closes (or never opened), the
/// room plays on, and calls that need the master are answered with an error.
async fn drive(
    endpoint: quinn::Endpoint,
    master: String,
    config: ClientConfig,
    mut commands: tmpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<PollEvent>,
) {
    let out = |e: PollEvent| {
        let _ = events.send(e);
    };
    let mut client = match Client::connect_on(endpoint, &master, config).await {
        Ok(c) => {
            out(PollEvent::Connected);
            Some(c)
        }
        Err(e) => {
            out(error(Op::Connect, &e));
            out(closed(false, Some(e)));
            None
        }
    };
    let mut room: Option<Room> = None;
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                run(cmd, client.as_mut(), &mut room, &out).await;
            }
            ev = async { room.as_mut().expect("guarded").next_event().await }, if room.is_some() => {
                room_output(ev, &mut room, &out);
            }
            ev = async { client.as_mut().expect("guarded").next_event().await }, if client.is_some() => match ev {
                Some(MasterEvent::GameList { games, .. }) => out(PollEvent::GameList { update: false, games }),
                Some(MasterEvent::GameListUpdate { games, .. }) => out(PollEvent::GameList { update: true, games }),
                Some(MasterEvent::AppStats { .. }) => {}
                None => {
                    out(closed(false, None));
                    client = None;
                }
            },
        }
    }
    // The client is going away (dropped): what it sent reliably still reaches the room.
    if let Some(r) = room {
        r.close(CLOSE_ROOM).await;
    }
    if let Some(c) = client {
        c.disconnect();
    }
}

/// How long a dropped client's room may take to receive what was sent to it.
const CLOSE_ROOM: Duration = Duration::from_millis(500);

/// What the room said: an event, or that its connection closed.
fn room_output(ev: Option<RoomEvent>, room: &mut Option<Room>, out: &impl Fn(PollEvent)) {
    match ev {
        // The Join about this client itself: `Joined` said it already.
        Some(RoomEvent::Join { actor, .. })
            if Some(actor.actor) == room.as_ref().map(Room::actor) => {}
        Some(ev) => out(room_event(ev)),
        None => {
            if let Some(r) = room.take() {
                out(closed(true, r.close_reason()));
            }
        }
    }
}

/// Hands out the room events already received, so that a call's result does not
/// overtake what the room sent before answering it.
async fn drain_room(room: &mut Option<Room>, out: &impl Fn(PollEvent)) {
    while let Some(r) = room.as_mut() {
        match tokio::time::timeout(Duration::ZERO, r.next_event()).await {
            Ok(ev) => room_output(ev, room, out),
            Err(_) => break,
        }
    }
}

fn room_event(ev: RoomEvent) -> PollEvent {
    match ev {
        RoomEvent::Join { actor, .. } => PollEvent::ActorJoined {
            actor: actor.actor,
            user_id: actor.user_id,
            properties: actor.properties,
        },
        RoomEvent::Leave {
            actor,
            inactive,
            master_client,
        } => PollEvent::ActorLeft {
            actor,
            inactive,
            master_client,
        },
        RoomEvent::Custom(d) => PollEvent::Event {
            sender: d.sender,
            code: d.code,
            data: d.data,
        },
        RoomEvent::PropertiesChanged {
            target,
            sender,
            properties,
            ..
        } => PollEvent::PropertiesChanged {
            target,
            sender,
            properties,
        },
        RoomEvent::MasterClientChanged { master_client, .. } => {
            PollEvent::MasterClientChanged { master_client }
        }
        other => PollEvent::Room(other),
    }
}

async fn run(
    cmd: Command,
    client: Option<&mut Client>,
    room: &mut Option<Room>,
    out: &impl Fn(PollEvent),
) {
    let joined = |r: &Room| PollEvent::Joined {
        game: r.game().to_string(),
        actor: r.actor(),
        master_client: r.joined().master_client,
        host: r.joined().host,
        mode: r.joined().mode,
        actors: r.joined().actors.clone(),
        properties: r.joined().properties.clone(),
    };
    if let Command::ActorProperties(properties) = cmd {
        // Kept for the joins to come, even while the master is away.
        if let Some(c) = client {
            c.set_actor_properties(properties);
        }
        return;
    }
    let op = cmd.op();
    let needs_master = matches!(
        op,
        Op::Authenticate | Op::CreateGame | Op::JoinGame | Op::Lobby
    );
    if needs_master && client.is_none() {
        out(PollEvent::Error {
            op,
            code: 0,
            message: "not connected to the master (its connection closed)".into(),
        });
        return;
    }
    if matches!(op, Op::CreateGame | Op::JoinGame) && room.is_some() {
        out(PollEvent::Error {
            op,
            code: switchboard_protocol::ResultCode::OperationNotAllowedInCurrentState.to_wire(),
            message: "already in a game: leave it first".into(),
        });
        return;
    }
    let Some(client) = client.filter(|_| needs_master) else {
        return run_in_room(cmd, room, out).await;
    };
    match cmd {
        Command::Authenticate { user, token } => match client.authenticate(&user, &token).await {
            Ok(user_id) => out(PollEvent::Authenticated { user_id }),
            Err(e) => out(error(Op::Authenticate, &e)),
        },
        Command::AuthenticateServer { name, secret } => {
            match client.authenticate_server(&name, &secret).await {
                Ok(user_id) => out(PollEvent::Authenticated { user_id }),
                Err(e) => out(error(Op::Authenticate, &e)),
            }
        }
        Command::CreateGame { name, options } => {
            match client.create_game(name.as_deref(), options).await {
                Ok(r) => {
                    out(joined(&r));
                    *room = Some(r);
                }
                Err(e) => out(error(Op::CreateGame, &e)),
            }
        }
        Command::JoinGame { name, join } => match client.join_game_with(&name, join).await {
            Ok(r) => {
                out(joined(&r));
                *room = Some(r);
            }
            Err(e) => out(error(Op::JoinGame, &e)),
        },
        Command::JoinRandom(q) => match client.join_random_game(q).await {
            Ok(r) => {
                out(joined(&r));
                *room = Some(r);
            }
            Err(e) => out(error(Op::JoinGame, &e)),
        },
        Command::JoinLobby(lobby) => {
            if let Err(e) = client.join_lobby(lobby).await {
                out(error(Op::Lobby, &e));
            }
        }
        Command::LeaveLobby => {
            if let Err(e) = client.leave_lobby().await {
                out(error(Op::Lobby, &e));
            }
        }
        Command::LobbyStats => match client.lobby_stats().await {
            Ok(s) => out(PollEvent::LobbyStats(s)),
            Err(e) => out(error(Op::Lobby, &e)),
        },
        Command::FindFriends(users) => match client.find_friends(users).await {
            Ok(f) => out(PollEvent::Friends(f)),
            Err(e) => out(error(Op::Lobby, &e)),
        },
        other => run_in_room(other, room, out).await,
    }
}

/// The calls that go to the room.
async fn run_in_room(cmd: Command, room: &mut Option<Room>, out: &impl Fn(PollEvent)) {
    let in_room = |op| PollEvent::Error {
        op,
        code: switchboard_protocol::ResultCode::OperationNotAllowedInCurrentState.to_wire(),
        message: "not in a game".into(),
    };
    match cmd {
        Command::Leave { will_come_back } => match room.take() {
            Some(r) => {
                let left = if will_come_back {
                    r.leave_for_now().await
                } else {
                    r.leave().await
                };
                match left {
                    Ok(()) => out(PollEvent::Left),
                    Err(e) => out(error(Op::Leave, &e)),
                }
            }
            None => out(in_room(Op::Leave)),
        },
        Command::Raise { event, delivery } => match room {
            Some(r) => {
                if let Err(e) = r.raise(event, delivery).await {
                    out(error(Op::Send, &e));
                }
            }
            None => out(in_room(Op::Send)),
        },
        Command::Update { update, delivery } => match room {
            Some(r) => {
                if let Err(e) = r.update_state(update, delivery).await {
                    out(error(Op::Send, &e));
                }
            }
            None => out(in_room(Op::Send)),
        },
        Command::Room(op) => match room {
            Some(r) => {
                let result = r.request(op).await;
                drain_room(room, out).await;
                match result {
                    Ok(GameReply::StateAuthority { object, holder }) => {
                        out(PollEvent::StateAuthority { object, holder })
                    }
                    Ok(_) => {}
                    Err(e) => out(error(Op::Room, &e)),
                }
            }
            None => out(in_room(Op::Room)),
        },
        _ => unreachable!("the master's calls are run by `run`"),
    }
}
