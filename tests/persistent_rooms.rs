//! Persistent rooms end to end (Photon's IsPersistent and AsyncJoin): a real HTTP backend
//! (this test's own, on loopback) keeps what the game servers save when a room ends, and
//! answers their `GameCreate` with it; the room resumes, state intact, on whichever game
//! server the master picks. A backend whose state is not valid refuses the join with a
//! clear code, and a stopping game server saves the rooms it still holds.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::{TestCluster, expect_event, start_all};
use switchboard_client::JoinOptions;
use switchboard_gameserver::webhooks::{WebhookConfig, signature};
use switchboard_protocol::{
    EventCaching, JoinMode, RaiseEvent, ReceiverGroup, ResultCode, RoomEvent, RoomOptions,
    SetProperties, Value,
};

const SECRET: &[u8] = b"webhook-secret-of-the-studio";

/// A studio backend that keeps saved rooms by name.
#[derive(Default)]
struct Backend {
    arrived: Arc<tokio::sync::Notify>,
    /// Every hook, in the order they came.
    got: Vec<serde_json::Value>,
    /// Saved states by game.
    saved: HashMap<String, serde_json::Value>,
    /// If set, the answer to every `GameCreate` instead of the saved state.
    answer: Option<serde_json::Value>,
    /// If set, a `Save` is answered only once this gives a permit (a slow backend).
    hold_saves: Option<Arc<tokio::sync::Semaphore>>,
}

type Shared = Arc<Mutex<Backend>>;

