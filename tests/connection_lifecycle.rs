//! Nothing is kept per connection after it ends: clients that come and go, however they
//! go, leave the master's and the game server's live-connection counts and their
//! per-connection task counts where they were.

mod common;

use std::time::Duration;

use common::{metric, start_all};
use switchboard_client::{Client, ClientConfig};
use switchboard_protocol::RoomOptions;

/// Waits (bounded) until the metric is back at `want`.
async fn settles(url: &str, name: &str, want: f64) {
    let mut last = f64::NAN;
    for _ in 0..300 {
        last = metric(url, name).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} stayed at {last}, expected {want}");
}

#[tokio::test]
async fn connections_leave_nothing_behind() {
    let t = start_all(
        1,
        |_| {},
        |m| {
            m.auth_timeout = Duration::from_millis(300);
            m.limits.idle_timeout = Duration::from_secs(2);
            m.limits.keep_alive = Duration::from_millis(500);
        },
        |g| {
            g.limits.idle_timeout = Duration::from_secs(2);
            g.limits.keep_alive = Duration::from_millis(500);
        },
    )
    .await;
    let (master, gs) = (t.master_metrics(), t.gs_metrics(0));
    let tasks_before = metric(&master, "switchboard_master_connection_tasks").await;
    let gs_tasks_before = metric(&gs, "switchboard_gs_connection_tasks").await;
    assert_eq!(metric(&master, "switchboard_master_connections").await, 0.0);

    // Creators stay for the whole run, so every room outlives its joiners.
    let host = t.client("host").await;
    let _room = host
        .create_game(Some("lobby-room"), RoomOptions::default())
        .await
        .unwrap();
    let host_tasks = metric(&master, "switchboard_master_connection_tasks").await;
    let gs_host_tasks = metric(&gs, "switchboard_gs_connection_tasks").await;
    // Every task of the process (master, game server and these clients share it).
    let runtime_tasks = metric(&master, "switchboard_master_runtime_tasks").await;

    let mut silent = Vec::new();
    for i in 0..60 {
        let user = format!("u{i}");
        match i % 4 {
            // Authenticates, then closes politely.
            0 => t.client(&user).await.close().await,
            // Joins a room, then drops both connections as a crash would.
            1 => {
                let c = t.client(&user).await;
                let room = c.join_game("lobby-room").await.unwrap();
                room.disconnect();
                c.disconnect();
            }
            // Joins, leaves the room properly, then closes.
            2 => {
                let c = t.client(&user).await;
                let room = c.join_game("lobby-room").await.unwrap();
                room.leave().await.unwrap();
                c.close().await;
            }
            // Says Hello and never authenticates: the deadline closes it.
            _ => {
                let c = Client::connect(&t.master(), ClientConfig::new(t.trust.clone()))
                    .await
                    .unwrap();
                silent.push(c);
            }
        }
    }

    settles(&master, "switchboard_master_connections", 1.0).await;
    settles(&master, "switchboard_master_connection_tasks", host_tasks).await;
    settles(&gs, "switchboard_gs_connections", 1.0).await;
    settles(&gs, "switchboard_gs_connection_tasks", gs_host_tasks).await;
    // The silent clients were closed by the master; their own endpoints go now.
    drop(silent);
    settles(&master, "switchboard_master_runtime_tasks", runtime_tasks).await;
    assert!(host_tasks > tasks_before && gs_host_tasks > gs_tasks_before);
}
