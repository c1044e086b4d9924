//! The poll-style core on its own: no cluster, so what a game sees when the master is
//! not there, and that calls never block.

use std::time::{Duration, Instant};

use switchboard_client::{ClientConfig, Op, PollClient, PollEvent};
use switchboard_transport::{ServerIdentity, Trust};

#[test]
fn an_unreachable_master_is_an_error_then_a_disconnect_and_calls_return_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca) = ServerIdentity::dev(dir.path()).unwrap();
    let mut config = ClientConfig::new(Trust::from_ca_file(&ca).unwrap());
    config.connect_timeout = Duration::from_millis(300);
    // A port nobody answers QUIC on (the connection attempt times out).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let mut c = PollClient::connect(&addr, config).unwrap();
    let started = Instant::now();
    c.authenticate("alice", "");
    c.lobby_stats();
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "calls do not wait"
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && seen.len() < 4 {
        match c.poll() {
            Some(e) => seen.push(e),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert!(
        matches!(
            seen[0],
            PollEvent::Error {
                op: Op::Connect,
                code: 0,
                ..
            }
        ),
        "{seen:?}"
    );
    assert!(
        matches!(seen[1], PollEvent::Disconnected { room: false, .. }),
        "{seen:?}"
    );
    // The calls made meanwhile are answered, not dropped: a game waiting for
    // `Authenticated` hears that it will not come.
    assert!(
        matches!(
            &seen[2..],
            [
                PollEvent::Error {
                    op: Op::Authenticate,
                    code: 0,
                    ..
                },
                PollEvent::Error { op: Op::Lobby, .. }
            ]
        ),
        "{seen:?}"
    );
}