async fn hook(
    State(b): State<Shared>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Json<serde_json::Value> {
    let sig = headers
        .get("x-switchboard-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(sig, signature(SECRET, &body), "every hook is signed");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let hold = match json["Type"].as_str() {
        Some("Save") => b.lock().unwrap().hold_saves.clone(),
        _ => None,
    };
    if let Some(gate) = &hold {
        // Seen at once, answered when the test says so.
        {
            let mut b = b.lock().unwrap();
            b.got.push(json.clone());
            b.arrived.notify_waiters();
        }
        gate.acquire().await.unwrap().forget();
    }
    let mut b = b.lock().unwrap();
    let game = json["GameId"].as_str().unwrap().to_string();
    let answer = match (path.as_str(), json["Type"].as_str().unwrap()) {
        ("GameClose", "Save") => {
            b.saved.insert(game, json["State"].clone());
            serde_json::json!({ "ResultCode": 0 })
        }
        ("GameCreate", _) => match &b.answer {
            Some(a) => a.clone(),
            None => match b.saved.get(&game) {
                Some(state) => serde_json::json!({ "ResultCode": 0, "State": state }),
                None => serde_json::json!({ "ResultCode": 0 }),
            },
        },
        _ => serde_json::json!({ "ResultCode": 0 }),
    };
    if hold.is_none() {
        b.got.push(json);
    }
    b.arrived.notify_waiters();
    Json(answer)
}

async fn backend() -> (SocketAddr, Shared) {
    let state: Shared = Arc::default();
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

async fn cluster(addr: SocketAddr, game_servers: usize) -> TestCluster {
    start_all(
        game_servers,
        |_| {},
        |m| m.settings.async_join = true,
        move |g| {
            let mut w = WebhookConfig::new(format!("http://{addr}/hooks"), SECRET.to_vec());
            w.persistent = true;
            g.webhooks = Some(w);
        },
    )
    .await
}

/// Waits (at most 10 s) until a hook matching `f` has arrived; returns it.
async fn hook_where(b: &Shared, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let arrived = b.lock().unwrap().arrived.clone();
    let wait = async {
        loop {
            let next = arrived.notified();
            if let Some(h) = b.lock().unwrap().got.iter().find(|h| f(h)) {
                return h.clone();
            }
            next.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no such hook; got {:#?}", b.lock().unwrap().got))
}

fn is(kind: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |h| h["Type"] == kind
}

fn options() -> RoomOptions {
    RoomOptions {
        player_ttl_ms: -1,
        max_players: 4,
        properties: [("season".to_string(), Value::Int(3))].into(),
        ..RoomOptions::default()
    }
}

fn cached(data: &'static [u8]) -> RaiseEvent {
    RaiseEvent {
        code: 9,
        receivers: ReceiverGroup::Others,
        targets: vec![],
        group: 0,
        cache: EventCaching::AddToRoomCache,
        channel: 0,
        data: bytes::Bytes::from_static(data),
    }
}

fn rejoin() -> JoinOptions {
    JoinOptions {
        mode: JoinMode::RejoinOnly,
        ..JoinOptions::default()
    }
}

/// Alice's "world", its boss beaten (a room property).
async fn boss_beaten(alice: &switchboard_client::Client) -> switchboard_client::Room {
    let a = alice.create_game(Some("world"), options()).await.unwrap();
    a.set_properties(SetProperties {
        target: 0,
        properties: [("boss".to_string(), Value::Str("beaten".into()))].into(),
        ..SetProperties::default()
    })
    .await
    .unwrap();
    a
}

/// Plays "world": alice creates it and sets a room property, bob joins, alice caches an
/// event and bob sets his own property; both leave to come back, so the room ends with two
/// inactive actors and is saved. Returns the game server it was saved from.
async fn play_and_save(t: &TestCluster, b: &Shared) -> String {
    let alice = t.client("alice").await;
    let mut a = boss_beaten(&alice).await;
    let bob = t.client("bob").await;
    let mut bob_room = bob.join_game("world").await.unwrap();
    expect_event(&mut a, |e| matches!(e, RoomEvent::Join { .. })).await;
    bob_room
        .set_properties(SetProperties {
            target: bob_room.actor(),
            properties: [("gold".to_string(), Value::Int(250))].into(),
            ..SetProperties::default()
        })
        .await
        .unwrap();
    a.raise(
        cached(b"treasure map"),
        switchboard_client::Delivery::Reliable,
    )
    .await
    .unwrap();
    expect_event(
        &mut bob_room,
        |e| matches!(e, RoomEvent::Custom(d) if d.code == 9),
    )
    .await;
    bob_room.leave_for_now().await.unwrap();
    a.leave_for_now().await.unwrap();
    let save = hook_where(b, is("Save")).await;
    assert_eq!(save["GameId"], "world");
    let state = &save["State"];
    assert_eq!(state["actors"].as_array().unwrap().len(), 2, "{state:#}");
    save["GameServer"].as_str().unwrap().to_string()
}

/// Waits until the master no longer lists `game` (its game server reported it gone): a
/// client in the lobby sees the list, then its updates.
async fn unlisted(t: &TestCluster, game: &str) {
    use switchboard_protocol::{Lobby, MasterEvent};
    let mut watcher = t.client("watcher").await;
    watcher.join_lobby(Lobby::default()).await.unwrap();
    let wait = async {
        loop {
            match watcher
                .next_event()
                .await
                .expect("the master connection is open")
            {
                MasterEvent::GameList { games, .. } if !games.iter().any(|g| g.game == game) => {
                    return;
                }
                MasterEvent::GameListUpdate { games, .. }
                    if games.iter().any(|g| g.game == game && g.removed) =>
                {
                    return;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("{game} is still listed"));
}

async fn out_of_rotation(t: &TestCluster, id: &str) {
    let status = switchboard::http_client()
        .post(format!("http://{}/servers/{id}/state", t.cluster.admin))
        .bearer_auth(&t.cluster.admin_token)
        .json(&serde_json::json!({ "state": "OutOfRotation" }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_saved_on_one_game_server_resumes_on_another_with_its_state() {
    let (addr, b) = backend().await;
    let t = cluster(addr, 2).await;
    let saved_on = play_and_save(&t, &b).await;
    unlisted(&t, "world").await;
    // The server that saved it takes no new games: the master must pick the other.
    out_of_rotation(&t, &saved_on).await;
    // bob comes back: the master does not list "world", but sends him to a game server
    // anyway (AsyncJoin), which loads the room from the backend.
    let bob = t.client("bob").await;
    let mut room = bob.join_game_with("world", rejoin()).await.unwrap();
    let load = hook_where(&b, is("Load")).await;
    assert_eq!(load["GameId"], "world");
    assert_eq!(load["UserId"], "bob");
    assert_ne!(load["GameServer"], saved_on.as_str(), "resumed elsewhere");
    // Each life of the room has its own id: RoomId + Seq is unique across saves and loads.
    let save = hook_where(&b, is("Save")).await;
    assert!(load["RoomId"].as_str().is_some_and(|id| id.len() == 16));
    assert_ne!(load["RoomId"], save["RoomId"]);
    let rejoined = hook_where(&b, |h| {
        h["Type"] == "Join" && h["UserId"] == "bob" && h["Seq"] == 2
    })
    .await;
    assert_eq!(
        rejoined["RoomId"], load["RoomId"],
        "the Load is the resumed room's first hook"
    );
    // Everything as it was: his actor number and property, the room's properties, the
    // cached event, alice inactive.
    let joined = room.joined().clone();
    assert_eq!(joined.actor, 2);
    assert_eq!(joined.properties.get("season"), Some(&Value::Int(3)));
    assert_eq!(
        joined.properties.get("boss"),
        Some(&Value::Str("beaten".into()))
    );
    let me = joined.actors.iter().find(|a| a.actor == 2).unwrap();
    assert_eq!(me.properties.get("gold"), Some(&Value::Int(250)));
    let alice_info = joined.actors.iter().find(|a| a.actor == 1).unwrap();
    assert!(alice_info.inactive);
    expect_event(&mut room, |e| {
        matches!(e, RoomEvent::Custom(d) if d.code == 9 && d.sender == 1 && &d.data[..] == b"treasure map")
    })
    .await;
    // The room is listed again: alice rejoins it where it now lives, as actor 1.
    let alice = t.client("alice").await;
    let a = alice.join_game_with("world", rejoin()).await.unwrap();
    assert_eq!(a.actor(), 1);
    expect_event(
        &mut room,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 1),
    )
    .await;
    t.cluster.shutdown().await;
}

/// A player coming back while the room's state is on its way to the backend: the master
/// still lists the room (so nobody loads an older state elsewhere), and the game server
/// holds the join until the save is done, then resumes the room from it, instead of
/// refusing a game it has just ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_while_the_room_is_being_saved_waits_and_resumes_it() {
    let (addr, b) = backend().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    b.lock().unwrap().hold_saves = Some(gate.clone());
    let t = cluster(addr, 1).await;
    let alice = t.client("alice").await;
    let a = boss_beaten(&alice).await;
    a.leave_for_now().await.unwrap();
    // The room ended; its state is with the backend, which has not answered yet.
    hook_where(&b, is("Save")).await;
    let back = t.client("alice").await;
    let mut join = tokio::spawn(async move {
        let room = back.join_game_with("world", rejoin()).await;
        (back, room)
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut join)
            .await
            .is_err(),
        "the join waits for the save instead of being refused"
    );
    gate.add_permits(1);
    let (_back, room) = tokio::time::timeout(Duration::from_secs(10), join)
        .await
        .expect("the join completes once the save is done")
        .unwrap();
    let room = room.expect("alice is back in the resumed room");
    assert_eq!(room.actor(), 1);
    assert_eq!(
        room.joined().properties.get("boss"),
        Some(&Value::Str("beaten".into()))
    );
    let load = hook_where(&b, is("Load")).await;
    assert_eq!(load["UserId"], "alice");
    t.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_saved_room_resumes_it() {
    let (addr, b) = backend().await;
    let t = cluster(addr, 1).await;
    play_and_save(&t, &b).await;
    unlisted(&t, "world").await;
    // A create of that name: the backend answers GameCreate with the saved state, and the
    // creator gets its own actor back in the resumed room.
    let alice = t.client("alice").await;
    let a = alice
        .create_game(Some("world"), RoomOptions::default())
        .await
        .unwrap();
    assert_eq!(a.actor(), 1);
    assert_eq!(
        a.joined().properties.get("boss"),
        Some(&Value::Str("beaten".into()))
    );
    assert_eq!(a.joined().actors.len(), 2);
    let create = hook_where(&b, |h| h["Type"] == "Create" && h["Seq"] == 1).await;
    assert_eq!(create["ActorNr"], 0, "asked before the room exists");
    // The creator's join follows as the room's second hook.
    let join = hook_where(&b, |h| h["Type"] == "Join" && h["UserId"] == "alice").await;
    assert_eq!(join["ActorNr"], 1);
    t.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_answer_that_is_not_valid_state_refuses_the_join_clearly() {
    let (addr, b) = backend().await;
    let t = cluster(addr, 1).await;
    let bob = t.client("bob").await;
    // Not a saved room at all.
    b.lock().unwrap().answer = Some(serde_json::json!({
        "ResultCode": 0,
        "State": { "version": 1, "actors": "lots" }
    }));
    let e = refused(&bob).await;
    assert_eq!(e.result_code(), Some(ResultCode::InvalidSavedState), "{e}");
    // A saved room this server could not have made (two actors with one number).
    play_and_save_elsewhere(&b);
    let e = refused(&bob).await;
    assert_eq!(e.result_code(), Some(ResultCode::InvalidSavedState), "{e}");
    assert!(e.to_string().contains("out of place"), "{e}");
    // The backend refuses: the join fails with the backend's message.
    b.lock().unwrap().answer = Some(serde_json::json!({
        "ResultCode": 7,
        "Message": "account locked"
    }));
    let e = refused(&bob).await;
    assert_eq!(
        e.result_code(),
        Some(ResultCode::ExternalHttpCallFailed),
        "{e}"
    );
    assert!(e.to_string().contains("account locked"), "{e}");
    // Answers that only look like a success are failures.
    for answer in [
        serde_json::json!({ "ResultCode": "7", "State": null }),
        serde_json::json!([{ "ResultCode": 0 }]),
        serde_json::json!({ "State": null }),
    ] {
        b.lock().unwrap().answer = Some(answer.clone());
        let e = refused(&bob).await;
        assert_eq!(
            e.result_code(),
            Some(ResultCode::ExternalHttpCallFailed),
            "{answer}: {e}"
        );
    }
    // Nothing saved: the room does not exist.
    b.lock().unwrap().answer = None;
    let e = refused(&bob).await;
    assert_eq!(e.result_code(), Some(ResultCode::GameDoesNotExist), "{e}");
    // Each refusal freed the name at once: a create of it works now.
    let room = common::eventually(
        || bob.create_game(Some("world"), RoomOptions::default()),
        |r| r.is_ok(),
    )
    .await
    .unwrap();
    assert_eq!(room.actor(), 1);
    t.cluster.shutdown().await;
}

/// bob's rejoin of "world", refused; retried while his previous refusal is still on its
/// way to the master (which then frees him and the name).
async fn refused(bob: &switchboard_client::Client) -> switchboard_client::ClientError {
    common::eventually(
        || async { bob.join_game_with("world", rejoin()).await.unwrap_err() },
        |e| e.result_code() != Some(ResultCode::JoinInProgress),
    )
    .await
}

/// A saved state as a backend might corrupt it: two actors numbered 1.
fn play_and_save_elsewhere(b: &Shared) {
    let state = serde_json::json!({
        "version": 1,
        "options": serde_json::to_value(RoomOptions::default()).unwrap(),
        "actors": [
            { "number": 1, "user_id": "alice", "properties": {}, "active": false },
            { "number": 1, "user_id": "bob", "properties": {}, "active": false }
        ],
        "next_actor": 3,
        "expected_users": [],
        "master_client": 0,
        "cache": [],
        "mode": "Relay"
    });
    b.lock().unwrap().answer = Some(serde_json::json!({ "ResultCode": 0, "State": state }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_game_server_saves_the_rooms_it_holds() {
    let (addr, b) = backend().await;
    let t = cluster(addr, 1).await;
    let alice = t.client("alice").await;
    let _playing = boss_beaten(&alice).await;
    // The server stops with alice still playing: she is left inactive and the room
    // saved.
    t.cluster.shutdown().await;
    let leave = hook_where(&b, is("Leave")).await;
    assert_eq!(leave["Reason"], "inactive");
    let save = hook_where(&b, is("Save")).await;
    assert_eq!(
        save["State"]["options"]["properties"]["boss"]["Str"],
        "beaten"
    );
    assert_eq!(save["State"]["actors"][0]["user_id"], "alice");
}

/// The real binary: a game server told to stop (SIGTERM) with a room in play delivers
/// that room's last hooks (the player left inactive, the state saved) to a backend that
/// takes its time with each, before it exits.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_webhooks_within_the_drain_grace() {
    use switchboard::procs::Proc;
    let (addr, b) = backend().await;
    // Every hook answered 300 ms late: without waiting, the process would be gone first.
    let slow = axum::Router::new()
        .route(
            "/hooks/{path}",
            post(|s, p, h, body| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                hook(s, p, h, body).await
            }),
        )
        .with_state(b.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, slow).await;
    });
    let _ = addr;
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchboard"));
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let tls = tls.to_str().unwrap().to_string();
    let secret = "cluster-secret-of-this-test";
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (master, ready) = Proc::spawn(
        &bin,
        "master",
        &args(&[
            "master",
            "--auth",
            "dev",
            "--cluster-secret",
            secret,
            "--dev-tls-dir",
            &tls,
            "--client-addr",
            "127.0.0.1:0",
            "--cluster-addr",
            "127.0.0.1:0",
            "--no-admin",
        ]),
        Duration::from_secs(30),
    )
    .unwrap();
    let cluster_addr = ready["cluster"].as_str().unwrap().to_string();
    let client_addr = ready["clients"].as_str().unwrap().to_string();
    let url = format!("http://{slow_addr}/hooks");
    let ca = format!("{tls}/cert.pem");
    let (mut gs, _) = Proc::spawn(
        &bin,
        "gameserver",
        &args(&[
            "gameserver",
            "--id",
            "gs-term",
            "--listen",
            "127.0.0.1:0",
            "--master",
            &cluster_addr,
            "--master-ca",
            &ca,
            "--cluster-secret",
            secret,
            "--dev-tls-dir",
            &tls,
            "--webhook-url",
            &url,
            "--webhook-secret",
            std::str::from_utf8(SECRET).unwrap(),
            "--webhook-persistent",
            "--drain-grace",
            "3",
        ]),
        Duration::from_secs(30),
    )
    .unwrap();
    let trust = switchboard_transport::Trust::from_ca_file(std::path::Path::new(&ca)).unwrap();
    let mut alice = switchboard_client::Client::connect(
        &client_addr,
        switchboard_client::ClientConfig::new(trust),
    )
    .await
    .unwrap();
    alice.authenticate("alice", "").await.unwrap();
    let room = alice.create_game(Some("world"), options()).await.unwrap();
    assert_eq!(room.actor(), 1);
    gs.sigterm().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = gs.wait_exit(Duration::from_secs(20)).unwrap();
        (status, gs)
    })
    .await
    .unwrap()
    .0;
    assert!(status.success(), "{status}");
    // By the time it exited, the backend had every hook of the room, each once.
    let got = b.lock().unwrap().got.clone();
    let kinds: Vec<&str> = got.iter().map(|h| h["Type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["Create", "Join", "Leave", "Save"], "{got:#?}");
    assert_eq!(got[3]["State"]["actors"][0]["user_id"], "alice");
    drop(master);
}

/// The state example in docs/OPERATIONS.md is a state a game server resumes.
#[test]
fn the_documented_state_example_is_a_valid_saved_room() {
    let doc = include_str!("../docs/OPERATIONS.md");
    let start = doc.find("```json\n{\"version\": 1,").expect("the example") + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let saved: switchboard_hive::SavedRoom =
        serde_json::from_str(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(saved.actors.len(), 2);
    let room = switchboard_hive::Room::restore(
        "world".into(),
        saved,
        switchboard_hive::RoomLimits::default(),
        std::time::Instant::now(),
    )
    .unwrap();
    assert_eq!(
        room.options().properties.get("season"),
        Some(&Value::Int(3))
    );
}
