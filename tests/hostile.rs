//! Hostile and broken peers at the wire level: each is closed with the right application
//! code and a reason, and nobody else is disturbed.

mod common;

use std::time::Duration;

use common::start;
use quinn::{Connection, ConnectionError};
use switchboard_protocol::{
    ALPN_CLUSTER, ALPN_GAME, ALPN_MASTER, ClientToMaster, CloseCode, GsToMaster, Hello, MasterToGs,
    Register, ResultCode, RoomOptions, encode_frame, messages::cluster::MAX_CLUSTER_FRAME,
};
use switchboard_transport::endpoint::client_config;
use switchboard_transport::{FramedRecv, Limits, Trust, client_endpoint, connect, send_frame};

async fn raw(addr: &str, alpn: &[u8], trust: &Trust) -> Connection {
    let ep = client_endpoint(false).unwrap();
    let cfg = client_config(trust, alpn, &Limits::default()).unwrap();
    connect(&ep, cfg, addr).await.unwrap()
}

async fn close_code(conn: &Connection) -> (u64, String) {
    let err = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the server closes the connection");
    match err {
        ConnectionError::ApplicationClosed(c) => (
            c.error_code.into_inner(),
            String::from_utf8_lossy(&c.reason).into_owned(),
        ),
        other => panic!("expected an application close, got {other}"),
    }
}

fn wire(code: CloseCode) -> u64 {
    code.to_wire().into()
}

#[tokio::test]
async fn unsupported_version_is_closed_with_its_code() {
    let t = start(1).await;
    let conn = raw(&t.master(), ALPN_MASTER, &t.trust).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let hello = ClientToMaster::Hello(Hello {
        version: 99,
        agent: "future".into(),
    });
    send_frame(&mut send, &hello).await.unwrap();
    let (code, reason) = close_code(&conn).await;
    assert_eq!(code, wire(CloseCode::UnsupportedVersion));
    assert!(reason.contains("99"), "{reason}");
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn garbage_and_oversized_frames_close_only_that_connection() {
    let t = start(1).await;
    let bystander = t.client("bystander").await;

    let conn = raw(&t.master(), ALPN_MASTER, &t.trust).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let (code, _) = close_code(&conn).await;
    assert_eq!(code, wire(CloseCode::ProtocolViolation));

    let conn = raw(&t.master(), ALPN_MASTER, &t.trust).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send_frame(&mut send, &ClientToMaster::Hello(Hello::new("x")))
        .await
        .unwrap();
    // Announce a 100 MB frame: refused from the header alone.
    send.write_all(&100_000_000u32.to_le_bytes()).await.unwrap();
    let (code, reason) = close_code(&conn).await;
    assert_eq!(code, wire(CloseCode::ProtocolViolation));
    assert!(reason.contains("exceeds"), "{reason}");

    // The well-behaved client is unaffected.
    bystander
        .create_game(Some("still-fine"), RoomOptions::default())
        .await
        .unwrap();
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_request_before_hello_is_a_protocol_violation() {
    let t = start(1).await;
    let conn = raw(&t.master(), ALPN_MASTER, &t.trust).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let op = ClientToMaster::Request {
        id: 1,
        op: common::join_op("g"),
    };
    send.write_all(&encode_frame(&op)).await.unwrap();
    let (code, reason) = close_code(&conn).await;
    assert_eq!(code, wire(CloseCode::ProtocolViolation));
    assert!(reason.contains("Hello"), "{reason}");
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_malformed_datagram_closes_the_game_connection() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let room = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    let conn = raw(room.address(), ALPN_GAME, &t.trust).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send_frame(
        &mut send,
        &switchboard_protocol::ClientToGame::Hello(Hello::new("x")),
    )
    .await
    .unwrap();
    conn.send_datagram(bytes::Bytes::from_static(&[7, 7, 7]))
        .unwrap();
    let (code, reason) = close_code(&conn).await;
    assert_eq!(code, wire(CloseCode::ProtocolViolation));
    assert!(reason.contains("datagram"), "{reason}");
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_game_server_with_the_wrong_secret_is_refused() {
    let t = start(0).await;
    let conn = raw(&t.cluster.cluster.to_string(), ALPN_CLUSTER, &t.trust).await;
    let (mut send, recv) = conn.open_bi().await.unwrap();
    let mut recv = FramedRecv::new(recv, MAX_CLUSTER_FRAME);
    send_frame(&mut send, &GsToMaster::Hello(Hello::new("impostor")))
        .await
        .unwrap();
    assert!(matches!(
        recv.next::<MasterToGs>().await,
        Ok(Some(MasterToGs::Welcome(_)))
    ));
    let reg = GsToMaster::Register(Register {
        server_id: "impostor".into(),
        address: "127.0.0.1:1".into(),
        secret: "not the secret at all".into(),
        priority: 0,
        replace: false,
    });
    send_frame(&mut send, &reg).await.unwrap();
    match recv.next::<MasterToGs>().await {
        Ok(Some(MasterToGs::Refused(e))) => {
            assert_eq!(e.result_code(), Some(ResultCode::InvalidAuthentication))
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    let (code, _) = close_code(&conn).await;
    assert_eq!(code, wire(CloseCode::AuthenticationFailed));
    // The impostor was not registered: there is still no game server.
    let alice = t.client("alice").await;
    let e = alice
        .create_game(None, RoomOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.result_code(), Some(ResultCode::ServerFull));
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn the_wrong_alpn_fails_the_handshake() {
    let t = start(1).await;
    let ep = client_endpoint(false).unwrap();
    let cfg = client_config(&t.trust, ALPN_GAME, &Limits::default()).unwrap();
    let r = connect(&ep, cfg, &t.master()).await;
    assert!(
        r.is_err(),
        "a game-server client cannot talk to the master port"
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_by_the_client() {
    let t = start(1).await;
    let other = tempfile::tempdir().unwrap();
    let (_, ca) = switchboard_transport::ServerIdentity::dev(&other.path().join("tls")).unwrap();
    let stranger = Trust::from_ca_file(&ca).unwrap();
    let r = switchboard_client::Client::connect(
        &t.master(),
        switchboard_client::ClientConfig::new(stranger),
    )
    .await;
    assert!(
        r.is_err(),
        "verification is on: another dev certificate is not trusted"
    );
    t.cluster.shutdown().await;
}
