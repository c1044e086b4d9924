//! Join tickets over real QUIC: a game server accepts only a genuine, unexpired ticket
//! for itself, for that game and that operation.

mod common;

use std::time::Duration;

use common::{code, start, start_with};
use switchboard_client::JoinOptions;
use switchboard_protocol::{Redirect, TicketAction};

fn create() -> JoinOptions {
    JoinOptions::default()
}

/// The same redirect, followed as a join (as a client that lies about the action would).
fn as_join(mut r: Redirect) -> Redirect {
    r.action = TicketAction::Join;
    r
}
use switchboard_protocol::{MasterOp, ResultCode, RoomOptions};

#[tokio::test]
async fn a_ticket_for_another_game_server_is_refused() {
    let t = start(2).await;
    let alice = t.client("alice").await;
    let mut redirect = alice
        .redirect(MasterOp::CreateGame {
            game: Some("g".into()),
            options: RoomOptions::default(),
            expected_users: vec![],
        })
        .await
        .unwrap();
    let other = t
        .cluster
        .game_servers
        .iter()
        .map(|a| a.to_string())
        .find(|a| *a != redirect.address)
        .unwrap();
    redirect.address = other;
    assert_eq!(
        code(alice.follow(redirect, &create()).await),
        ResultCode::ExpectedGsCheckFailure
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_ticket_for_another_game_or_operation_is_refused() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let redirect = alice
        .redirect(MasterOp::CreateGame {
            game: Some("mine".into()),
            options: RoomOptions::default(),
            expected_users: vec![],
        })
        .await
        .unwrap();
    let mut other_game = redirect.clone();
    other_game.game = "yours".into();
    assert_eq!(
        code(alice.follow(other_game, &create()).await),
        ResultCode::ExpectedGameCheckFailure
    );
    // A create ticket does not join (the room does not exist yet, but the ticket check
    // comes first).
    assert_eq!(
        code(
            alice
                .follow(as_join(redirect.clone()), &JoinOptions::default())
                .await
        ),
        ResultCode::ExpectedGameCheckFailure
    );
    // The genuine use still works.
    let _room = alice.follow(redirect, &create()).await.unwrap();
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_forged_ticket_is_refused() {
    let t = start(1).await;
    let mallory = t.client("mallory").await;
    let mut redirect = mallory
        .redirect(MasterOp::CreateGame {
            game: Some("g".into()),
            options: RoomOptions::default(),
            expected_users: vec![],
        })
        .await
        .unwrap();
    // Claim to be "nallory": the signature no longer matches.
    let mut forged = redirect.ticket.to_vec();
    forged[1] = b'n';
    redirect.ticket = forged.into();
    assert_eq!(
        code(mallory.follow(redirect.clone(), &create()).await),
        ResultCode::InvalidAuthentication
    );
    redirect.ticket = bytes::Bytes::from_static(b"garbage");
    assert_eq!(
        code(mallory.follow(redirect, &create()).await),
        ResultCode::InvalidAuthentication
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    let t = start_with(1, |o| o.ticket_ttl = Duration::ZERO).await;
    let alice = t.client("alice").await;
    assert_eq!(
        code(alice.create_game(Some("g"), RoomOptions::default()).await),
        ResultCode::AuthenticationTokenExpired
    );
    t.cluster.shutdown().await;
}

#[tokio::test]
async fn a_second_actor_for_the_same_user_is_refused() {
    let t = start(1).await;
    let alice = t.client("alice").await;
    let _room = alice
        .create_game(Some("g"), RoomOptions::default())
        .await
        .unwrap();
    // The same user, through a second master connection, gets a fresh ticket.
    let again = t.client("alice").await;
    assert_eq!(
        code(again.join_game("g").await),
        ResultCode::JoinFailedPeerAlreadyJoined
    );
    t.cluster.shutdown().await;
}
