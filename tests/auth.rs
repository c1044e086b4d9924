//! Authentication providers end to end: JWT (HS256, RS256, ES256) verified by the master,
//! and Photon-style custom authentication against a real HTTP backend started here.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::post;
use common::{TestCluster, code, start_full};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json_, json};
use switchboard_client::{Client, ClientConfig};
use switchboard_master::AuthConfig;
use switchboard_master::auth::{HttpConfig, JwtConfig};
use switchboard_protocol::ResultCode;

async fn cluster(auth: AuthConfig) -> TestCluster {
    start_full(1, |_| {}, move |m| m.auth = auth).await
}

async fn login(
    t: &TestCluster,
    user: &str,
    token: &str,
) -> Result<String, switchboard_client::ClientError> {
    let mut c = Client::connect(&t.master(), ClientConfig::new(t.trust.clone()))
        .await
        .unwrap();
    c.authenticate(user, token).await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(alg: Algorithm, key: &EncodingKey, claims: Json_) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

fn jwt_config(algorithm: Algorithm, key: Vec<u8>) -> JwtConfig {
    JwtConfig {
        algorithm,
        key,
        leeway: Duration::from_secs(5),
        issuer: None,
        audience: None,
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

#[tokio::test]
async fn jwt_hs256_accepts_valid_tokens_and_refuses_the_rest() {
    let mut cfg = jwt_config(Algorithm::HS256, SECRET.to_vec());
    cfg.issuer = Some("studio".into());
    let t = cluster(AuthConfig::Jwt(cfg)).await;
    let key = EncodingKey::from_secret(SECRET).unwrap();
    let good = jwt(
        Algorithm::HS256,
        &key,
        json!({"sub": "alice", "exp": now() + 60, "iss": "studio"}),
    );
    assert_eq!(
        login(&t, "ignored", &good).await.unwrap(),
        "alice",
        "the user id is the token's sub"
    );

    let expired = jwt(
        Algorithm::HS256,
        &key,
        json!({"sub": "alice", "exp": now() - 60, "iss": "studio"}),
    );
    assert_eq!(
        code(login(&t, "", &expired).await),
        ResultCode::AuthenticationTokenExpired
    );
    // Within the leeway an expired token still passes.
    let skewed = jwt(
        Algorithm::HS256,
        &key,
        json!({"sub": "alice", "exp": now() - 2, "iss": "studio"}),
    );
    login(&t, "", &skewed).await.unwrap();

    let forged_key = EncodingKey::from_secret(b"another secret that is long enough!!").unwrap();
    let forged = jwt(
        Algorithm::HS256,
        &forged_key,
        json!({"sub": "alice", "exp": now() + 60, "iss": "studio"}),
    );
    assert_eq!(
        code(login(&t, "", &forged).await),
        ResultCode::InvalidAuthentication
    );
    let no_exp = jwt(
        Algorithm::HS256,
        &key,
        json!({"sub": "alice", "iss": "studio"}),
    );
    assert_eq!(
        code(login(&t, "", &no_exp).await),
        ResultCode::InvalidAuthentication
    );
    let wrong_iss = jwt(
        Algorithm::HS256,
        &key,
        json!({"sub": "alice", "exp": now() + 60, "iss": "other"}),
    );
    assert_eq!(
        code(login(&t, "", &wrong_iss).await),
        ResultCode::InvalidAuthentication
    );
    // The algorithm is pinned: HS384 with the same secret is refused.
    let other_alg = jwt(
        Algorithm::HS384,
        &key,
        json!({"sub": "alice", "exp": now() + 60, "iss": "studio"}),
    );
    assert_eq!(
        code(login(&t, "", &other_alg).await),
        ResultCode::InvalidAuthentication
    );
    assert_eq!(
        code(login(&t, "alice", "not a jwt").await),
        ResultCode::InvalidAuthentication
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn jwt_rs256_and_es256() {
    let private = std::fs::read("tests/fixtures/jwt-rs256-private.pem").unwrap();
    let public = std::fs::read("tests/fixtures/jwt-rs256-public.pem").unwrap();
    let t = cluster(AuthConfig::Jwt(jwt_config(Algorithm::RS256, public))).await;
    let key = EncodingKey::from_rsa_pem(&private).unwrap();
    let token = jwt(
        Algorithm::RS256,
        &key,
        json!({"sub": "rsa-user", "exp": now() + 60}),
    );
    assert_eq!(login(&t, "", &token).await.unwrap(), "rsa-user");
    t.cluster.shutdown().await;

    let pair = rcgen::KeyPair::generate().unwrap(); // ECDSA P-256
    let t = cluster(AuthConfig::Jwt(jwt_config(
        Algorithm::ES256,
        pair.public_key_pem().into_bytes(),
    )))
    .await;
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let token = jwt(
        Algorithm::ES256,
        &key,
        json!({"sub": "ec-user", "exp": now() + 60}),
    );
    assert_eq!(login(&t, "", &token).await.unwrap(), "ec-user");
    // A token signed by another EC key is refused.
    let stranger = rcgen::KeyPair::generate().unwrap();
    let key = EncodingKey::from_ec_pem(stranger.serialize_pem().as_bytes()).unwrap();
    let token = jwt(
        Algorithm::ES256,
        &key,
        json!({"sub": "ec-user", "exp": now() + 60}),
    );
    assert_eq!(
        code(login(&t, "", &token).await),
        ResultCode::InvalidAuthentication
    );
    t.cluster.shutdown().await;
}

/// A real custom-authentication backend on 127.0.0.1: token "good" passes (the backend
/// names the user), "bad" is refused with a message, "slow" never answers in time.
async fn backend() -> SocketAddr {
    let app = axum::Router::new().route(
        "/auth",
        post(|Json(body): Json<Json_>| async move {
            let user = body["UserId"].as_str().unwrap_or_default().to_string();
            match body["Token"].as_str() {
                Some("good") => Json(json!({"ResultCode": 1, "UserId": format!("backend-{user}")})),
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Json(json!({"ResultCode": 1}))
                }
                _ => Json(json!({"ResultCode": 2, "Message": "banned"})),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn http(url: String, fail_open: bool) -> AuthConfig {
    AuthConfig::Http(HttpConfig {
        url,
        timeout: Duration::from_millis(300),
        fail_open,
    })
}

#[tokio::test]
async fn http_custom_authentication() {
    let addr = backend().await;
    let t = cluster(http(format!("http://{addr}/auth"), false)).await;
    assert_eq!(login(&t, "ann", "good").await.unwrap(), "backend-ann");
    let e = login(&t, "ann", "bad").await.unwrap_err();
    assert_eq!(
        e.result_code(),
        Some(ResultCode::CustomAuthenticationFailed)
    );
    assert!(e.to_string().contains("banned"), "{e}");
    // A backend that does not answer in time: refused (fail closed).
    assert_eq!(
        code(login(&t, "ann", "slow").await),
        ResultCode::CustomAuthenticationFailed
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn http_backend_down_fails_closed_unless_configured_open() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/auth");
    let closed = cluster(http(url.clone(), false)).await;
    assert_eq!(
        code(login(&closed, "ann", "x").await),
        ResultCode::CustomAuthenticationFailed
    );
    closed.cluster.shutdown().await;
    let open = cluster(http(url, true)).await;
    assert_eq!(login(&open, "ann", "x").await.unwrap(), "ann");
    open.cluster.shutdown().await;
}
