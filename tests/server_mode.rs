//! Server rooms end to end over QUIC: a dedicated server authenticates as one, creates
//! the room and is its authority; it approves and refuses joins with the claims the
//! master verified; clients cannot speak to each other; a client cannot claim the role;
//! when the authority leaves, everyone is told and the room closes.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestCluster, code, expect_event, start_all};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use switchboard_client::{Client, ClientConfig, Delivery, Room};
use switchboard_master::AuthConfig;
use switchboard_master::auth::JwtConfig;
use switchboard_protocol::{
    CloseCode, MasterOp, Properties, ResultCode, RoomEvent, RoomMode, RoomOptions, Value,
};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-server-mode";

/// A cluster whose players log in with JWTs (so they have claims) and whose Server
/// rooms end 300 ms after their authority left.
async fn cluster() -> TestCluster {
    start_all(
        1,
        |_| {},
        |m| {
            m.auth = AuthConfig::Jwt(JwtConfig {
                algorithm: Algorithm::HS256,
                key: KEY.to_vec(),
                leeway: Duration::from_secs(5),
                issuer: None,
                audience: None,
            })
        },
        |g| g.room_limits.authority_grace = Duration::from_millis(300),
    )
    .await
}

async fn player(t: &TestCluster, user: &str, level: i64) -> Client {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = json!({ "sub": user, "exp": exp, "level": level, "team": "red" });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(KEY).unwrap(),
    )
    .unwrap();
    let mut c = Client::connect(&t.master(), ClientConfig::new(t.trust.clone()))
        .await
        .unwrap();
    c.authenticate(user, &token).await.unwrap();
    c
}

async fn dedicated(t: &TestCluster) -> Client {
    let mut c = Client::connect(&t.master(), ClientConfig::new(t.trust.clone()))
        .await
        .unwrap();
    c.authenticate_server("ds-eu-1", &t.cluster.server_secret)
        .await
        .unwrap();
    c
}

fn server_room(join_approval: bool) -> RoomOptions {
    RoomOptions {
        mode: RoomMode::Server,
        join_approval,
        ..RoomOptions::default()
    }
}

