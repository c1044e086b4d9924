//! Webhooks end to end: a real HTTP backend (this test's own, on loopback) receives a
//! signed POST per room lifecycle change, in order per room, and a backend that is down
//! for a while still gets everything once it is back.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{expect_event, start_all};
use switchboard_gameserver::webhooks::{WebhookConfig, signature};
use switchboard_protocol::{RoomEvent, RoomOptions};

const SECRET: &[u8] = b"webhook-secret-of-the-studio";

#[derive(Default)]
struct Backend {
    /// Woken at every hook the backend accepts.
    arrived: Arc<tokio::sync::Notify>,
    /// (path, signature header, body) of every request that was answered 200.
    got: Vec<(String, String, serde_json::Value)>,
    /// Answer 503 to this many requests first.
    fail_first: usize,
    attempts: usize,
}

type Shared = Arc<Mutex<Backend>>;

async fn hook(
    State(b): State<Shared>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut b = b.lock().unwrap();
    b.attempts += 1;
    if b.attempts <= b.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let sig = headers
        .get("x-switchboard-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(
        sig,
        signature(SECRET, &body),
        "the signature is over the body"
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    b.got.push((path, sig, json));
    b.arrived.notify_waiters();
    StatusCode::OK
}

async fn backend(fail_first: usize) -> (SocketAddr, Shared) {
    let state: Shared = Arc::new(Mutex::new(Backend {
        fail_first,
        ..Backend::default()
    }));
    let app = axum::Router::new()
        .route("/hooks/{path}", post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, state)
}

async fn cluster(addr: SocketAddr) -> common::TestCluster {
    start_all(
        1,
        |_| {},
        |_| {},
        move |g| {
            let mut w = WebhookConfig::new(format!("http://{addr}/hooks"), SECRET.to_vec());
            w.max_attempts = 10;
            g.webhooks = Some(w);
        },
    )
    .await
}

/// Waits (at most 10 s) until the backend holds `n` hooks; returns them.
async fn hooks(b: &Shared, n: usize) -> Vec<(String, String, serde_json::Value)> {
    let arrived = b.lock().unwrap().arrived.clone();
    let wait = async {
        loop {
            let next = arrived.notified();
            {
                let b = b.lock().unwrap();
                if b.got.len() >= n {
                    return b.got.clone();
                }
            }
            next.await;
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(got) => got,
        Err(_) => panic!(
            "the backend got {} hooks, not {n}",
            b.lock().unwrap().got.len()
        ),
    }
}

async fn play_a_room(t: &common::TestCluster) {
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("hooked"), RoomOptions::default())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let b = bob.join_game("hooked").await.unwrap();
    expect_event(&mut a, |e| matches!(e, RoomEvent::Join { .. })).await;
    b.leave().await.unwrap();
    a.leave().await.unwrap();
}

#[tokio::test]
async fn every_room_change_reaches_the_backend_signed_and_in_order() {
    let (addr, b) = backend(0).await;
    let t = cluster(addr).await;
    play_a_room(&t).await;
    let got = hooks(&b, 5).await;
    let seen: Vec<(&str, &str, u64, u64, &str)> = got
        .iter()
        .map(|(path, _, j)| {
            (
                path.as_str(),
                j["Type"].as_str().unwrap(),
                j["Seq"].as_u64().unwrap(),
                j["ActorNr"].as_u64().unwrap(),
                j["UserId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("GameCreate", "Create", 1, 1, "alice"),
            ("GameJoin", "Join", 2, 2, "bob"),
            ("GameLeave", "Leave", 3, 2, "bob"),
            ("GameLeave", "Leave", 4, 1, "alice"),
            ("GameClose", "Close", 5, 0, ""),
        ]
    );
    for (_, _, j) in &got {
        assert_eq!(j["GameId"], "hooked");
        assert_eq!(j["GameServer"], "gs-1");
    }
    assert_eq!(got[2].2["Reason"], "left");
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_backend_down_for_a_while_gets_everything_once_it_is_back() {
    // The first 4 attempts fail (the backend is "down"); retries deliver all, in order.
    let (addr, b) = backend(4).await;
    let t = cluster(addr).await;
    play_a_room(&t).await;
    let got = hooks(&b, 5).await;
    let seqs: Vec<u64> = got
        .iter()
        .map(|(_, _, j)| j["Seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert!(
        b.lock().unwrap().attempts >= 9,
        "the failed attempts were retried"
    );
    let metrics = common::metric(
        &t.gs_metrics(0),
        "switchboard_gs_webhooks_total{outcome=\"retried\"}",
    )
    .await;
    assert!(metrics >= 4.0, "retries are counted: {metrics}");
    t.cluster.shutdown().await;
}

fn event(code: u8, data: &'static [u8]) -> switchboard_protocol::RaiseEvent {
    switchboard_protocol::RaiseEvent {
        code,
        receivers: switchboard_protocol::ReceiverGroup::Others,
        targets: vec![],
        group: 0,
        cache: switchboard_protocol::EventCaching::DoNotCache,
        channel: 0,
        data: bytes::Bytes::from_static(data),
    }
}

fn b64(s: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn forwarded_events_reach_the_backend_at_once_or_batched() {
    let (addr, b) = backend(0).await;
    let t = start_all(
        1,
        |_| {},
        |_| {},
        move |g| {
            let mut w = WebhookConfig::new(format!("http://{addr}/hooks"), SECRET.to_vec());
            w.batch_interval = Duration::from_millis(200);
            g.webhooks = Some(w);
        },
    )
    .await;
    let alice = t.client("alice").await;
    let a = alice
        .create_game(Some("shop"), RoomOptions::default())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    let mut bb = bob.join_game("shop").await.unwrap();
    use switchboard_protocol::Forward;
    a.raise_forwarded(event(5, b"bought sword"), Forward::Now)
        .await
        .unwrap();
    for coin in [b"coin 1", b"coin 2", b"coin 3"] {
        a.raise_forwarded(event(6, coin), Forward::Batched)
            .await
            .unwrap();
    }
    // Relayed as usual too.
    let relayed = expect_event(&mut bb, |e| matches!(e, RoomEvent::Custom(_))).await;
    assert!(matches!(relayed, RoomEvent::Custom(d) if d.code == 5));
    // Create, Join, the event, then one batch with the three coins in order.
    let got = hooks(&b, 4).await;
    let (path, _, ev) = &got[2];
    assert_eq!(path, "GameEvent");
    assert_eq!(
        (ev["ActorNr"].as_u64(), ev["EvCode"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(b64(&ev["Data"]), b"bought sword");
    assert_eq!(ev["UserId"], "alice");
    let (path, _, batch) = &got[3];
    assert_eq!(path, "GameEvents");
    let coins: Vec<Vec<u8>> = batch["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| b64(&e["Data"]))
        .collect();
    assert_eq!(
        coins,
        vec![b"coin 1".to_vec(), b"coin 2".to_vec(), b"coin 3".to_vec()]
    );
    assert_eq!(batch["Seq"], 4);
    // A forwarded property change.
    let sp = switchboard_protocol::SetProperties {
        target: 1,
        properties: [
            ("gold".to_string(), switchboard_protocol::Value::Int(120)),
            (
                "title".to_string(),
                switchboard_protocol::Value::Str("knight".into()),
            ),
        ]
        .into(),
        ..Default::default()
    };
    a.set_properties_forwarded(sp).await.unwrap();
    let got = hooks(&b, 5).await;
    let (path, _, p) = &got[4];
    assert_eq!(path, "GameProperties");
    assert_eq!(
        (p["ActorNr"].as_u64(), p["TargetActor"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        p["Properties"],
        serde_json::json!({ "gold": 120, "title": "knight" })
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_forwarded_event_the_backend_never_takes_comes_back_as_error_info() {
    // The backend refuses everything; with HasErrorInfo the sender is told.
    let (addr, _b) = backend(usize::MAX).await;
    let t = start_all(
        1,
        |_| {},
        |_| {},
        move |g| {
            let mut w = WebhookConfig::new(format!("http://{addr}/hooks"), SECRET.to_vec());
            w.max_attempts = 2;
            w.error_info = true;
            g.webhooks = Some(w);
        },
    )
    .await;
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("shop"), RoomOptions::default())
        .await
        .unwrap();
    a.raise_forwarded(
        event(5, b"bought sword"),
        switchboard_protocol::Forward::Now,
    )
    .await
    .unwrap();
    let told = expect_event(&mut a, |e| matches!(e, RoomEvent::ErrorInfo { .. })).await;
    assert!(matches!(
        told,
        RoomEvent::ErrorInfo { code, .. }
            if code == switchboard_protocol::ResultCode::ExternalHttpCallFailed.to_wire()
    ));
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_hook_goes_to_its_configured_path_and_an_empty_path_turns_it_off() {
    let (addr, b) = backend(0).await;
    let t = start_all(
        1,
        |_| {},
        |_| {},
        move |g| {
            let mut w = WebhookConfig::new(format!("http://{addr}/hooks"), SECRET.to_vec());
            w.paths.insert("GameJoin".into(), "/players-joined/".into());
            w.paths.insert("GameLeave".into(), String::new());
            g.webhooks = Some(w);
        },
    )
    .await;
    play_a_room(&t).await;
    let got = hooks(&b, 3).await;
    let seen: Vec<(&str, u64)> = got
        .iter()
        .map(|(path, _, j)| (path.as_str(), j["Seq"].as_u64().unwrap()))
        .collect();
    // The leaves are not sent; their sequence numbers are still counted.
    assert_eq!(
        seen,
        vec![("GameCreate", 1), ("players-joined", 2), ("GameClose", 5)]
    );
    t.cluster.shutdown().await;
}
