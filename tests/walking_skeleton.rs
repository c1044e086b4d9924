//! The foundation's path end to end over real QUIC on 127.0.0.1: authenticate, create,
//! join by name, relay reliable and unreliable events, leave, and the master's view of it.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{code, eventually, expect_event, join_op, start};
use switchboard_client::Delivery;
use switchboard_protocol::{
    EventCaching, RaiseEvent, ReceiverGroup, ResultCode, RoomEvent, RoomOptions, Value,
};

#[tokio::test]
async fn create_join_relay_and_leave() {
    let t = start(2).await;
    let alice = t.client("alice").await;
    let bob = t.client("bob").await;

    let mut options = RoomOptions::default();
    options
        .properties
        .insert("map".into(), Value::Str("dust".into()));
    let mut a = alice.create_game(Some("arena"), options).await.unwrap();
    assert_eq!(a.actor(), 1);
    assert_eq!(a.joined().master_client, 1);
    assert_eq!(
        a.joined().properties.get("map"),
        Some(&Value::Str("dust".into()))
    );
    expect_event(
        &mut a,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 1),
    )
    .await;

    let mut b = bob.join_game("arena").await.unwrap();
    assert_eq!(b.actor(), 2);
    assert_eq!(b.address(), a.address(), "joined on the room's game server");
    assert_eq!(b.joined().actors.len(), 2);
    let join = expect_event(&mut a, |e| matches!(e, RoomEvent::Join { .. })).await;
    assert_eq!(
        join,
        RoomEvent::Join {
            actor: switchboard_protocol::ActorInfo {
                actor: 2,
                user_id: String::new(),
                inactive: false,
                properties: Default::default(),
            },
            actors: vec![1, 2]
        }
    );

    // Reliable, stamped with the real sender.
    a.raise_event(10, b"over the stream".to_vec(), Delivery::Reliable)
        .await
        .unwrap();
    let ev = expect_event(&mut b, |e| matches!(e, RoomEvent::Custom(_))).await;
    let RoomEvent::Custom(d) = ev else {
        unreachable!()
    };
    assert_eq!(
        (d.sender, d.code, &d.data[..]),
        (1, 10, &b"over the stream"[..])
    );

    // Unreliable: datagrams may be lost, so send until one arrives (bounded).
    let mut got = None;
    for i in 0..50u8 {
        b.raise_event(11, vec![i], Delivery::Unreliable)
            .await
            .unwrap();
        if let Ok(ev) = tokio::time::timeout(
            Duration::from_millis(100),
            expect_event(
                &mut a,
                |e| matches!(e, RoomEvent::Custom(d) if d.code == 11),
            ),
        )
        .await
        {
            got = Some(ev);
            break;
        }
    }
    let Some(RoomEvent::Custom(d)) = got else {
        panic!("no datagram arrived")
    };
    assert_eq!(d.sender, 2);

    // Bob leaves; Alice sees it and stays master client.
    b.leave().await.unwrap();
    let leave = expect_event(&mut a, |e| matches!(e, RoomEvent::Leave { .. })).await;
    assert_eq!(
        leave,
        RoomEvent::Leave {
            actor: 2,
            inactive: false,
            master_client: 1
        }
    );
    // Alice leaves too: the room ends and the master forgets it.
    a.leave().await.unwrap();
    let _ = eventually(
        || alice.redirect(join_op("arena")),
        |r| {
            r.as_ref()
                .is_err_and(|e| e.result_code() == Some(ResultCode::GameDoesNotExist))
        },
    )
    .await;
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn receiver_groups_and_targets() {
    let t = start(1).await;
    let users = ["u1", "u2", "u3"];
    let mut clients = Vec::new();
    for u in users {
        clients.push(t.client(u).await);
    }
    let mut rooms = vec![
        clients[0]
            .create_game(Some("g"), RoomOptions::default())
            .await
            .unwrap(),
    ];
    for c in &clients[1..] {
        rooms.push(c.join_game("g").await.unwrap());
    }
    // Let every Join arrive first.
    for r in rooms.iter_mut() {
        expect_event(
            r,
            |e| matches!(e, RoomEvent::Join { actors, .. } if actors.len() == 3),
        )
        .await;
    }
    let send = |receivers, targets: Vec<u32>, code| RaiseEvent {
        code,
        receivers,
        targets,
        group: 0,
        cache: EventCaching::DoNotCache,
        channel: 0,
        data: Bytes::new(),
    };
    // All includes the sender; MasterClient reaches actor 1 only; targets win.
    rooms[1]
        .raise(send(ReceiverGroup::All, vec![], 1), Delivery::Reliable)
        .await
        .unwrap();
    rooms[1]
        .raise(
            send(ReceiverGroup::MasterClient, vec![], 2),
            Delivery::Reliable,
        )
        .await
        .unwrap();
    rooms[1]
        .raise(send(ReceiverGroup::All, vec![3], 3), Delivery::Reliable)
        .await
        .unwrap();
    // A marker that everyone receives last, so absence of earlier events is checked.
    rooms[1]
        .raise(send(ReceiverGroup::All, vec![], 9), Delivery::Reliable)
        .await
        .unwrap();
    let mut seen = Vec::new();
    for r in rooms.iter_mut() {
        let mut codes = Vec::new();
        loop {
            let RoomEvent::Custom(d) = expect_event(r, |e| matches!(e, RoomEvent::Custom(_))).await
            else {
                unreachable!()
            };
            assert_eq!(d.sender, 2);
            if d.code == 9 {
                break;
            }
            codes.push(d.code);
        }
        seen.push(codes);
    }
    assert_eq!(seen, vec![vec![1, 2], vec![1], vec![1, 3]]);
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn master_tracks_player_counts_from_game_server_reports() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let bob = t.client("bob").await;
    let carol = t.client("carol").await;
    let options = RoomOptions {
        max_players: 2,
        ..RoomOptions::default()
    };
    let _a = alice.create_game(Some("duo"), options).await.unwrap();
    let b = bob.join_game("duo").await.unwrap();
    // The game server reports 2/2: the master refuses the third player.
    let _ = eventually(
        || carol.redirect(join_op("duo")),
        |r| {
            r.as_ref()
                .is_err_and(|e| e.result_code() == Some(ResultCode::GameFull))
        },
    )
    .await;
    // Bob's leave is reported: Carol gets in.
    b.leave().await.unwrap();
    let _ = eventually(|| carol.redirect(join_op("duo")), |r| r.is_ok()).await;
    let c = carol.join_game("duo").await.unwrap();
    assert_eq!(c.actor(), 3, "actor numbers are not reused");
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn generated_game_names_are_unique_and_unguessable() {
    let t = start(2).await;
    let alice = t.client("alice").await;
    let bob = t.client("bob").await;
    let r1 = alice
        .create_game(None, RoomOptions::default())
        .await
        .unwrap();
    let r2 = bob.create_game(None, RoomOptions::default()).await.unwrap();
    assert_eq!(r1.game().len(), 32, "generated names are 128-bit hex");
    assert!(r1.game().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(r1.game(), r2.game());
    // The generated name is joinable like any other.
    let carol = t.client("carol").await;
    carol.join_game(r1.game()).await.unwrap();
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn master_refusals_have_their_codes() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let _room = alice
        .create_game(Some("taken"), RoomOptions::default())
        .await
        .unwrap();
    let bob = t.client("bob").await;
    assert_eq!(
        code(bob.create_game(Some("taken"), RoomOptions::default()).await),
        ResultCode::GameIdAlreadyExists
    );
    assert_eq!(
        code(bob.join_game("missing").await),
        ResultCode::GameDoesNotExist
    );
    assert_eq!(
        code(bob.create_game(Some(""), RoomOptions::default()).await),
        ResultCode::InvalidRequestParameters
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn operations_need_exactly_one_authentication() {
    let t = start(1).await;
    let cfg = switchboard_client::ClientConfig::new(t.trust.clone());
    let mut c = switchboard_client::Client::connect(&t.master(), cfg)
        .await
        .unwrap();
    assert_eq!(
        code(c.create_game(None, RoomOptions::default()).await),
        ResultCode::OperationNotAllowedInCurrentState
    );
    assert_eq!(
        code(c.authenticate("", "").await),
        ResultCode::InvalidAuthentication
    );
    c.authenticate("alice", "").await.unwrap();
    assert_eq!(
        code(c.authenticate("alice", "").await),
        ResultCode::OperationNotAllowedInCurrentState
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn no_game_server_means_server_full() {
    let t = start(0).await;
    let alice = t.client("alice").await;
    assert_eq!(
        code(alice.create_game(None, RoomOptions::default()).await),
        ResultCode::ServerFull
    );
    t.cluster.shutdown().await;
}

/// Relayed datagrams count in the game server's bytes out (the bandwidth controller's
/// input and a metric), whichever way they leave: straight from the room or through the
/// recipient's writer.
#[tokio::test]
async fn relayed_datagrams_count_in_the_game_servers_bytes_out() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let bob = t.client("bob").await;
    let mut a = alice
        .create_game(Some("counted"), RoomOptions::default())
        .await
        .unwrap();
    let mut b = bob.join_game("counted").await.unwrap();
    expect_event(
        &mut a,
        |e| matches!(e, RoomEvent::Join { actor, .. } if actor.actor == 2),
    )
    .await;
    let metrics = format!("http://{}/metrics", t.cluster.game_server_http[0]);
    let bytes_out = || async {
        let text = switchboard::http_client()
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("switchboard_gs_bytes_out_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no bytes out in {text}"))
    };
    let before = bytes_out().await;
    // Datagrams may be lost: send until 20 have arrived (bounded).
    let (payload, mut received) = (vec![7u8; 1000], 0u64);
    for _ in 0..400 {
        a.raise_event(12, payload.clone(), Delivery::Unreliable)
            .await
            .unwrap();
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(20), b.next_event()).await
        {
            if matches!(ev, RoomEvent::Custom(ref d) if d.code == 12) {
                received += 1;
            }
        }
        if received >= 20 {
            break;
        }
    }
    assert!(received >= 20, "only {received} datagrams arrived");
    let counted = bytes_out().await - before;
    assert!(
        counted >= received * 1000,
        "{received} datagrams of 1,000 bytes delivered, {counted} bytes counted"
    );
}
