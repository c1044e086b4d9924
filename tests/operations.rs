//! Load feedback, server states and operator control, end to end: synthetic load steers
//! placement, the admin API (and its token), rotation, Offline with its notice, the state
//! file, and the HTTP endpoints.

mod common;

use std::time::Duration;

use common::{TestCluster, eventually, expect_event, start_all};
use serde_json::Value as Json;
use switchboard_client::ClientError;
use switchboard_gameserver::SyntheticLoad;
use switchboard_protocol::{CloseCode, MasterOp, RoomEvent, RoomOptions};

async fn cluster(game_servers: usize, state_file: Option<std::path::PathBuf>) -> TestCluster {
    start_all(
        game_servers,
        |_| {},
        |m| m.settings.load_balancer.reserve_ratio = 0.0,
        move |g| {
            g.workload.sampling.interval_ms = 20;
            g.workload.sampling.window = 1;
            g.state_file = state_file.clone();
        },
    )
    .await
}

fn admin(t: &TestCluster) -> (reqwest::Client, String, String) {
    (
        switchboard::http_client(),
        format!("http://{}", t.cluster.admin),
        t.cluster.admin_token.clone(),
    )
}

async fn servers(t: &TestCluster) -> Vec<Json> {
    let (c, url, token) = admin(t);
    let r = c
        .get(format!("{url}/servers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.json().await.unwrap()
}

async fn server_field(t: &TestCluster, id: &str, field: &str) -> Json {
    servers(t)
        .await
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap()[field]
        .clone()
}

async fn set_state(t: &TestCluster, id: &str, state: &str, after: u32) -> reqwest::StatusCode {
    let (c, url, token) = admin(t);
    c.post(format!("{url}/servers/{id}/state"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "state": state, "offline_after_secs": after }))
        .send()
        .await
        .unwrap()
        .status()
}

fn create(name: Option<String>) -> MasterOp {
    MasterOp::CreateGame {
        game: name,
        options: RoomOptions::default(),
        expected_users: vec![],
    }
}

#[tokio::test]
async fn load_feedback_steers_placement() {
    let t = cluster(2, None).await;
    let busy = t.cluster.game_servers[0].to_string();
    let hook = &t.cluster.load_hooks[0];
    hook.set(SyntheticLoad {
        cpu_percent: Some(100),
        ..SyntheticLoad::default()
    });
    let _ = eventually(|| server_field(&t, "gs-1", "level"), |l| *l == 9).await;
    assert_eq!(server_field(&t, "gs-1", "cpu_level").await, 9);
    let alice = t.client("alice").await;
    for _ in 0..40 {
        let r = alice.redirect(create(None)).await.unwrap();
        assert_ne!(
            r.address, busy,
            "no game goes to a server at level 9 (weight 0)"
        );
    }
    // The load falls: placement resumes there.
    hook.set(SyntheticLoad {
        cpu_percent: Some(0),
        ..SyntheticLoad::default()
    });
    let _ = eventually(|| server_field(&t, "gs-1", "level"), |l| *l == 0).await;
    let mut resumed = false;
    for _ in 0..200 {
        if alice.redirect(create(None)).await.unwrap().address == busy {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "games are placed on gs-1 again");
    hook.clear();
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_toggles_rotation() {
    let t = cluster(2, None).await;
    let (c, url, _) = admin(&t);
    let r = c.get(format!("{url}/servers")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{url}/servers"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Unauthenticated health and metrics.
    assert_eq!(
        c.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = c
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_master_game_servers_up 2"),
        "{metrics}"
    );

    let alice = t.client("alice").await;
    let gs1 = t.cluster.game_servers[0].to_string();
    // A game on gs-1 before it leaves rotation.
    let existing = loop {
        let r = alice.redirect(create(None)).await.unwrap();
        if r.address == gs1 {
            break alice.follow(r, &Default::default()).await.unwrap();
        }
    };
    assert_eq!(set_state(&t, "gs-1", "OutOfRotation", 0).await, 202);
    let _ = eventually(
        || server_field(&t, "gs-1", "state"),
        |s| *s == "OutOfRotation",
    )
    .await;
    for _ in 0..30 {
        assert_ne!(alice.redirect(create(None)).await.unwrap().address, gs1);
    }
    // Existing games stay listed and joinable.
    let games: Vec<Json> = c
        .get(format!("{url}/games"))
        .bearer_auth(&t.cluster.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(games.iter().any(|g| g["game"] == existing.game()));
    let bob = t.client("bob").await;
    bob.join_game(existing.game()).await.unwrap();
    // The game server's own endpoint says it is not ready for new players.
    let gs_http = format!("http://{}", t.cluster.game_server_http[0]);
    assert_eq!(
        c.get(format!("{gs_http}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let gs_metrics = c
        .get(format!("{gs_http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        gs_metrics.contains("switchboard_gs_state{state=\"out_of_rotation\"} 1"),
        "{gs_metrics}"
    );
    assert!(
        gs_metrics.contains("switchboard_gs_rooms 1"),
        "{gs_metrics}"
    );
    // Back in rotation.
    assert_eq!(set_state(&t, "gs-1", "Normal", 0).await, 202);
    let _ = eventually(|| server_field(&t, "gs-1", "state"), |s| *s == "Normal").await;
    assert_eq!(
        c.get(format!("{gs_http}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Bad requests are refused clearly.
    assert_eq!(set_state(&t, "gs-1", "Sleeping", 0).await, 400);
    assert_eq!(set_state(&t, "gs-9", "Normal", 0).await, 404);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn offline_tells_players_and_closes_them() {
    let t = cluster(1, None).await;
    let alice = t.client("alice").await;
    let mut room = alice
        .create_game(Some("doomed"), RoomOptions::default())
        .await
        .unwrap();
    assert_eq!(set_state(&t, "gs-1", "Offline", 1).await, 202);
    let notice = expect_event(&mut room, |e| {
        matches!(e, RoomEvent::GameServerOffline { .. })
    })
    .await;
    assert_eq!(notice, RoomEvent::GameServerOffline { seconds_left: 1 });
    // Joins are refused meanwhile, and the game left the lobby.
    let bob = t.client("bob").await;
    assert!(bob.join_game("doomed").await.is_err());
    // When the time is up the server closes every connection with a reason.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while room.next_event().await.is_some() {}
        room.close_reason()
    })
    .await
    .expect("closed in time");
    match closed {
        Some(ClientError::Closed { code, reason }) => {
            assert_eq!(code, Some(CloseCode::ServerShutdown));
            assert!(reason.contains("offline"), "{reason}");
        }
        other => panic!("unexpected: {other:?}"),
    }
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn the_state_file_is_watched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ServerState.txt");
    let t = cluster(1, Some(file.clone())).await;
    std::fs::write(&file, "OutOfRotation\n").unwrap();
    let _ = eventually(
        || server_field(&t, "gs-1", "state"),
        |s| *s == "OutOfRotation",
    )
    .await;
    std::fs::write(&file, "Normal\n").unwrap();
    let _ = eventually(|| server_field(&t, "gs-1", "state"), |s| *s == "Normal").await;
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn an_empty_admin_token_turns_the_api_off_instead_of_opening_it() {
    let t = start_all(1, |_| {}, |m| m.admin_token = Some(String::new()), |_| {}).await;
    let (c, url, _) = admin(&t);
    // A request with no Authorization header matches an empty token byte for byte: it
    // must not get in.
    let r = c.get(format!("{url}/servers")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .get(format!("{url}/servers"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    t.cluster.shutdown().await;
}
