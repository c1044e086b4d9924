//! A client that stops reading is disconnected with a clear reason; the rest of its room
//! carries on.

mod common;

use std::time::Duration;

use common::{expect_event, start};
use switchboard_client::{Client, ClientConfig, ClientError, Delivery};
use switchboard_protocol::{CloseCode, RoomEvent, RoomOptions};

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_as_a_slow_consumer() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let mut a = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();

    // Bob buffers only a few events and then never reads again.
    let mut cfg = ClientConfig::new(t.trust.clone());
    cfg.event_buffer = 4;
    let mut bob = Client::connect(&t.master(), cfg).await.unwrap();
    bob.authenticate("bob", "").await.unwrap();
    let b = bob.join_game("g").await.unwrap();
    expect_event(
        &mut a,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 2),
    )
    .await;

    // 1 KiB events until Bob is gone: his stream window, his client buffer and then his
    // queue on the game server fill up (bounded: at most 40 MiB).
    let payload = vec![0u8; 1024];
    let mut sent = 0;
    while b.close_reason().is_none() && sent < 40_000 {
        a.raise_event(5, payload.clone(), Delivery::Reliable)
            .await
            .unwrap();
        sent += 1;
        if sent % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(r) = b.close_reason() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("bob is disconnected");
    match reason {
        ClientError::Closed { code, reason } => {
            assert_eq!(code, Some(CloseCode::SlowConsumer));
            assert!(reason.contains("fast enough"), "{reason}");
        }
        other => panic!("unexpected close: {other}"),
    }

    // Alice sees Bob leave and the room goes on with Carol.
    expect_event(&mut a, |e| matches!(e, RoomEvent::Leave { actor: 2, .. })).await;
    let carol = t.client("carol").await;
    let mut c = carol.join_game("g").await.unwrap();
    a.raise_event(6, b"still here".to_vec(), Delivery::Reliable)
        .await
        .unwrap();
    expect_event(
        &mut c,
        |e| matches!(e, RoomEvent::Custom(d) if d.code == 6 && d.sender == 1),
    )
    .await;
    t.cluster.shutdown().await;
}