/// The next `JoinRequest` the authority gets: (request, user, claims).
async fn join_request(ds: &mut Room) -> (u32, String, Properties) {
    match expect_event(ds, |e| matches!(e, RoomEvent::JoinRequest { .. })).await {
        RoomEvent::JoinRequest {
            request,
            user_id,
            claims,
            ..
        } => (request, user_id, claims),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_dedicated_server_approves_and_refuses_joins_with_the_claims_it_was_given() {
    let t = cluster().await;
    let server = dedicated(&t).await;
    let mut ds = server
        .create_game(Some("arena"), server_room(true))
        .await
        .unwrap();
    assert_eq!((ds.joined().mode, ds.joined().host), (RoomMode::Server, 1));

    // Bob's join waits for the server, which sees who he is and what the master verified.
    let bob = player(&t, "bob", 12).await;
    let bob_join = tokio::spawn(async move { (bob.join_game("arena").await, bob) });
    let (request, user, claims) = join_request(&mut ds).await;
    assert_eq!(user, "bob");
    assert_eq!(claims.get("level"), Some(&Value::Int(12)));
    assert_eq!(claims.get("team"), Some(&Value::Str("red".into())));
    assert!(
        !claims.contains_key("exp"),
        "registered claims stay with the master"
    );
    ds.approve_join(request, true, "").await.unwrap();
    let (joined, _bob) = bob_join.await.unwrap();
    let b = joined.unwrap();
    assert_eq!((b.actor(), b.joined().host), (2, 1));

    // Mallory is refused, with the server's reason.
    let mallory = player(&t, "mallory", 1).await;
    let mallory_join = tokio::spawn(async move { mallory.join_game("arena").await });
    let (request, user, _) = join_request(&mut ds).await;
    assert_eq!(user, "mallory");
    ds.approve_join(request, false, "banned until Friday")
        .await
        .unwrap();
    let e = mallory_join.await.unwrap().unwrap_err();
    assert_eq!(e.result_code(), Some(ResultCode::JoinNotApproved));
    assert!(e.to_string().contains("banned until Friday"), "{e}");
    // Only the authority answers joins.
    assert_eq!(
        code(b.approve_join(request, true, "").await),
        ResultCode::NotAllowed
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn clients_speak_to_the_server_only_and_only_it_changes_properties() {
    let t = cluster().await;
    let server = dedicated(&t).await;
    let mut ds = server
        .create_game(Some("arena"), server_room(false))
        .await
        .unwrap();
    let bob = player(&t, "bob", 1).await;
    let mut b = bob.join_game("arena").await.unwrap();
    let carol = player(&t, "carol", 1).await;
    let mut c = carol.join_game("arena").await.unwrap();
    // To the other client: refused.
    b.raise_event(1, &b"psst"[..], Delivery::Reliable)
        .await
        .unwrap();
    let refused = expect_event(&mut b, |e| matches!(e, RoomEvent::ErrorInfo { .. })).await;
    assert!(matches!(
        refused,
        RoomEvent::ErrorInfo { code, .. } if code == ResultCode::NotAllowed.to_wire()
    ));
    // To the server: delivered; the server's answer reaches carol, and nothing of bob's
    // came before it.
    let mut input = switchboard_protocol::RaiseEvent {
        code: 2,
        receivers: switchboard_protocol::ReceiverGroup::Host,
        targets: vec![],
        group: 0,
        cache: switchboard_protocol::EventCaching::DoNotCache,
        channel: 0,
        data: bytes::Bytes::from_static(b"move"),
    };
    b.raise(input.clone(), Delivery::Reliable).await.unwrap();
    let got = expect_event(&mut ds, |e| matches!(e, RoomEvent::Custom(_))).await;
    assert!(matches!(got, RoomEvent::Custom(d) if d.sender == 2 && d.code == 2));
    input.receivers = switchboard_protocol::ReceiverGroup::Others;
    input.code = 3;
    ds.raise(input, Delivery::Reliable).await.unwrap();
    let got = expect_event(&mut c, |e| matches!(e, RoomEvent::Custom(_))).await;
    assert!(matches!(got, RoomEvent::Custom(d) if d.sender == 1 && d.code == 3));
    // Properties are the server's.
    let mine = switchboard_protocol::SetProperties {
        target: 2,
        properties: [("hp".to_string(), Value::Int(999))].into(),
        ..Default::default()
    };
    assert_eq!(
        code(b.set_properties(mine.clone()).await),
        ResultCode::NotAllowed
    );
    ds.set_properties(mine).await.unwrap();
    assert_eq!(
        code(b.set_master_client(2, 1).await),
        ResultCode::NotAllowed
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_client_cannot_claim_the_server_role() {
    let t = cluster().await;
    let bob = player(&t, "bob", 1).await;
    assert_eq!(
        code(
            bob.redirect(MasterOp::CreateGame {
                game: Some("mine".into()),
                options: server_room(false),
                expected_users: vec![],
            })
            .await
        ),
        ResultCode::NotAllowed
    );
    let mut c = Client::connect(&t.master(), ClientConfig::new(t.trust.clone()))
        .await
        .unwrap();
    assert_eq!(
        code(c.authenticate_server("ds", "not the secret at all").await),
        ResultCode::InvalidAuthentication
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn the_room_closes_when_its_authority_leaves() {
    let t = cluster().await;
    let server = dedicated(&t).await;
    let ds = server
        .create_game(Some("arena"), server_room(false))
        .await
        .unwrap();
    let bob = player(&t, "bob", 1).await;
    let mut b = bob.join_game("arena").await.unwrap();
    ds.disconnect();
    let told = expect_event(&mut b, |e| matches!(e, RoomEvent::AuthorityLeft { .. })).await;
    assert_eq!(told, RoomEvent::AuthorityLeft { closes_in_ms: 300 });
    // After the grace the game server closes bob's connection, saying why.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while b.next_event().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "closed after the grace");
    let reason = b.close_reason().expect("closed");
    assert!(
        reason.to_string().contains("dedicated server left"),
        "{reason}"
    );
    let _ = CloseCode::RoomClosed;
    // A new join finds no room.
    assert_eq!(
        code(
            common::eventually(|| bob.join_game("arena"), |r| r.is_err())
                .await
                .map(|_| ())
        ),
        ResultCode::GameDoesNotExist
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_held_join_whose_joiner_leaves_is_withdrawn() {
    let t = cluster().await;
    let server = dedicated(&t).await;
    let mut ds = server
        .create_game(Some("arena"), server_room(true))
        .await
        .unwrap();
    let bob = player(&t, "bob", 1).await;
    let r = bob
        .redirect(common::join_op("arena"))
        .await
        .expect("redirect");
    let mut raw = common::raw::RawGame::game_hello(&t, &r.address).await;
    raw.send(&switchboard_protocol::ClientToGame::Request {
        id: 1,
        op: switchboard_protocol::GameOp::JoinGame {
            ticket: r.ticket,
            game: "arena".into(),
            mode: switchboard_protocol::JoinMode::JoinOnly,
            expected_users: vec![],
            actor_properties: Properties::new(),
        },
    })
    .await;
    let (request, ..) = join_request(&mut ds).await;
    raw.conn.close(0u32.into(), b"gone");
    let withdrawn = expect_event(&mut ds, |e| matches!(e, RoomEvent::JoinWithdrawn { .. })).await;
    assert_eq!(withdrawn, RoomEvent::JoinWithdrawn { request });
    // Approving it now makes nobody an actor.
    assert_eq!(
        code(ds.approve_join(request, true, "").await),
        ResultCode::InvalidRequestParameters
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_connection_whose_held_join_timed_out_may_try_again() {
    let t = start_all(
        1,
        |_| {},
        |_| {},
        |g| {
            g.join_timeout = Duration::from_millis(800);
            g.room_limits.approval_timeout = Duration::from_millis(1200);
        },
    )
    .await;
    let server = dedicated(&t).await;
    let mut ds = server
        .create_game(Some("arena"), server_room(true))
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let join = |ticket| switchboard_protocol::ClientToGame::Request {
        id: 1,
        op: switchboard_protocol::GameOp::JoinGame {
            ticket,
            game: "arena".into(),
            mode: switchboard_protocol::JoinMode::JoinOnly,
            expected_users: vec![],
            actor_properties: Properties::new(),
        },
    };
    let r = bob.redirect(common::join_op("arena")).await.unwrap();
    let mut raw = common::raw::RawGame::game_hello(&t, &r.address).await;
    raw.send(&join(r.ticket)).await;
    // Nobody answers: refused after the approval timeout, past the join deadline...
    match raw.next().await {
        switchboard_protocol::GameToClient::Response(resp) => assert_eq!(
            resp.result.unwrap_err().code,
            ResultCode::JoinNotApproved.to_wire()
        ),
        other => panic!("{other:?}"),
    }
    join_request(&mut ds).await;
    // ...and the connection may still try again.
    let r = common::eventually(|| bob.redirect(common::join_op("arena")), |r| r.is_ok())
        .await
        .unwrap();
    raw.send(&join(r.ticket)).await;
    let (request, ..) = join_request(&mut ds).await;
    ds.approve_join(request, true, "").await.unwrap();
    match raw.next().await {
        switchboard_protocol::GameToClient::Response(resp) => assert!(resp.result.is_ok()),
        other => panic!("{other:?}"),
    }
    t.cluster.shutdown().await;
}

/// A server may hold a join longer than a client's request timeout (here the approval
/// timeout is 1.5 s, the request timeout 0.5 s): the join waits for the server's verdict
/// (`ClientConfig::join_timeout`) instead of giving up and dropping the connection.
#[tokio::test]
async fn a_held_join_hears_the_verdict_past_the_request_timeout() {
    let t = start_all(
        1,
        |_| {},
        |_| {},
        |g| g.room_limits.approval_timeout = Duration::from_millis(1500),
    )
    .await;
    let server = dedicated(&t).await;
    let _ds = server
        .create_game(Some("arena"), server_room(true))
        .await
        .unwrap();
    let mut config = switchboard_client::ClientConfig::new(t.trust.clone());
    config.request_timeout = Duration::from_millis(500);
    let mut bob = switchboard_client::Client::connect(&t.master(), config)
        .await
        .unwrap();
    bob.authenticate("bob", "").await.unwrap();
    // Nobody approves: the server's refusal, not the client's timeout.
    assert_eq!(
        code(bob.join_game("arena").await),
        ResultCode::JoinNotApproved
    );
    t.cluster.shutdown().await;
}
