//! A client that speaks the protocol frame by frame, as a client written from
//! docs/PROTOCOL.md would: it sends exactly the messages a test gives it and reads exactly
//! what the server sends, with nothing of the Rust client in between.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::{
    ALPN_GAME, ALPN_MASTER, ClientToGame, ClientToMaster, GameOp, GameReply, GameToClient, Hello,
    MasterEvent, MasterOp, MasterReply, MasterToClient, OpError, Response,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{FramedRecv, Limits, client_endpoint, connect, send_frame};

use super::TestCluster;

/// How long a test waits for a frame the server owes it.
const WAIT: Duration = Duration::from_secs(5);

/// One connection's control stream, raw.
pub struct Raw<O, I> {
    pub conn: quinn::Connection,
    pub send: quinn::SendStream,
    pub recv: FramedRecv,
    _link: PhantomData<(O, I)>,
}

pub type RawMaster = Raw<ClientToMaster, MasterToClient>;
pub type RawGame = Raw<ClientToGame, GameToClient>;

impl<O: Serialize, I: DeserializeOwned + Debug> Raw<O, I> {
    async fn open(t: &TestCluster, alpn: &[u8], address: &str) -> Self {
        let ep = client_endpoint(false).unwrap();
        let cfg = client_config(&t.trust, alpn, &Limits::default()).unwrap();
        let conn = connect(&ep, cfg, address).await.unwrap();
        let (send, recv) = conn.open_bi().await.unwrap();
        Raw {
            conn,
            send,
            recv: FramedRecv::new(recv, 512 * 1024),
            _link: PhantomData,
        }
    }

    pub async fn send(&mut self, msg: &O) {
        send_frame(&mut self.send, msg).await.unwrap();
    }

    /// The next frame, which must arrive within a few seconds.
    pub async fn next_frame(&mut self) -> I {
        match tokio::time::timeout(WAIT, self.recv.next::<I>()).await {
            Ok(Ok(Some(m))) => m,
            Ok(other) => panic!("the stream ended instead: {other:?}"),
            Err(_) => panic!("no frame within {WAIT:?}"),
        }
    }

    /// Waits for the server to close the connection and returns its close code.
    pub async fn close_code(&mut self) -> u64 {
        match tokio::time::timeout(WAIT, self.conn.closed()).await {
            Ok(quinn::ConnectionError::ApplicationClosed(c)) => c.error_code.into_inner(),
            Ok(other) => panic!("closed without a code: {other}"),
            Err(_) => panic!("not closed within {WAIT:?}"),
        }
    }
}

impl RawMaster {
    /// A connection to the master that has not sent anything yet.
    pub async fn master(t: &TestCluster) -> RawMaster {
        Raw::open(t, ALPN_MASTER, &t.master()).await
    }

    /// A connection to the master past `Hello`/`Welcome`.
    pub async fn master_hello(t: &TestCluster) -> RawMaster {
        let mut m = RawMaster::master(t).await;
        m.send(&ClientToMaster::Hello(Hello::new("raw"))).await;
        assert!(matches!(m.next().await, MasterToClient::Welcome(_)));
        m
    }

    /// The next frame, skipping `AppStats` (§14: it may come between any two frames).
    pub async fn next(&mut self) -> MasterToClient {
        loop {
            match self.next_frame().await {
                MasterToClient::Event(MasterEvent::AppStats { .. }) => continue,
                m => return m,
            }
        }
    }

    /// Sends a request and returns the next frame, which must be its response.
    pub async fn call(&mut self, id: u32, op: MasterOp) -> Result<MasterReply, OpError> {
        self.send(&ClientToMaster::Request { id, op }).await;
        match self.next().await {
            MasterToClient::Response(Response { id: got, result }) if got == id => result,
            other => panic!("expected the response to request {id}, got {other:?}"),
        }
    }

    /// Proves nothing else is queued: the next frame answers this request.
    pub async fn nothing_before_the_next_response(&mut self) {
        assert!(matches!(
            self.call(u32::MAX, MasterOp::GetLobbyStats).await,
            Ok(MasterReply::LobbyStats(_))
        ));
    }
}

impl RawGame {
    /// A connection to the game server at `address` that has not sent anything yet.
    pub async fn game(t: &TestCluster, address: &str) -> RawGame {
        Raw::open(t, ALPN_GAME, address).await
    }

    /// A connection to the game server at `address` past `Hello`/`Welcome`.
    pub async fn game_hello(t: &TestCluster, address: &str) -> RawGame {
        let mut g: RawGame = Raw::open(t, ALPN_GAME, address).await;
        g.send(&ClientToGame::Hello(Hello::new("raw"))).await;
        assert!(matches!(g.next().await, GameToClient::Welcome(_)));
        g
    }

    pub async fn next(&mut self) -> GameToClient {
        self.next_frame().await
    }

    /// Sends a request and returns the next frame, which must be its response.
    pub async fn call(&mut self, id: u32, op: GameOp) -> Result<GameReply, OpError> {
        self.send(&ClientToGame::Request { id, op }).await;
        match self.next().await {
            GameToClient::Response(Response { id: got, result }) if got == id => result,
            other => panic!("expected the response to request {id}, got {other:?}"),
        }
    }

    /// Proves nothing else is queued: the next frame answers this request (`ChangeGroups`
    /// that changes nothing, in a room; refused with -3 outside one).
    pub async fn nothing_before_the_next_response(&mut self) {
        let op = GameOp::ChangeGroups {
            remove: None,
            add: vec![],
        };
        self.send(&ClientToGame::Request { id: u32::MAX, op }).await;
        match self.next().await {
            GameToClient::Response(Response { id: u32::MAX, .. }) => {}
            other => panic!("expected nothing before the barrier's response, got {other:?}"),
        }
    }
}
